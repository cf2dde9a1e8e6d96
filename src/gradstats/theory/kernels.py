"""Infinite-width NNGP and NTK of an `Architecture`, per readout unit.

Conventions (identical to neural-tangents' ``stax.Dense`` / activation ``kernel_fn``):

- Input kernel ``K_0(x, x') = x . x' / input_dim``.
- Dense layer l (fan-in n_{l-1}; n_0 = input_dim): ``K_l = sigma_w^2 A_{l-1} + sigma_b^2`` with
  ``A_0 = K_0`` and ``A_{l-1} = E[phi(u) phi(v)]``, (u, v) ~ N(0, K_{l-1}) for l >= 2;
  ``D_{l-1} = E[phi'(u) phi'(v)]``. The readout (layer depth+1) is linear; its K is the NNGP.
- NTK: ``Theta_l = T_l + sigma_w^2 D_{l-1} Theta_{l-1}`` (Theta_0 = 0) where layer l's own term
  ``T_l = T_l^W + T_l^b`` is the inner product of the gradients of h_l wrt the *trainable*
  parameters of layer l:

  ========== ============================ ===========================
  term       ``parameterization="ntk"``    ``parameterization="standard"``
  ========== ============================ ===========================
  T_l^W      sigma_w^2 A_{l-1}              n_{l-1} A_{l-1}  (width-dependent)
  T_l^b      sigma_b^2                      1
  ========== ============================ ===========================

  (no bias: T_l^b = 0 and sigma_b^2 is ignored). The standard-parameterization NTK is the
  kernel of a network whose raw weights W ~ N(0, sigma_w^2/n_{l-1}) and biases
  b ~ N(0, sigma_b^2) are trained with a single learning rate; exactly neural-tangents'
  ``ntk = fan_in * nngp_prev + W_std^2 * ntk_prev (+ 1 with bias)``.
- ``ntk_per_layer``: the readout NTK split by the layer whose parameters contribute,
  ``Theta = sum_l T_l * prod_{m=l}^{L-1} sigma_w^2 D_m``; ``part`` picks T^W, T^b or both.
- ``output_dim > 1``: outputs are i.i.d.; every kernel here is that of one output unit (the
  full kernel is ``K (x) I_output_dim``).

All functions return numpy arrays. Precision follows jax (float32 unless x64 is enabled);
pass ``x64=True`` to compute in float64 regardless (`gradstats.theory.enable_x64` is the
version-independent context manager).
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope

PARTS = ("both", "weight", "bias")
BACKENDS = ("gradstats", "neural-tangents")


def _layer1(x1, x2, same, sw2, sb2, *, standard: bool, bias: bool):
    d = x1.shape[-1]
    k0 = x1 @ x2.T / d
    q1 = jnp.sum(x1 * x1, axis=-1) / d
    q2 = q1 if same else jnp.sum(x2 * x2, axis=-1) / d
    b = sb2 if bias else 0.0
    t_w = d * k0 if standard else sw2 * k0
    t_b = (1.0 if standard else sb2) if bias else 0.0
    return sw2 * k0 + b, sw2 * q1 + b, sw2 * q2 + b, t_w, t_b


@partial(jax.jit, static_argnames=("activation", "depth", "standard", "bias", "same", "mode",
                                   "quad"))
def _recursion(x1, x2, sw2, sb2, width, *, activation: str, depth: int, standard: bool,
               bias: bool, same: bool, mode: str, quad: act.Quadrature):
    """mode: 'nngp' -> K; 'ntk' -> (K, Theta); 'layers' -> (K, Theta, T^W (L,n1,n2), T^b (L,n1,n2))."""
    dtype = x1.dtype
    sw2 = jnp.asarray(sw2, dtype)
    sb2 = jnp.asarray(sb2, dtype)
    width = jnp.asarray(width, dtype)
    k, d1, d2, t_w, t_b = _layer1(x1, x2, same, sw2, sb2, standard=standard, bias=bias)
    t_b = jnp.full_like(k, t_b)
    need_ntk = mode != "nngp"
    b = sb2 if bias else jnp.zeros((), dtype)

    def step(carry, _):
        k, d1, d2, theta = carry
        a, dot = act.pair(activation, d1[:, None], d2[None, :], k, quad, need_dot=need_ntk)
        v1, dd1 = act.diag(activation, d1, quad, need_dot=need_ntk)
        v2 = v1 if same else act.diag(activation, d2, quad, need_dot=False)[0]
        if same:  # the diagonal (correlation exactly 1) from the 1-D maps: no arccos(1 - eps)
            idx = jnp.arange(k.shape[0])
            a = a.at[idx, idx].set(v1)
            if need_ntk:
                dot = dot.at[idx, idx].set(dd1)
        new_k = sw2 * a + b
        if not need_ntk:
            return (new_k, sw2 * v1 + b, sw2 * v2 + b, theta), None
        tw = width * a if standard else sw2 * a
        tb = jnp.full_like(a, 1.0 if standard else sb2) if bias else jnp.zeros_like(a)
        factor = sw2 * dot
        new_theta = tw + tb + factor * theta
        ys = (tw, tb, factor) if mode == "layers" else None
        return (new_k, sw2 * v1 + b, sw2 * v2 + b, new_theta), ys

    theta0 = t_w + t_b if need_ntk else jnp.zeros_like(k)
    carry = (k, d1, d2, theta0)
    ys = None
    if depth > 0:
        carry, ys = jax.lax.scan(step, carry, None, length=depth)
    k, _, _, theta = carry
    if mode == "nngp":
        return k
    if mode == "ntk":
        return k, theta
    # per-layer split: contribution of layer l = T_l * prod_{m=l}^{L-1} factor_m
    if depth > 0:
        tws = jnp.concatenate([t_w[None], ys[0]], axis=0)
        tbs = jnp.concatenate([t_b[None], ys[1]], axis=0)
        factors = ys[2]  # (depth, n1, n2): factor between layer m and m+1, m = 1..depth
        # suffix products: P_l = prod_{m=l}^{depth} factor_m, P_{depth+1} = 1
        rev = jnp.cumprod(factors[::-1], axis=0)[::-1]
        prods = jnp.concatenate([rev, jnp.ones_like(k)[None]], axis=0)
    else:
        tws, tbs, prods = t_w[None], t_b[None], jnp.ones_like(k)[None]
    return k, theta, tws * prods, tbs * prods


def _prepare(arch: Architecture, x1, x2):
    """Inputs as jax arrays of the current default float dtype (float64 under x64)."""
    act.check_activation(arch.activation)
    x1 = jnp.asarray(np.asarray(x1, dtype=float))
    if x1.ndim != 2:
        raise ValueError(f"x1 must be (n, input_dim), got shape {x1.shape}")
    same = x2 is None
    x2 = x1 if same else jnp.asarray(np.asarray(x2, dtype=float))
    if x2.ndim != 2 or x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x2 must be (n2, {x1.shape[1]}), got shape {x2.shape}")
    if x1.shape[1] != arch.input_dim:
        raise ValueError(f"inputs have {x1.shape[1]} features but arch.input_dim={arch.input_dim}")
    return x1, x2, same


def _run(arch: Architecture, x1, x2, mode: str, quad: act.Quadrature | None):
    x1, x2, same = _prepare(arch, x1, x2)
    return _recursion(
        x1, x2, float(arch.sigma_w2), float(arch.sigma_b2) if arch.bias else 0.0,
        float(arch.width), activation=arch.activation, depth=arch.depth,
        standard=arch.parameterization == "standard", bias=arch.bias, same=same, mode=mode,
        quad=quad or act.DEFAULT_QUADRATURE)


def _sym(a: np.ndarray, same: bool) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2)) if same else a


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")


def nngp(arch: Architecture, x1, x2=None, *, backend: str = "gradstats", x64: bool | None = None,
         quadrature: act.Quadrature | None = None) -> np.ndarray:
    """NNGP kernel of one readout unit, shape (n1, n2) (x2=None: x2 = x1).

    ``backend="neural-tangents"`` evaluates neural-tangents' ``kernel_fn`` of the same network
    instead (needs the optional ``neural-tangents`` install; see `gradstats.theory.nt_backend`).
    """
    _check_backend(backend)
    if backend == "neural-tangents":
        from gradstats.theory import nt_backend

        return nt_backend.kernels(arch, x1, x2, x64=x64)[0]
    memo = _memo(arch, x1, x2, x64, quadrature)
    if memo is not None:
        return np.array(memo["nngp"])
    with x64_scope(x64):
        return _sym(np.asarray(_run(arch, x1, x2, "nngp", quadrature)), x2 is None)


def ntk(arch: Architecture, x1, x2=None, *, backend: str = "gradstats", x64: bool | None = None,
        quadrature: act.Quadrature | None = None) -> np.ndarray:
    """NTK of one readout unit, shape (n1, n2), wrt all trainable (raw) parameters."""
    _check_backend(backend)
    if backend == "neural-tangents":
        from gradstats.theory import nt_backend

        return nt_backend.kernels(arch, x1, x2, x64=x64)[1]
    with x64_scope(x64):
        _, theta = _run(arch, x1, x2, "ntk", quadrature)
        return _sym(np.asarray(theta), x2 is None)


def nngp_and_ntk(arch: Architecture, x1, x2=None, *, x64: bool | None = None,
                 quadrature: act.Quadrature | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both kernels from one pass: (NNGP, NTK), each (n1, n2)."""
    with x64_scope(x64):
        k, theta = _run(arch, x1, x2, "ntk", quadrature)
        return _sym(np.asarray(k), x2 is None), _sym(np.asarray(theta), x2 is None)


