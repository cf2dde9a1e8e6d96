"""The activation table: every activation declared once, read by every consumer.

Each `Activation` gives phi and phi' as functions of an array namespace ``ops`` (torch, jax
or numpy, from `array_ops`), so the torch model, the JAX kernels and the numpy bounds
evaluate the same formula; and the properties the theory needs: the piecewise-linear slopes
``(a, b)`` of ``a*min(x,0) + b*max(x,0)`` (arc-cosine kernels), which closed-form kernel
exists, sup |phi'| (gradient bounds) and positive homogeneity.

No torch and no jax at import: `array_ops` imports the backend it is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

LEAKY_RELU_SLOPE = 0.01
_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)

ArrayFn = Callable[[Any, Any], Any]  # (ops, x) -> array


@dataclass(frozen=True)
class Activation:
    """One activation phi.

    phi, dphi: ``(ops, x) -> array`` (dphi is a subgradient at kinks: 0 for relu and abs at 0).
    kernel: ``"arccos"`` (piecewise linear, Cho & Saul 2009), ``"erf"`` (Williams 1997) or
    ``"quadrature"`` (no closed form). piecewise: ``(a, b)`` slopes for ``"arccos"``, else None.
    derivative_sup: sup_x |phi'(x)|. homogeneous: phi(c x) = c phi(x) for c > 0.
    """

    name: str
    phi: ArrayFn
    dphi: ArrayFn
    kernel: str
    derivative_sup: float
    piecewise: tuple[float, float] | None = None
    homogeneous: bool = False


def _piecewise(name: str, a: float, b: float, phi: ArrayFn | None = None,
               dphi: ArrayFn | None = None) -> Activation:
    def default_phi(ops, x):
        return ops.where(x > 0, b * x, a * x)

    def default_dphi(ops, x):
        one = ops.ones_like(x)
        return ops.where(x > 0, b * one, a * one)

    return Activation(name, phi or default_phi, dphi or default_dphi, "arccos",
                      max(abs(a), abs(b)), (a, b), homogeneous=True)


def _gelu_dphi(ops, x):
    return 0.5 * (1 + ops.erf(x / math.sqrt(2))) + x * _INV_SQRT_2PI * ops.exp(-0.5 * x * x)


_TABLE = (
    _piecewise("relu", 0.0, 1.0, phi=lambda ops, x: ops.relu(x)),
    Activation("tanh", lambda ops, x: ops.tanh(x), lambda ops, x: 1 - ops.tanh(x) ** 2,
               "quadrature", 1.0),
    Activation("erf", lambda ops, x: ops.erf(x),
               lambda ops, x: 2 / math.sqrt(math.pi) * ops.exp(-x * x), "erf",
               2 / math.sqrt(math.pi)),
    Activation("sigmoid", lambda ops, x: ops.sigmoid(x),
               lambda ops, x: ops.sigmoid(x) * (1 - ops.sigmoid(x)), "quadrature", 0.25),
    # exact (erf) gelu, as neural-tangents; gelu' = Phi(x) + x phi(x) peaks at x = sqrt(2)
    Activation("gelu", lambda ops, x: 0.5 * x * (1 + ops.erf(x / math.sqrt(2))), _gelu_dphi,
               "quadrature",
               0.5 * (1 + math.erf(1.0)) + math.sqrt(2) * math.exp(-1.0) * _INV_SQRT_2PI),
    _piecewise("linear", 1.0, 1.0, phi=lambda ops, x: x, dphi=lambda ops, x: ops.ones_like(x)),
    Activation("softplus", lambda ops, x: ops.softplus(x), lambda ops, x: ops.sigmoid(x),
               "quadrature", 1.0),
    _piecewise("abs", -1.0, 1.0, phi=lambda ops, x: ops.abs(x),
               dphi=lambda ops, x: ops.sign(x)),
    _piecewise("leaky_relu", LEAKY_RELU_SLOPE, 1.0),
)
ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _TABLE}
NAMES = tuple(ACTIVATIONS)


def get(name: str) -> Activation:
    """The table entry of ``name``; ValueError naming the choices otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(NAMES)}") from None


@cache
def array_ops(backend: str) -> SimpleNamespace:
    """The array functions the table uses, for ``backend`` = torch, jax or numpy."""
    if backend == "torch":
        import torch
        import torch.nn.functional as F  # noqa: N812

        return SimpleNamespace(where=torch.where, exp=torch.exp, erf=torch.erf,
                               tanh=torch.tanh, sigmoid=torch.sigmoid, softplus=F.softplus,
                               abs=torch.abs, sign=torch.sign, relu=torch.relu,
                               ones_like=torch.ones_like)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return SimpleNamespace(where=jnp.where, exp=jnp.exp, erf=jax.scipy.special.erf,
                               tanh=jnp.tanh, sigmoid=jax.nn.sigmoid, softplus=jax.nn.softplus,
                               abs=jnp.abs, sign=jnp.sign, relu=jax.nn.relu,
                               ones_like=jnp.ones_like)
    if backend == "numpy":
        import numpy as np
        from scipy import special

        return SimpleNamespace(where=np.where, exp=np.exp, erf=special.erf, tanh=np.tanh,
                               sigmoid=special.expit, softplus=lambda x: np.logaddexp(0.0, x),
                               abs=np.abs, sign=np.sign, relu=lambda x: np.maximum(x, 0.0),
                               ones_like=np.ones_like)
    raise ValueError(f"unknown backend {backend!r}; choose torch, jax or numpy")


def functions(name: str, backend: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """(phi, phi') of activation ``name`` as one-argument functions of ``backend`` arrays."""
    entry, ops = get(name), array_ops(backend)
    return (lambda x: entry.phi(ops, x)), (lambda x: entry.dphi(ops, x))
