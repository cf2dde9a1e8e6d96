"""Finite networks in PyTorch: models, data, training, estimators of statistics."""

from gradstats.simulate.model import MLP, build_model, resolve_device

__all__ = ["MLP", "build_model", "resolve_device"]
