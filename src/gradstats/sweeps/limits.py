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
UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
# Rows of the training set one full-data forward pass holds at once (simulate.training).
FULL_DATA_CHUNK = 4096
DIGITS_FEATURES, CLASSES = 64, 10
# Rows of the empirical NTKs a point forms on a float64 copy of its network: the probe at init
# (simulate.theory_inputs.PROBE_SIZE), the `ntk` estimator's probe of a trained point
# (simulate.engine_estimators.NTK_PROBE_SIZE), the whole training set of a trained sgd or
# momentum point up to simulate.theory_inputs.LAZY_MAX_TRAIN rows (tests check they agree).
INIT_PROBE_ROWS, NTK_PROBE_ROWS, LAZY_MAX_TRAIN = 16, 64, 2048
SGD_FAMILY = ("sgd", "momentum")
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
                        recorded_steps=recorded, point_memory=_point_memory(values, sweep),
                        results_size=_results_size(sweep, values, recorded))


def check_size(sweep: SweepFile, limits: Limits = DEFAULT_LIMITS) -> SizeEstimate:
    """The estimate of ``sweep``; raises `SweepError` when it exceeds ``limits``."""
    size = estimate_size(sweep)
    record = _axis_values(sweep)["record"][0]
    count, nbytes = "{:,}".format, format_bytes
    checks = [
        ("seeds", size.seeds, limits.seeds, "seeds", count),
        ("size", size.points, limits.points, "points (grid x zip x seeds, before exclude)", count),
        ("steps", size.steps, limits.steps, "training steps per point", count),
        ("record", len(record) if isinstance(record, list) else record, limits.recorded_steps,
         "recorded steps per point", count),
        ("size", size.point_memory, limits.point_memory,
         "of memory for one point (the largest value of every axis together)", nbytes),
        ("size", size.results_size, limits.results_size,
         "of combined results (dense over every axis value)", nbytes),
    ]
    for field, value, limit, what, fmt in checks:
        if value > limit:
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


def _point_memory(values: dict[str, list[Any]], sweep: SweepFile) -> float:
    """Bytes one point needs at its peak: the larger of loading its data and training on it,
    for the largest value of every axis together (each data set and architecture of the sweep
    in turn; the largest wins). The terms follow the arrays the code allocates.

    With n = n_train, k outputs, b bytes per float (4 float32, 8 float64), d features of one
    example (input_dim; 64 for digits; C * S^2 for images of C channels of S x S pixels: C =
    input_dim for torus-fields when given, else 1; digits-images 1 x 8 x 8) and P pixels
    (S^2 for images, 1 otherwise):

    - loading (`gradstats.simulate.data`, float64 numpy): the inputs' generation, 16 n d + 8 n
      for the sphere (the draws, the normalized copy, the norms), 56 n d + 16 n for torus
      fields (the noise, its complex128 FFT, the filtered product and its inverse FFT; the
      per-image mean and mean square); then, next to the inputs
      (8 n d), the teacher: ``network`` 16 d^2 (its d x 2d weights) + 32 n d (the n x 2d
      hidden layer, twice while tanh runs), ``linear`` 8 d k; load = max(generation, 8 n d +
      teacher) + 8 n k.
    - training: parameters x 4 b (weights, gradients, optimizer state, snapshot); the
      numpy data and its torch copy n (d + k) (8 + b); per-example Grams batch_size^2
      (depth + 1) x 32 with a ``measure`` group; and the larger of two passes, each over U
      units per example (width per hidden layer, width x P per conv layer, k readout):
      the activations of rows = max(batch_size, min(n, 4096)) examples (the full-data chunk),
      4 b per unit (pre-activations, activations, their gradients), and the per-example
      engine's NTK pass (float64) over r rows, r (4 + 2k) U x 8 (the forward autograd keeps,
      signals of each of the k outputs and the batched backward's temporaries) + r I x 8
      (the layers' inputs I: a cnn's unfolded patches P C_(l-1) K^2 per conv layer, K =
      kernel_size) + 3 r^2 x 8 (its Gram); r is 16
      at init (the probe), n for a trained sgd/momentum point with n <= 2048 (the lazy
      theory's NTK of the training set), else 64 for a trained point (`ntk`'s probe).
    """
    given = {*sweep.fixed, *sweep.grid, *(axis for group in sweep.zip for axis in group)}
    return max(_one_point_memory(values, data, arch, bool(sweep.measure), "input_dim" in given)
               for data in values["data"] for arch in values["architecture"])


