"""Frozen descriptions of one sweep point, shared by `simulate` and `theory`.

No torch and no jax here: both realizations import this module, never each other.

Conventions (DESIGN.md, matching neural-tangents):
- ``depth`` is the number of hidden layers; layers are numbered 1..depth+1, the last one
  being the dense readout. Layer l's weight maps activations of layer l-1 (layer 0 = input)
  to pre-activations h_l.
- ``parameterization="ntk"``: W, b ~ N(0, 1); h_l = sigma_w/sqrt(fan_in) W a_{l-1} + sigma_b b.
- ``parameterization="standard"``: W ~ N(0, sigma_w^2/fan_in), b ~ N(0, sigma_b^2).
- ``mup`` and ``mean_field``: rows of the abc table (`gradstats.parameterization`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from gradstats.activations import NAMES as ACTIVATIONS
from gradstats.errors import InputError
from gradstats.parameterization import NAMES as PARAMETERIZATIONS

NORMS = ("none", "layer", "batch")
# Convolutional networks (issue 15): the architecture kind, padding and readout of a cnn.
ARCHITECTURES = ("mlp", "cnn")
PADDINGS = ("SAME", "VALID", "CIRCULAR")
READOUTS = ("flatten", "gap")
# residual_scale: a float alpha, or this string for alpha = 1/sqrt(depth)
DEPTH_SCALED = "1/sqrt(depth)"
INIT_DISTRIBUTIONS = ("gaussian", "orthogonal")
# Named initialization schemes map to a weight variance (for the given activation family).
INIT_SCHEMES = {"he": 2.0, "xavier": 1.0, "lecun": 1.0}
LOSSES = ("mse", "cross_entropy")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
TEACHERS = ("network", "linear", "zero")
BUILTIN_DATA = ("sphere", "digits")

# Order of the sweep axes as dataset dims (then seed, step, layer, ...).
AXES = (
    "width", "depth", "activation", "sigma_w2", "sigma_b2", "parameterization", "init",
    "bias", "residual", "residual_scale", "norm", "data", "input_dim", "n_train", "teacher",
    "loss", "optimizer", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay",
    "batch_size", "steps", "dtype", "device",
)
# Point files store integers as int32 (io.POINT_FORMAT): larger sizes and seeds cannot be saved.
INT32_MAX = 2**31 - 1
SEED_DIM = "seed"
STEP_DIM = "step"
LAYER_DIM = "layer"


@dataclass(frozen=True)
class Architecture:
    """A fully connected network: ``depth`` hidden layers of ``width`` units and a readout.

    ``input_dim``: the number of input features; None (the default) takes it from the inputs
    of the function that gets them (`gradstats.theory.ntk(arch, x)`, `empirical_ntk(arch, x)`,
    `predict_statistics(arch, x, y)`, ...: ``x.shape[1]``) and from the data in a `Point`;
    building a network without inputs (`build_model`) needs it given.
    ``output_dim`` is the readout width (1 for scalar regression, classes for cross-entropy).
    ``init`` is the weight distribution (``gaussian`` or ``orthogonal``, same variance).
    ``residual``: hidden layers 2..depth add their output to the stream with scale
    ``residual_scale`` (alpha, or ``"1/sqrt(depth)"``); ``norm``: ``"layer"`` or ``"batch"``
    normalization (no affine parameters) before every activation. The network these fields
    describe is `gradstats.layers.network_spec` (conventions in docs/schema.md).
    """

    width: int
    depth: int
    activation: str = "relu"
    sigma_w2: float = 2.0
    sigma_b2: float = 0.0
    parameterization: str = "ntk"
    init: str = "gaussian"
    bias: bool = True
    input_dim: int | None = None
    output_dim: int = 1
    residual: bool = False
    residual_scale: float | str = 1.0
    norm: str = "none"
    architecture: str = "mlp"
    kernel_size: int = 3
    padding: str = "SAME"
    readout: str = "flatten"

    def __post_init__(self) -> None:
        _check_int(self.width, "width", low=1)
        _check_int(self.depth, "depth", low=0)
        _check(self.activation in ACTIVATIONS, "activation",
               f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        _check(math.isfinite(self.sigma_w2) and self.sigma_w2 > 0, "sigma_w2",
               f"must be finite and > 0, got {self.sigma_w2}")
        _check(math.isfinite(self.sigma_b2) and self.sigma_b2 >= 0, "sigma_b2",
               f"must be finite and >= 0, got {self.sigma_b2}")
        _check(self.parameterization in PARAMETERIZATIONS, "parameterization",
               f"unknown parameterization {self.parameterization!r}; choose from "
               f"{', '.join(PARAMETERIZATIONS)}")
        _check(self.init in INIT_DISTRIBUTIONS, "init",
               f"unknown init {self.init!r}; choose from {', '.join(INIT_DISTRIBUTIONS)}")
        if self.input_dim is not None:
            _check_int(self.input_dim, "input_dim", low=1)
        _check_int(self.output_dim, "output_dim", low=1)
        _check(isinstance(self.residual, bool), "residual", f"must be true or false, got {self.residual!r}")
        _check(self.residual_scale == DEPTH_SCALED or (
            isinstance(self.residual_scale, numbers.Real) and not isinstance(self.residual_scale, bool)
            and math.isfinite(self.residual_scale) and self.residual_scale > 0), "residual_scale",
            f"must be a finite number > 0 or {DEPTH_SCALED!r}, got {self.residual_scale!r}")
        _check(self.norm in NORMS, "norm", f"unknown norm {self.norm!r}; choose from {', '.join(NORMS)}")
        _check(self.architecture in ARCHITECTURES, "architecture",
               f"unknown architecture {self.architecture!r}; choose from {', '.join(ARCHITECTURES)}")
        _check_int(self.kernel_size, "kernel_size", low=1)
        _check(self.padding in PADDINGS, "padding",
               f"unknown padding {self.padding!r}; choose from {', '.join(PADDINGS)}")
        _check(self.readout in READOUTS, "readout",
               f"unknown readout {self.readout!r}; choose from {', '.join(READOUTS)}")
        if self.architecture == "cnn":
            _check(self.depth >= 1, "depth", "a cnn needs depth >= 1 (one conv layer at least)")

    @property
    def alpha(self) -> float:
        """The residual branch scale (1/sqrt(depth) resolved; 1 without residual blocks)."""
        if not self.residual:
            return 1.0
        if self.residual_scale == DEPTH_SCALED:
            return 1.0 / math.sqrt(max(self.depth, 1))
        return float(self.residual_scale)

    @property
    def is_mlp(self) -> bool:
        """A plain fully connected network (no residual blocks, no normalization)."""
        return not self.residual and self.norm == "none"

    @property
    def n_layers(self) -> int:
        """Number of dense layers, depth + 1 (the readout included)."""
        return self.depth + 1

    def fan_in(self, layer: int) -> int:
        """Fan-in of dense layer ``layer`` (1-based); layer 1's needs ``input_dim``."""
        if layer != 1:
            return self.width
        if self.input_dim is None:
            raise SpecError("input_dim", "not set; give Architecture(input_dim=...) (the number "
                            "of input features), or pass inputs to a function that infers it")
        return self.input_dim

    def with_input_dim(self, features: int, what: str = "x") -> Architecture:
        """This architecture for inputs with ``features`` features: ``input_dim`` filled in
        when None; `SpecError` naming ``input_dim`` when it is set to another number."""
        if self.input_dim is None:
            return dataclasses.replace(self, input_dim=int(features))
        if self.input_dim != features:
            raise SpecError("input_dim", f"the architecture has input_dim={self.input_dim} but "
                            f"{what} has {features} features per example; leave input_dim out "
                            "(None) to take it from the inputs")
        return self

    def fan_out(self, layer: int) -> int:
        """Fan-out of dense layer ``layer`` (1-based)."""
        return self.output_dim if layer == self.n_layers else self.width


