"""Results: the dataset schema, per-point files, combining, comparison, export and plots."""

from gradstats.results.io import combine, load_results

__all__ = ["combine", "load_results"]