def _one_point_memory(values: dict[str, list[Any]], data: str, architecture: str,
                      measure: bool, input_dim_given: bool) -> float:
    """`_point_memory` for one data set and architecture."""
    itemsize = 8 if "float64" in values["dtype"] else 4
    width, depth, batch = (_largest(values, a) for a in ("width", "depth", "batch_size"))
    n_train, input_dim = _largest(values, "n_train"), _largest(values, "input_dim")
    channels, pixels = input_dim, 1
    if data == "digits":
        channels = DIGITS_FEATURES
    elif data == "digits-images":
        channels, pixels = 1, DIGITS_FEATURES
    elif data == "torus-fields":
        channels = input_dim if input_dim_given else 1
        pixels = _largest(values, "image_size") ** 2
    features = channels * pixels
    outputs = CLASSES if "cross_entropy" in values["loss"] or data.startswith("digits") else 1

    load = 0
    if data in ("sphere", "torus-fields"):
        # sphere: + the n norms; torus fields: + the n per-image means and mean squares
        generation = (16 * features + 8 if data == "sphere" else 56 * features + 16) * n_train
        teacher = max({"network": 16 * features**2 + 32 * n_train * features,
                       "linear": 8 * features * outputs}.get(t, 0) for t in values["teacher"])
        load = max(generation, 8 * n_train * features + teacher) + 8 * n_train * outputs

    rows = max(batch, min(n_train, FULL_DATA_CHUNK))
    if architecture == "cnn":
        kernel = _largest(values, "kernel_size") ** 2
        fan_ins = [channels * kernel] + [width * kernel] * (depth - 1)
        readout = width * (pixels if "flatten" in values["readout"] else 1)
        params = sum(f * width + width for f in fan_ins) + readout * outputs + outputs
        units = depth * width * pixels + outputs
        layer_inputs = pixels * sum(fan_ins) + readout  # unfolded patches, readout input
    else:
        widths = [features] + [width] * depth + [outputs]
        params = sum(m * n + n for m, n in zip(widths[:-1], widths[1:], strict=True))
        units = sum(widths[1:])
        layer_inputs = sum(widths[:-1])
    activations = rows * units * itemsize * 4
    ntk_rows = min(n_train, INIT_PROBE_ROWS)
    if _largest(values, "steps") > 0:
        lazy = [int(n) for n in values["n_train"] if int(n) <= LAZY_MAX_TRAIN]
        sgd = any(o in SGD_FAMILY for o in values["optimizer"])
        ntk_rows = max([min(n_train, NTK_PROBE_ROWS), *(lazy if sgd else [])])
    ntk = ntk_rows * ((4 + 2 * outputs) * units + layer_inputs) * 8 + 3 * ntk_rows**2 * 8
    data_bytes = n_train * (features + outputs) * (8 + itemsize)
    per_example = batch * batch * (depth + 1) * 8 * 4 if measure else 0  # Gram matrices
    training = params * itemsize * 4 + data_bytes + per_example + max(activations, ntk)
    return float(max(load, training))


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


def format_bytes(nbytes: float) -> str:
    """``nbytes`` in the binary unit (B, KiB, MiB, GiB, TiB) that leaves under 1000 (TiB at most),
    three significant digits: '53.6 GiB', '1.34e+08 TiB'."""
    value, unit = float(nbytes), "B"
    for unit in UNITS:
        if abs(value) < 1000 or unit == UNITS[-1]:
            break
        value /= 1024
    return f"{value:.3g} {unit}"
