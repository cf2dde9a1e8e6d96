"""Size limits of a sweep, checked from the sweep file alone, before any point is expanded.

`estimate_size` reads only the axis value lists (never the product), so a 10^7-point grid is
sized in microseconds. The estimates are upper bounds: the point count ignores
``[[exclude]]``, and each memory estimate combines the largest value of every axis.
`check_size` raises a `SweepError` naming the first limit a sweep exceeds; ``gradstats run
--no-limits`` skips it (docs/errors.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gradstats import statistics
from gradstats.sweeps.sweepfile import AXIS_DEFAULTS, SweepError, SweepFile

GIB = 2**30
# Rows of the training set one full-data forward pass holds at once (simulate.training).
FULL_DATA_CHUNK = 4096
DIGITS_FEATURES, CLASSES = 64, 10
OVERRIDE_FLAG = "--no-limits"


@dataclass(frozen=True)
class Limits:
    """The largest sweep `check_size` accepts (memory in bytes)."""

    points: int = 100_000
    seeds: int = 10_000
    steps: int = 10_000_000
    recorded_steps: int = 10_000
    point_memory: float = 16 * GIB
    results_size: float = 16 * GIB


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class SizeEstimate:
    """Upper estimates of a sweep's size.

    ``points``: grid points x zip rows x seeds (before ``[[exclude]]``); ``steps``: the
    largest ``steps``; ``recorded_steps``: the most steps one point records;
    ``point_memory``: bytes one point needs while it trains (parameters, gradients, optimizer
    state, data, full-data activations); ``results_size``: bytes of the combined dataset,
    dense over every axis value (what `gradstats show`/`export` hold in memory).
    """

    points: int
    seeds: int
    steps: int
    recorded_steps: int
    point_memory: float
    results_size: float


def estimate_size(sweep: SweepFile) -> SizeEstimate:
    """`SizeEstimate` of ``sweep`` from its axis lists alone (nothing is expanded)."""
    values = _axis_values(sweep)
    configs = math.prod(len(v) for v in sweep.grid.values()) * math.prod(
        len(next(iter(group.values()))) for group in sweep.zip)
    steps = max(values["steps"])
    record = values["record"][0]
    recorded = len(record) if isinstance(record, list) else min(record, steps + 1)
    return SizeEstimate(points=configs * sweep.n_seeds, seeds=sweep.n_seeds, steps=steps,
                        recorded_steps=recorded, point_memory=_point_memory(values, sweep.measure),
                        results_size=_results_size(sweep, values, recorded))


def check_size(sweep: SweepFile, limits: Limits = DEFAULT_LIMITS) -> SizeEstimate:
    """The estimate of ``sweep``; raises `SweepError` when it exceeds ``limits``."""
    size = estimate_size(sweep)
    record = _axis_values(sweep)["record"][0]
    checks = [
        ("seeds", size.seeds, limits.seeds, "seeds"),
        ("size", size.points, limits.points, "points (grid x zip x seeds, before exclude)"),
        ("steps", size.steps, limits.steps, "training steps per point"),
        ("record", len(record) if isinstance(record, list) else record, limits.recorded_steps,
         "recorded steps per point"),
        ("size", size.point_memory, limits.point_memory,
         "of memory for one point (largest width, depth, n_train and batch_size together)"),
        ("size", size.results_size, limits.results_size,
         "of combined results (dense over every axis value)"),
    ]
    for field, value, limit, what in checks:
        if value > limit:
            fmt = _gib if isinstance(limit, float) else "{:,}".format
            raise SweepError(f"{field}: {fmt(value)} {what} exceed the limit of {fmt(limit)}; "
                             f"shrink the sweep or pass {OVERRIDE_FLAG}")
    return size


def _axis_values(sweep: SweepFile) -> dict[str, list[Any]]:
    """Every value each axis takes somewhere in the sweep (defaults for axes not given)."""
    values = {axis: [value] for axis, value in AXIS_DEFAULTS.items()}
    values["record"] = [None]
    values.update({axis: [value] for axis, value in sweep.fixed.items()})
    values.update(sweep.grid)
    for group in sweep.zip:
        values.update(group)
    if values["record"] == [None]:
        values["record"] = [8]
    if "channels" in values:  # the cnn alias of width (`sweepfile.ALIASES`)
        values["width"] = values.pop("channels")
    return values


def _largest(values: dict[str, list[Any]], axis: str) -> int:
    return max(int(v) for v in values[axis])


def _point_memory(values: dict[str, list[Any]], measure: list[str]) -> float:
    itemsize = 8 if "float64" in values["dtype"] else 4
    width, depth, batch = (_largest(values, a) for a in ("width", "depth", "batch_size"))
    n_train, input_dim = _largest(values, "n_train"), _largest(values, "input_dim")
    if "digits" in values["data"]:
        input_dim = max(input_dim, DIGITS_FEATURES)
    outputs = CLASSES if "cross_entropy" in values["loss"] or "digits" in values["data"] else 1
    widths = [input_dim] + [width] * depth + [outputs]
    params = sum(m * n + n for m, n in zip(widths[:-1], widths[1:], strict=True))
    rows = max(batch, min(n_train, FULL_DATA_CHUNK))
    activations = rows * sum(widths[1:]) * itemsize * 4  # pre-activations, activations, grads
    if "cnn" in values["architecture"]:  # every hidden unit is a channel at each pixel
        activations *= max(_largest(values, "image_size") ** 2, DIGITS_FEATURES)
    data = n_train * (input_dim + outputs) * (8 + itemsize)  # numpy float64 and torch copies
    per_example = batch * batch * (depth + 1) * 8 * 4 if measure else 0  # Gram matrices
    return float(params * itemsize * 4 + activations + data + per_example)


def _results_size(sweep: SweepFile, values: dict[str, list[Any]], recorded: int) -> float:
    cells = sweep.n_seeds * math.prod(len(v) for axis, v in values.items() if axis != "record")
    sizes = {"step": recorded, "layer": _largest(values, "depth") + 1}
    batch = _largest(values, "batch_size")
    per_cell = 0
    for stat in statistics.REGISTRY.values():
        extra = [d for d in stat.dims if d not in sizes]
        if extra and not sweep.measure:
            continue  # per-example statistics need a measure group
        per_cell += math.prod(sizes.get(d, batch) for d in stat.dims)
    return float(cells * per_cell * 8)


def _gib(nbytes: float) -> str:
    return f"{nbytes / GIB:.3g} GiB"
