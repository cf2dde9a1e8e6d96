"""Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017).

With u ~ N(0, q):

- length map  ``q_{l+1} = sigma_w^2 E[phi(u)^2] + sigma_b^2``; fixed point ``q*``;
- correlation map ``c_{l+1} = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*`` at
  Var u_i = q*, Corr(u1, u2) = c_l; fixed point ``c*`` (1 in the ordered phase);
- ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]`` (slope of the correlation map at c = 1, and the
  mean-squared backward gain per layer), ``chi_c = sigma_w^2 E[phi'(u1) phi'(u2)]`` at c*;
- depth scales ``xi_q = -1/ln(sigma_w^2 dE[phi(u)^2]/dq |_{q*})``
  (= -1/ln(chi_1 + sigma_w^2 E[phi'' phi]), Schoenholz eq. 5), ``xi_c = -1/ln(chi_c)``,
  ``xi_grad = -1/ln(chi_1)`` (signed: > 0 gradients vanish over xi_grad layers, < 0 they grow
  by e every |xi_grad| layers; inf at chi_1 = 1);
- phase: ``"critical"`` if |chi_1 - 1| <= tol, else ``"ordered"`` (chi_1 < 1) or ``"chaotic"``.

Degenerate cases, stated: q* = inf when the length map diverges (e.g. relu with
sigma_w^2 >= 2 and sigma_b^2 > 0); q* = 0 when it contracts to 0 (no bias, chi small).
Piecewise-linear activations are scale free: chi_1 does not depend on q, and when q* is 0 or
inf their correlation map is the scale-free arc-cosine map, whose fixed point c* = 1 is
marginal (chi_c = 1, xi_c = inf). For smooth activations with q* = inf (gelu/softplus with
large sigma_w^2), chi's are evaluated at q = 1e8.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope

PHASES = ("ordered", "critical", "chaotic")
PHASE_CODES = {"ordered": -1, "critical": 0, "chaotic": 1}
Q_INF = 1e8  # length maps that pass this are reported as diverging (q* = inf)
Q_ZERO = 1e-12


@dataclass(frozen=True)
class SignalPropagation:
    """Mean-field quantities of one architecture (see module docstring).

    q_l: (depth+1,) pre-activation second moment K_l(x, x) of layers 1..depth+1 for an input
    with |x|^2/input_dim = q0. chi_1_l: (depth+1,) local gain sigma_w^2 E[phi'(h_l)^2] of
    hidden layers (1.0 for the linear readout). backward_ratio: (depth+1,) the mean-squared
    backward signal of layer l relative to the readout's, per unit and without the
    fan-out/fan-in factor (n_{l+1}/n_l, 1 between hidden layers): prod_{k=l}^{depth} chi_1_k.
    """

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float
    chi_1: float
    chi_c: float
    xi_q: float
    xi_c: float
    xi_grad: float
    phase: str
    q_l: np.ndarray
    chi_1_l: np.ndarray
    backward_ratio: np.ndarray

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("q_l", "chi_1_l", "backward_ratio"):
            d[k] = np.asarray(d[k]).tolist()
        return d


def _depth_scale(slope: float) -> float:
    """-1/ln(slope); inf at slope == 1 (and for slope <= 0 -> 0)."""
    if not np.isfinite(slope):
        return float("nan")
    if slope <= 0:
        return 0.0
    if slope == 1.0:
        return float("inf")
    return -1.0 / math.log(slope)


def classify(chi_1: float, tol: float = 1e-3) -> str:
    """Phase from chi_1 with tolerance ``tol``."""
    if abs(chi_1 - 1.0) <= tol:
        return "critical"
    return "ordered" if chi_1 < 1.0 else "chaotic"


# ------------------------------------------------------------------------ jitted kernels
@partial(jax.jit, static_argnames=("activation", "quad", "iters"))
def _fixed_point(sw2, sb2, q0, *, activation, quad, iters=2000):
    """q* of the length map (vectorized over broadcast sw2, sb2): iterate, then Newton."""
    sw2, sb2, q0 = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float))
                                          for a in (sw2, sb2, q0)))

    def lmap(q):
        return sw2 * act.diag(activation, q, quad, need_dot=False)[0] + sb2

    def body(_, q):
        qn = lmap(q)
        return jnp.where(jnp.isfinite(q) & (q < Q_INF), qn, jnp.inf)

    q = jax.lax.fori_loop(0, iters, body, q0)

    def v_scalar(qq, w, b):
        return w * act.diag(activation, qq, quad, need_dot=False)[0] + b

    dl = jax.vmap(jax.grad(v_scalar))

    def newton(_, q):
        ok = jnp.isfinite(q) & (q > Q_ZERO)
        qs = jnp.where(ok, q, 1.0).reshape(-1)
        g = lmap(jnp.where(ok, q, 1.0)) - jnp.where(ok, q, 1.0)
        slope = dl(qs, sw2.reshape(-1), sb2.reshape(-1)).reshape(q.shape)
        step = jnp.where(jnp.abs(slope - 1.0) > 1e-12, g / (slope - 1.0), 0.0)
        qn = jnp.where(ok, q - step, q)
        return jnp.where(ok & (qn > 0), qn, q)

    q = jax.lax.fori_loop(0, 60, newton, q)
    q = jnp.where(q > Q_INF, jnp.inf, q)
    return jnp.where(q < Q_ZERO, 0.0, q)


@partial(jax.jit, static_argnames=("activation", "quad"))
def _chis(sw2, sb2, q, *, activation, quad):
    """(chi_1, slope of the length map) at q (finite, > 0)."""
    _, d = act.diag(activation, q, quad)

    def v_scalar(qq):
        return act.diag(activation, qq, quad, need_dot=False)[0]

    dv = jax.vmap(jax.grad(v_scalar))(q.reshape(-1)).reshape(q.shape)
    return sw2 * d, sw2 * dv


@partial(jax.jit, static_argnames=("activation", "quad", "iters"))
def _c_star(sw2, sb2, q, *, activation, quad, iters=60):
    """Stable non-trivial fixed point of the correlation map in [0, 1) by bisection.

    Assumes g(c) = C(c) - c >= 0 at 0 and < 0 at 1 - 1e-6 (chaotic phase). Vectorized.
    """
    def g(c):
        a, _ = act.pair(activation, q, q, c * q, quad, need_dot=False)
        return (sw2 * a + sb2) / q - c

    lo = jnp.zeros_like(q)
    hi = jnp.full_like(q, 1.0 - 1e-6)

    def body(_, lh):
        lo, hi = lh
        mid = 0.5 * (lo + hi)
        pos = g(mid) >= 0
        return jnp.where(pos, mid, lo), jnp.where(pos, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, body, (lo, hi))
    c = 0.5 * (lo + hi)
    ok = g(hi) < 0
    _, dot = act.pair(activation, q, q, c * q, quad)
    return jnp.where(ok, c, 1.0), jnp.where(ok, sw2 * dot, jnp.nan)


# ------------------------------------------------------------------------ public API
def _bucketed(fn, *arrays, **kw):
    """Call a jitted vectorized ``fn`` on 1-D arrays padded to a power-of-two length (>= 8)
    so that grids of different sizes share compilations; outputs are cut back."""
    n = len(arrays[0])
    size = max(8, 1 << (n - 1).bit_length())
    padded = [np.concatenate([a, np.full(size - n, a[-1])]) for a in arrays]
    out = fn(*padded, **kw)
    if isinstance(out, tuple):
        return tuple(np.asarray(o, float)[:n] for o in out)
    return np.asarray(out, float)[:n]


def _grid_quantities(activation: str, sw2: np.ndarray, sb2: np.ndarray, q0: float, tol: float,
                     quad: act.Quadrature) -> dict[str, np.ndarray]:
    """All mean-field scalars on broadcast arrays of (sigma_w2, sigma_b2); numpy float64."""
    sw2, sb2 = np.broadcast_arrays(np.asarray(sw2, float), np.asarray(sb2, float))
    shape = sw2.shape
    sw2, sb2 = sw2.reshape(-1), sb2.reshape(-1)
    piecewise = activation in act.PIECEWISE_LINEAR
    if piecewise:
        a, b = act.PIECEWISE_LINEAR[activation]
        m2 = 0.5 * (a * a + b * b)
        slope = sw2 * m2
        with np.errstate(divide="ignore", invalid="ignore"):
            q_star = np.where(sb2 > 0, np.where(slope < 1, sb2 / (1 - slope), np.inf),
                              np.where(slope < 1, 0.0, np.where(slope == 1, q0, np.inf)))
        chi_1 = slope.copy()  # E[phi'^2] = m2 for any q
        lslope = slope.copy()
    else:
        q_star = _bucketed(_fixed_point, sw2, sb2, np.full_like(sw2, q0), activation=activation,
                           quad=quad)
        q_eval = np.where(np.isfinite(q_star), np.maximum(q_star, Q_ZERO), Q_INF)
        chi_1, lslope = _bucketed(_chis, sw2, sb2, q_eval, activation=activation, quad=quad)
    # correlation fixed point
    c_star = np.ones_like(sw2)
    chi_c = chi_1.copy()
    finite = np.isfinite(q_star) & (q_star > 0)
    if piecewise:
        # scale-free map when q* in {0, inf}: c* = 1 marginal
        chi_c = np.where(finite, chi_1, 1.0)
    chaotic = (chi_1 > 1.0 + tol) & finite
    if np.any(chaotic):
        idx = np.nonzero(chaotic)[0]
        cs, cc = _bucketed(_c_star, sw2[idx], sb2[idx], q_star[idx], activation=activation,
                           quad=quad)
        c_star[idx] = cs
        chi_c[idx] = np.where(np.isnan(cc), chi_1[idx], cc)
    if not piecewise:
        # smooth activations whose q* is 0 or inf: report chi_c at c* = 1
        chi_c = np.where(finite, chi_c, chi_1)
    xi_q = np.array([_depth_scale(s) if (np.isfinite(q) and s < 1) else np.inf
                     for s, q in zip(lslope, q_star, strict=True)])
    xi_c = np.array([_depth_scale(min(c, 1.0)) for c in chi_c])
    xi_grad = np.array([_depth_scale(c) for c in chi_1])
    phase = np.array([classify(c, tol) for c in chi_1])
    out = {"q_star": q_star, "c_star": c_star, "chi_1": chi_1, "chi_c": chi_c, "xi_q": xi_q,
           "xi_c": xi_c, "xi_grad": xi_grad, "phase": phase, "length_slope": lslope}
    return {k: v.reshape(shape) for k, v in out.items()}


def signal_propagation(arch: Architecture | None = None, q0: float = 1.0, *,
                       activation: str | None = None, sigma_w2: float | None = None,
                       sigma_b2: float = 0.0, bias: bool = True, depth: int = 1,
                       tol: float = 1e-3, x64: bool | None = True,
                       quadrature: act.Quadrature | None = None) -> SignalPropagation:
    """Mean-field signal propagation at infinite width: of ``arch``, or of the MLP given by
    ``activation``, ``sigma_w2``, ``sigma_b2``, ``bias`` and ``depth`` (no width needed:
    ``signal_propagation(activation="tanh", sigma_w2=1.76, sigma_b2=0.05)``).

    ``arch.width`` and ``arch.input_dim`` are not used. ``depth`` (hidden layers) sets the
    length of the per-layer ``q_l``, ``chi_1_l`` and ``backward_ratio`` (depth+1,).
    q0: input mean square |x|^2/input_dim (1 for inputs on the sphere of radius
    sqrt(input_dim)); sets the per-layer ``q_l``. A ``bias=False`` architecture has
    sigma_b^2 = 0. Computed in float64 unless ``x64=False``.
    """
    arch = _signal_arch(arch, activation, sigma_w2, sigma_b2, bias, depth)
    act.check_activation(arch.activation)
    quad = quadrature or act.DEFAULT_QUADRATURE
    sb2 = float(arch.sigma_b2) if arch.bias else 0.0
    with x64_scope(x64):
        g = _grid_quantities(arch.activation, np.array(float(arch.sigma_w2)), np.array(sb2),
                             float(q0), tol, quad)
        from gradstats.theory.kernels import diag_recursion

        rec = diag_recursion(arch, np.array([float(q0)]), quadrature=quad)
    sw2 = float(arch.sigma_w2)
    chi_l = rec["chi"][:, 0]
    ratio = rec["backward"][:, 0]
    return SignalPropagation(
        activation=arch.activation, sigma_w2=sw2, sigma_b2=sb2,
        q_star=float(g["q_star"]), c_star=float(g["c_star"]), chi_1=float(g["chi_1"]),
        chi_c=float(g["chi_c"]), xi_q=float(g["xi_q"]), xi_c=float(g["xi_c"]),
        xi_grad=float(g["xi_grad"]), phase=str(g["phase"]), q_l=rec["q"][:, 0],
        chi_1_l=chi_l, backward_ratio=ratio)


def _signal_arch(arch: Architecture | None, activation: str | None, sigma_w2: float | None,
                 sigma_b2: float, bias: bool, depth: int) -> Architecture:
    """The architecture signal propagation runs on: ``arch`` (its input_dim, unused, filled
    in when None) or the MLP of the keywords (width and input_dim placeholders, unused)."""
    from gradstats.spec import SpecError

    if arch is not None:
        if activation is not None or sigma_w2 is not None:
            raise SpecError("activation", "give an Architecture or activation=/sigma_w2=, "
                            "not both")
        return arch if arch.input_dim is not None else arch.with_input_dim(1)
    if activation is None:
        raise SpecError("activation", "give an Architecture or activation= (and sigma_w2=)")
    if sigma_w2 is None:
        raise SpecError("sigma_w2", "give sigma_w2= with activation=")
    return Architecture(width=1, depth=depth, activation=activation, sigma_w2=float(sigma_w2),
                        sigma_b2=float(sigma_b2), bias=bias, input_dim=1)


def critical_sigma_w2(activation: str, sigma_b2: float, *, q0: float = 1.0,
                      bracket: tuple[float, float] = (1e-2, 50.0), x64: bool | None = True,
                      quadrature: act.Quadrature | None = None) -> float:
    """sigma_w^2 at which chi_1 = 1 for the given sigma_b^2 (brentq), NaN if none in bracket."""
    from scipy.optimize import brentq

    act.check_activation(activation)
    quad = quadrature or act.DEFAULT_QUADRATURE
    with x64_scope(x64):
        def f(sw2: float) -> float:
            return float(_grid_quantities(activation, np.array(sw2), np.array(sigma_b2), q0,
                                          0.0, quad)["chi_1"]) - 1.0

        grid = np.geomspace(bracket[0], bracket[1], 33)
        vals = np.asarray(_grid_quantities(activation, grid, np.full_like(grid, sigma_b2), q0,
                                           0.0, quad)["chi_1"]) - 1.0
        sign = np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) <= 0)[0]
        if len(sign) == 0:
            return float("nan")
        i = int(sign[0])
        if vals[i] == 0:
            return float(grid[i])
        return float(brentq(f, grid[i], grid[i + 1], xtol=1e-12, rtol=1e-12))


def phase_diagram(activation: str, sigma_w2_grid, sigma_b2_grid, *, q0: float = 1.0,
                  tol: float = 1e-3, x64: bool | None = True,
                  quadrature: act.Quadrature | None = None):
    """Mean-field phase diagram as an xarray Dataset.

    Variables on (sigma_w2, sigma_b2): chi_1, q_star, c_star, chi_c, xi_q, xi_c, xi_grad,
    phase (int: -1 ordered, 0 critical, 1 chaotic); on (sigma_b2,): sigma_w2_critical, the
    root of chi_1(sigma_w2) = 1 (NaN where there is none in [0.01, 50]).
    """
    import xarray as xr

    act.check_activation(activation)
    quad = quadrature or act.DEFAULT_QUADRATURE
    sw = np.asarray(sigma_w2_grid, float).reshape(-1)
    sb = np.asarray(sigma_b2_grid, float).reshape(-1)
    if np.any(sw <= 0) or np.any(sb < 0):
        raise ValueError("sigma_w2 must be > 0 and sigma_b2 >= 0")
    with x64_scope(x64):
        g = _grid_quantities(activation, sw[:, None], sb[None, :], q0, tol, quad)
        crit = np.array([critical_sigma_w2(activation, float(b), q0=q0, x64=x64,
                                           quadrature=quad) for b in sb])
    dims = ("sigma_w2", "sigma_b2")
    attrs = {
        "chi_1": ("mean-squared backward gain per layer", "sigma_w^2 E[phi'(sqrt(q*) z)^2]"),
        "q_star": ("fixed point of the length map", "inf: diverges; 0: contracts to zero"),
        "c_star": ("fixed point of the correlation map", "1 in the ordered phase"),
        "chi_c": ("slope of the correlation map at c*", "sigma_w^2 E[phi'(u1) phi'(u2)]"),
        "xi_q": ("depth scale of the length map", "-1/ln(dq_{l+1}/dq_l at q*)"),
        "xi_c": ("depth scale of correlations", "-1/ln(chi_c)"),
        "xi_grad": ("depth scale of gradients", "-1/ln(chi_1); < 0: exploding"),
    }
    data = {k: (dims, np.asarray(g[k], float), {"long_name": ln, "description": desc})
            for k, (ln, desc) in attrs.items()}
    codes = np.vectorize(PHASE_CODES.__getitem__)(g["phase"]).astype(np.int8)
    data["phase"] = (dims, codes, {"long_name": "mean-field phase",
                                   "flag_values": np.array([-1, 0, 1], np.int8),
                                   "flag_meanings": "ordered critical chaotic"})
    data["sigma_w2_critical"] = (("sigma_b2",), crit, {
        "long_name": "critical weight variance", "description": "root of chi_1(sigma_w2) = 1"})
    return xr.Dataset(data, coords={"sigma_w2": sw, "sigma_b2": sb},
                      attrs={"activation": activation, "q0": q0, "phase_tolerance": tol,
                             "theory": "mean field (Poole 2016, Schoenholz 2017)"})