@dataclass(frozen=True)
class Data:
    """Training data. ``name``: ``sphere``, ``digits`` or ``npz:PATH`` (arrays ``x``, ``y``).

    ``sphere``: ``n_train`` inputs uniform on the sphere of radius sqrt(input_dim), targets
    from a fixed random ``teacher`` (a one-hidden-layer tanh network or a linear map), or
    all-zero targets with ``teacher="zero"`` (the setting of Hanin & Nica's predictions).
    """

    name: str = "sphere"
    input_dim: int = 64
    n_train: int = 512
    teacher: str = "network"

    def __post_init__(self) -> None:
        _check(self.name in BUILTIN_DATA or self.name.startswith("npz:"), "data",
               f"unknown data {self.name!r}; use sphere, digits or npz:PATH")
        _check_int(self.input_dim, "input_dim", low=1)
        _check_int(self.n_train, "n_train", low=1)
        _check(self.teacher in TEACHERS, "teacher",
               f"unknown teacher {self.teacher!r}; choose network, linear or zero")


@dataclass(frozen=True)
class Training:
    """Training and the steps at which statistics are recorded (step 0 = init).

    ``optimizer``: ``sgd`` (torch.optim.SGD with ``momentum``, 0 by default), ``momentum``
    (the same with heavy-ball ``momentum`` > 0), ``adam`` / ``adamw`` (torch.optim.Adam /
    AdamW with ``beta1``, ``beta2``, ``eps``). ``weight_decay``: torch's (coupled for sgd,
    momentum and adam, decoupled for adamw). ``lr`` is the base rate; each layer's rate is
    ``lr`` times the parameterization's scale (`gradstats.parameterization`).
    """

    batch_size: int = 32
    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.0
    steps: int = 0
    record: tuple[int, ...] = (0,)
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        _check_int(self.batch_size, "batch_size", low=1)
        _check(self.loss in LOSSES, "loss", f"unknown loss {self.loss!r}; choose mse or cross_entropy")
        _check(self.optimizer in OPTIMIZERS, "optimizer",
               f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        _check(math.isfinite(self.lr) and self.lr >= 0, "lr", f"must be finite and >= 0, got {self.lr}")
        _check(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        _check(self.optimizer != "momentum" or self.momentum > 0, "momentum",
               "optimizer momentum needs momentum > 0 (set the momentum axis, e.g. 0.9)")
        _check(self.optimizer in ("sgd", "momentum") or self.momentum == 0, "momentum",
               f"momentum applies to sgd and momentum; {self.optimizer} uses beta1")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            _check(0 <= value < 1, name, f"must be in [0, 1), got {value}")
        _check(math.isfinite(self.eps) and self.eps > 0, "eps", f"must be finite and > 0, got {self.eps}")
        _check(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay",
               f"must be finite and >= 0, got {self.weight_decay}")
        _check_int(self.steps, "steps", low=0)
        _check(len(self.record) > 0, "record", "must name at least one step")
        _check(all(0 <= s <= self.steps for s in self.record), "record",
               f"steps must lie in 0..{self.steps}, got {list(self.record)}")
        _check(list(self.record) == sorted(set(self.record)), "record",
               "steps must be increasing and distinct")


@dataclass(frozen=True)
class Point:
    """One grid point of a sweep and one seed: everything needed to rerun it.

    ``measure`` names the estimator groups recorded beyond the spine statistics; it is part
    of the content key, so the same network measured differently is a different point.
    """

    arch: Architecture
    training: Training = field(default_factory=Training)
    data: Data = field(default_factory=Data)
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    measure: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(self.device in DEVICES, "device", f"unknown device {self.device!r}; choose auto, cpu or cuda")
        _check(self.dtype in DTYPES, "dtype", f"unknown dtype {self.dtype!r}; choose float32 or float64")
        _check_int(self.seed, "seeds", low=0)
        if self.arch.input_dim is None:  # the data's number of features
            object.__setattr__(self, "arch", dataclasses.replace(
                self.arch, input_dim=self.data.input_dim))
        _check(self.arch.input_dim == self.data.input_dim or self.data.name != "sphere",
               "input_dim", "architecture and data disagree on input_dim")

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-ready). Architecture fields added in 0.3 (residual,
        residual_scale, norm) and training fields added in 0.4 (beta1, beta2, eps,
        weight_decay) are left out at their defaults, so earlier points keep their keys."""
        d = dataclasses.asdict(self)
        for part, defaults in (("arch", _ARCH_DEFAULTS_0_3), ("training", _TRAINING_DEFAULTS_0_4)):
            for name, default in defaults.items():
                if d[part][name] == default:
                    del d[part][name]
        return d

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the basis of :meth:`key`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Point:
        training = dict(d["training"])
        training["record"] = tuple(training["record"])
        return cls(arch=Architecture(**d["arch"]), training=Training(**training),
                   data=Data(**d["data"]), seed=d["seed"], device=d["device"], dtype=d["dtype"],
                   measure=tuple(d.get("measure", ())))

    @classmethod
    def from_json(cls, s: str) -> Point:
        return cls.from_dict(json.loads(s))

    def key(self) -> str:
        """Stable content key: the same point gives the same key on every run and machine."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def config_key(self) -> str:
        """Content key of the point without its seed (one network configuration)."""
        return hashlib.sha256(
            json.dumps({**self.to_dict(), "seed": None}, sort_keys=True).encode()
        ).hexdigest()[:16]

    def axis_values(self) -> dict[str, Any]:
        """The point's value on every sweep axis (`AXES`), netCDF-safe (bool -> int)."""
        a, t, d = self.arch, self.training, self.data
        return {
            "width": a.width, "depth": a.depth, "activation": a.activation,
            "sigma_w2": float(a.sigma_w2), "sigma_b2": float(a.sigma_b2),
            "parameterization": a.parameterization, "init": a.init, "bias": int(a.bias),
            "residual": int(a.residual), "residual_scale": scale_label(a.residual_scale),
            "norm": a.norm, "data": d.name, "input_dim": a.input_dim, "n_train": d.n_train,
            "teacher": d.teacher, "loss": t.loss, "optimizer": t.optimizer,
            "lr": float(t.lr), "momentum": float(t.momentum), "beta1": float(t.beta1),
            "beta2": float(t.beta2), "eps": float(t.eps), "weight_decay": float(t.weight_decay),
            "batch_size": t.batch_size,
            "steps": t.steps, "dtype": self.dtype, "device": self.device,
        }


_ARCH_DEFAULTS_0_3 = {"residual": False, "residual_scale": 1.0, "norm": "none",
                      "architecture": "mlp", "kernel_size": 3, "padding": "SAME",
                      "readout": "flatten"}
_TRAINING_DEFAULTS_0_4 = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0}


def scale_label(scale: float | str) -> str:
    """The ``residual_scale`` coordinate: ``"1/sqrt(depth)"`` or the float written by repr."""
    return scale if isinstance(scale, str) else repr(float(scale))


class SpecError(InputError, ValueError):
    """A point or sweep value is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _check(ok: bool, field_name: str, problem: str) -> None:
    if not ok:
        raise SpecError(field_name, problem)


def _check_int(value: int, field_name: str, low: int) -> None:
    """``value`` is an integer in ``low..INT32_MAX`` (the point-file format stores int32)."""
    _check(isinstance(value, numbers.Integral) and not isinstance(value, bool), field_name,
           f"must be a whole number, got {value!r}")
    _check(low <= value <= INT32_MAX, field_name,
           f"must lie in {low}..{INT32_MAX} (point files store 32-bit integers), got {value}")
