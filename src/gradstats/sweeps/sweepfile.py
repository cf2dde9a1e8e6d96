"""Sweep files: TOML parsed with tomllib, validated field by field.

Format (docs in README)::

    name = "tanh-depth"
    description = "one line"          # optional
    seeds = 3                         # a count (0..n-1) or a list of seed indices
    measure = ["per_example"]         # optional estimator groups beyond the spine statistics
    [grid]                            # every key is an axis; the sweep is their product
    width = [256, 512]
    [[zip]]                           # axes that move together (equal-length lists)
    depth = [4, 8]
    sigma_w2 = [1.5, 1.8]
    [fixed]                           # any axis can be fixed instead of swept
    activation = "tanh"
    [[exclude]]                       # drop grid points matching every key of a rule
    width = 512
    sigma_w2 = 1.8

Every error is a `SweepError` whose message is one line naming the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gradstats.errors import InputError
from gradstats.spec import (
    ACTIVATIONS,
    ARCHITECTURES,
    DEPTH_SCALED,
    DEVICES,
    DTYPES,
    INIT_DISTRIBUTIONS,
    INIT_SCHEMES,
    INT32_MAX,
    LOSSES,
    NORMS,
    OPTIMIZERS,
    PADDINGS,
    PARAMETERIZATIONS,
    READOUTS,
    TEACHERS,
)


class SweepError(InputError, ValueError):
    """A sweep file or override is invalid. ``str(err)`` is one line: 'field: problem'."""


# Integers end up in int32 point files (see spec.INT32_MAX).
PositiveInt = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
NonNegInt = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
# The name is a directory under results/: it starts with a letter or digit (no "." or ".."),
# has no path separators, and stays well under file-name limits.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
NAME_MAX_LENGTH = 100
# How much of an offending value an error line quotes.
MAX_QUOTED = 60
# strict: ints are accepted as floats, but booleans and numeric strings are not.
PositiveFloat = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]

# The type of one value of each axis (a swept axis is a list of these).
AXIS_TYPES: dict[str, Any] = {
    "width": PositiveInt,
    "depth": NonNegInt,
    "activation": Literal[ACTIVATIONS],
    "sigma_w2": PositiveFloat,
    "sigma_b2": NonNegFloat,
    "parameterization": Literal[PARAMETERIZATIONS],
    "init": Literal[(*INIT_DISTRIBUTIONS, *INIT_SCHEMES)],
    "bias": Annotated[bool, Field(strict=True)],
    "residual": Annotated[bool, Field(strict=True)],
    "residual_scale": PositiveFloat | Literal[DEPTH_SCALED],
    "norm": Literal[NORMS],
    "data": Annotated[str, Field(pattern=r"^(sphere|digits|digits-images|torus-fields|npz:.+)$")],
    "input_dim": PositiveInt,
    "n_train": PositiveInt,
    "teacher": Literal[TEACHERS],
    "loss": Literal[LOSSES],
    "optimizer": Literal[OPTIMIZERS],
    "lr": NonNegFloat,
    "momentum": Annotated[float, Field(strict=True, ge=0, lt=1)],
    "beta1": Annotated[float, Field(strict=True, ge=0, lt=1)],
    "beta2": Annotated[float, Field(strict=True, ge=0, lt=1)],
    "eps": PositiveFloat,
    "weight_decay": NonNegFloat,
    "batch_size": PositiveInt,
    "steps": NonNegInt,
    "record": PositiveInt | Annotated[list[NonNegInt], Field(min_length=1)],
    "device": Literal[DEVICES],
    "dtype": Literal[DTYPES],
    "architecture": Literal[ARCHITECTURES],
    "channels": PositiveInt,
    "kernel_size": PositiveInt,
    "padding": Literal[PADDINGS],
    "readout": Literal[READOUTS],
    "image_size": PositiveInt,
}
AXIS_ADAPTERS = {name: TypeAdapter(t) for name, t in AXIS_TYPES.items()}
# Value of every axis not given in the sweep file.
AXIS_DEFAULTS: dict[str, Any] = {
    "width": 256, "depth": 3, "activation": "relu", "sigma_w2": 2.0, "sigma_b2": 0.0,
    "parameterization": "ntk", "init": "gaussian", "bias": True, "residual": False,
    "residual_scale": 1.0, "norm": "none", "data": "sphere",
    "input_dim": 64, "n_train": 512, "teacher": "network", "loss": "mse", "optimizer": "sgd",
    "lr": 0.1, "momentum": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
    "weight_decay": 0.0, "batch_size": 32, "steps": 0, "device": "auto",
    "dtype": "float32", "architecture": "mlp", "kernel_size": 3, "padding": "SAME",
    "readout": "flatten", "image_size": 8,
}
# `channels` is another name of `width` for architecture = "cnn" (the channels of every hidden
# conv layer): `gradstats.sweeps.grid` renames it; results have the dim `width`.
ALIASES = {"channels": "width"}
# `record` is a per-point setting, not an axis one can sweep (it is a list itself).
NOT_SWEEPABLE = {"record"}


class SweepFile(BaseModel):
    """The validated top level of a sweep file (axis values are checked by `check_axis`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]
    description: str = ""
    seeds: NonNegInt | Annotated[list[NonNegInt], Field(min_length=1)] = 1
    measure: list[str] = []
    grid: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    zip: list[dict[str, list[Any]]] = []
    exclude: list[dict[str, Any]] = []

    @property
    def seed_list(self) -> list[int]:
        """The seed indices: ``seeds = n`` means 0..n-1."""
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def n_seeds(self) -> int:
        """How many seeds, without listing them."""
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)


