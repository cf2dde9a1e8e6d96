"""Normalization without affine parameters, placed before the activation: phi(N(h)).

- `LayerNorm`: over the units of each example, N(h)_u = (h_u - mean_u h) / sqrt(var_u h + eps).
  At infinite width mean_u h -> 0 and var_u h -> K(x, x), so the kernel maps are
  K(x, x') / sqrt(K(x, x) K(x', x')) and the NTK is divided by the same factor (exact in
  the limit; neural-tangents' ``stax.LayerNorm``).
- `BatchNorm`: over the examples of the batch, per unit. Examples are coupled through the
  batch statistics, so per-example gradients are not defined and there is no per-pair
  kernel map; its infinite-width theory is the batch-level mean field of Yang et al. (2019)
  in `gradstats.theory.batchnorm`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradstats.layers.base import BlockTrace, KernelState, Layer

LAYER_NORM_EPS = 1e-12
BATCH_NORM_EPS = 1e-5


@dataclass(frozen=True)
class LayerNorm(Layer):
    eps: float = LAYER_NORM_EPS

    def torch_apply(self, x, trace: BlockTrace):
        import torch.nn.functional as F  # noqa: N812

        return F.layer_norm(x, (x.shape[-1],), eps=self.eps)

    def kernel_apply(self, s: KernelState) -> KernelState:
        import jax.numpy as jnp

        inv1 = 1.0 / jnp.sqrt(s.q1 + self.eps)
        q1 = s.q1 * inv1 * inv1
        if s.diagonal_only:
            return s.replace(q1=q1, q2=q1, f=s.f * inv1 * inv1)
        inv2 = inv1 if s.same else 1.0 / jnp.sqrt(s.q2 + self.eps)
        ratio = inv1[:, None] * inv2[None, :]
        out = s.replace(k=s.k * ratio, q1=q1, q2=s.q2 * inv2 * inv2)
        return out.scale_ntk(ratio) if s.need_ntk else out


@dataclass(frozen=True)
class BatchNorm(Layer):
    eps: float = BATCH_NORM_EPS
    per_example = False

    def torch_apply(self, x, trace: BlockTrace):
        import torch.nn.functional as F  # noqa: N812

        return F.batch_norm(x, None, None, training=True, eps=self.eps)

    def kernel_apply(self, s: KernelState) -> KernelState:
        raise NotImplementedError(
            "norm='batch' has no per-pair kernel (batch statistics couple the examples); "
            "its theory is gradstats.theory.batchnorm")
