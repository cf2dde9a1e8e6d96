"""Infinite-width maps of the convolutional layer kinds (`gradstats.layers.conv`) on a
`KernelState` whose kernels carry pixel dims (layouts in `gradstats.theory.conv.ops` and
`gradstats.layers.base.KernelState`).

Conv (stride 1, filter k^d, fan_in = C_in k^d), writing conv(.) for the offset mean of
`ops.conv_full` / `ops.conv_diag`:

- NNGP: K' = sigma_w^2 conv(K) + sigma_b^2 (per pixel pair; the bias is shared over pixels);
- NTK:  Theta' = T^W + T^b + sigma_w^2 conv(Theta), T^W = scale conv(K) with the Dense rows of
  `gradstats.parameterization` (ntk: sigma_w^2, standard: fan_in), T^b = bias scale;
  exactly neural-tangents' ``stax.Conv`` kernel_fn.

Flatten: the mean over pixels of the diagonal pixel kernel (the readout's fan_in becomes
C * P, so ``hp["width"]`` is multiplied by P for the Dense that follows). GlobalAvgPool: the
mean over all pixel pairs of the full kernel (fan_in C).

These run inside ``jax.jit``; ``kernel_size`` of length 1 is repeated to the data's spatial
rank (the contract's one size for every spatial dim).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp

from gradstats import parameterization as pz
from gradstats.layers.base import KernelState
from gradstats.theory.conv import ops


def _kernel_size(layer: Any, d: int) -> tuple[int, ...]:
    size = tuple(int(k) for k in layer.kernel_size)
    if len(size) == 1 and d > 1:
        size = size * d
    if len(size) != d:
        raise ValueError(f"kernel_size {layer.kernel_size} does not match {d} spatial dims")
    return size


def conv_kernel_apply(layer: Any, s: KernelState) -> KernelState:
    """Conv layer ``layer`` (fields of `gradstats.layers.conv.Conv`) on pixel kernels."""
    d = s.pixel_dims
    if d == 0:
        raise ValueError("a Conv layer needs image inputs (n, C, *spatial), got a dense stream")
    ops.check_padding(layer.padding)
    size = _kernel_size(layer, d)
    row = pz.get(layer.parameterization)
    sw2 = s.hp["sw2"]
    sb2 = s.hp["sb2"] if layer.bias else jnp.zeros_like(sw2)
    q1 = sw2 * ops.conv_diag(s.q1, size, layer.padding) + sb2
    q2 = q1 if s.same else sw2 * ops.conv_diag(s.q2, size, layer.padding) + sb2
    if s.diagonal_only:
        return s.replace(q1=q1, q2=q2)
    conv = ops.conv_full if s.full_pixels else ops.conv_diag
    kc = conv(s.k, size, layer.padding)
    k = sw2 * kc + sb2
    if not s.need_ntk:
        return s.replace(k=k, q1=q1, q2=q2)
    if s.t_w is not None:
        raise ValueError("a block holds exactly one dense or conv layer")
    channels = (s.hp["width"] if layer.fan_in_channels is None
                else jnp.asarray(float(layer.fan_in_channels), sw2.dtype))
    fan_in = channels * float(math.prod(size))
    t_w = row.weight_kernel_scale(layer.role, fan_in, sw2) * kc
    t_b = (jnp.full_like(kc, row.bias_kernel_scale(sb2)) if layer.bias else jnp.zeros_like(kc))
    theta = t_w + t_b + sw2 * conv(s.theta, size, layer.padding)
    return s.replace(k=k, q1=q1, q2=q2, theta=theta, t_w=t_w, t_b=t_b)


def _pool(s: KernelState, pool, q_of, width_factor: float) -> KernelState:
    def opt(a):
        return None if a is None else pool(a)

    q1, q2 = q_of(s)
    hp = {**s.hp, "width": s.hp["width"] * width_factor}
    return s.replace(k=pool(s.k), q1=q1, q2=q2, theta=opt(s.theta), t_w=opt(s.t_w),
                     t_b=opt(s.t_b), hp=hp)


def flatten_kernel_apply(layer: Any, s: KernelState) -> KernelState:
    """Flatten: K -> mean_p K(p, p), per image pair (n1, n2); readout fan_in C * P."""
    d = s.pixel_dims
    if d == 0:
        raise ValueError("Flatten needs a stream with pixel dims")
    n_pixels = 1
    for n in s.q1.shape[1:]:
        n_pixels *= n

    def pool(a):
        if s.full_pixels:
            a = ops.pixel_diagonal(a, d)
        return ops.mean_pixels(a, d)

    def q_of(s):
        return ops.mean_pixels(s.q1, d), ops.mean_pixels(s.q2, d)

    if s.diagonal_only:
        q1, q2 = q_of(s)
        return s.replace(q1=q1, q2=q2, hp={**s.hp, "width": s.hp["width"] * n_pixels})
    return _pool(s, pool, q_of, float(n_pixels))


def gap_kernel_apply(layer: Any, s: KernelState) -> KernelState:
    """GlobalAvgPool: K -> mean_{p, p'} K(p, p'), per image pair (n1, n2); needs full pixel
    kernels. The pooled variance of an image needs its own full pixel covariance: it is read
    from the pooled kernel when x2 is x1 (``same``) and is NaN otherwise (an off-diagonal
    tile of image pairs; the diagonal tiles carry it)."""
    d = s.pixel_dims
    if d == 0:
        raise ValueError("GlobalAvgPool needs a stream with pixel dims")
    if not s.full_pixels:
        raise ValueError(
            "GlobalAvgPool needs the full pixel x pixel kernel: start the recursion with "
            "full pixel kernels (gradstats.theory.conv drivers do for gap readouts)")

    def pool(a):
        return ops.mean_pixels(ops.mean_pixels(a, d), d)

    def q_of(s):
        if s.same:
            q = jnp.diagonal(pool(s.k))
            return q, q
        return (jnp.full(s.q1.shape[:1], jnp.nan, s.q1.dtype),
                jnp.full(s.q2.shape[:1], jnp.nan, s.q2.dtype))

    return _pool(s, pool, q_of, 1.0)