def ntk_per_layer(arch: Architecture, x1, x2=None, part: str = "both", *,
                  x64: bool | None = None,
                  quadrature: act.Quadrature | None = None) -> np.ndarray:
    """Readout NTK split by layer: (depth+1, n1, n2), summing over layers to `ntk`.

    Entry l-1 is the contribution of layer l's parameters: ``part="weight"`` its weight
    matrix, ``"bias"`` its bias (zeros without bias), ``"both"`` their sum.
    """
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    with x64_scope(x64):
        _, _, tw, tb = _run(arch, x1, x2, "layers", quadrature)
        tw, tb = np.asarray(tw), np.asarray(tb)
    out = {"weight": tw, "bias": tb, "both": tw + tb}[part]
    return _sym(out, x2 is None)


def _cache_key(arch: Architecture, a1: np.ndarray, a2: np.ndarray | None,
               quadrature: act.Quadrature | None) -> tuple:
    """Key of `layer_kernels`' memo (call inside the precision scope)."""
    return (arch, a1.shape, a1.tobytes(), None if a2 is None else (a2.shape, a2.tobytes()),
            bool(jax.config.jax_enable_x64), quadrature)


def _memo(arch: Architecture, x1, x2, x64: bool | None, quadrature) -> dict | None:
    """The memoized `layer_kernels` of these inputs, if computed recently."""
    a1 = np.ascontiguousarray(x1, dtype=float)
    a2 = None if x2 is None else np.ascontiguousarray(x2, dtype=float)
    with x64_scope(x64):
        return _layer_kernel_cache.get(_cache_key(arch, a1, a2, quadrature))


