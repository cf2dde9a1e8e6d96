"""Parameterizations as rows of one table: the abc-parameterization (Yang & Hu 2021).

A dense layer with fan-in n computes h = m * W a + m_b * b with raw trainable W, b and

    multiplier   m   = sigma_w^s * n^(-a)          (s = 1 if sigma_w sits in the multiplier)
    init std     std = sigma_w^(1-s) * n^(-b)      (W ~ N(0, std^2))
    learning rate     lr * n^(-c) * fan_out^e      (c, e depend on the optimizer family)

so the effective weight m W has variance sigma_w^2 n^(-2(a+b)). The exponents are given per
layer role: ``input`` (layer 1), ``hidden`` (2..depth) and ``readout`` (depth+1; a network of
depth 0 has only a readout). Biases: ``m_b = sigma_b``, std 1 when sigma sits in the
multiplier; else ``m_b = 1``, std ``sigma_b``; learning rate ``lr * fan_out^e_b``.

The learning-rate exponents depend on the optimizer family (`optimizer_family`): under SGD
the effective weight m W moves by lr n^(-c) m^2 (gradient), under Adam by lr n^(-c) m (an O(1)
normalized step), so the abc symmetry is (a, b, c) -> (a+t, b-t, c-2t) for SGD and
(a+t, b-t, c-t) for Adam, and a row that means "mu-P" needs different c per family. The
input layer's fan-in is the data dimension (fixed in width): its width dependence is its
fan-out, hence the fan-out exponent ``e`` (mu-P with SGD: input weights and all biases get
lr * fan_out, Yang et al. 2022 Table 3; mup's MuSGD scales "vector-like" rates by width).

The kernel terms follow from the row: the NTK term of layer l's weights is
``m^2 n lr_scale A_{l-1}`` and of its bias ``m_b^2`` (`weight_kernel_scale`,
`bias_kernel_scale`). ``standard``, ``ntk``, ``mup`` and ``mean_field`` are rows, not
branches in the model or the kernels. Only rows whose effective weights have variance
sigma_w^2 / fan_in in every layer (``kernel_rows``: ntk, standard) share the NNGP/NTK
recursions of `gradstats.theory`; mup and mean_field shrink the readout (1/n^2) and their
kernel predictions are outside those recursions. No torch, no jax: consumers pass floats or
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


OPTIMIZER_FAMILIES = {"sgd": "sgd", "momentum": "sgd", "adam": "adam", "adamw": "adam"}


def optimizer_family(optimizer: str) -> str:
    """``sgd`` (gradient steps: sgd, momentum) or ``adam`` (normalized steps: adam, adamw)."""
    try:
        return OPTIMIZER_FAMILIES[optimizer]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from "
                         f"{', '.join(OPTIMIZER_FAMILIES)}") from None


@dataclass(frozen=True)
class LRRule:
    """Learning-rate exponents of one optimizer family: weights lr * fan_in^-c * fan_out^e,
    biases lr * fan_out^e_bias."""

    c: Exponents
    e: Exponents = Exponents(0.0, 0.0, 0.0)
    e_bias: float = 0.0


_PLAIN_LR = LRRule(_same(0.0))


@dataclass(frozen=True)
class Parameterization:
    """One row of the abc table: multiplier (a), init (b) and learning-rate (c) exponents."""

    name: str
    a: Exponents
    b: Exponents
    sgd: LRRule
    adam: LRRule
    sigma_in_multiplier: bool

    @property
    def c(self) -> Exponents:
        """The SGD learning-rate exponents (the ones the NTK of the row uses)."""
        return self.sgd.c

    def lr_rule(self, optimizer: str = "sgd") -> LRRule:
        return self.sgd if optimizer_family(optimizer) == "sgd" else self.adam

    @property
    def kernel_row(self) -> bool:
        """Whether m^2 std^2 = sigma_w^2 / fan_in in every role (the NNGP/NTK recursions of
        `gradstats.theory` hold at init)."""
        return all(self.a.of(r) + self.b.of(r) == 0.5 for r in ROLES)

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

    def lr_scale(self, role: str, fan_in: int, fan_out: int = 1, optimizer: str = "sgd"
                 ) -> float:
        """Per-layer learning-rate factor fan_in^(-c) fan_out^e of the weights."""
        rule = self.lr_rule(optimizer)
        return fan_in ** (-rule.c.of(role)) * fan_out ** rule.e.of(role)

    def bias_lr_scale(self, fan_out: int, optimizer: str = "sgd") -> float:
        """Per-layer learning-rate factor fan_out^e_bias of the biases."""
        return fan_out ** self.lr_rule(optimizer).e_bias

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
    "ntk": Parameterization("ntk", a=_same(0.5), b=_same(0.0), sgd=_PLAIN_LR, adam=_PLAIN_LR,
                            sigma_in_multiplier=True),
    # W ~ N(0, sigma_w^2 / n), b ~ N(0, sigma_b^2); h = W a + b
    "standard": Parameterization("standard", a=_same(0.0), b=_same(0.5), sgd=_PLAIN_LR,
                                 adam=_PLAIN_LR, sigma_in_multiplier=False),
    # mu-P without multipliers (Yang et al. 2022, Table 3): W ~ N(0, sigma_w^2 / n) for input
    # and hidden, N(0, sigma_w^2 / n^2) for the readout. SGD: input weights and biases
    # lr * fan_out, hidden lr, readout lr / n. Adam (MuAdam): input and biases lr, hidden and
    # readout lr / n.
    "mup": Parameterization(
        "mup", a=_same(0.0), b=Exponents(0.5, 0.5, 1.0),
        sgd=LRRule(c=Exponents(0.0, 0.0, 1.0), e=Exponents(1.0, 0.0, 0.0), e_bias=1.0),
        adam=LRRule(c=Exponents(0.0, 1.0, 1.0)),
        sigma_in_multiplier=False),
    # mean-field (Mei et al. 2018; Chizat & Bach 2018): raw W ~ N(0, 1), readout multiplier
    # sigma_w / n, hidden sigma_w / sqrt(n) (the deep extension), rates scaled so the
    # effective-weight dynamics equal mu-P's up to width-free constants (Yang & Hu 2021: MF is
    # mu-P for one hidden layer). SGD: lr * n for hidden and readout (the mean-field time
    # scale), input and biases lr * fan_out. Adam: hidden lr / sqrt(n), readout lr.
    "mean_field": Parameterization(
        "mean_field", a=Exponents(0.5, 0.5, 1.0), b=_same(0.0),
        sgd=LRRule(c=Exponents(0.0, -1.0, -1.0), e=Exponents(1.0, 0.0, 0.0), e_bias=1.0),
        adam=LRRule(c=Exponents(0.0, 0.5, 0.0)),
        sigma_in_multiplier=True),
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
