"""Synthetic results datasets shaped like a preset's sweep, for the plot tests.

`preset_results(name)` expands the preset's grid (2 seeds) and fills, for every point, the
variables that preset records (the spine, its ``measure`` groups' plotted statistics and
the stored predictions, dims from the registry) with positive values, laid out as a combined
sweep: zipped axes leave absent combinations NaN, depths pad layers with NaN,
``attrs["points"]`` holds the point specs. No simulation, no theory: a render test over
presets x kinds stays fast.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gradstats.spec import AXES, LAYER_DIM, SEED_DIM, STEP_DIM, Point
from gradstats.sweeps.grid import expand
from gradstats.sweeps.presets import resolve_sweep

SPINE = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "backward_q", "active_fraction",
         "weight_sq_norm", "batch_loss", "full_loss", "ntk_rel_change")
BY_MEASURE = {
    "per_example": ("per_example_grad_sq_norm", "noise_eigenvalues", "grad_noise_scale"),
    "full_batch": ("full_noise_trace", "full_noise_trace_unbiased"),
    "ntk": ("theory_ntk_init_rel_err",),
    "directions": tuple(f"{p}_{f}" for p in ("example_dir", "minibatch_dir")
                        for f in ("kappa", "r_bar", "kappa_uniform", "r_bar_uniform")),
    "updates": ("preact_change_rms", "output_change_rms", "output_change_feature_rms",
                "output_change_readout_rms"),
    "distribution": (),
}
THEORY = ("theory_grad_sq_norm", "theory_backward_q", "theory_forward_q")
RANKS = 12


def point_values(point: Point, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Positive values of the right shape for every variable ``point`` records."""
    n_steps, n_layers = len(point.training.record), point.arch.n_layers
    batch = min(point.training.batch_size, 32)
    layers = np.arange(1, n_layers + 1)
    profile = 1.3 ** (layers - n_layers)  # a geometric per-layer profile, like chi^(L-l)
    noise = lambda *shape: np.exp(0.1 * rng.standard_normal(shape))  # noqa: E731
    steps = np.asarray(point.training.record, float)
    shapes = {
        ("step", "layer"): lambda: profile * noise(n_steps, n_layers),
        ("layer",): lambda: profile * noise(n_layers),
        ("step",): lambda: np.exp(-steps / (1 + steps.max())) * 0.1 * noise(n_steps)
                           + 1e-3 * (steps > 0),
        (): lambda: 0.1 * noise(1)[0],
        ("step", "layer", "sample"): lambda: rng.lognormal(0, 1, (n_steps, n_layers, batch)),
        ("step", "rank"): lambda: np.sort(np.concatenate(
            [np.arange(1, RANKS) ** -1.2, [1e-22]]))[::-1] * noise(n_steps, 1),
    }
    from gradstats import statistics

    names = list(SPINE)
    for group in point.measure:
        names += BY_MEASURE.get(group, ())
    names += THEORY
    if point.arch.is_mlp:
        names.append("theory_ln_chi1")
    if point.arch.norm == "batch":
        names.append("theory_bn_ln_growth")
    out = {}
    for name in dict.fromkeys(names):
        dims = statistics.get(name).dims
        if dims not in shapes:
            raise KeyError(f"{name}: no synthetic shape for dims {dims}")
        out[name] = np.asarray(shapes[dims]())
    if "active_fraction" in out:
        out["active_fraction"] = np.clip(0.5 * out["active_fraction"], 0, 1)
    if "example_dir_r_bar" in out:
        for prefix in ("example_dir", "minibatch_dir"):
            out[f"{prefix}_r_bar"] = np.clip(out[f"{prefix}_r_bar"], 0, 1)
            out[f"{prefix}_r_bar_uniform"] = np.clip(out[f"{prefix}_r_bar_uniform"] * 0.2, 0, 1)
    return out


def preset_results(name: str, seeds: int = 2) -> xr.Dataset:
    """The synthetic combined dataset of preset ``name`` with ``seeds`` seeds per point, laid
    out as `gradstats.results.io.combine` lays out a sweep (varying axes as dims, the others
    scalar coords, NaN for absent combinations and the layers of shallower networks)."""
    from gradstats import statistics

    points = [p for p in expand(resolve_sweep(name)) if p.seed < seeds]
    rng = np.random.default_rng(0)
    values = [point_values(p, rng) for p in points]
    axis_values = [p.axis_values() for p in points]
    varying = [a for a in AXES if len({str(v[a]) for v in axis_values}) > 1]
    coords: dict[str, object] = {a: sorted({v[a] for v in axis_values}) for a in varying}
    coords[SEED_DIM] = list(range(seeds))
    own = {STEP_DIM: list(points[0].training.record),
           LAYER_DIM: list(range(1, max(p.arch.n_layers for p in points) + 1)),
           "sample": list(range(max(min(p.training.batch_size, 32) for p in points))),
           "rank": list(range(RANKS))}
    data = {}
    for var in dict.fromkeys(k for v in values for k in v):
        dims = [*varying, SEED_DIM, *statistics.get(var).dims]
        arr = np.full([len(coords[d]) if d in coords else len(own[d]) for d in dims], np.nan)
        for p, v, ax in zip(points, values, axis_values, strict=True):
            if var not in v:
                continue
            index = tuple(coords[a].index(ax[a]) for a in varying) + (p.seed,)
            value = np.asarray(v[var], float)
            arr[index + tuple(slice(0, n) for n in value.shape)] = value
        data[var] = (dims, arr, statistics.get(var).attrs())
    used = {d for _, (dims, _, _) in data.items() for d in dims}
    all_coords = {**coords, **{d: own[d] for d in own if d in used}}
    fixed = {a: axis_values[0][a] for a in AXES if a not in varying}
    ds = xr.Dataset(data, coords=all_coords).assign_coords(fixed)
    ds[LAYER_DIM].attrs = {"long_name": "layer", "units": "1"}
    ds.attrs["points"] = [p.to_json() for p in points]
    return ds
