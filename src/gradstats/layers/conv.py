"""Convolutional layer kinds: `Conv` (1-D / 2-D, stride 1), `Flatten` and `GlobalAvgPool`.

STUB (cnn-theory branch): the class names, fields and ``kernel_apply`` one-liners of the CNN
contract, so the theory path can be tested before the torch side lands. cnn-engine owns this
file; at merge its version (with the torch realizations) replaces this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradstats.layers.base import BlockTrace, KernelState, Layer


@dataclass(frozen=True)
class Conv(Layer):
    """Convolution of a block: ``fan_in_channels`` an int (input channels, static) or None
    for the swept width (``hp["width"]``); fan_in = channels * prod(kernel_size)."""

    parameterization: str
    role: str
    fan_in_channels: int | None
    kernel_size: tuple[int, ...]
    padding: str
    bias: bool

    def torch_apply(self, x, trace: BlockTrace):  # pragma: no cover - cnn-engine's side
        raise NotImplementedError("the torch realization of Conv is cnn-engine's")

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import conv_kernel_apply; return conv_kernel_apply(self, state)  # noqa: E702,E501,I001


@dataclass(frozen=True)
class Flatten(Layer):
    """Flatten channels x pixels into features (the readout Dense then has fan_in C * P)."""

    def torch_apply(self, x, trace: BlockTrace):  # pragma: no cover - cnn-engine's side
        raise NotImplementedError("the torch realization of Flatten is cnn-engine's")

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import flatten_kernel_apply; return flatten_kernel_apply(self, state)  # noqa: E702,E501,I001


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over pixels per channel (the readout Dense then has fan_in C)."""

    def torch_apply(self, x, trace: BlockTrace):  # pragma: no cover - cnn-engine's side
        raise NotImplementedError("the torch realization of GlobalAvgPool is cnn-engine's")

    def kernel_apply(self, state: KernelState) -> KernelState:
        from gradstats.theory.conv.layer_maps import gap_kernel_apply; return gap_kernel_apply(self, state)  # noqa: E702,E501,I001
