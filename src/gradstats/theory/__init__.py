"""Infinite-width theory of fully connected and convolutional networks (JAX): kernels, signal propagation,
predictions of gradient statistics at initialization, gradient bounds, finite-width corrections.

Submodules load lazily so that ``import gradstats.theory`` (e.g. by the CLI) does not import
jax until a function is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "nngp": "kernels", "ntk": "kernels", "ntk_per_layer": "kernels", "nngp_and_ntk": "kernels",
    "layer_kernels": "kernels", "diag_recursion": "kernels",
    "Quadrature": "activations",
    "signal_propagation": "signal", "SignalPropagation": "signal", "phase_diagram": "signal",
    "critical_sigma_w2": "signal",
    "predict_statistics": "predict", "conditional_statistics": "predict",
    "unconditional_moments": "predict",
    "linearized_sgd": "lazy",
    "enable_x64": "_compat",
    "cnn_kernels": "conv.tiled", "cnn_kernels_to_zarr": "conv.tiled",
    "conv_diag_recursion": "conv.diag",
}
_SUBMODULES = ("activations", "kernels", "signal", "predict", "bounds", "finite_width", "lazy", "validity",
               "nt_backend", "command", "batchnorm", "conv")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"gradstats.theory.{_EXPORTS[name]}")
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"gradstats.theory.{name}")
    raise AttributeError(f"module 'gradstats.theory' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
