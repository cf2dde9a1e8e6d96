"""Convolution (1-D, 2-D; stride 1) and the two readouts that end a CNN: Flatten and GAP.

Layout: torch channel-first, x of shape (B, C, W) or (B, C, H, W); neural-tangents uses
channel-last (NHWC) and the theory transposes where it meets nt.

- `Conv`: z = m * conv(pad(x), W) + m_b * b with the raw kernel W of shape
  (C_out, C_in, k, ..., k) and bias b (C_out,); fan_in = C_in * k^d (d spatial dims) sets m
  and the init scale through the parameterization's abc row, as for `Dense`.
  Padding (neural-tangents' conventions): ``SAME`` pads (k-1)//2 zeros before and the rest
  after each spatial dim (the output keeps the input's shape), ``CIRCULAR`` pads the same
  amounts by wrapping around (a torus), ``VALID`` pads nothing (each dim shrinks by k - 1).
- `Flatten`: (B, C, *spatial) -> (B, C * P), P pixels (channel-major order: torch's; nt
  flattens (H, W, C), a permutation of the readout's input units).
- `GlobalAvgPool`: the mean over pixels, (B, C, *spatial) -> (B, C).

The per-example engine needs each conv layer's input as unfolded patches
(`Conv.patches`: (B, P, C_in * k^d), patch p the receptive field of output pixel p, in the
order of ``W.reshape(C_out, -1)``), so that dz_p/dW = delta_p (x) a_p.

The ``kernel_apply`` methods delegate to the theory helper's functions in
`gradstats.theory.conv.layer_maps` (its docstring states the pixel-indexed `KernelState`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradstats.layers.base import BlockTrace, KernelState, Layer


def same_pads(kernel_size: int) -> tuple[int, int]:
    """(before, after) padding of one spatial dim for SAME and CIRCULAR: neural-tangents'
    (and XLA's) split of k - 1 pixels, the larger half after."""
    before = (kernel_size - 1) // 2
    return before, kernel_size - 1 - before


@dataclass(frozen=True)
class Conv(Layer):
    """Conv layer of a block (stride 1). ``fan_in_channels``: C_in as an int (the input
    channels, static) or None for the swept width (traced as ``hp["width"]``, like
    `Dense.fan_in`); ``role``: input, hidden or readout (its abc exponents);
    ``kernel_size``: one size per spatial dim; ``padding``: SAME | VALID | CIRCULAR."""

    parameterization: str
    role: str
    fan_in_channels: int | None
    kernel_size: tuple[int, ...]
    padding: str
    bias: bool

    @property
    def spatial_dims(self) -> int:
        return len(self.kernel_size)

    def fan_in(self, channels: int) -> int:
        """C_in * prod(kernel_size): the fan-in of one output unit."""
        return channels * math.prod(self.kernel_size)

    def pad(self, x):
        """x (B, C, *spatial) padded for a VALID convolution giving this layer's output."""
        import torch.nn.functional as F  # noqa: N812

        if self.padding == "VALID":
            return x
        pads: list[int] = []
        for k in reversed(self.kernel_size):  # F.pad lists the last dim first
            pads.extend(same_pads(k))
        mode = "circular" if self.padding == "CIRCULAR" else "constant"
        return F.pad(x, pads, mode=mode)

    def conv(self, x, weight):
        """conv(pad(x), weight) without multiplier or bias: (B, C_in, *s) -> (B, C_out, *s')."""
        import torch.nn.functional as F  # noqa: N812

        op = F.conv1d if self.spatial_dims == 1 else F.conv2d
        return op(self.pad(x), weight)

    def patches(self, x):
        """Unfolded input patches (B, P, C_in * prod(k)) of x (B, C_in, *spatial): row p is
        the receptive field of output pixel p (row-major over the output's pixels), its
        entries ordered (C_in, k_1, ..., k_d) like ``weight.reshape(C_out, -1)``. 2-D: a
        transposed view of torch's im2col (`F.unfold`, (B, F, P) in memory)."""
        xp = self.pad(x)
        if self.spatial_dims == 2:
            import torch.nn.functional as F  # noqa: N812

            return F.unfold(xp, self.kernel_size).transpose(1, 2)
        for dim, k in enumerate(self.kernel_size):
            xp = xp.unfold(2 + dim, k, 1)  # (B, C, *s', k_1..k_dim) after each step
        d = self.spatial_dims
        b, c = xp.shape[:2]
        out_shape = xp.shape[2:2 + d]
        # (B, C, *s', *k) -> (B, *s', C, *k) -> (B, P, C * prod(k))
        order = (0, *range(2, 2 + d), 1, *range(2 + d, 2 + 2 * d))
        return xp.permute(order).reshape(b, math.prod(out_shape), c * math.prod(self.kernel_size))

    def torch_apply(self, x, trace: BlockTrace):
        trace.dense_input = x
        z = trace.w_mult * self.conv(x, trace.weight)
        if trace.bias is not None:
            z = z + trace.b_mult * trace.bias.reshape((-1,) + (1,) * self.spatial_dims)
        if trace.retain_grad and z.requires_grad:
            z.retain_grad()
        trace.dense_output = z
        return z

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import conv_kernel_apply
        return conv_kernel_apply(self, state)


@dataclass(frozen=True)
class Flatten(Layer):
    """(B, C, *spatial) -> (B, C * P): the readout's input after Flatten (nt's ``Flatten``)."""

    def torch_apply(self, x, trace: BlockTrace):
        return x.reshape(x.shape[0], -1)

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import flatten_kernel_apply
        return flatten_kernel_apply(self, state)


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """(B, C, *spatial) -> (B, C): the mean over pixels (nt's ``GlobalAvgPool``)."""

    def torch_apply(self, x, trace: BlockTrace):
        return x.mean(dim=tuple(range(2, x.ndim)))

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import gap_kernel_apply
        return gap_kernel_apply(self, state)
