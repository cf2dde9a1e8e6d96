"""Elementwise activation phi (the activation table, `gradstats.activations`)."""

from __future__ import annotations

from dataclasses import dataclass

from gradstats import activations
from gradstats.layers.base import BlockTrace, KernelState, Layer


@dataclass(frozen=True)
class Activation(Layer):
    """phi applied elementwise; its kernel maps are E[phi(u)phi(v)] and E[phi'(u)phi'(v)]."""

    name: str

    def torch_apply(self, x, trace: BlockTrace):
        trace.phi_input = x
        return activations.get(self.name).phi(activations.array_ops("torch"), x)

    def kernel_apply(self, s: KernelState) -> KernelState:
        from gradstats.theory import activations as act

        need_dot = s.need_ntk or s.diagonal_only
        v1, d1 = act.diag(self.name, s.q1, s.quad, need_dot=need_dot)
        if s.diagonal_only:
            return s.replace(q1=v1, q2=v1, f=s.f * d1)
        v2 = v1 if s.same else act.diag(self.name, s.q2, s.quad, need_dot=False)[0]
        if s.same and s.k.ndim == 2 and self.name in act.QUADRATURE:
            a, dot = self._upper_pairs(s)
        else:
            q1, q2 = s.pair_variances()
            a, dot = act.pair(self.name, q1, q2, s.k, s.quad, need_dot=s.need_ntk)
        if s.same:  # the diagonal (correlation exactly 1) from the 1-D maps: no arccos(1 - eps)
            a = s.set_self_diagonal(a, v1)
            if s.need_ntk:
                dot = s.set_self_diagonal(dot, d1)
        out = s.replace(k=a, q1=v1, q2=v2)
        return out.scale_ntk(dot) if s.need_ntk else out

    def _upper_pairs(self, s: KernelState):
        """The 2-D quadrature of a symmetric (n, n) kernel on its pairs i < j only (half the
        work), mirrored: (E[phi phi], E[phi' phi'] or None), exactly symmetric, with a zero
        diagonal that the caller sets from the 1-D maps."""
        import jax.numpy as jnp
        import numpy as np

        from gradstats.theory import activations as act

        i, j = np.triu_indices(s.k.shape[0], 1)
        a_up, dot_up = act.pair(self.name, s.q1[i], s.q2[j], s.k[i, j], s.quad,
                                need_dot=s.need_ntk)

        def mirrored(up):
            if up is None:
                return None
            full = jnp.zeros_like(s.k).at[i, j].set(up)
            return full + full.T

        return mirrored(a_up), mirrored(dot_up)
