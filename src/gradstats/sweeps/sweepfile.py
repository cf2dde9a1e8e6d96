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

from gradstats.spec import (
    ACTIVATIONS,
    DEVICES,
    DTYPES,
    INIT_DISTRIBUTIONS,
    INIT_SCHEMES,
    LOSSES,
    OPTIMIZERS,
    PARAMETERIZATIONS,
    TEACHERS,
)


class SweepError(ValueError):
    """A sweep file or override is invalid. ``str(err)`` is one line: 'field: problem'."""


PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
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
    "data": Annotated[str, Field(pattern=r"^(sphere|digits|npz:.+)$")],
    "input_dim": PositiveInt,
    "n_train": PositiveInt,
    "teacher": Literal[TEACHERS],
    "loss": Literal[LOSSES],
    "optimizer": Literal[OPTIMIZERS],
    "lr": NonNegFloat,
    "momentum": Annotated[float, Field(strict=True, ge=0, lt=1)],
    "batch_size": PositiveInt,
    "steps": NonNegInt,
    "record": PositiveInt | Annotated[list[NonNegInt], Field(min_length=1)],
    "device": Literal[DEVICES],
    "dtype": Literal[DTYPES],
}
AXIS_ADAPTERS = {name: TypeAdapter(t) for name, t in AXIS_TYPES.items()}
# `record` is a per-point setting, not an axis one can sweep (it is a list itself).
NOT_SWEEPABLE = {"record"}


class SweepFile(BaseModel):
    """The validated top level of a sweep file (axis values are checked by `check_axis`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
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


def load_sweep(path: Path | str) -> SweepFile:
    """Parse and validate the sweep file at ``path``."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SweepError(f"sweep file: {path} does not exist") from None
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
    _check_measure(sweep.measure)
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
    for i, group in enumerate(sweep.zip):
        lengths = {axis: len(values) for axis, values in group.items()}
        if len(set(lengths.values())) > 1:
            raise SweepError(f"zip[{i}]: lists must have equal lengths, got {lengths}")
    for i, rule in enumerate(sweep.exclude):
        for axis, value in rule.items():
            if axis not in seen:
                raise SweepError(f"exclude[{i}].{axis}: not an axis of this sweep")
            check_axis(f"exclude[{i}].{axis}", axis, value)
    if "init" in seen and "sigma_w2" in seen:
        inits = sweep.fixed.get("init") or sweep.grid.get("init") or []
        named = {inits} if isinstance(inits, str) else set(inits)
        if named & set(INIT_SCHEMES):
            raise SweepError("init: a named scheme (he, xavier, lecun) sets sigma_w2; "
                             "do not give sigma_w2 as well")
    return sweep


def check_axis(field: str, axis: str, value: Any) -> Any:
    """Validate one value of ``axis``; returns the coerced value."""
    if axis not in AXIS_ADAPTERS:
        raise SweepError(f"{field}: unknown axis {axis!r}; known axes: {', '.join(AXIS_TYPES)}")
    try:
        return AXIS_ADAPTERS[axis].validate_python(value)
    except ValidationError as err:
        problem = err.errors()[0]["msg"]
        raise SweepError(f"{field}: {problem} (got {value!r})") from None


def _check_measure(measure: list[str]) -> None:
    from gradstats.simulate.estimators import available_estimators

    known = available_estimators()
    for i, name in enumerate(measure):
        if name not in known:
            raise SweepError(f"measure[{i}]: unknown estimator {name!r}; "
                             f"known: {', '.join(known) or 'none'}")


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "sweep"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (allowed: name, description, seeds, measure, grid, fixed, zip, exclude)"
    elif first["type"] == "missing":
        msg = "required key is missing"
    return f"{loc}: {msg} (got {first.get('input')!r})" if first["type"] not in (
        "extra_forbidden", "missing") else f"{loc}: {msg}"
