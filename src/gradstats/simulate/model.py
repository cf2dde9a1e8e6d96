"""The torch realization of an `Architecture`: its composition of blocks, exactly parameterized.

The network is `gradstats.layers.network_spec(arch)`: block l (1..depth+1) holds dense
layer l, h = w_mult_l * a @ W_l^T + b_mult_l * b_l with ``W_l`` of shape (fan_out, fan_in),
its multiplier and init scale from the abc table (`gradstats.parameterization`):
- ntk:      W, b ~ N(0, 1),                 w_mult = sigma_w / sqrt(fan_in), b_mult = sigma_b
- standard: W ~ N(0, sigma_w^2 / fan_in),   b ~ N(0, sigma_b^2), w_mult = b_mult = 1.
For a plain MLP, hidden blocks apply phi and then their dense layer; the readout is linear.
A cnn (``architecture = "cnn"``, `gradstats.layers.conv`) has conv kernels ``W_l`` of shape
(C_out, C_in, k, ..., k) in blocks 1..depth, drawn as a (C_out, C_in * k^d) matrix from the
same seeded generator (Gaussian; fan_in = C_in * k^d) and reshaped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gradstats import activations
from gradstats import parameterization as pz
from gradstats.activations import LEAKY_RELU_SLOPE
from gradstats.layers import network_spec
from gradstats.layers.base import BlockTrace
from gradstats.layers.conv import Conv
from gradstats.spec import Architecture

__all__ = ["LEAKY_RELU_SLOPE", "MLP", "Forward", "Network", "activation_derivative",
           "activation_fn", "build_model", "resolve_device"]


def activation_fn(name: str):
    """phi as a torch function of a tensor (from the activation table)."""
    return activations.functions(name, "torch")[0]


def activation_derivative(name: str):
    """phi' as a torch function of a tensor (subgradient 0 at the kinks of relu/abs)."""
    return activations.functions(name, "torch")[1]