def load_sweep(path: Path | str) -> SweepFile:
    """Parse and validate the sweep file at ``path``."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SweepError(f"sweep file: {path} does not exist") from None
    except IsADirectoryError:
        raise SweepError(f"sweep file: {path} is a directory, not a .toml file") from None
    except OSError as err:
        raise SweepError(f"sweep file: cannot read {path} ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise SweepError(f"sweep file: {path.name} is not UTF-8 text (byte {err.start}); "
                         "is it a TOML file?") from None
    except tomllib.TOMLDecodeError as err:
        raise SweepError(f"sweep file: {path.name} is not valid TOML ({err})") from None
    return parse_sweep(raw)


def parse_sweep(raw: dict[str, Any]) -> SweepFile:
    """Validate a parsed sweep mapping; raises `SweepError` naming the first bad field."""
    try:
        sweep = SweepFile.model_validate(raw)
    except ValidationError as err:
        raise SweepError(_one_line(err)) from None
    if isinstance(sweep.seeds, int) and sweep.seeds == 0:
        raise SweepError("seeds: must be at least 1")
    if isinstance(sweep.seeds, list):
        _check_distinct("seeds", sweep.seeds)
    _check_distinct("measure", sweep.measure)
    if sweep.measure:
        _check_measure(sweep.measure)
    for i, group in enumerate(sweep.zip):
        if not group:
            raise SweepError(f"zip[{i}]: empty group; give two or more axes with equal-length lists")
    for i, rule in enumerate(sweep.exclude):
        if not rule:
            raise SweepError(f"exclude[{i}]: empty rule (it would exclude every point); give "
                             "the axis values to exclude")
    seen: dict[str, str] = {}
    for section, axes in [("grid", sweep.grid), ("fixed", sweep.fixed)] + [
            (f"zip[{i}]", group) for i, group in enumerate(sweep.zip)]:
        for axis, value in axes.items():
            if axis in seen:
                raise SweepError(f"{section}.{axis}: axis already given in {seen[axis]}; "
                                 "an axis appears in one place only")
            seen[axis] = section
            if section == "fixed":
                check_axis(f"fixed.{axis}", axis, value)
            else:
                if axis in NOT_SWEEPABLE:
                    raise SweepError(f"{section}.{axis}: cannot be swept; put it in [fixed]")
                if len(value) == 0:
                    raise SweepError(f"{section}.{axis}: empty list; give at least one value")
                for i, item in enumerate(value):
                    check_axis(f"{section}.{axis}[{i}]", axis, item)
                if section == "grid":
                    _check_distinct(f"grid.{axis}", value)
    for i, group in enumerate(sweep.zip):
        lengths = {axis: len(values) for axis, values in group.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError(f"zip[{i}]: lists must have equal lengths, got {lengths}")
        _check_distinct(f"zip[{i}]", list(zip(*group.values(), strict=True)))
    for i, rule in enumerate(sweep.exclude):
        for axis, value in rule.items():
            if axis not in seen:
                raise SweepError(f"exclude[{i}].{axis}: not an axis of this sweep")
            check_axis(f"exclude[{i}].{axis}", axis, value)
        if not exclude_matches(sweep, rule):
            raise SweepError(f"exclude[{i}]: matches no point of the sweep ({_quote(rule)}); "
                             "check its values against [grid], [fixed] and [[zip]] rows")
    for alias, axis in ALIASES.items():
        if alias in seen and axis in seen:
            raise SweepError(f"{seen[alias]}.{alias}: an alias of {axis} (the channels of a "
                             f'cnn); give {alias} or {axis}, not both')
    if "init" in seen and "sigma_w2" in seen:
        inits = sweep.fixed.get("init") or sweep.grid.get("init") or []
        named = {inits} if isinstance(inits, str) else set(inits)
        if named & set(INIT_SCHEMES):
            raise SweepError("init: a named scheme (he, xavier, lecun) sets sigma_w2; "
                             "do not give sigma_w2 as well")
    return sweep


def exclude_matches(sweep: SweepFile, rule: dict[str, Any]) -> bool:
    """Whether the ``[[exclude]]`` ``rule`` matches some point of ``sweep`` (its axes all in
    the sweep). The points are the product of the grid axes, the fixed values and the rows
    of each zip group, so a rule matches one iff every grid axis it names has its value,
    every fixed axis equals it, and each zip group has one row agreeing with all the rule's
    axes in that group (compared with ``==``, as `gradstats.sweeps.grid.expand` does)."""
    for axis, value in rule.items():
        if axis in sweep.fixed and sweep.fixed[axis] != value:
            return False
        if axis in sweep.grid and not any(v == value for v in sweep.grid[axis]):
            return False
    for group in sweep.zip:
        keys = [axis for axis in rule if axis in group]
        rows = range(len(next(iter(group.values()))))
        if keys and not any(all(group[k][i] == rule[k] for k in keys) for i in rows):
            return False
    return True


def check_axis(field: str, axis: str, value: Any) -> Any:
    """Validate one value of ``axis``; returns the coerced value."""
    if axis not in AXIS_ADAPTERS:
        raise SweepError(f"{field}: unknown axis {axis!r}; known axes: {', '.join(AXIS_TYPES)}")
    try:
        return AXIS_ADAPTERS[axis].validate_python(value)
    except ValidationError as err:
        problem = err.errors()[0]["msg"]
        raise SweepError(f"{field}: {problem} (got {_quote(value)})") from None


def _check_distinct(field: str, values: list[Any]) -> None:
    """Two equal values would be the same point twice (same content key)."""
    seen: list[Any] = []
    for i, value in enumerate(values):
        if value in seen:  # 1 and 1.0 count as equal: they make the same point
            raise SweepError(f"{field}[{i}]: {_quote(value)} is given twice")
        seen.append(value)


def _quote(value: Any) -> str:
    """``repr(value)`` cut to `MAX_QUOTED` characters."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 3] + "..."


