"""What every layer kind provides, and the state its two realizations pass along.

A layer kind is a frozen dataclass with two methods side by side:

- ``torch_apply(x, trace)``: the finite network, (B, n_in) -> (B, n_out) torch tensors; a
  dense layer reads its parameters from ``trace`` and records its input and output there.
- ``kernel_apply(state)``: the infinite-width map of the same layer on a `KernelState`
  (NNGP, its diagonals, NTK and the layer's NTK terms), traced inside ``jax.jit``.

Neither method's backend is imported here: torch and jax are imported by the realization
that runs, so `gradstats.simulate` never loads jax and `gradstats.theory` never loads torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BlockTrace:
    """The torch side of one block (one dense layer l): its parameters and what it records.

    weight (fan_out, fan_in), bias (fan_out,) or None, w_mult / b_mult the multipliers of the
    raw parameters, alpha the residual scale. Recorded: ``dense_input`` a_{l-1} (B, fan_in),
    ``dense_output`` the dense layer's own output z_l (B, fan_out) before any residual
    addition, ``phi_input`` the tensor the block's activation was applied to (or None).
    """

    weight: Any
    bias: Any
    w_mult: float
    b_mult: float
    alpha: float = 1.0
    retain_grad: bool = False
    dense_input: Any = None
    dense_output: Any = None
    phi_input: Any = None


@dataclass(frozen=True)
class KernelState:
    """The theory side between layers, for inputs x1 (n1) and x2 (n2) (jax arrays).

    k: NNGP (n1, n2), or None in diagonal-only mode; q1 (n1,), q2 (n2,): its diagonals.
    theta: NTK (n1, n2) or None when not needed. Within the current block, the NTK is
    ``f * theta_in + t_w + t_b`` elementwise: ``f`` ((n1, n2), or (n1,) diagonal-only) is the
    factor applied to the block's incoming NTK, ``t_w``/``t_b`` the block's own weight and
    bias terms (None before its dense layer). ``hp``: traced hyper-parameters (sw2, sb2,
    width, alpha); ``same``: x2 is x1; ``quad``: the quadrature of non-closed-form kernels.

    Convolutional networks (images with spatial shape S, `gradstats.theory.conv`): q1 (n1, *S)
    and q2 (n2, *S) are per-pixel variances; k and theta are either *diagonal* pixel kernels
    (n1, n2, *S), Cov(h_i(p), h_j(p)) (Flatten readouts), or *full* ones (n1, n2, *S, *S),
    Cov(h_i(p), h_j(p')) (global average pooling). After the readout pool they are (n1, n2)
    again. ``f`` is not maintained for pixel kernels (a convolution mixes pixels, so the NTK
    map is not elementwise): the per-layer terms of a CNN come from its driver
    (`gradstats.theory.conv.driver`).
    """

    k: Any
    q1: Any
    q2: Any
    theta: Any
    f: Any
    hp: dict[str, Any]
    same: bool
    quad: Any
    t_w: Any = None
    t_b: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def diagonal_only(self) -> bool:
        return self.k is None

    @property
    def need_ntk(self) -> bool:
        return self.theta is not None

    @property
    def pixel_dims(self) -> int:
        """Number of spatial dims of the stream (0 for a dense stream)."""
        return self.q1.ndim - 1

    @property
    def full_pixels(self) -> bool:
        """Whether k holds every pixel pair (n1, n2, *S, *S) rather than the diagonal."""
        d = self.pixel_dims
        return self.k is not None and d > 0 and self.k.ndim == 2 + 2 * d

    def pair_variances(self) -> tuple[Any, Any]:
        """(q1, q2) reshaped to broadcast against k: Var of the first and second entry."""
        if self.full_pixels:
            d = self.pixel_dims
            return (self.q1.reshape(self.q1.shape[:1] + (1,) + self.q1.shape[1:] + (1,) * d),
                    self.q2.reshape((1,) + self.q2.shape[:1] + (1,) * d + self.q2.shape[1:]))
        return self.q1[:, None], self.q2[None, :]

    def set_self_diagonal(self, a: Any, v: Any) -> Any:
        """``a`` (shaped like k, same inputs) with its entries of one image with itself at
        one pixel (i = j and p = p') set to ``v`` (shaped like q1)."""
        import jax.numpy as jnp

        n = a.shape[0]
        if not self.full_pixels:
            idx = jnp.arange(n)
            return a.at[idx, idx].set(v)
        size = v.size // n
        i, p = jnp.arange(n)[:, None], jnp.arange(size)[None, :]
        flat = a.reshape(n, n, size, size).at[i, i, p, p].set(v.reshape(n, size))
        return flat.reshape(a.shape)

    def replace(self, **changes: Any) -> KernelState:
        return dataclasses.replace(self, **changes)

    def scale_ntk(self, factor: Any, factor_diag: Any = None) -> KernelState:
        """Multiply the NTK (and the block's factor and terms) by ``factor`` elementwise;
        ``factor_diag`` is used for ``f`` in diagonal-only mode."""
        if self.diagonal_only:
            return self.replace(f=self.f * factor_diag)
        def mul(t: Any) -> Any:
            return None if t is None else t * factor

        return self.replace(theta=mul(self.theta), f=self.f * factor, t_w=mul(self.t_w),
                            t_b=mul(self.t_b))


class Layer:
    """Base of the layer kinds (see the module docstring)."""

    #: whether per-example gradients are defined (False where examples are coupled)
    per_example: bool = True

    def torch_apply(self, x: Any, trace: BlockTrace) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def kernel_apply(self, state: KernelState) -> KernelState:  # pragma: no cover
        raise NotImplementedError

    def layers(self) -> tuple[Layer, ...]:
        """This layer and every layer nested in it."""
        return (self,)
