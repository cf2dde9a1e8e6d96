"""The recursion of a convolutional `NetworkSpec` over pixel kernels (traced inside jit).

`recursion` is what `gradstats.theory.kernels` runs for image inputs (n, C, *S): the input
kernel from `ops.input_kernel` (full pixel pairs when the network has a global average
pool, the pixel diagonal otherwise), then every block's ``kernel_apply`` in order, scanned
over runs of identical blocks whose kernels keep their shape (``VALID`` convolutions shrink
the image, so their blocks are unrolled).

Per-layer NTK terms. A convolution mixes pixels, so the part of the readout NTK due to layer
l's parameters is not the layer's own term times a product of elementwise factors (the MLP
driver's shortcut). It is obtained by reverse-mode differentiation instead: block l's
output NTK is written ``Theta_l = lin_l(Theta_{l-1}) + s_l^W T_l^W + s_l^b T_l^b`` with
per-pair scales s (n1, n2) equal to 1; the readout NTK is linear in each s_l and every map
acts on one image pair at a time, so d sum(Theta_readout) / d s_l^W at s = 1 is exactly
layer l's weight contribution to Theta_readout(x_i, x_j), for every pair (i, j) at once
(one backward pass, whatever the depth).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradstats.layers import NetworkSpec
from gradstats.layers.base import KernelState
from gradstats.theory.conv import ops


def needs_full_pixels(net: NetworkSpec) -> bool:
    """Whether the network pools globally (its kernels need every pixel pair)."""
    from gradstats.layers.conv import GlobalAvgPool

    return any(isinstance(layer, GlobalAvgPool) for block, _ in net.runs
               for layer in block.all_layers())


def initial_state(x1, x2, same: bool, hp: dict, need_ntk: bool, quad, full: bool
                  ) -> KernelState:
    """Input pixel kernel K_0 = x x'^T / C per pixel (pair), its per-pixel variances, NTK 0."""
    k0 = ops.input_kernel(x1, x2, full)
    q1 = ops.input_variances(x1)
    q2 = q1 if same else ops.input_variances(x2)
    return KernelState(k=k0, q1=q1, q2=q2, theta=jnp.zeros_like(k0) if need_ntk else None,
                       f=jnp.ones((), k0.dtype), hp=hp, same=same, quad=quad)


def _broadcast_pair(scale, like):
    """(n1, n2) -> (n1, n2, 1, ..., 1) broadcasting against ``like``."""
    return scale.reshape(scale.shape + (1,) * (like.ndim - 2))


def _block_step(block, template: KernelState):
    def step(carry, scale):
        k, q1, q2, theta = carry
        s = template.replace(k=k, q1=q1, q2=q2, theta=theta, t_w=None, t_b=None)
        s = block.kernel_apply(s)
        theta = s.theta
        if scale is not None:
            theta = (theta + (_broadcast_pair(scale[0], theta) - 1.0) * s.t_w
                     + (_broadcast_pair(scale[1], theta) - 1.0) * s.t_b)
        return (s.k, s.q1, s.q2, theta), None
    return step


def run_blocks(state: KernelState, net: NetworkSpec, scales=None) -> KernelState:
    """Apply the blocks of ``net`` to ``state``; ``scales`` (L, 2, n1, n2) or None multiply
    each block's own weight / bias NTK terms (see the module docstring)."""
    first = 0
    for block, count in net.runs:
        carry = (state.k, state.q1, state.q2, state.theta)
        step = _block_step(block, state)
        run_scales = None if scales is None else scales[first:first + count]
        shapes = jax.eval_shape(lambda c, sc, step=step: step(c, sc)[0], carry,
                                None if run_scales is None else run_scales[0])
        stable = all(a is None or a.shape == b.shape for a, b in zip(carry, shapes, strict=True))
        if count > 1 and stable:
            carry, _ = jax.lax.scan(step, carry, run_scales, length=count)
        else:
            for i in range(count):
                carry, _ = step(carry, None if run_scales is None else run_scales[i])
        state = state.replace(k=carry[0], q1=carry[1], q2=carry[2], theta=carry[3])
        first += count
    return state


def recursion(x1, x2, hp: dict[str, Any], *, net: NetworkSpec, same: bool, mode: str, quad):
    """mode 'nngp' -> K; 'ntk' -> (K, Theta); 'layers' -> (K, Theta, T^W (L, n1, n2),
    T^b (L, n1, n2)), the readout kernels of one output unit for images x1 (n1, C, *S) and
    x2 (n2, C, *S)."""
    full = needs_full_pixels(net)
    state = initial_state(x1, x2, same, hp, mode != "nngp", quad, full)
    if mode == "nngp":
        return run_blocks(state, net).k
    if mode == "ntk":
        out = run_blocks(state, net)
        return out.k, out.theta

    def readout(scales):
        out = run_blocks(state, net, scales)
        return out.theta, out.k

    n_blocks = net.n_layers
    ones = jnp.ones((n_blocks, 2, x1.shape[0], x2.shape[0]), x1.dtype)
    theta, pullback, k = jax.vjp(readout, ones, has_aux=True)
    (grads,) = pullback(jnp.ones_like(theta))
    return k, theta, grads[:, 0], grads[:, 1]
