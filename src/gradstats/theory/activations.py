"""Gaussian expectations of activations: the dual (kernel) maps of the infinite-width theory.

For a centred Gaussian pair (u, v) with Var u = q1, Var v = q2, Cov(u, v) = c:

- ``pair(q1, q2, c) = (E[phi(u) phi(v)], E[phi'(u) phi'(v)])``   (NNGP map, NTK "dot" map)
- ``diag(q)          = (E[phi(u)^2], E[phi'(u)^2])`` with Var u = q  (length map, chi)

Closed forms: ``relu``, ``leaky_relu`` (slope 0.01), ``abs`` and ``linear`` (all of the form
``a*min(x,0) + b*max(x,0)``: arc-cosine kernels, Cho & Saul 2009), ``erf`` (Williams 1997).
Everything else (``tanh``, ``sigmoid``, ``gelu`` with the exact erf form, ``softplus``) is
integrated numerically with a tensor-product rule, see `Quadrature`.

Quadrature. ``rule="sinh"`` (default) is the trapezoidal rule on a sinh-mapped grid
(z = center + beta*sinh(t), t equispaced). The outer variable is z1 = u/sqrt(q1) with
``beta = min(1, 1/sqrt(q1), 1/(sqrt(q2)|rho|))`` so that nodes crowd where phi(u) and
E[phi(v) | z1] bend; the inner
variable is z2 in v = sqrt(q2)(rho z1 + sqrt(1-rho^2) z2), with its grid centred where v
changes sign (clipped to |z2| <= 3) and ``beta = min(1, 1/s)``, s = sqrt(q2 (1-rho^2)). With
64 points a side it reaches about 1e-9 relative for tanh/sigmoid for variances up to 100.
``rule="gauss-hermite"`` is the plain 2-D Gauss-Hermite product rule on the Cholesky
factorization (what neural-tangents' ``ElementwiseNumerical`` does); it converges slowly once
phi varies on a scale below sqrt(q) (tanh at q = 3: ~1e-6 with 100 nodes, ~1e-8 with 200), so
it is kept for comparison only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from gradstats.activations import ACTIVATIONS as _TABLE
from gradstats.activations import array_ops

# (a, b): phi(x) = a*min(x, 0) + b*max(x, 0)
PIECEWISE_LINEAR = {name: e.piecewise for name, e in _TABLE.items() if e.kernel == "arccos"}
CLOSED_FORM = tuple(name for name, e in _TABLE.items() if e.kernel != "quadrature")
QUADRATURE = tuple(name for name, e in _TABLE.items() if e.kernel == "quadrature")
ALL = CLOSED_FORM + QUADRATURE

# sup_x |phi'(x)| of each activation (used by the gradient bounds).
DERIVATIVE_SUP = {name: e.derivative_sup for name, e in _TABLE.items()}

_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
_Z_MAX = 9.0  # Gaussian tail beyond 9 sd: 2e-19
_CENTER_MAX = 3.0  # the inner grid follows the sign change of v up to 3 sd


@dataclass(frozen=True)
class Quadrature:
    """Numerical rule for activations without a closed form.

    rule: ``"sinh"`` (sinh-mapped trapezoid, default) or ``"gauss-hermite"``.
    points: nodes per dimension (the 2-D rule costs points**2 evaluations per kernel entry).
    chunk: kernel entries evaluated at once (bounds memory to chunk * points**2 floats).
    """

    rule: str = "sinh"
    points: int = 64
    chunk: int = 1024

    def __post_init__(self) -> None:
        if self.rule not in ("sinh", "gauss-hermite"):
            raise ValueError(f"unknown quadrature rule {self.rule!r}; use 'sinh' or 'gauss-hermite'")
        if self.points < 4:
            raise ValueError(f"quadrature needs at least 4 points, got {self.points}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")


DEFAULT_QUADRATURE = Quadrature()


def check_activation(name: str) -> None:
    if name not in ALL:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ALL)}")


# ----------------------------------------------------------------------------- phi, phi'
def phi_and_dphi(name: str) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """x -> (phi(x), phi'(x)) in jax, from the activation table."""
    check_activation(name)
    entry, ops = _TABLE[name], array_ops("jax")
    return lambda x: (entry.phi(ops, x), entry.dphi(ops, x))


def phi_numpy(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """phi as a numpy function (used by the numpy-side bounds)."""
    check_activation(name)
    entry, ops = _TABLE[name], array_ops("numpy")
    return lambda h: entry.phi(ops, np.asarray(h, dtype=float))


def dphi_numpy(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """phi' as a numpy function (subgradient 0 at the kinks of relu/abs, as the torch model)."""
    check_activation(name)
    entry, ops = _TABLE[name], array_ops("numpy")
    return lambda h: entry.dphi(ops, np.asarray(h, dtype=float))


# ----------------------------------------------------------------------------- closed forms
def _safe_rho(q1: jax.Array, q2: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(clipped correlation, sqrt(q1 q2)); square roots taken before broadcasting (cheap for
    outer-product shapes), correlation 0 where a variance is 0."""
    s1, s2 = jnp.sqrt(q1), jnp.sqrt(q2)
    inv1 = jnp.where(s1 > 0, 1.0 / jnp.where(s1 > 0, s1, 1.0), 0.0)
    inv2 = jnp.where(s2 > 0, 1.0 / jnp.where(s2 > 0, s2, 1.0), 0.0)
    return jnp.clip(c * inv1 * inv2, -1.0, 1.0), s1 * s2


def _pair_piecewise(a: float, b: float, q1, q2, c, need_dot: bool):
    rho, den = _safe_rho(q1, q2, c)
    sin = jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0))
    theta = jnp.arctan2(sin, rho)
    s2 = 0.5 * (a * a + b * b)
    k = (a - b) ** 2 / (2 * math.pi)
    dot = s2 - k * theta
    nngp = k * den * sin + dot * c
    return nngp, (dot if need_dot else None)


def _pair_erf(q1, q2, c, need_dot: bool):
    prod = (1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)
    nngp = (2.0 / math.pi) * jnp.arcsin(jnp.clip(2.0 * c / jnp.sqrt(prod), -1.0, 1.0))
    dot = (4.0 / math.pi) / jnp.sqrt(prod - 4.0 * c * c) if need_dot else None
    return nngp, dot


# ----------------------------------------------------------------------------- quadrature
def _sinh_grid(n: int, beta: jax.Array, half_range: float, dtype):
    """Trapezoid on z = beta*sinh(t), t in [-T, T] with beta*sinh(T) = half_range.

    beta has shape S; returns offsets z (S + (n,)) and weights dz (S + (n,)), without the
    Gaussian factor.
    """
    tmax = jnp.arcsinh(half_range / beta)
    u = jnp.linspace(-1.0, 1.0, n, dtype=dtype)
    t = tmax[..., None] * u
    h = (2.0 * tmax / (n - 1))[..., None]
    return beta[..., None] * jnp.sinh(t), h * beta[..., None] * jnp.cosh(t)


def _gauss(z):
    return _INV_SQRT_2PI * jnp.exp(-0.5 * z * z)


def _gh_nodes(n: int, dtype):
    x, w = np.polynomial.hermite.hermgauss(n)
    return jnp.asarray(math.sqrt(2.0) * x, dtype), jnp.asarray(w / math.sqrt(math.pi), dtype)


def _diag_quad(name: str, q, quad: Quadrature, need_dot: bool = True):
    """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, q), any shape of q."""
    f = phi_and_dphi(name)
    sq = jnp.sqrt(q)
    if quad.rule == "sinh":
        beta = 1.0 / jnp.maximum(1.0, sq)
        z, dz = _sinh_grid(quad.points, beta, _Z_MAX, q.dtype)
        w = dz * _gauss(z)
    else:
        z, w = _gh_nodes(quad.points, q.dtype)
        z = jnp.broadcast_to(z, q.shape + z.shape)
    fu, gu = f(sq[..., None] * z)
    v = jnp.sum(w * fu * fu, axis=-1)
    d = jnp.sum(w * gu * gu, axis=-1) if need_dot else None
    return v, d


def _pair_quad_flat(name: str, q1, q2, c, quad: Quadrature, need_dot: bool):
    """2-D rule for flat (M,) arrays; returns (M,) arrays."""
    f = phi_and_dphi(name)
    dtype = q1.dtype
    n = quad.points
    sq1, sq2 = jnp.sqrt(q1), jnp.sqrt(q2)
    rho, _ = _safe_rho(q1, q2, c)
    rhop = jnp.sqrt(jnp.maximum(1.0 - rho * rho, 0.0))
    s = sq2 * rhop  # conditional sd of v given z1
    if quad.rule == "sinh":
        # phi(u) and E[phi(v) | z1] both bend on the scale 1/max(sqrt(q1), sqrt(q2)|rho|) in z1
        beta1 = 1.0 / jnp.maximum(1.0, jnp.maximum(sq1, sq2 * jnp.abs(rho)))
        z1, dz1 = _sinh_grid(n, beta1, _Z_MAX, dtype)  # (M, n)
        w1 = dz1 * _gauss(z1)
        m = (sq2 * rho)[:, None] * z1  # (M, n): conditional mean of v
        ok = s > 1e-300
        center = jnp.where(ok[:, None], -m / jnp.where(ok, s, 1.0)[:, None], 0.0)
        center = jnp.clip(center, -_CENTER_MAX, _CENTER_MAX)
        beta2 = 1.0 / jnp.maximum(1.0, s)
        off2, dz2 = _sinh_grid(n, beta2, _Z_MAX + _CENTER_MAX, dtype)  # (M, n)
        z2 = center[:, :, None] + off2[:, None, :]  # (M, n, n)
        w2 = dz2[:, None, :] * _gauss(z2)
    else:
        zn, wn = _gh_nodes(n, dtype)
        z1 = jnp.broadcast_to(zn, q1.shape + (n,))
        w1 = jnp.broadcast_to(wn, q1.shape + (n,))
        m = (sq2 * rho)[:, None] * z1
        z2 = jnp.broadcast_to(zn, q1.shape + (n, n))
        w2 = jnp.broadcast_to(wn, q1.shape + (n, n))
    fu, gu = f(sq1[:, None] * z1)  # (M, n)
    fv, gv = f(m[:, :, None] + s[:, None, None] * z2)  # (M, n, n)
    inner_f = jnp.sum(w2 * fv, axis=-1)
    nngp = jnp.sum(w1 * fu * inner_f, axis=-1)
    if not need_dot:
        return nngp, None
    inner_g = jnp.sum(w2 * gv, axis=-1)
    return nngp, jnp.sum(w1 * gu * inner_g, axis=-1)


def _pair_quad(name: str, q1, q2, c, quad: Quadrature, need_dot: bool):
    shape = jnp.broadcast_shapes(jnp.shape(q1), jnp.shape(q2), jnp.shape(c))
    q1, q2, c = (jnp.broadcast_to(a, shape).reshape(-1) for a in (q1, q2, c))
    size = q1.shape[0]
    chunk = max(1, min(quad.chunk, size))
    n_chunks = -(-size // chunk)
    pad = n_chunks * chunk - size
    if pad:
        q1 = jnp.concatenate([q1, jnp.ones((pad,), q1.dtype)])
        q2 = jnp.concatenate([q2, jnp.ones((pad,), q2.dtype)])
        c = jnp.concatenate([c, jnp.zeros((pad,), c.dtype)])
    args = (q1.reshape(n_chunks, chunk), q2.reshape(n_chunks, chunk), c.reshape(n_chunks, chunk))

    def one(a):
        nngp, dot = _pair_quad_flat(name, a[0], a[1], a[2], quad, need_dot)
        return (nngp, dot) if need_dot else (nngp, jnp.zeros_like(nngp))

    if n_chunks == 1:
        nngp, dot = one(tuple(a[0] for a in args))
        nngp, dot = nngp[None], dot[None]
    else:
        nngp, dot = jax.lax.map(one, args)
    nngp = nngp.reshape(-1)[:size].reshape(shape)
    dot = dot.reshape(-1)[:size].reshape(shape) if need_dot else None
    return nngp, dot


# ----------------------------------------------------------------------------- public maps
def pair(name: str, q1, q2, c, quad: Quadrature = DEFAULT_QUADRATURE, need_dot: bool = True):
    """(E[phi(u)phi(v)], E[phi'(u)phi'(v)]) for Var u = q1, Var v = q2, Cov = c (broadcast).

    The second entry is None when ``need_dot`` is False.
    """
    if name in PIECEWISE_LINEAR:
        return _pair_piecewise(*PIECEWISE_LINEAR[name], q1, q2, c, need_dot)
    if name == "erf":
        return _pair_erf(q1, q2, c, need_dot)
    check_activation(name)
    return _pair_quad(name, jnp.asarray(q1), jnp.asarray(q2), jnp.asarray(c), quad, need_dot)


def diag(name: str, q, quad: Quadrature = DEFAULT_QUADRATURE, need_dot: bool = True):
    """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, q), elementwise in q."""
    q = jnp.asarray(q)
    if name in PIECEWISE_LINEAR:
        a, b = PIECEWISE_LINEAR[name]
        s2 = 0.5 * (a * a + b * b)
        return s2 * q, (s2 * jnp.ones_like(q) if need_dot else None)
    if name == "erf":
        v = (2.0 / math.pi) * jnp.arcsin(2.0 * q / (1.0 + 2.0 * q))
        return v, ((4.0 / math.pi) / jnp.sqrt(1.0 + 4.0 * q) if need_dot else None)
    check_activation(name)
    return _diag_quad(name, q, quad, need_dot)
