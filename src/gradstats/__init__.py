"""gradstats: how are the gradients of a neural network distributed, and does theory predict it?

The Python API (README, "Python API"): `run_sweep` (``gradstats run``), `compare`
(``gradstats compare``), `load_results`, the specs (`Architecture`, `Training`, `Data`,
`Point`) and the subpackages `theory`, `simulate`, `sweeps`, `results`.

Everything but the specs loads on first attribute access (`simulate` needs torch, `theory`
jax, the results xarray), so ``import gradstats`` and ``gradstats --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from gradstats.spec import Architecture, Data, Point, SpecError, Training

__version__ = "0.4.0"
# name -> module it lives in (imported on first access)
_LAZY = {"run_sweep": "gradstats.api", "compare": "gradstats.api", "Comparison": "gradstats.api",
         "load_results": "gradstats.results.io"}
_SUBPACKAGES = ("results", "simulate", "sweeps", "theory")
__all__ = ["Architecture", "Data", "Point", "SpecError", "Training", "__version__",
           *sorted(_LAZY), *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"gradstats.{name}")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gradstats' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
