"""The torch realization of an `Architecture`: an MLP with exact parameterizations.

Layer l (1..depth+1) computes h_l = w_mult_l * a_{l-1} @ W_l^T + b_mult_l * b_l with
``W_l`` of shape (fan_out, fan_in) and
- ntk:      W, b ~ N(0, 1),                 w_mult = sigma_w / sqrt(fan_in), b_mult = sigma_b
- standard: W ~ N(0, sigma_w^2 / fan_in),   b ~ N(0, sigma_b^2), w_mult = b_mult = 1.
Hidden layers apply phi; the readout (layer depth+1) is linear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gradstats.spec import Architecture

LEAKY_RELU_SLOPE = 0.01


def activation_fn(name: str):
    """phi as a torch function of a tensor."""
    fns = {
        "relu": torch.relu,
        "tanh": torch.tanh,
        "erf": torch.erf,
        "sigmoid": torch.sigmoid,
        "gelu": lambda h: torch.nn.functional.gelu(h),  # exact (erf) gelu, as neural-tangents
        "linear": lambda h: h,
        "softplus": torch.nn.functional.softplus,
        "abs": torch.abs,
        "leaky_relu": lambda h: torch.nn.functional.leaky_relu(h, LEAKY_RELU_SLOPE),
    }
    return fns[name]


def activation_derivative(name: str):
    """phi' as a torch function of a tensor (subgradient 0 at the kinks of relu/abs)."""
    inv_sqrt_pi = 1.0 / math.sqrt(math.pi)
    inv_sqrt_2pi = 1.0 / math.sqrt(2 * math.pi)
    fns = {
        "relu": lambda h: (h > 0).to(h.dtype),
        "tanh": lambda h: 1 - torch.tanh(h) ** 2,
        "erf": lambda h: 2 * inv_sqrt_pi * torch.exp(-h * h),
        "sigmoid": lambda h: torch.sigmoid(h) * (1 - torch.sigmoid(h)),
        "gelu": lambda h: 0.5 * (1 + torch.erf(h / math.sqrt(2)))
        + h * inv_sqrt_2pi * torch.exp(-0.5 * h * h),
        "linear": torch.ones_like,
        "softplus": torch.sigmoid,
        "abs": torch.sign,
        "leaky_relu": lambda h: torch.where(h > 0, 1.0, LEAKY_RELU_SLOPE).to(h.dtype),
    }
    return fns[name]


@dataclass
class Forward:
    """Everything one forward pass exposes, per layer l = 1..L (lists indexed l-1).

    inputs[l-1]: a_{l-1}, (batch, fan_in); preacts[l-1]: h_l, (batch, fan_out);
    output: h_L, (batch, output_dim).
    """

    inputs: list[torch.Tensor]
    preacts: list[torch.Tensor]
    output: torch.Tensor


class MLP(nn.Module):
    """Fully connected network of an `Architecture`. ``weights[l-1]`` is W_l, (fan_out, fan_in)."""

    def __init__(self, arch: Architecture, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.arch = arch
        self.phi = activation_fn(arch.activation)
        self.dphi = activation_derivative(arch.activation)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if arch.bias else None
        self.w_mult: list[float] = []
        self.b_mult: list[float] = []
        ntk = arch.parameterization == "ntk"
        sigma_w, sigma_b = math.sqrt(arch.sigma_w2), math.sqrt(arch.sigma_b2)
        for l in range(1, arch.n_layers + 1):
            fan_in, fan_out = arch.fan_in(l), arch.fan_out(l)
            w = _unit_weight(fan_out, fan_in, arch.init, generator, dtype)
            w_scale = 1.0 if ntk else sigma_w / math.sqrt(fan_in)
            self.weights.append(nn.Parameter((w * w_scale).to(device)))
            self.w_mult.append(sigma_w / math.sqrt(fan_in) if ntk else 1.0)
            if self.biases is not None:
                b = torch.randn(fan_out, generator=generator, dtype=dtype)
                self.biases.append(nn.Parameter((b * (1.0 if ntk else sigma_b)).to(device)))
            self.b_mult.append(sigma_b if ntk else 1.0)

    def layer_preact(self, l: int, a: torch.Tensor) -> torch.Tensor:
        """h_l from a_{l-1}: (batch, fan_in) -> (batch, fan_out)."""
        h = self.w_mult[l - 1] * (a @ self.weights[l - 1].T)
        if self.biases is not None:
            h = h + self.b_mult[l - 1] * self.biases[l - 1]
        return h

    def forward_all(self, x: torch.Tensor, retain_preact_grad: bool = False) -> Forward:
        """Forward pass keeping every layer's input and pre-activation.

        With ``retain_preact_grad`` the pre-activations keep their ``.grad`` after backward
        (used for backward signals dL/dh_l).
        """
        inputs, preacts = [], []
        a = x
        n = self.arch.n_layers
        for l in range(1, n + 1):
            inputs.append(a)
            h = self.layer_preact(l, a)
            if retain_preact_grad and h.requires_grad:
                h.retain_grad()
            preacts.append(h)
            a = self.phi(h) if l < n else h
        return Forward(inputs=inputs, preacts=preacts, output=a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): (batch, input_dim) -> (batch, output_dim)."""
        return self.forward_all(x).output

    def effective_weight(self, l: int) -> torch.Tensor:
        """w_mult_l * W_l: the matrix that multiplies a_{l-1}, (fan_out, fan_in)."""
        return self.w_mult[l - 1] * self.weights[l - 1]


def _unit_weight(fan_out: int, fan_in: int, init: str, generator: torch.Generator | None,
                 dtype: torch.dtype) -> torch.Tensor:
    """A (fan_out, fan_in) matrix with entries of variance 1: Gaussian or scaled orthogonal."""
    if init == "gaussian":
        return torch.randn(fan_out, fan_in, generator=generator, dtype=dtype)
    w = torch.empty(fan_out, fan_in, dtype=dtype)
    nn.init.orthogonal_(w, generator=generator)
    return w * math.sqrt(max(fan_in, fan_out))


def build_model(arch: Architecture, seed: int, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> MLP:
    """The network of ``arch`` at initialization, reproducible from ``seed`` on any device.

    Weights are drawn on the CPU with a seeded generator and then moved, so the same seed
    gives the same initial weights on CPU and CUDA.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return MLP(arch, generator=gen, dtype=dtype, device=device)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU raises SpecError."""
    from gradstats.spec import SpecError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SpecError("device", "cuda requested but no CUDA GPU is available")
    return torch.device(name)
