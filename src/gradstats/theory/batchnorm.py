"""Gradient explosion of batch-normalized MLPs at initialization (Yang et al., ICLR 2019).

Network (gradstats' convention, "pre-activation" placement, BN without affine parameters)::

    h_1 = sigma_w/sqrt(d) W_1 x,   h_l = sigma_w/sqrt(n) W_l phi(BN(h_{l-1})) (+ sigma_b b_l),
    f   = sigma_w/sqrt(n) W_{depth+1} phi(BN(h_depth)),

with ``BN(h)_{i,u} = (h_{i,u} - mean_i h_{., u}) / sqrt(var_i h_{., u} + eps)`` over the B
examples of the batch. Per unit, BN maps the batch vector ``h in R^B`` to
``z = sqrt(B) P h / |P h|`` (eps -> 0), ``P = I - 11^T/B``: a point of the sphere of radius
sqrt(B) in the (B-1)-dimensional subspace orthogonal to 1.

Infinite width. Each unit's batch vector is Gaussian, ``h ~ N(0, Sigma_l)``, with
``Sigma_{l+1} = sigma_w^2 E[phi(z) phi(z)^T]``. Only ``P Sigma P`` matters to BN, and at the
BSB1 fixed point (``Sigma* = a I + b 11^T``, the one this map keeps) ``P Sigma* P`` is
proportional to ``P``: ``z`` is then *uniform on that sphere*, whatever ``sigma_w``,
``sigma_b`` (a per-unit constant, removed exactly by the centring) and the activation.

Backward (gradient independence assumption), with ``G_l = g_l^T g_l / n`` the (B, B) Gram of
``g_l = dL/dh_l`` over units, ``d = phi'(z)``, ``D = diag(d)`` and ``Q = P - z z^T / B``
(the BN Jacobian is ``sqrt(B)/|P h| Q``)::

    G_l = kappa E_z[Q D G_{l+1} D Q],   kappa = sigma_w^2 E[B / |P h|^2] = B / ((B - 3) nu),
    nu  = E[phi(z_1)^2] - E[phi(z_1) phi(z_2)]        (P Sigma* P = sigma_w^2 nu P),

using ``|P h|^2 = sigma_w^2 nu chi^2_{B-1}`` independent of the direction ``z``. The map is
positive and commutes with permutations of the batch, so its spectral radius is attained on the
permutation-invariant matrices its range allows, i.e. on ``G = P``; that gives

    lambda(B) = B t / ((B - 1)(B - 3) nu),
    t = (B - 2 + 1/B) E[d_1^2] + (1 - 1/B) (E[d_1 d_2] - E[d_1^2 z_1^2] + E[d_1 z_1 d_2 z_2]),

expectations over the 1- and 2-point marginals of the uniform law on the sphere
(Var z_i = 1, Corr(z_1, z_2) = -1/(B-1)). Since ``|dL/dW_l|^2 = sigma_w^2 n tr(G_l A_{l-1})``
with ``A = E[phi(z) phi(z)^T]`` fixed, ``|dL/dW_l|^2 / |dL/dW_{l+1}|^2 -> lambda(B)`` (and the
same for ``|dL/dh_l|^2``). Closed forms: linear ``(B - 2)/(B - 3)``; relu in terms of the
arc-cosine kernels at ``rho = -1/(B-1)``; ``B -> inf``: ``E[phi'(g)^2] / Var phi(g)``,
``g ~ N(0, 1)`` (>= 1 by the Gaussian Poincare inequality; relu ``pi/(pi-1)``).
Derivation, validity domain and Monte Carlo checks: ``docs/batchnorm.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import integrate, special

from gradstats.theory import activations as act

ArrayFn = Callable[[np.ndarray], np.ndarray]
Activation = str | tuple[ArrayFn, ArrayFn]

MIN_BATCH = 4  # E[1/chi^2_{B-1}] is finite only for B - 1 > 2


def _fns(activation: Activation) -> tuple[ArrayFn, ArrayFn]:
    """(phi, phi') as numpy functions, from a name of `activations.ALL` or a pair of callables."""
    if isinstance(activation, str):
        act.check_activation(activation)
        return act.phi_numpy(activation), act.dphi_numpy(activation)
    phi, dphi = activation
    return phi, dphi


def _check_batch(batch_size: int) -> int:
    b = int(batch_size)
    if b != batch_size or b < MIN_BATCH:
        raise ValueError(f"batch_size must be an integer >= {MIN_BATCH}, got {batch_size!r}")
    return b


@lru_cache(maxsize=64)
def sphere_pair_rule(
    batch_size: int, radial: int = 64, angular: int = 48
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrature for ``E[f(z_1, z_2)]``, z uniform on the BN sphere of batch size B.

    z is uniform on ``{z in R^B : sum z = 0, |z|^2 = B}``; (z_1, z_2) = (sqrt(B-1) u_1,
    sqrt(B) (alpha u_1 + beta u_2)) where (u_1, u_2), the first two coordinates of a uniform
    unit vector of R^(B-1), have density ~ (1 - r^2)^((B-5)/2) on the unit disc. Rule:
    Gauss-Jacobi in s = r^2 (weight (1 - s)^((B-5)/2)), each node paired with its mirror
    -(u_1, u_2) (so smooth integrands are smooth in s), Gauss-Legendre in the angle on the arcs
    between the rays where z_1 = 0 or z_2 = 0 (kinks of relu-like phi are fixed rays).

    Returns (z1, z2, w), each of shape (2 * radial * 3 * angular,), weights summing to 1.
    """
    b = _check_batch(batch_size)
    a = (b - 5) / 2.0
    x, wx = special.roots_jacobi(radial, a, 0.0)
    s = (1.0 + x) / 2.0
    wx = wx / wx.sum()
    alpha = -1.0 / (b * math.sqrt(1.0 - 1.0 / b))
    beta = math.sqrt(1.0 - 1.0 / b - alpha * alpha)
    theta_2 = math.atan2(-alpha, beta)  # z_2 = 0 on this ray (in (0, pi/2))
    edges = [0.0, theta_2, math.pi / 2, math.pi]
    t, wt = np.polynomial.legendre.leggauss(angular)
    thetas, wthetas = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        thetas.append(lo + (hi - lo) * (t + 1) / 2)
        wthetas.append(wt * (hi - lo) / 2)
    theta = np.concatenate(thetas)
    wtheta = np.concatenate(wthetas) / math.pi
    r = np.sqrt(s)[:, None]
    u1 = r * np.cos(theta)[None, :]
    u2 = r * np.sin(theta)[None, :]
    w = (wx[:, None] * wtheta[None, :]).ravel() / 2.0
    u1, u2 = u1.ravel(), u2.ravel()
    u1 = np.concatenate([u1, -u1])
    u2 = np.concatenate([u2, -u2])
    w = np.concatenate([w, w])
    z1 = math.sqrt(b - 1.0) * u1
    z2 = math.sqrt(b) * (alpha * u1 + beta * u2)
    return z1, z2, w


@dataclass(frozen=True)
class SphereMoments:
    """Moments of z uniform on the BN sphere (batch size B), d = phi'(z).

    m2 = E[phi(z_1)^2], m11 = E[phi(z_1) phi(z_2)], d2 = E[d_1^2],
    d11 = E[d_1 d_2], e2 = E[d_1^2 z_1^2], e11 = E[d_1 z_1 d_2 z_2].
    """

    batch_size: int
    m2: float
    m11: float
    d2: float
    d11: float
    e2: float
    e11: float

    @property
    def nu(self) -> float:
        """E[phi(z_1)^2] - E[phi(z_1) phi(z_2)]: P E[phi(z) phi(z)^T] P = nu P."""
        return self.m2 - self.m11


def sphere_moments(
    activation: Activation, batch_size: int, radial: int = 64, angular: int = 48
) -> SphereMoments:
    """The moments of `SphereMoments` by the quadrature `sphere_pair_rule` (no Monte Carlo)."""
    b = _check_batch(batch_size)
    phi, dphi = _fns(activation)
    z1, z2, w = sphere_pair_rule(b, radial, angular)
    p1, p2, d1, d2 = phi(z1), phi(z2), dphi(z1), dphi(z2)
    e = lambda v: float(np.dot(w, v))  # noqa: E731
    return SphereMoments(
        batch_size=b, m2=e(p1 * p1), m11=e(p1 * p2), d2=e(d1 * d1), d11=e(d1 * d2),
        e2=e(d1 * d1 * z1 * z1), e11=e(d1 * z1 * d2 * z2),
    )


def relu_sphere_moments(batch_size: int) -> SphereMoments:
    """Closed-form `SphereMoments` of relu (subgradient phi'(0) = 0, immaterial).

    (z_1, z_2) is elliptical with unit variances and correlation rho = -1/(B-1), so orthant
    probabilities and expectations of degree-2 homogeneous functions equal the Gaussian ones:
    E[d_1 d_2] = 1/4 + asin(rho)/(2 pi), E[relu(z_1) relu(z_2)] = E[d_1 z_1 d_2 z_2] =
    (sqrt(1 - rho^2) + rho (pi - acos rho)) / (2 pi), E[phi^2] = E[d^2] = E[d^2 z^2] = 1/2.
    E[relu(z_1)] (not homogeneous of degree 0 or 2) from the radial law: sqrt(B-1) E|u_1| / 2.
    """
    b = _check_batch(batch_size)
    rho = -1.0 / (b - 1)
    k1 = (math.sqrt(1 - rho * rho) + rho * (math.pi - math.acos(rho))) / (2 * math.pi)
    p11 = 0.25 + math.asin(rho) / (2 * math.pi)
    return SphereMoments(batch_size=b, m2=0.5, m11=k1, d2=0.5, d11=p11, e2=0.5, e11=k1)


def growth_rate_from_moments(mom: SphereMoments) -> float:
    """lambda(B) = B t / ((B-1)(B-3) nu) (module docstring) from the sphere moments."""
    b = mom.batch_size
    t = (b - 2 + 1 / b) * mom.d2 + (1 - 1 / b) * (mom.d11 - mom.e2 + mom.e11)
    if not mom.nu > 0:
        raise ValueError("phi(z) is constant over the batch (nu = 0): no BN fixed point")
    return b * t / ((b - 1) * (b - 3) * mom.nu)


def bn_fixed_point_kernel(
    activation: Activation, batch_size: int, sigma_w2: float = 1.0, sigma_b2: float = 0.0
) -> np.ndarray:
    """(B, B) BSB1 fixed point ``Sigma* = sigma_w2 E[phi(z) phi(z)^T] + sigma_b2``.

    The covariance over the batch of a pre-activation unit h_l, l >= 2, at infinite width (for
    l = 1 it is ``sigma_w2 x x^T / d + sigma_b2``; it is already "fixed" for BN's purposes when
    ``P x x^T P`` is proportional to P, e.g. orthonormal inputs).
    """
    b = _check_batch(batch_size)
    mom = relu_sphere_moments(b) if activation == "relu" else sphere_moments(activation, b)
    return sigma_w2 * ((mom.m2 - mom.m11) * np.eye(b) + mom.m11 * np.ones((b, b))) + sigma_b2


def bn_gradient_growth_rate(
    activation: Activation, batch_size: int, *, method: str = "auto",
    radial: int = 64, angular: int = 48,
) -> float:
    """Per-layer factor lambda(B) of the squared weight-gradient norm at infinite width.

    ``E|dL/dW_l|^2 / E|dL/dW_{l+1}|^2 -> lambda(B)`` for hidden layers 2 <= l < l+1 <= depth
    away from the readout (going from the readout toward the input; > 1: explosion), at the
    BSB1 fixed point, eps -> 0, any sigma_w, sigma_b and loss. The same factor applies to
    |dL/dh_l|^2. lambda is independent of sigma_w and sigma_b (BN is scale invariant and
    removes per-unit constants).

    activation: a name of `gradstats.theory.activations.ALL` or a pair of numpy callables
    (phi, phi'). batch_size: B >= 4 (the rate is infinite at B = 3). method: ``"closed_form"``
    (relu, linear only), ``"quadrature"`` (any activation, `sphere_pair_rule`), ``"auto"``
    (closed form where there is one).
    """
    b = _check_batch(batch_size)
    if method not in ("auto", "closed_form", "quadrature"):
        raise ValueError(f"method must be auto, closed_form or quadrature, got {method!r}")
    closed = isinstance(activation, str) and activation in ("relu", "linear")
    if method == "closed_form" and not closed:
        raise ValueError(f"no closed form for {activation!r}; use method='quadrature'")
    if method != "quadrature" and closed:
        if activation == "linear":
            return (b - 2) / (b - 3)
        return growth_rate_from_moments(relu_sphere_moments(b))
    return growth_rate_from_moments(sphere_moments(activation, b, radial, angular))


def bn_gradient_growth_rate_large_batch(activation: Activation) -> float:
    """lim_{B -> inf} lambda(B) = E[phi'(g)^2] / Var phi(g), g ~ N(0, 1) (relu: pi/(pi-1)).

    z_i tends to iid N(0, 1) and the rank-one corrections of P and Q drop out. 1-D adaptive
    quadrature split at 0 (the kink of relu-like activations).
    """
    if activation == "relu":
        return math.pi / (math.pi - 1)
    if activation == "linear":
        return 1.0
    phi, dphi = _fns(activation)

    def gauss(f: Callable[[float], float]) -> float:
        g = lambda x: float(f(np.asarray(x))) * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        return integrate.quad(g, -np.inf, 0.0)[0] + integrate.quad(g, 0.0, np.inf)[0]

    mean = gauss(phi)
    var = gauss(lambda x: phi(x) ** 2) - mean * mean
    return gauss(lambda x: dphi(x) ** 2) / var
