"""Results: the dataset schema, per-point files, combining, comparison, export and plots.

`combine` and `load_results` load lazily (xarray is imported on first use), so the CLI, which
imports the command modules of this package, starts fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["combine", "load_results"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gradstats.results import io

        return getattr(io, name)
    raise AttributeError(f"module 'gradstats.results' has no attribute {name!r}")
