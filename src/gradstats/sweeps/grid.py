"""Expand a validated sweep into frozen `Point`s (grid product x zip groups x seeds)."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from typing import Any

import numpy as np

from gradstats.spec import INIT_SCHEMES, Architecture, Data, Point, SpecError, Training
from gradstats.sweeps.limits import DEFAULT_LIMITS, Limits, check_size
from gradstats.sweeps.sweepfile import (
    ALIASES,
    AXIS_DEFAULTS,
    AXIS_TYPES,
    SweepError,
    SweepFile,
    check_axis,
)

# Value of every axis not given in the sweep file.
DEFAULTS = AXIS_DEFAULTS
DEFAULT_RECORD_COUNT = 8


def expand(sweep: SweepFile, limits: Limits | None = DEFAULT_LIMITS) -> list[Point]:
    """Every point of the sweep, in a stable order (grid axes, then zip groups, then seeds).

    The sweep's size is checked against ``limits`` first, without expanding it (None: no
    limits; see `gradstats.sweeps.limits`).
    """
    if limits is not None:
        check_size(sweep, limits)
    given = {*sweep.fixed, *sweep.grid, *(axis for group in sweep.zip for axis in group)}
    points = [make_point(axes, seed, measure=tuple(sweep.measure), given=given)
              for axes in _axis_combinations(sweep) for seed in sweep.seed_list]
    if not points:
        raise SweepError("exclude: every grid point is excluded; nothing to run")
    return points


def count_points(sweep: SweepFile) -> int:
    """How many points `expand` gives (``[[exclude]]`` applied), without building them."""
    return sum(1 for _ in _axis_combinations(sweep)) * len(sweep.seed_list)


def _axis_combinations(sweep: SweepFile) -> Iterator[dict[str, Any]]:
    """Axis values of each grid x zip combination ``[[exclude]]`` keeps, defaults filled in."""
    blocks: list[list[dict[str, Any]]] = [
        [{axis: value} for value in sweep.grid[axis]] for axis in sweep.grid]
    for group in sweep.zip:
        length = len(next(iter(group.values())))
        blocks.append([{axis: values[i] for axis, values in group.items()} for i in range(length)])
    for combo in itertools.product(*blocks):
        axes = {**DEFAULTS, **sweep.fixed}
        for part in combo:
            axes.update(part)
        if not any(all(axes.get(k) == v for k, v in rule.items()) for rule in sweep.exclude):
            yield axes


def _scale(value: float | str) -> float | str:
    return value if isinstance(value, str) else float(value)


def make_point(axes: dict[str, Any], seed: int, measure: tuple[str, ...] = (),
               given: Collection[str] = ()) -> Point:
    """A `Point` from flat axis values (named init schemes resolved to sigma_w2).

    Data read from somewhere (digits, npz) fixes ``input_dim`` and bounds ``n_train``:
    an axis named in ``given`` (set by the sweep file) must agree with it, otherwise it is
    an error; an axis left at its default follows the data (``input_dim`` = the data's
    features, ``n_train`` = at most its rows). The point records the values used.
    """
    from gradstats.simulate.data import output_dim

    axes = {name: check_axis(name, name, value) for name, value in axes.items()}
    for alias, axis in ALIASES.items():
        if alias in axes:
            if axes.get("architecture") != "cnn":
                raise SweepError(f'{alias}: applies to architecture = "cnn" (the channels of its '
                                 f"conv layers); an MLP has {axis}")
            axes[axis] = axes.pop(alias)
            given = {*given, axis}
    init = axes["init"]
    if init in INIT_SCHEMES:
        axes["sigma_w2"], axes["init"] = INIT_SCHEMES[init], "gaussian"
    try:
        data = Data(name=axes["data"], input_dim=axes["input_dim"], n_train=axes["n_train"],
                    teacher=axes["teacher"], image_size=axes["image_size"])
        input_dim, n_train = _data_dims(data, given)
        data = Data(name=data.name, input_dim=input_dim, n_train=n_train, teacher=data.teacher,
                    image_size=data.image_size)
        image_shape = _image_shape(data, axes["architecture"])
        arch = Architecture(
            width=axes["width"], depth=axes["depth"], activation=axes["activation"],
            sigma_w2=float(axes["sigma_w2"]), sigma_b2=float(axes["sigma_b2"]),
            parameterization=axes["parameterization"], init=axes["init"], bias=axes["bias"],
            residual=axes["residual"], residual_scale=_scale(axes["residual_scale"]),
            norm=axes["norm"], input_dim=input_dim, output_dim=output_dim(data, axes["loss"]),
            architecture=axes["architecture"], kernel_size=axes["kernel_size"],
            padding=axes["padding"], readout=axes["readout"], image_shape=image_shape)
        training = Training(
            batch_size=axes["batch_size"], loss=axes["loss"], optimizer=axes["optimizer"],
            lr=float(axes["lr"]), momentum=float(axes["momentum"]), steps=axes["steps"],
            beta1=float(axes["beta1"]), beta2=float(axes["beta2"]), eps=float(axes["eps"]),
            weight_decay=float(axes["weight_decay"]),
            record=record_steps(axes.get("record"), axes["steps"]))
        point = Point(arch=arch, training=training, data=data, seed=seed,
                      device=axes["device"], dtype=axes["dtype"], measure=measure)
    except SpecError as err:
        raise SweepError(str(err)) from None
    _check_measure_defined(point)
    return point


def _check_measure_defined(point: Point) -> None:
    """Refuse estimator groups the point's network does not define (per-example gradients
    of a batch-normalized network) or that are not implemented for it (cnn)."""
    if point.arch.is_cnn:
        from gradstats.simulate.estimator_names import cnn_refusal

        for i, name in enumerate(point.measure):
            reason = cnn_refusal(name)
            if reason is not None:
                raise SweepError(f"measure[{i}]: {reason}")
    if point.arch.norm != "batch":
        return
    from gradstats.simulate.estimator_names import batch_norm_refusal

    for i, name in enumerate(point.measure):
        reason = batch_norm_refusal(name)
        if reason is not None:
            raise SweepError(f"measure[{i}]: {reason}")


def _image_shape(data: Data, architecture: str) -> tuple[int, ...] | None:
    """The spatial shape of ``data``'s images for a cnn (None for an MLP); `SweepError`
    naming ``data`` when the data's shape does not suit the architecture."""
    from gradstats.simulate.data import data_image_shape

    shape = data_image_shape(data)
    if architecture == "cnn" and shape is None:
        raise SweepError(f'data: architecture = "cnn" needs image-shaped data (digits-images, '
                         f"torus-fields, or npz with x of shape (n, C, H, W) or (n, C, W)); "
                         f"{data.name} has (n, features) inputs")
    if architecture != "cnn" and shape is not None:
        raise SweepError(f"data: {data.name} holds images of shape {shape}; they need "
                         'architecture = "cnn" (the MLP takes (n, features) inputs)')
    return shape if architecture == "cnn" else None


