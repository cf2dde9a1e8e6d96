"""gradstats: how are the gradients of a neural network distributed, and does theory predict it?

Heavy subpackages (`simulate` needs torch, `theory` needs jax) load on first attribute access,
so ``import gradstats`` and ``gradstats --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from gradstats.spec import Architecture, Data, Point, SpecError, Training

__version__ = "0.3.0"
__all__ = ["Architecture", "Data", "Point", "SpecError", "Training", "__version__",
           "results", "simulate", "sweeps", "theory"]


def __getattr__(name: str) -> Any:
    if name in {"simulate", "theory", "sweeps", "results"}:
        return importlib.import_module(f"gradstats.{name}")
    raise AttributeError(f"module 'gradstats' has no attribute {name!r}")
