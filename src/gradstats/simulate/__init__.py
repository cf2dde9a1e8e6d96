"""Finite networks in PyTorch: models, data, training, estimators of statistics."""

from gradstats.simulate.model import MLP, build_model, resolve_device

__all__ = ["MLP", "build_model", "resolve_device"]

from gradstats.simulate.engine import empirical_ntk  # noqa: E402

__all__ += ["empirical_ntk"]
