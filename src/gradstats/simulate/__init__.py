"""Finite networks in PyTorch: models, data, training, estimators of statistics.

Attributes load lazily, so ``gradstats.simulate.estimator_names`` (read when a sweep file is
validated) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"MLP": "model", "build_model": "model", "resolve_device": "model",
            "empirical_ntk": "engine"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"gradstats.simulate.{_EXPORTS[name]}"), name)
    if name.startswith("_"):
        raise AttributeError(f"module 'gradstats.simulate' has no attribute {name!r}")
    try:
        return importlib.import_module(f"gradstats.simulate.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"gradstats.simulate.{name}":
            raise
        raise AttributeError(f"module 'gradstats.simulate' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return __all__