def _data_dims(data: Data, given: Collection[str]) -> tuple[int, int]:
    """(input_dim, n_train) the point uses with ``data`` (see `make_point`); torus-fields
    has ``input_dim`` channels, 1 unless the sweep gives input_dim."""
    from gradstats.simulate.data import data_shape

    shape = data_shape(data)
    if data.name == "torus-fields" and "input_dim" not in given:
        return 1, data.n_train
    if shape is None:
        return data.input_dim, data.n_train
    rows, features = shape
    if "input_dim" in given and data.input_dim != features:
        raise SweepError(f"input_dim: data {data.name} has {features} features, input_dim = "
                         f"{data.input_dim} disagrees (leave input_dim out: it follows the data)")
    if "n_train" in given and data.n_train > rows:
        raise SweepError(f"n_train: data {data.name} has {rows} rows; n_train = {data.n_train} "
                         f"asks for more (set n_train <= {rows})")
    return features, data.n_train if "n_train" in given else min(data.n_train, rows)


def record_steps(record: int | list[int] | None, steps: int) -> tuple[int, ...]:
    """Steps to record: a list as given, or ``n`` log-spaced steps including 0 and ``steps``."""
    if steps == 0:
        if isinstance(record, list) and any(s != 0 for s in record):
            raise SweepError(f"record: steps must lie in 0..{steps}, got {record}")
        return (0,)
    if isinstance(record, list):
        return tuple(record)
    count = DEFAULT_RECORD_COUNT if record is None else record
    if count == 1:
        return (0,)
    ladder = np.unique(np.round(np.geomspace(1, steps + 1, count)).astype(int) - 1)
    return tuple(int(s) for s in np.unique(np.concatenate([[0], ladder, [steps]])))


