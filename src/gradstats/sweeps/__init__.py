"""Sweep files: parsing and validation, grid expansion, presets, execution with resume."""

from gradstats.sweeps.grid import apply_overrides, expand, make_point
from gradstats.sweeps.presets import preset_names, resolve_sweep
from gradstats.sweeps.sweepfile import SweepError, SweepFile, load_sweep, parse_sweep

__all__ = ["SweepError", "SweepFile", "apply_overrides", "expand", "load_sweep", "make_point",
           "parse_sweep", "preset_names", "resolve_sweep"]
