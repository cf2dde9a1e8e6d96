"""Dense layer: h = m W a + m_b b, parameterized by a row of the abc table."""

from __future__ import annotations

from dataclasses import dataclass

from gradstats import parameterization as pz
from gradstats.layers.base import BlockTrace, KernelState, Layer


@dataclass(frozen=True)
class Dense(Layer):
    """Dense layer of a block. ``fan_in``: an int (the input dimension, static) or None for
    the swept width (traced); ``role``: input, hidden or readout (its abc exponents)."""

    parameterization: str
    role: str
    fan_in: int | None
    bias: bool

    def torch_apply(self, x, trace: BlockTrace):
        trace.dense_input = x
        z = trace.w_mult * (x @ trace.weight.T)
        if trace.bias is not None:
            z = z + trace.b_mult * trace.bias
        if trace.retain_grad and z.requires_grad:
            z.retain_grad()
        trace.dense_output = z
        return z

    def kernel_apply(self, s: KernelState) -> KernelState:
        """K -> sw2 K + sb2; Theta -> T^W + T^b + sw2 Theta, T^W = scale(n) K_in."""
        import jax.numpy as jnp

        row = pz.get(self.parameterization)
        sw2 = s.hp["sw2"]
        sb2 = s.hp["sb2"] if self.bias else jnp.zeros_like(sw2)
        q1, q2 = sw2 * s.q1 + sb2, sw2 * s.q2 + sb2
        if s.diagonal_only:
            return s.replace(q1=q1, q2=q2, f=s.f * sw2)
        k = sw2 * s.k + sb2
        if not s.need_ntk:
            return s.replace(k=k, q1=q1, q2=q2)
        if s.t_w is not None:
            raise ValueError("a block holds exactly one dense layer")
        fan_in = s.hp["width"] if self.fan_in is None else jnp.asarray(float(self.fan_in), sw2.dtype)
        t_w = row.weight_kernel_scale(self.role, fan_in, sw2) * s.k
        t_b = (jnp.full_like(s.k, row.bias_kernel_scale(sb2)) if self.bias
               else jnp.zeros_like(s.k))
        return s.replace(k=k, q1=q1, q2=q2, theta=t_w + t_b + sw2 * s.theta, f=s.f * sw2,
                         t_w=t_w, t_b=t_b)