def apply_overrides(sweep: SweepFile, overrides: list[str]) -> SweepFile:
    """Apply ``--set AXIS=V1,V2`` overrides: one value fixes the axis, several sweep it. An
    axis set twice must get the same values both times (else `SweepError`)."""
    grid, fixed = dict(sweep.grid), dict(sweep.fixed)
    seeds: Any = sweep.seeds
    given: dict[str, list[Any]] = {}
    for text in overrides:
        if "=" not in text:
            raise SweepError(f"--set: expected AXIS=VALUE[,VALUE...], got {text!r}")
        axis, _, raw = text.partition("=")
        axis = axis.strip()
        if not axis:
            raise SweepError(f"--set: expected AXIS=VALUE[,VALUE...], got {text!r} (no axis)")
        if axis != "seeds" and ALIASES.get(axis, axis) not in AXIS_TYPES:
            raise SweepError(f"--set {axis}: unknown axis; known axes: {', '.join(AXIS_TYPES)}")
        if any(axis in group for group in sweep.zip):
            raise SweepError(f"--set {axis}: the axis is in a [[zip]] group; edit the sweep file")
        values = [_parse_scalar(v) for v in raw.split(",")]
        if axis == "record" and len(values) > 1:  # a list of steps (0 allowed), not counts
            values = check_axis(f"--set {axis}", axis, values)
        elif axis != "seeds":  # each value as its axis takes it, named as the user wrote it
            values = [check_axis(f"--set {axis}", ALIASES.get(axis, axis), v) for v in values]
        if axis in given and given[axis] != values:
            raise SweepError(f"--set {axis}: given twice with different values "
                             f"({','.join(map(str, given[axis]))} and {raw.strip()}); give it "
                             "once (several values: AXIS=V1,V2)")
        given[axis] = values
        if axis == "seeds":  # validated with the rest by parse_sweep below
            seeds = values[0] if len(values) == 1 else values
            continue
        grid.pop(axis, None)
        fixed.pop(axis, None)
        if len(values) == 1 or axis == "record":
            fixed[axis] = values if axis == "record" and len(values) > 1 else values[0]
        else:
            grid[axis] = values
    from gradstats.sweeps.sweepfile import parse_sweep

    # a rule the overrides leave matching nothing excludes nothing: drop it (a rule of the
    # file itself that matches nothing is refused by parse_sweep, as a likely typo)
    overridden = sweep.model_copy(update={"grid": grid, "fixed": fixed})
    from gradstats.sweeps.sweepfile import exclude_matches

    exclude = [rule for rule in sweep.exclude if exclude_matches(overridden, rule)]
    return parse_sweep({**sweep.model_dump(), "seeds": seeds, "grid": grid, "fixed": fixed,
                        "exclude": exclude})


def _parse_scalar(text: str) -> Any:
    text = text.strip()
    if not text.isascii():  # int() also reads other scripts' digits: keep it a string
        return text
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
