"""Infinite-width NNGP and NTK of an `Architecture`, per readout unit.

The network is the composition of `gradstats.layers.network_spec(arch)`; each layer kind's
``kernel_apply`` is its map (docs/theory.md, "Compositions"), and this module runs them over
the blocks (a ``lax.scan`` over runs of identical blocks) and splits the NTK by layer. The
conventions below are stated for the plain MLP; residual blocks and LayerNorm follow their
layer modules.

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
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradstats.layers import NetworkSpec, hyper, network_spec
from gradstats.layers.base import KernelState
from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope

PARTS = ("both", "weight", "bias")
BACKENDS = ("gradstats", "neural-tangents")


def _initial_state(x1, x2, same: bool, hp: dict, need_ntk: bool, quad) -> KernelState:
    """The input kernel K_0 = x x'^T / d with its diagonals; NTK 0."""
    d = x1.shape[-1]
    k0 = x1 @ x2.T / d
    q1 = jnp.sum(x1 * x1, axis=-1) / d
    q2 = q1 if same else jnp.sum(x2 * x2, axis=-1) / d
    return KernelState(k=k0, q1=q1, q2=q2, theta=jnp.zeros_like(k0) if need_ntk else None,
                       f=jnp.ones_like(k0), hp=hp, same=same, quad=quad)


def _run_blocks(state: KernelState, net: NetworkSpec, keep: Callable[[KernelState], Any]):
    """Apply every block of ``net`` in order; ``keep(state)`` after each block is stacked
    over blocks (scanned over runs of identical blocks). Returns (final state, stacked)."""
    kept = []
    for block, count in net.runs:
        def body(carry, _, block=block, template=state):
            k, q1, q2, theta = carry
            s = template.replace(k=k, q1=q1, q2=q2, theta=theta, f=jnp.ones_like(template.f),
                                 t_w=None, t_b=None)
            s = block.kernel_apply(s)
            return (s.k, s.q1, s.q2, s.theta), keep(s)

        carry = (state.k, state.q1, state.q2, state.theta)
        if count == 1:
            carry, ys = body(carry, None)
            ys = jax.tree_util.tree_map(lambda a: a[None], ys)
        else:
            carry, ys = jax.lax.scan(body, carry, None, length=count)
        state = state.replace(k=carry[0], q1=carry[1], q2=carry[2], theta=carry[3])
        kept.append(ys)
    stacked = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, axis=0), *kept)
    return state, stacked


def _suffix_products(factors):
    """P_l = prod_{m=l+1}^{L} factor_m (P_L = 1) from factors (L, ...): (L, ...)."""
    tail = factors[1:]
    rev = jnp.cumprod(tail[::-1], axis=0)[::-1]
    return jnp.concatenate([rev, jnp.ones_like(factors[:1])], axis=0)


@partial(jax.jit, static_argnames=("net", "same", "mode", "quad"))
def _recursion(x1, x2, hp, *, net: NetworkSpec, same: bool, mode: str, quad: act.Quadrature):
    """mode: 'nngp' -> K; 'ntk' -> (K, Theta); 'layers' -> (K, Theta, T^W (L,n1,n2), T^b (L,n1,n2))."""
    dtype = x1.dtype
    hp = {name: jnp.asarray(value, dtype) for name, value in hp.items()}
    if x1.ndim > 2:  # images (n, C, *spatial): a convolutional network
        from gradstats.theory.conv import driver

        return driver.recursion(x1, x2, hp, net=net, same=same, mode=mode, quad=quad)
    state = _initial_state(x1, x2, same, hp, mode != "nngp", quad)
    keep = (lambda s: (s.t_w, s.t_b, s.f)) if mode == "layers" else (lambda s: ())
    state, kept = _run_blocks(state, net, keep)
    if mode == "nngp":
        return state.k
    if mode == "ntk":
        return state.k, state.theta
    tws, tbs, factors = kept
    # layer l's contribution to the readout NTK: its own term carried through the blocks after it
    prods = _suffix_products(factors)
    return state.k, state.theta, tws * prods, tbs * prods


def _prepare(arch: Architecture, x1, x2):
    """(arch with its input_dim from x1, x1, x2, same): inputs as jax arrays of the current
    default float dtype (float64 under x64)."""
    act.check_activation(arch.activation)
    x1 = jnp.asarray(np.asarray(x1, dtype=float))
    if _is_cnn(arch):
        from gradstats.theory.conv.inputs import check_images

        same = x2 is None
        x2 = x1 if same else jnp.asarray(np.asarray(x2, dtype=float))
        check_images(x1, x2)
        return arch.with_image(x1.shape[1:], "x1"), x1, x2, same
    if x1.ndim != 2:
        raise ValueError(f"x1 must be (n, input_dim), got shape {x1.shape}")
    same = x2 is None
    x2 = x1 if same else jnp.asarray(np.asarray(x2, dtype=float))
    if x2.ndim != 2 or x2.shape[1] != x1.shape[1]:
        raise ValueError(f"x2 must be (n2, {x1.shape[1]}), got shape {x2.shape}")
    return arch.with_input_dim(x1.shape[1], "x1"), x1, x2, same


def _is_cnn(arch: Architecture) -> bool:
    return getattr(arch, "architecture", "mlp") == "cnn"


def _run(arch: Architecture, x1, x2, mode: str, quad: act.Quadrature | None):
    if _is_cnn(arch):  # pixel kernels: in tiles of image pairs within the default memory budget
        from gradstats.theory.conv.tiled import OUTPUTS, cnn_kernels

        out = cnn_kernels(arch, x1, x2, mode=mode, quadrature=quad)
        values = tuple(out[name] for name in OUTPUTS[mode])
        return values[0] if mode == "nngp" else values
    arch, x1, x2, same = _prepare(arch, x1, x2)
    return _recursion(x1, x2, hyper(arch), net=network_spec(arch), same=same, mode=mode,
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

    Returns, each (L, n) over layers l = 1..L:
    ``q``: K_l(x, x), the mean square of the stream h_l;
    ``chi``: the factor from layer l to l+1 of the backward kernel, d||df/dh_{l+1}||^2 ->
    d||df/dh_l||^2 per unit of the readout (sigma_w^2 E[phi'(h_l)^2] in an MLP; 1 for l = L);
    ``backward``: sum over units of (df/dh_l)^2 for one readout unit, prod_{m>=l} chi_m
    (1 at the readout).
    """
    with x64_scope(x64):
        out = _diag_jit(jnp.asarray(np.asarray(q0, dtype=float)), hyper(arch),
                        net=network_spec(arch), quad=quadrature or act.DEFAULT_QUADRATURE)
        return {k: np.asarray(v) for k, v in out.items()}


@partial(jax.jit, static_argnames=("net", "quad"))
def _diag_jit(q0, hp, *, net: NetworkSpec, quad):
    hp = {name: jnp.asarray(value, q0.dtype) for name, value in hp.items()}
    state = KernelState(k=None, q1=q0, q2=q0, theta=None, f=jnp.ones_like(q0), hp=hp, same=True,
                        quad=quad)
    _, (qs, factors) = _run_blocks(state, net, lambda s: (s.q1, s.f))
    backward = _suffix_products(factors)
    chi = jnp.concatenate([factors[1:], jnp.ones_like(factors[:1])], axis=0)
    return {"q": qs, "chi": chi, "backward": backward}
