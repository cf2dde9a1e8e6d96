"""Parameterizations as rows of one table: the abc-parameterization (Yang & Hu 2021).

A dense layer with fan-in n computes h = m * W a + m_b * b with raw trainable W, b and

    multiplier   m   = sigma_w^s * n^(-a)          (s = 1 if sigma_w sits in the multiplier)
    init std     std = sigma_w^(1-s) * n^(-b)      (W ~ N(0, std^2))
    learning rate     lr * n^(-c)

so the effective weight m W has variance sigma_w^2 n^(-2(a+b)). The exponents are given per
layer role: ``input`` (layer 1), ``hidden`` (2..depth) and ``readout`` (depth+1; a network of
depth 0 has only a readout). Biases: ``m_b = sigma_b``, std 1 when sigma sits in the
multiplier; else ``m_b = 1``, std ``sigma_b``; learning rate ``lr`` (exponent 0).

The kernel terms follow from the row: the NTK term of layer l's weights is
``m^2 n lr_scale A_{l-1}`` and of its bias ``m_b^2`` (`weight_kernel_scale`,
`bias_kernel_scale`). ``standard`` and ``ntk`` are rows here; mu-P and mean-field are new rows,
not new branches in the model or the kernels. No torch, no jax: consumers pass floats or
their own scalars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROLES = ("input", "hidden", "readout")


@dataclass(frozen=True)
class Exponents:
    """One exponent per layer role."""

    input: float
    hidden: float
    readout: float

    def of(self, role: str) -> float:
        return {"input": self.input, "hidden": self.hidden, "readout": self.readout}[role]


def _same(value: float) -> Exponents:
    return Exponents(value, value, value)


@dataclass(frozen=True)
class Parameterization:
    """One row of the abc table: multiplier (a), init (b) and learning-rate (c) exponents."""

    name: str
    a: Exponents
    b: Exponents
    c: Exponents
    sigma_in_multiplier: bool

    def weight_multiplier(self, role: str, fan_in: int, sigma_w: float) -> float:
        """m: the constant multiplying the raw weight in the forward pass."""
        sigma = sigma_w if self.sigma_in_multiplier else 1.0
        return sigma * fan_in ** (-self.a.of(role))

    def weight_init_std(self, role: str, fan_in: int, sigma_w: float) -> float:
        """Standard deviation of the raw weight at initialization."""
        sigma = 1.0 if self.sigma_in_multiplier else sigma_w
        return sigma * fan_in ** (-self.b.of(role))

    def bias_multiplier(self, sigma_b: float) -> float:
        return sigma_b if self.sigma_in_multiplier else 1.0

    def bias_init_std(self, sigma_b: float) -> float:
        return 1.0 if self.sigma_in_multiplier else sigma_b

    def lr_scale(self, role: str, fan_in: int) -> float:
        """Per-layer learning-rate factor n^(-c) of the weights (biases: 1)."""
        return fan_in ** (-self.c.of(role))

    def weight_kernel_scale(self, role: str, fan_in: Any, sigma_w2: Any) -> Any:
        """T^W / A_{l-1} = m^2 n lr_scale: the NTK term of a layer's weights per unit of input
        kernel (``fan_in`` and ``sigma_w2`` may be array scalars)."""
        sigma2 = sigma_w2 if self.sigma_in_multiplier else 1.0
        return sigma2 * fan_in ** (1.0 - 2.0 * self.a.of(role) - self.c.of(role))

    def bias_kernel_scale(self, sigma_b2: Any) -> Any:
        """T^b = m_b^2: the NTK term of a layer's bias."""
        return sigma_b2 if self.sigma_in_multiplier else 1.0


PARAMETERIZATIONS: dict[str, Parameterization] = {
    # W, b ~ N(0, 1); h = sigma_w / sqrt(n) W a + sigma_b b
    "ntk": Parameterization("ntk", a=_same(0.5), b=_same(0.0), c=_same(0.0),
                            sigma_in_multiplier=True),
    # W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2); h = W a + b
    "standard": Parameterization("standard", a=_same(0.0), b=_same(0.5), c=_same(0.0),
                                 sigma_in_multiplier=False),
}
NAMES = tuple(PARAMETERIZATIONS)


def get(name: str) -> Parameterization:
    """The row named ``name``; ValueError naming the choices otherwise."""
    try:
        return PARAMETERIZATIONS[name]
    except KeyError:
        raise ValueError(f"unknown parameterization {name!r}; choose from {', '.join(NAMES)}"
                         ) from None


def role(layer: int, n_layers: int) -> str:
    """Role of dense layer ``layer`` (1-based) in a network of ``n_layers`` dense layers."""
    if layer == n_layers:
        return "readout"
    return "input" if layer == 1 else "hidden"
