"""Pixel-covariance maps of stride-1 convolutions and of the readout pools (jax, jit-safe).

Layouts (channel-first images x of shape (n, C, *S), S the spatial shape, (W,) or (H, W)):

- *diagonal* pixel kernels: K[i, j, *p] = Cov(h_i(p), h_j(p)), shape (n1, n2, *S); per-image
  variances q[i, *p], shape (n, *S). Flatten readouts need only these.
- *full* pixel kernels: K[i, j, *p, *p'] = Cov(h_i(p), h_j(p')), shape (n1, n2, *S, *S) (the
  first image's pixel dims, then the second's). Global average pooling needs these.

A stride-1 convolution with a k^d filter of i.i.d. weights maps a covariance to the mean over
the filter offsets o of the covariance shifted by o in both pixels (docs/theory.md, "CNN-GP
and CNTK"):  K'(p, p') = k^-d sum_o Kpad(p + o, p' + o), where Kpad is K of the padded images:
``SAME`` pads with zeros (lo = (k-1)//2, hi = k//2 per dim, the lax / torch convention),
``CIRCULAR`` wraps around, ``VALID`` does not pad (each dim shrinks by k - 1). The offset sum
factorizes over the spatial dims, so it is applied one dim (one pair of axes) at a time:
d passes of k shifted slices instead of k^d.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PADDINGS = ("SAME", "VALID", "CIRCULAR")


def check_padding(padding: str) -> None:
    if padding not in PADDINGS:
        raise ValueError(f"unknown padding {padding!r}; choose from {', '.join(PADDINGS)}")


def pads(size: int, padding: str) -> tuple[int, int]:
    """(lo, hi) padding of one spatial dim for a filter of ``size`` (0, 0 for VALID)."""
    if padding == "VALID":
        return 0, 0
    return (size - 1) // 2, size // 2


def out_size(n: int, size: int, padding: str) -> int:
    """Spatial size after a stride-1 convolution of a dim of ``n`` pixels."""
    return n - size + 1 if padding == "VALID" else n


def _pad_axes(a: jax.Array, axes: tuple[int, ...], size: int, padding: str) -> jax.Array:
    lo, hi = pads(size, padding)
    if lo == hi == 0:
        return a
    width = [(0, 0)] * a.ndim
    for ax in axes:
        width[ax] = (lo, hi)
    return jnp.pad(a, width, mode="wrap" if padding == "CIRCULAR" else "constant")


def _check_size(n: int, size: int, padding: str) -> None:
    if padding == "VALID" and size > n:
        raise ValueError(f"kernel_size {size} exceeds the spatial size {n} with VALID padding")


def conv_diag(a: jax.Array, kernel_size: tuple[int, ...], padding: str) -> jax.Array:
    """Diagonal pixel kernel (..., *S) -> (..., *S'): K'(p) = k^-d sum_o Kpad(p + o)."""
    d = len(kernel_size)
    for i, size in enumerate(kernel_size):
        ax = a.ndim - d + i
        n = a.shape[ax]
        _check_size(n, size, padding)
        m = out_size(n, size, padding)
        ap = _pad_axes(a, (ax,), size, padding)
        a = sum(jax.lax.slice_in_dim(ap, o, o + m, axis=ax) for o in range(size)) / size
    return a


def conv_full(a: jax.Array, kernel_size: tuple[int, ...], padding: str) -> jax.Array:
    """Full pixel kernel (..., *S, *S) -> (..., *S', *S'): K'(p, p') = k^-d sum_o
    Kpad(p + o, p' + o)."""
    d = len(kernel_size)
    for i, size in enumerate(kernel_size):
        ax1, ax2 = a.ndim - 2 * d + i, a.ndim - d + i
        n = a.shape[ax1]
        _check_size(n, size, padding)
        m = out_size(n, size, padding)
        ap = _pad_axes(a, (ax1, ax2), size, padding)
        a = sum(jax.lax.slice_in_dim(jax.lax.slice_in_dim(ap, o, o + m, axis=ax1),
                                     o, o + m, axis=ax2) for o in range(size)) / size
    return a


def input_kernel(x1: jax.Array, x2: jax.Array, full: bool) -> jax.Array:
    """K_0 = sum_c x1[c, p] x2[c, p'] / C from images (n, C, *S): (n1, n2, *S, *S) when
    ``full``, else its pixel diagonal (n1, n2, *S)."""
    d = x1.ndim - 2
    letters = "abcdefgh"[:d]
    primed = "pqrstuvw"[:d]
    if full:
        spec = f"iz{letters},jz{primed}->ij{letters}{primed}"
    else:
        spec = f"iz{letters},jz{letters}->ij{letters}"
    return jnp.einsum(spec, x1, x2) / x1.shape[1]


def input_variances(x: jax.Array) -> jax.Array:
    """Per-pixel mean square over channels, (n, C, *S) -> (n, *S)."""
    return jnp.mean(x * x, axis=1)


def mean_pixels(a: jax.Array, d: int) -> jax.Array:
    """Mean over the last d (pixel) axes."""
    return jnp.mean(a, axis=tuple(range(a.ndim - d, a.ndim)))


def pixel_diagonal(a: jax.Array, d: int) -> jax.Array:
    """The p = p' entries of a full pixel kernel (..., *S, *S) -> (..., *S)."""
    spatial = a.shape[a.ndim - d:]
    size = 1
    for n in spatial:
        size *= n
    flat = a.reshape(a.shape[:a.ndim - 2 * d] + (size, size))
    return jnp.diagonal(flat, axis1=-2, axis2=-1).reshape(a.shape[:a.ndim - 2 * d] + spatial)
