"""Residual block: h_out = h + alpha * branch(h).

alpha is a value, not structure: the torch side reads it from the block's trace, the theory
side from ``hp['alpha']`` (traced, so sweeping it does not recompile the kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

from gradstats.layers.base import BlockTrace, KernelState, Layer


@dataclass(frozen=True)
class Residual(Layer):
    """``branch`` is a tuple of layers applied in order; the stream and the branch output are
    uncorrelated at init (the branch's last dense weight is independent and centred), so
    K_out = K + alpha^2 K_branch, and the NTK map is Theta_out = Theta + alpha^2 branch(Theta)."""

    branch: tuple[Layer, ...]

    @property
    def per_example(self) -> bool:  # type: ignore[override]
        return all(layer.per_example for layer in self.branch)

    def layers(self) -> tuple[Layer, ...]:
        return (self, *(inner for layer in self.branch for inner in layer.layers()))

    def torch_apply(self, x, trace: BlockTrace):
        y = x
        for layer in self.branch:
            y = layer.torch_apply(y, trace)
        return x + trace.alpha * y

    def kernel_apply(self, s: KernelState) -> KernelState:
        import jax.numpy as jnp

        a2 = s.hp["alpha"] ** 2
        b = s.replace(f=jnp.ones_like(s.f), t_w=None, t_b=None)
        for layer in self.branch:
            b = layer.kernel_apply(b)
        gain = 1.0 + a2 * b.f
        out = s.replace(q1=s.q1 + a2 * b.q1, q2=s.q2 + a2 * b.q2, f=s.f * gain)
        if s.diagonal_only:
            return out
        out = out.replace(k=s.k + a2 * b.k)
        if not s.need_ntk:
            return out

        def term(prev, new):
            new = a2 * new if new is not None else None
            if prev is None:
                return new
            return gain * prev + (0.0 if new is None else new)

        return out.replace(theta=s.theta + a2 * b.theta, t_w=term(s.t_w, b.t_w),
                           t_b=term(s.t_b, b.t_b))