def _check_measure(measure: list[str]) -> None:
    from gradstats.simulate.estimator_names import estimator_names

    known = estimator_names()
    for i, name in enumerate(measure):
        if name not in known:
            raise SweepError(f"measure[{i}]: unknown estimator {name!r}; "
                             f"known: {', '.join(known) or 'none'}")


def _one_line(err: ValidationError) -> str:
    errors = err.errors()
    first = errors[0]
    if first["loc"][:1] == ("seeds",):  # a union: report the branch the input was meant for
        as_list = [e for e in errors if len(e["loc"]) > 1 and str(e["loc"][1]).startswith("list")]
        first = as_list[0] if as_list and isinstance(as_list[0]["input"], int) else first
    parts = list(first["loc"])
    msg = first["msg"]
    if parts and parts[0] == "seeds":  # a union (count or list): drop pydantic's branch names
        parts = ["seeds", *(p for p in parts[2:] if isinstance(p, int))]
        if len(parts) == 1:
            msg = f"must be a count in 1..{INT32_MAX} or a list of distinct seeds >= 0"
    elif parts and parts[0] == "name" and first["type"] == "string_pattern_mismatch":
        msg = ("must start with a letter or digit and use only letters, digits, '_', '.', '-' "
               "(it names the results directory)")
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".") or "sweep"
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown key (allowed: name, description, seeds, measure, grid, fixed, " \
               "zip, exclude)"
    if first["type"] == "missing":
        return f"{loc}: required key is missing"
    return f"{loc}: {msg} (got {_quote(first.get('input'))})"