LAYER_KERNEL_CACHE_SIZE = 16
_layer_kernel_cache: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()


def layer_kernels(arch: Architecture, x1, x2=None, *, x64: bool | None = None,
                  quadrature: act.Quadrature | None = None) -> dict[str, np.ndarray]:
    """Everything at once: ``nngp`` (n1,n2), ``ntk`` (n1,n2), ``ntk_weight`` and ``ntk_bias``
    (depth+1, n1, n2) per-layer splits (read-only arrays).

    Memoized on (arch, inputs, precision, quadrature) for the last 16 calls: the predictions
    of one point evaluate several statistics on the same minibatch, and a quadrature kernel
    (tanh, gelu, ...) costs far more than the network it describes.
    """
    a1 = np.ascontiguousarray(x1, dtype=float)
    a2 = None if x2 is None else np.ascontiguousarray(x2, dtype=float)
    with x64_scope(x64):
        key = _cache_key(arch, a1, a2, quadrature)
        cached = _layer_kernel_cache.get(key)
        if cached is not None:
            _layer_kernel_cache.move_to_end(key)
            return dict(cached)
        k, theta, tw, tb = (np.asarray(a) for a in _run(arch, a1, a2, "layers", quadrature))
    same = x2 is None
    out = {"nngp": _sym(k, same), "ntk": _sym(theta, same), "ntk_weight": _sym(tw, same),
           "ntk_bias": _sym(tb, same)}
    for value in out.values():
        value.setflags(write=False)
    _layer_kernel_cache[key] = out
    if len(_layer_kernel_cache) > LAYER_KERNEL_CACHE_SIZE:
        _layer_kernel_cache.popitem(last=False)
    return dict(out)


def diag_recursion(arch: Architecture, q0, *, x64: bool | None = None,
                   quadrature: act.Quadrature | None = None) -> dict[str, np.ndarray]:
    """Per-example diagonal recursion from input mean squares q0 = |x|^2/input_dim, shape (n,).

    Returns ``q`` (L, n): K_l(x, x) for layers 1..L; ``dphi2`` (L, n): E[phi'(h_l)^2] for
    hidden layers (the readout row is 1: it is linear).
    """
    with x64_scope(x64):
        out = _diag_jit(jnp.asarray(np.asarray(q0, dtype=float)), float(arch.sigma_w2),
                        float(arch.sigma_b2) if arch.bias else 0.0,
                        activation=arch.activation, n_layers=arch.n_layers,
                        quad=quadrature or act.DEFAULT_QUADRATURE)
        return {k: np.asarray(v) for k, v in out.items()}


@partial(jax.jit, static_argnames=("activation", "n_layers", "quad"))
def _diag_jit(q0, sw2, sb2, *, activation, n_layers, quad):
    qs, ds = [], []
    q = sw2 * q0 + sb2
    for l in range(1, n_layers + 1):
        qs.append(q)
        if l == n_layers:
            ds.append(jnp.ones_like(q))
            break
        v, d = act.diag(activation, q, quad)
        ds.append(d)
        q = sw2 * v + sb2
    return {"q": jnp.stack(qs), "dphi2": jnp.stack(ds)}
