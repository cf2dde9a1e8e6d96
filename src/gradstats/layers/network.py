"""A network as a composition of blocks, built from an `Architecture`.

Block l (l = 1..L, L = depth + 1) holds exactly one dense layer, the layer ``l`` of every
per-layer statistic: it maps the stream h_{l-1} (h_0 = x) to h_l.

- plain MLP:    block 1 = Dense;  block l >= 2 = [Norm], phi, Dense
- residual:     blocks 2..depth = Residual([Norm], phi, Dense):  h_l = h_{l-1} + alpha z_l
- the readout (block L) is always [Norm], phi, Dense (no residual addition); with depth 0
  block 1 is the readout.

``Norm`` is LayerNorm or BatchNorm (``arch.norm``) and is placed before each activation,
so phi(N(h_{l-1})) feeds every dense layer but the first. Statistics of layer l read the
stream h_l (``forward_q``, ``backward_q``) or the parameters of its dense layer
(``grad_sq_norm`` and the per-example engine, whose signal is dL/dz_l of the dense output).

`NetworkSpec.runs` groups consecutive identical blocks, so the theory scans over them
(compile time independent of depth). Numbers that vary across a sweep (sigma_w^2,
sigma_b^2, width, alpha) are not part of the structure: see `hyper`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradstats import parameterization as pz
from gradstats.layers.activation import Activation
from gradstats.layers.base import BlockTrace, KernelState, Layer
from gradstats.layers.dense import Dense
from gradstats.layers.norm import BatchNorm, LayerNorm
from gradstats.layers.residual import Residual
from gradstats.spec import Architecture


@dataclass(frozen=True)
class Block:
    """The layers between stream h_{l-1} and stream h_l, applied in order."""

    layers: tuple[Layer, ...]
    residual: bool = False

    def torch_apply(self, x, trace: BlockTrace):
        for layer in self.layers:
            x = layer.torch_apply(x, trace)
        return x

    def kernel_apply(self, s: KernelState) -> KernelState:
        for layer in self.layers:
            s = layer.kernel_apply(s)
        return s

    def all_layers(self) -> tuple[Layer, ...]:
        return tuple(inner for layer in self.layers for inner in layer.layers())


@dataclass(frozen=True)
class NetworkSpec:
    """The static structure of a network: runs of (block, repeat count), input layer first."""

    runs: tuple[tuple[Block, int], ...]

    def blocks(self) -> list[Block]:
        """Every block in order, one per dense layer (length L)."""
        return [block for block, count in self.runs for _ in range(count)]

    @property
    def n_layers(self) -> int:
        return sum(count for _, count in self.runs)

    @property
    def per_example(self) -> bool:
        """Whether per-example gradients are defined (no layer couples the examples)."""
        return all(layer.per_example for block, _ in self.runs for layer in block.all_layers())


def _norm(kind: str) -> tuple[Layer, ...]:
    return {"none": (), "layer": (LayerNorm(),), "batch": (BatchNorm(),)}[kind]


def _cnn_network_spec(arch: Architecture) -> NetworkSpec:
    """STUB (cnn-theory branch; cnn-engine owns the cnn composition): block 1 = Conv(input
    channels -> width); blocks 2..depth = phi, Conv(width -> width); readout = phi,
    Flatten | GlobalAvgPool, Dense(output_dim). ``kernel_size`` is one int for every spatial
    dim (the theory repeats it to the data's spatial rank)."""
    from gradstats.layers.conv import Conv, Flatten, GlobalAvgPool

    n_layers = arch.n_layers

    def conv(layer: int) -> Conv:
        return Conv(arch.parameterization, pz.role(layer, n_layers),
                    arch.input_dim if layer == 1 else None, (arch.kernel_size,), arch.padding,
                    arch.bias)

    phi = Activation(arch.activation)
    pool = Flatten() if arch.readout == "flatten" else GlobalAvgPool()
    runs: list[tuple[Block, int]] = [(Block((conv(1),)), 1)]
    if arch.depth >= 2:
        runs.append((Block((phi, conv(2))), arch.depth - 1))
    readout = Dense(arch.parameterization, pz.role(n_layers, n_layers), None, arch.bias)
    runs.append((Block((phi, pool, readout)), 1))
    return NetworkSpec(tuple(runs))


def network_spec(arch: Architecture) -> NetworkSpec:
    """The composition of ``arch`` (conventions in the module docstring)."""
    if getattr(arch, "architecture", "mlp") == "cnn":
        return _cnn_network_spec(arch)
    n_layers = arch.n_layers

    def dense(layer: int) -> Dense:
        return Dense(arch.parameterization, pz.role(layer, n_layers),
                     arch.fan_in(1) if layer == 1 else None, arch.bias)

    pre = (*_norm(arch.norm), Activation(arch.activation))
    runs: list[tuple[Block, int]] = [(Block((dense(1),)), 1)]
    if arch.depth >= 1:
        if arch.depth >= 2:
            hidden = (Block((Residual((*pre, dense(2))),), residual=True) if arch.residual
                      else Block((*pre, dense(2))))
            runs.append((hidden, arch.depth - 1))
        runs.append((Block((*pre, dense(n_layers))), 1))
    return NetworkSpec(tuple(runs))


def hyper(arch: Architecture) -> dict[str, float]:
    """The values the structure leaves out: sigma_w^2, sigma_b^2 (0 without bias), width,
    alpha (1 without residual blocks)."""
    return {"sw2": float(arch.sigma_w2), "sb2": float(arch.sigma_b2) if arch.bias else 0.0,
            "width": float(arch.width), "alpha": float(arch.alpha)}