@dataclass
class Forward:
    """Everything one forward pass exposes, per layer l = 1..L (lists indexed l-1).

    inputs[l-1]: a_{l-1}, the input of dense layer l, (batch, fan_in);
    preacts[l-1]: z_l, the output of dense layer l, (batch, fan_out) (the per-example
    engine's signals are gradients with respect to these);
    streams[l-1]: h_l, the output of block l (z_l itself in a plain MLP; h_{l-1} + alpha z_l
    in a residual block) -- what ``forward_q`` and ``backward_q`` measure;
    phi_inputs[l-1]: the tensor the activation of block l+1 was applied to (l = 1..L-1);
    output: h_L, (batch, output_dim).
    """

    inputs: list[torch.Tensor]
    preacts: list[torch.Tensor]
    output: torch.Tensor
    streams: list[torch.Tensor] | None = None
    phi_inputs: list[torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.streams is None:
            self.streams = self.preacts


class Network(nn.Module):
    """The network of an `Architecture`. ``weights[l-1]`` is W_l, (fan_out, fan_in)."""

    def __init__(self, arch: Architecture, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.arch = arch
        self.spec = network_spec(arch)
        self.blocks = self.spec.blocks()
        self.phi, self.dphi = activations.functions(arch.activation, "torch")
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if arch.bias else None
        self.w_mult: list[float] = []
        self.b_mult: list[float] = []
        row = pz.get(arch.parameterization)
        sigma_w, sigma_b = math.sqrt(arch.sigma_w2), math.sqrt(arch.sigma_b2)
        self.ops = [block.weighted for block in self.blocks]  # layer l's Dense or Conv
        for l in range(1, arch.n_layers + 1):
            fan_in, fan_out = arch.fan_in(l), arch.fan_out(l)
            role = pz.role(l, arch.n_layers)
            w = _unit_weight(fan_out, fan_in, arch.init, generator, dtype)
            op = self.ops[l - 1]
            if isinstance(op, Conv):  # (C_out, C_in * k^d) -> (C_out, C_in, k, ..., k)
                w = w.reshape(fan_out, fan_in // math.prod(op.kernel_size), *op.kernel_size)
            std = _scaled(1.0 if row.sigma_in_multiplier else sigma_w, fan_in, row.b.of(role))
            self.weights.append(nn.Parameter((w * std).to(device)))
            self.w_mult.append(_scaled(sigma_w if row.sigma_in_multiplier else 1.0, fan_in,
                                       row.a.of(role)))
            if self.biases is not None:
                b = torch.randn(fan_out, generator=generator, dtype=dtype)
                self.biases.append(nn.Parameter((b * row.bias_init_std(sigma_b)).to(device)))
            self.b_mult.append(row.bias_multiplier(sigma_b))

    @property
    def per_example(self) -> bool:
        """Whether per-example gradients are defined (False with batch normalization)."""
        return self.spec.per_example

    def _trace(self, l: int, retain_grad: bool) -> BlockTrace:
        bias = None if self.biases is None else self.biases[l - 1]
        return BlockTrace(self.weights[l - 1], bias, self.w_mult[l - 1], self.b_mult[l - 1],
                          alpha=self.arch.alpha, retain_grad=retain_grad)

    def forward_all(self, x: torch.Tensor, retain_preact_grad: bool = False) -> Forward:
        """Forward pass keeping every dense layer's input and output and every stream.

        With ``retain_preact_grad`` the dense outputs and the streams keep their ``.grad``
        after backward (used for backward signals).
        """
        inputs, preacts, streams, phi_inputs = [], [], [], []
        h = x
        for l, block in enumerate(self.blocks, start=1):
            trace = self._trace(l, retain_preact_grad)
            h = block.torch_apply(h, trace)
            if retain_preact_grad and h.requires_grad and h is not trace.dense_output:
                h.retain_grad()
            inputs.append(trace.dense_input)
            preacts.append(trace.dense_output)
            streams.append(h)
            if l > 1:
                phi_inputs.append(trace.phi_input)
        return Forward(inputs=inputs, preacts=preacts, output=h, streams=streams,
                       phi_inputs=phi_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): (batch, input_dim) -> (batch, output_dim)."""
        return self.forward_all(x).output

    def layer_preact(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """z_l from a_{l-1}, dense (or conv) layer l alone: (batch, fan_in) -> (batch, fan_out)
        (conv: (batch, C_in, *spatial) -> (batch, C_out, *spatial'))."""
        return self.ops[l - 1].torch_apply(a, self._trace(l, retain_grad=False))

    def is_conv(self, l: int) -> bool:
        """Whether layer l (1-based) is a conv layer."""
        return isinstance(self.ops[l - 1], Conv)

    def effective_weight(self, l: int) -> torch.Tensor:
        """w_mult_l * W_l: the matrix that multiplies a_{l-1}, (fan_out, fan_in)."""
        return self.w_mult[l - 1] * self.weights[l - 1]


MLP = Network  # the name of 0.2; a plain MLP is one composition among others


def _scaled(sigma: float, fan_in: int, exponent: float) -> float:
    """sigma * fan_in^(-exponent), written as 0.2 did for the exponents 0, 1/2 and 1 so that
    initial weights stay bit-identical."""
    if exponent == 0:
        return sigma
    if exponent == 0.5:
        return sigma / math.sqrt(fan_in)
    if exponent == 1:
        return sigma / fan_in
    return sigma * fan_in ** (-exponent)


def _unit_weight(fan_out: int, fan_in: int, init: str, generator: torch.Generator | None,
                 dtype: torch.dtype) -> torch.Tensor:
    """A (fan_out, fan_in) matrix with entries of variance 1: Gaussian or scaled orthogonal."""
    if init == "gaussian":
        return torch.randn(fan_out, fan_in, generator=generator, dtype=dtype)
    w = torch.empty(fan_out, fan_in, dtype=dtype)
    nn.init.orthogonal_(w, generator=generator)
    return w * math.sqrt(max(fan_in, fan_out))


def build_model(arch: Architecture, seed: int, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> Network:
    """The network of ``arch`` at initialization, reproducible from ``seed`` on any device.

    Weights are drawn on the CPU with a seeded generator and then moved, so the same seed
    gives the same initial weights on CPU and CUDA.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return Network(arch, generator=gen, dtype=dtype, device=device)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU raises SpecError."""
    from gradstats.spec import SpecError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", "cuda requested but no CUDA GPU is available")
    return torch.device(name)
