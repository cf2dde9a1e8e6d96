"""Theory vs measurement: `compare(results) -> xr.Dataset` of estimates, tests and verdicts.

`compare` walks the declared comparisons (`gradstats.comparisons.COMPARISONS`) over a
sweep's dataset. It only reads the dataset: the predictions were computed per seed on the
worker from exactly what each run measured (`gradstats.predictions`) and stored next to the
measurements. No torch, no JAX, no re-simulation.

A cell is one configuration (the sweep axes that vary) x layer x recorded step. For each
comparison (a family of cells) compare computes per cell: the seed means of the measurement
and the prediction, the test estimate (a ln ratio for ratio tests), its standard error, the
raw p-value of "the prediction is right within its allowance", the Holm-adjusted p-value over
the family's tested cells, the minimum detectable error at the seeds given, the allowance,
the validity reason (empty inside the domain) and the verdict:
``agree`` 1, ``disagree`` 0, ``outside`` 2, ``undetermined`` 3 (NaN: no data). Variables are
named ``<comparison>_<suffix>``; ``<comparison>_agrees`` keeps the old 1/0/NaN form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats as sps

from gradstats import comparisons as decl
from gradstats.comparisons import COMPARISONS, DEFAULT_LEVEL, Comparison
from gradstats.results import stats
from gradstats.spec import AXES, LAYER_DIM, SEED_DIM, STEP_DIM, Point
from gradstats.theory import validity

BOUND_RTOL = {"float32": 1e-4, "float64": 1e-9}  # round-off of the float32/64 measurement
Key = tuple


@dataclass
class Context:
    """The results, their points by configuration, the level, notes for skipped rows."""

    ds: xr.Dataset
    axes: list[str]
    configs: dict[Key, list[Point]]
    level: float
    notes: list[str] = field(default_factory=list)

    def sel(self, key: Key) -> dict[str, Any]:
        return dict(zip(self.axes, key, strict=True))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def per_config(self, fn: Callable[[Point], Any], dtype=float) -> xr.DataArray:
        """``fn(point)`` of each configuration's first seed, over the varying axes."""
        coords = {a: self.ds[a].values for a in self.axes}
        shape = tuple(len(v) for v in coords.values())
        fill = "" if dtype is object else np.nan
        da = xr.DataArray(np.full(shape, fill, dtype=dtype), dims=self.axes, coords=coords)
        for key, points in self.configs.items():
            da.loc[self.sel(key)] = fn(points[0])
        return da

    @property
    def steps(self) -> np.ndarray:
        return self.ds[STEP_DIM].values if STEP_DIM in self.ds.dims else np.zeros(1, int)


def compare(results: xr.Dataset, level: float = DEFAULT_LEVEL,
            progress: Callable[[str], None] | None = None) -> xr.Dataset:
    """Every declared comparison the results allow; see the module docstring.

    ``results``: a sweep's dataset (`load_results`) carrying its points in
    ``attrs["points"]``. ``progress(name)`` is called before each comparison.
    """
    stats._check_probability(level, "level")
    ctx = _context(results, level)
    out: dict[str, xr.DataArray] = {}
    for comparison in COMPARISONS:
        if progress is not None:
            progress(comparison.name)
        runner = RUNNERS[comparison.test]
        out.update(runner(ctx, comparison))
    cmp = xr.Dataset(out)
    cmp.attrs = {"level": level, "adjustment": "Holm within each comparison",
                 "power": stats.DEFAULT_POWER, "notes": list(ctx.notes)}
    return cmp


def _context(ds: xr.Dataset, level: float) -> Context:
    points_json = ds.attrs.get("points")
    if points_json is None or len(points_json) == 0:
        raise ValueError("results carry no point specs (attrs['points']); compare a results "
                         "directory or its sweep.zarr")
    if isinstance(points_json, str):
        points_json = [points_json]
    axes = [a for a in AXES if a in ds.dims]
    configs: dict[Key, list[Point]] = {}
    for text in points_json:
        if not text:
            continue
        point = Point.from_json(text)
        values = point.axis_values()
        configs.setdefault(tuple(values[a] for a in axes), []).append(point)
    for pts in configs.values():
        pts.sort(key=lambda p: p.seed)
    return Context(ds=ds, axes=axes, configs=configs, level=level)


# --- selecting cells -------------------------------------------------------------------------

def _variable(ctx: Context, comparison: Comparison, name: str) -> xr.DataArray | None:
    """``name`` restricted to the comparison's steps (step dim kept), or None with a note."""
    if name not in ctx.ds:
        if not any(str(v).startswith("theory_") for v in ctx.ds.data_vars):
            ctx.note("no stored predictions: these results come from gradstats < 0.2; rerun the "
                     "sweep into a new directory")
        elif comparison.needs:
            ctx.note(f"{comparison.name}: needs {comparison.needs}")
        else:
            ctx.note(f"{comparison.name}: {name} is not in the results")
        return None
    da = ctx.ds[name]
    if STEP_DIM in da.dims:
        if comparison.steps == "init":
            if 0 not in da[STEP_DIM].values:
                ctx.note(f"{comparison.name}: needs step 0 (init) recorded")
                return None
            da = da.sel({STEP_DIM: [0]})
        elif comparison.steps == "last":
            da = da.isel({STEP_DIM: [-1]})
    return da


def _depth(ctx: Context) -> xr.DataArray:
    return ctx.per_config(lambda p: p.arch.depth)


def _layer_mask(ctx: Context, kind: str) -> xr.DataArray | None:
    """Over (axes, layer): which layers a comparison tests (None: all)."""
    if kind == "all" or LAYER_DIM not in ctx.ds.dims:
        return None
    layer = ctx.ds[LAYER_DIM]
    return layer <= _depth(ctx)  # "hidden": the readout (layer depth+1) excluded


def _ntk_change(ctx: Context) -> xr.DataArray:
    """Seed mean of the relative NTK change per (axes, step); NaN when not measured."""
    if "ntk_rel_change" in ctx.ds and STEP_DIM in ctx.ds["ntk_rel_change"].dims:
        return ctx.ds["ntk_rel_change"].mean(SEED_DIM)
    coords = {a: ctx.ds[a].values for a in ctx.axes}
    coords[STEP_DIM] = ctx.steps
    return xr.DataArray(np.full(tuple(len(v) for v in coords.values()), np.nan),
                        dims=list(coords), coords=coords)


def _domain(ctx: Context, comparison: Comparison, steps: np.ndarray) -> xr.DataArray:
    """Reason each (config, step) lies outside the comparison's domain ("" inside)."""
    change = _ntk_change(ctx).reindex({STEP_DIM: steps})
    reasons = ctx.per_config(lambda p: "", dtype=object).expand_dims({STEP_DIM: steps}).copy()
    for key, points in ctx.configs.items():
        point = points[0]
        for step in steps:
            reason = None
            if comparison.domain == "infinite_width":
                reason = validity.infinite_width(point)
            elif comparison.domain == "outputs":
                reason = validity.output_distribution(point)
            elif comparison.domain == "hanin_nica":
                reason = validity.hanin_nica(point)
            if reason is None and (comparison.domain == "lazy" or comparison.steps == "training"):
                eps = float(change.sel({**ctx.sel(key), STEP_DIM: step}))
                reason = validity.lazy_training(int(step), eps)
            reasons.loc[{**ctx.sel(key), STEP_DIM: step}] = reason or ""
    return reasons


def _allowance(ctx: Context, comparison: Comparison, steps: np.ndarray) -> xr.DataArray:
    """Model-error allowance per (config, step), in the test's units."""
    base = {"finite_width": lambda p: validity.finite_width_allowance(p),
            "rate": lambda p: 2 * validity.finite_width_allowance(p) / _decay_span(comparison, p),
            "resolution": lambda p: 1.0 / (p.training.batch_size * p.arch.width),
            "none": lambda p: 0.0, "lazy_loss": lambda p: 0.0,
            "exponent": lambda p: decl.EXPONENT_ALLOWANCE}[comparison.allowance]
    allow = ctx.per_config(base).expand_dims({STEP_DIM: steps}).copy()
    if comparison.steps == "training" and comparison.allowance == "finite_width":
        change = _ntk_change(ctx).reindex({STEP_DIM: steps}).fillna(0.0)
        allow = allow + xr.where(allow[STEP_DIM] > 0, change, 0.0)
    return allow


def _first_decay_layer(comparison: Comparison) -> int:
    """Decay fits use hidden layers 1..depth for backward_q, 2..depth for grad_sq_norm (the
    first layer's gradient carries the input norm, not a backward factor)."""
    return 2 if comparison.measured == "grad_sq_norm" else 1


def _decay_span(comparison: Comparison, point: Point) -> int:
    """Layers between the first and last fitted layer (>= 1)."""
    return max(point.arch.depth - _first_decay_layer(comparison), 1)


def _cells(measured: xr.DataArray, *others: xr.DataArray) -> list[xr.DataArray]:
    """Broadcast ``others`` against ``measured`` and put ``seed`` last everywhere."""
    arrays = xr.broadcast(measured, *others)
    dims = [d for d in arrays[0].dims if d != SEED_DIM] + [SEED_DIM]
    out = []
    for a in arrays:
        order = [d for d in dims if d in a.dims]
        out.append(a.transpose(*order))
    return out


def _cell_template(da: xr.DataArray) -> xr.DataArray:
    """An empty array over ``da``'s cell dims (``da`` without seed)."""
    return da.isel({SEED_DIM: 0}, drop=True) * np.nan if SEED_DIM in da.dims else da * np.nan


# --- packaging -------------------------------------------------------------------------------

def _package(ctx: Context, comparison: Comparison, template: xr.DataArray,
             values: dict[str, np.ndarray], reasons: xr.DataArray, outside: np.ndarray,
             description: str) -> dict[str, xr.DataArray]:
    """Holm-adjust, decide verdicts, and label every variable of one comparison."""
    p = np.asarray(values["p"], dtype=float)
    if "mean" in values and comparison.test != "exponent":
        # a cell whose measurement is missing or exactly 0 (e.g. bias gradients at sigma_b = 0)
        # is no cell, inside the domain or out
        mean = np.asarray(values["mean"], dtype=float)
        outside = outside & np.broadcast_to(np.isfinite(mean) & (mean != 0), outside.shape)
    tested = np.isfinite(p) & ~outside
    p_holm = np.full(p.shape, np.nan)
    if tested.any():
        p_holm[tested] = stats.holm(p[tested])
    detectable = np.asarray(values.get("detectable", np.full(p.shape, np.nan)), dtype=float)
    max_detectable = comparison.max_detectable
    if comparison.layers == "decay":  # ln 2 over the whole network, per layer
        max_detectable = math.log(decl.MAX_RATIO) / np.maximum(
            _depth(ctx).broadcast_like(template).values, 1)
    powered = detectable
    if not np.isfinite(np.atleast_1d(max_detectable)).any():  # no notion of power (KS, bound)
        powered, max_detectable = np.zeros(p.shape), math.inf
    codes = stats.verdict_codes(np.where(tested, p_holm, p), powered, ctx.level,
                                max_detectable, outside=outside)
    codes = np.where(outside | np.isfinite(p), codes, np.nan)
    n_tested = int(tested.sum())
    agrees = np.where(codes == stats.AGREE, 1.0, np.where(codes == stats.DISAGREE, 0.0, np.nan))
    labelled = {"p": p, "p_holm": p_holm, "detectable": detectable, "verdict": codes,
                "agrees": agrees, **{k: v for k, v in values.items() if k not in
                                     ("p", "detectable")}}
    meaning = {
        "mean": "measured: seed mean", "pred": "prediction: seed mean",
        "ratio": "exp(estimate): measured / predicted", "estimate": "test estimate",
        "se": "standard error of the estimate", "p": "raw p-value",
        "p_holm": "Holm-adjusted p-value within the comparison",
        "detectable": "minimum detectable error (ratio, or absolute for difference tests)",
        "allowance": "model-error allowance", "verdict": "verdict",
        "agrees": "agrees with theory (1 / 0 / NaN)", "rel_err": "measured / predicted - 1",
        "z": "estimate / standard error", "tightness": "bound / measured norm: seed mean",
        "ks_stat": "KS statistic"}
    out = {}
    for suffix, value in labelled.items():
        da = template.copy(data=np.broadcast_to(np.asarray(value, dtype=float),
                                                template.shape).copy())
        da.attrs = {"long_name": f"{comparison.title}: {meaning.get(suffix, suffix)}",
                    "units": "1"}
        out[f"{comparison.name}_{suffix}"] = da
    verdict = out[f"{comparison.name}_verdict"]
    verdict.attrs.update({
        "flag_values": [0, 1, 2, 3],
        "flag_meanings": "disagree agree outside undetermined",
        "test": comparison.test, "steps": comparison.steps,
        "tested_steps": _tested_steps(template, tested, comparison),
        "domain": decl.domain_text(comparison), "allowance": decl.allowance_text(comparison),
        "max_detectable": float(np.max(np.atleast_1d(max_detectable))),
        "level": ctx.level, "n_tested": n_tested,
        "raw_disagree": int((tested & (p < ctx.level)).sum()),
        "expected_false_raw": stats.expected_false_disagreements(n_tested, ctx.level),
        "description": description, "source": comparison.source})
    reason = reasons.broadcast_like(template).transpose(*template.dims)
    out[f"{comparison.name}_reason"] = reason.astype(str).assign_attrs(
        long_name=f"{comparison.title}: why outside the validity domain ('' inside)")
    return out


def _tested_steps(template: xr.DataArray, tested: np.ndarray, comparison: Comparison) -> str:
    if not tested.any():
        return ""
    if STEP_DIM not in template.dims:
        return "last" if comparison.steps == "last" else "0"
    axis = template.dims.index(STEP_DIM)
    other = tuple(i for i in range(tested.ndim) if i != axis)
    steps = template[STEP_DIM].values[tested.any(axis=other) if other else tested]
    return ",".join(str(int(s)) for s in steps)


# --- runners: one per test kind ----------------------------------------------------------------

def run_ratio_or_difference(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """log_ratio and difference tests on per-seed measured and predicted values."""
    measured = _variable(ctx, comparison, comparison.measured)
    predicted = _variable(ctx, comparison, comparison.predicted)
    if measured is None or predicted is None:
        return {}
    if comparison.layers == "decay":
        return _decay(ctx, comparison, measured, predicted)
    mask = _layer_mask(ctx, comparison.layers)
    if mask is not None:
        predicted = predicted.where(mask)
    if comparison.name == "full_loss_lazy":
        predicted = predicted.where(predicted[STEP_DIM] > 0)
    steps = measured[STEP_DIM].values if STEP_DIM in measured.dims else np.zeros(1, int)
    reasons = _domain(ctx, comparison, steps)
    allowance = _allowance(ctx, comparison, steps)
    if comparison.allowance == "lazy_loss":
        allowance = _lazy_loss_allowance(ctx, predicted, steps)
    if STEP_DIM not in measured.dims:
        reasons, allowance = reasons.isel({STEP_DIM: 0}, drop=True), \
            allowance.isel({STEP_DIM: 0}, drop=True)
    m, p, allow = _cells(measured, predicted, allowance.fillna(0.0))  # NaN: no such config
    template = _cell_template(m)
    allow_cells = allow.isel({SEED_DIM: 0}).values
    if comparison.test == "log_ratio":
        result = stats.log_ratio_test(m.values, p.values, ctx.level, allowance=allow_cells)
        values = {"ratio": np.exp(result.estimate)}
    else:
        result = stats.difference_test(m.values - p.values, 0.0, ctx.level,
                                       allowance=allow_cells)
        values = {}
    mean, pred = m.mean(SEED_DIM).values, p.mean(SEED_DIM).values
    with np.errstate(divide="ignore", invalid="ignore"):
        values.update({"mean": mean, "pred": pred, "estimate": result.estimate, "se": result.se,
                       "p": result.pvalue, "detectable": result.detectable,
                       "allowance": allow_cells, "rel_err": mean / pred - 1,
                       "z": result.estimate / result.se})
    outside = _outside(reasons, template)
    return _package(ctx, comparison, template, values, reasons, outside,
                    f"{comparison.test} test per seed; {comparison.title}")


def _outside(reasons: xr.DataArray, template: xr.DataArray) -> np.ndarray:
    r = reasons.broadcast_like(template).transpose(*template.dims).values
    return np.vectorize(lambda s: bool(s))(r).astype(bool) if r.size else np.zeros(r.shape, bool)


def _lazy_loss_allowance(ctx: Context, predicted: xr.DataArray, steps: np.ndarray) -> xr.DataArray:
    """eps_t * |ln(L_0 / L_t)| of the linearized prediction (seed means), eps_t the NTK change."""
    change = _ntk_change(ctx).reindex({STEP_DIM: steps}).fillna(0.0)
    full = ctx.ds["theory_full_loss_lazy"].mean(SEED_DIM)
    ln_drop = abs(np.log(full.sel({STEP_DIM: 0}) / full)).reindex({STEP_DIM: steps})
    return (change * ln_drop).fillna(0.0)


def _decay(ctx: Context, comparison: Comparison, measured: xr.DataArray,
           predicted: xr.DataArray) -> dict[str, xr.DataArray]:
    """Per-seed mean ln(q_l / q_{l+1}) over the layers of the comparison vs the predicted
    curve's (same seed): a difference test per configuration at step 0."""
    first = _first_decay_layer(comparison)
    m0, p0 = measured.isel({STEP_DIM: 0}), predicted.isel({STEP_DIM: 0})
    rate_m = _empty_rates(ctx, measured)
    rate_p = rate_m.copy()
    for key, points in ctx.configs.items():
        layers = np.arange(first, points[0].arch.depth + 1)
        if len(layers) < 2:
            continue
        sel = ctx.sel(key)
        for seed in rate_m[SEED_DIM].values:
            s = {**sel, SEED_DIM: seed}
            rate_m.loc[s] = _rate(layers, m0.sel(s).sel({LAYER_DIM: layers}).values)
            rate_p.loc[s] = _rate(layers, p0.sel(s).sel({LAYER_DIM: layers}).values)
    if bool(rate_m.isnull().all()):
        ctx.note(f"{comparison.name}: needs depth >= {first + 1}")
        return {}
    steps = np.zeros(1, int)
    reasons = _domain(ctx, comparison, steps).isel({STEP_DIM: 0}, drop=True)
    allowance = _allowance(ctx, comparison, steps).isel({STEP_DIM: 0}, drop=True)
    m, p, allow = _cells(rate_m, rate_p, allowance.fillna(0.0))
    template = _cell_template(m)
    allow_cells = allow.isel({SEED_DIM: 0}).values
    result = stats.difference_test(m.values - p.values, 0.0, ctx.level, allowance=allow_cells)
    ln_chi1 = ctx.ds["theory_ln_chi1"].mean(SEED_DIM) if "theory_ln_chi1" in ctx.ds else None
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {"mean": m.mean(SEED_DIM).values, "pred": p.mean(SEED_DIM).values,
                  "estimate": result.estimate, "se": result.se, "p": result.pvalue,
                  "detectable": result.detectable, "allowance": allow_cells,
                  "z": result.estimate / result.se}
    if ln_chi1 is not None:
        values["ln_chi1"] = ln_chi1.broadcast_like(template).transpose(*template.dims).values
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "mean ln(q_l/q_{l+1}) over layers per seed vs the predicted curve's, at init")


def _empty_rates(ctx: Context, measured: xr.DataArray) -> xr.DataArray:
    coords = {a: ctx.ds[a].values for a in ctx.axes}
    coords[SEED_DIM] = measured[SEED_DIM].values
    return xr.DataArray(np.full(tuple(len(v) for v in coords.values()), np.nan),
                        dims=list(coords), coords=coords)


def _rate(layers: np.ndarray, values: np.ndarray) -> float:
    """-slope of ln(values) vs layer: the mean ln(q_l / q_{l+1}) (NaN unless all > 0)."""
    values = np.asarray(values, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        return math.nan
    return -stats.fit_line(layers, np.log(values)).slope


def run_quadratic_form(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """chi^2-like statistics against their per-seed null distribution over f ~ GP."""
    mean_name, var_name = comparison.predicted
    measured = _variable(ctx, comparison, comparison.measured)
    null_mean = _variable(ctx, comparison, mean_name)
    null_var = _variable(ctx, comparison, var_name)
    if measured is None or null_mean is None or null_var is None:
        return {}
    if comparison.name == "grad_sq_norm_marginal":
        null_var = null_var + _finite_width_variance(ctx, null_mean, null_var)
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    if STEP_DIM not in measured.dims:
        reasons = reasons.isel({STEP_DIM: 0}, drop=True)
    m, mu, var = _cells(measured, null_mean, null_var)
    template = _cell_template(m)
    result = stats.quadratic_form_test(m.values, mu.values, var.values, ctx.level)
    mean, pred = m.mean(SEED_DIM).values, mu.mean(SEED_DIM).values
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {"mean": mean, "pred": pred, "ratio": np.exp(result.estimate),
                  "estimate": result.estimate, "se": result.se, "p": result.pvalue,
                  "detectable": result.detectable, "rel_err": mean / pred - 1,
                  "z": (np.exp(result.estimate) - 1) / result.se}
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "seed mean of measured / null mean vs the gamma law of the theory's null "
                    "mean and variance (f ~ GP at init)")


def _finite_width_variance(ctx: Context, null_mean: xr.DataArray,
                           null_var: xr.DataArray) -> xr.DataArray:
    """Var(m) = Var_f(E[m|f]) + E_f[Var(m|f)]: the second term from the measured per-seed
    spread s^2 of ln(measured / conditional prediction) at step 0 (lognormal:
    Var(m|f) = E[m|f]^2 (e^{s^2} - 1)), so finite-width scatter does not read as a failure."""
    if "theory_grad_sq_norm" not in ctx.ds or STEP_DIM not in ctx.ds["grad_sq_norm"].dims \
            or 0 not in ctx.ds[STEP_DIM].values:
        return xr.zeros_like(null_var)
    m = ctx.ds["grad_sq_norm"].sel({STEP_DIM: 0})
    p = ctx.ds["theory_grad_sq_norm"].sel({STEP_DIM: 0})
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(m / p).where((m > 0) & (p > 0))
    s2 = log_ratio.var(SEED_DIM, ddof=1).fillna(0.0)
    return (null_mean**2 + null_var) * np.expm1(s2)


def run_chi2_whitened(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """sum z^2 per seed ~ chi^2 with as many dof as finite z under the NNGP theory."""
    z = _variable(ctx, comparison, comparison.measured)
    if z is None:
        return {}
    extra = [d for d in z.dims if d not in (*ctx.axes, SEED_DIM)]
    sq = (z**2).sum(extra, min_count=1)
    dof = z.count(extra).astype(float).where(sq.notnull())
    reasons = _domain(ctx, comparison, np.zeros(1, int)).isel({STEP_DIM: 0}, drop=True)
    m, mu = _cells(sq, dof)
    template = _cell_template(m)
    result = stats.quadratic_form_test(m.values, mu.values, 2 * mu.values, ctx.level)
    values = {"mean": (m / mu).mean(SEED_DIM).values, "pred": np.ones(template.shape),
              "ratio": np.exp(result.estimate), "estimate": result.estimate, "se": result.se,
              "p": result.pvalue, "detectable": result.detectable}
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "mean z^2 of NNGP-whitened step-0 outputs; chi^2 null")


def run_ks(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Pooled NNGP-whitened step-0 outputs (all seeds) vs N(0, 1), per configuration."""
    z = _variable(ctx, comparison, comparison.measured)
    if z is None:
        return {}
    reasons = _domain(ctx, comparison, np.zeros(1, int)).isel({STEP_DIM: 0}, drop=True)
    template = _cell_template(z.isel({d: 0 for d in z.dims if d not in (*ctx.axes, SEED_DIM)},
                                     drop=True))
    p = np.full(template.shape, np.nan)
    ks = np.full(template.shape, np.nan)
    for key in ctx.configs:
        sel = ctx.sel(key)
        values = z.sel(sel).values.ravel() if sel else z.values.ravel()
        values = values[np.isfinite(values)]
        if len(values) < 8:
            continue
        res = sps.kstest(values, "norm")
        index = tuple(list(template[a].values).index(sel[a]) for a in template.dims)
        ks[index], p[index] = res.statistic, res.pvalue
    values = {"ks_stat": ks, "p": p}
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "Kolmogorov-Smirnov of pooled whitened outputs vs N(0, 1)")


def run_bound(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """A bound on sqrt(grad_sq_norm) at step 0 holds on every seed (up to round-off)."""
    measured = _variable(ctx, comparison, comparison.measured)
    bound = _variable(ctx, comparison, comparison.predicted)
    if measured is None or bound is None:
        return {}
    norm = np.sqrt(measured)
    rtol = ctx.per_config(lambda p: BOUND_RTOL.get(p.dtype, 1e-4))
    m, b, r = _cells(norm, bound, rtol)
    template = _cell_template(m)
    finite = np.isfinite(m.values) & np.isfinite(b.values)
    holds = np.where(finite, b.values >= m.values * (1 - r.values), True)
    any_finite = finite.any(axis=-1)
    p = np.where(any_finite, np.where(holds.all(axis=-1), 1.0, 0.0), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(finite & (m.values > 0), b.values / m.values, np.nan)
        n_ok = np.isfinite(ratio).sum(axis=-1)
        tight = np.where(n_ok > 0, np.nansum(ratio, axis=-1) / n_ok, np.nan)
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    if STEP_DIM not in measured.dims:
        reasons = reasons.isel({STEP_DIM: 0}, drop=True)
    values = {"mean": m.mean(SEED_DIM).values, "pred": b.mean(SEED_DIM).values, "p": p,
              "tightness": tight}
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "deterministic bound on every seed's step-0 gradient norm")


def run_log_variance(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Variance over seeds of ln(measured) vs the prediction, as ln(s^2 / v) with SE
    sqrt(2/(n-1) + excess_kurtosis/n) (large-n variance of a log sample variance)."""
    measured = _variable(ctx, comparison, comparison.measured)
    predicted = _variable(ctx, comparison, comparison.predicted)
    if measured is None or predicted is None:
        return {}
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    log_m = np.log(measured.where(measured > 0))
    m, p = _cells(log_m, predicted)
    template = _cell_template(m)
    kurt = None
    if "theory_ln_grad_sq_norm_kurtosis" in ctx.ds:
        k = ctx.ds["theory_ln_grad_sq_norm_kurtosis"].mean(SEED_DIM)
        kurt = k.broadcast_like(template).transpose(*template.dims).values
    result = stats.log_variance_test(m.values, p.mean(SEED_DIM).values, ctx.level,
                                     excess_kurtosis=kurt)
    values = {"mean": np.nanvar(m.values, axis=-1, ddof=1), "pred": p.mean(SEED_DIM).values,
              "ratio": np.exp(result.estimate), "estimate": result.estimate, "se": result.se,
              "p": result.pvalue, "detectable": result.detectable}
    return _package(ctx, comparison, template, values, reasons, _outside(reasons, template),
                    "variance over seeds of ln grad_sq_norm at init vs Hanin-Nica")


def run_exponent(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """OLS of ln(value) on ln(width) over widths (inside the domain) and seeds, per
    combination of the other axes; H0 |slope - predicted| <= allowance."""
    values = _variable(ctx, comparison, comparison.measured)
    if values is None:
        return {}
    if "width" not in ctx.axes or ctx.ds.sizes["width"] < 3:
        ctx.note(f"{comparison.name}: needs {comparison.needs}")
        return {}
    if STEP_DIM in values.dims:
        if comparison.steps == "last" and int(values[STEP_DIM].values[0]) == 0:
            ctx.note(f"{comparison.name}: needs {comparison.needs}")
            return {}
        steps = values[STEP_DIM].values
        values = values.isel({STEP_DIM: 0}, drop=True)
    else:
        steps = np.zeros(1, int)
    reasons_full = _domain(ctx, comparison, steps).isel({STEP_DIM: 0}, drop=True)
    inside = reasons_full == ""
    values = values.where(inside)
    pred = decl.EXPONENTS[comparison.name]
    others = [a for a in ctx.axes if a != "width"]
    template = xr.full_like(reasons_full.isel(width=0, drop=True), np.nan, dtype=float)
    slope, se, p, n_widths = (template.copy() for _ in range(4))
    reasons = template.astype(object).copy(data=np.full(template.shape, "", dtype=object))
    level = ctx.level
    for combo in _combos(ctx, others):
        part = values.sel(combo) if combo else values
        ok_widths = [w for w in part["width"].values if bool(part.sel(width=w).notnull().any())]
        if len(ok_widths) < 3:
            reasons.loc[combo] = "fewer than 3 widths inside the validity domain"
            continue
        part = part.sel(width=ok_widths).transpose("width", ...)
        widths = np.broadcast_to(part["width"].values.astype(float).reshape(
            -1, *([1] * (part.ndim - 1))), part.shape)
        try:
            fit = stats.fit_power_law(widths, part.values, level)
        except ValueError:
            continue
        slope.loc[combo], se.loc[combo], n_widths.loc[combo] = fit.slope, fit.slope_se, len(ok_widths)
        excess = abs(fit.slope - pred) - decl.EXPONENT_ALLOWANCE
        p.loc[combo] = 1.0 if excess <= 0 else float(2 * sps.t.sf(excess / fit.slope_se, fit.dof))
    values_out = {"mean": slope.values, "pred": np.full(template.shape, pred),
                  "estimate": slope.values - pred, "se": se.values, "p": p.values,
                  "n_widths": n_widths.values}
    outside = np.vectorize(bool)(reasons.values).astype(bool) if reasons.size else \
        np.zeros(reasons.shape, bool)
    return _package(ctx, comparison, template, values_out, reasons, outside,
                    f"OLS ln y ~ ln width over widths and seeds; exponent {pred} "
                    f"+- {decl.EXPONENT_ALLOWANCE}")


def _combos(ctx: Context, axes: list[str]) -> list[dict[str, Any]]:
    import itertools

    values = [ctx.ds[a].values for a in axes]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*values)]


RUNNERS: dict[str, Callable[[Context, Comparison], dict[str, xr.DataArray]]] = {
    "log_ratio": run_ratio_or_difference, "difference": run_ratio_or_difference,
    "quadratic_form": run_quadratic_form, "chi2_whitened": run_chi2_whitened, "ks": run_ks,
    "bound": run_bound, "log_variance": run_log_variance, "exponent": run_exponent,
}


# --- summary -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SummaryRow:
    """One comparison in the printed table (verdict counts over its cells)."""

    name: str
    title: str
    test: str
    steps: str
    agree: int
    disagree: int
    outside: int
    undetermined: int
    raw_disagree: int
    expected_false: float
    detectable: float
    undetermined_detectable: float
    typical: float
    max_abs_z: float
    reasons: tuple[str, ...]
    domain: str
    allowance: str


def summary_rows(cmp: xr.Dataset) -> list[SummaryRow]:
    """A row per comparison of a comparison dataset, in declaration order."""
    rows = []
    for comparison in COMPARISONS:
        name = comparison.name
        if f"{name}_verdict" not in cmp:
            continue
        verdict = cmp[f"{name}_verdict"]
        codes = verdict.values.ravel()
        attrs = verdict.attrs
        reasons = cmp[f"{name}_reason"].values.ravel() if f"{name}_reason" in cmp else []
        outside_reasons = tuple(sorted({str(r) for r, c in zip(reasons, codes, strict=False)
                                        if c == stats.OUTSIDE and r}))
        tested = (codes == stats.AGREE) | (codes == stats.DISAGREE) | (codes == stats.UNDETERMINED)
        all_det = np.asarray(cmp[f"{name}_detectable"].values.ravel(), float) \
            if f"{name}_detectable" in cmp else np.full(codes.shape, np.nan)
        det = all_det[tested]
        undet = all_det[codes == stats.UNDETERMINED]
        typical = _typical(cmp, name, tested)
        z = cmp.get(f"{name}_z")
        zmax = float(np.nanmax(np.abs(z.values.ravel()[tested]))) if z is not None and \
            np.isfinite(z.values.ravel()[tested]).any() else math.nan
        rows.append(SummaryRow(
            name=name, title=comparison.title, test=comparison.test,
            steps=str(attrs.get("tested_steps", "")),
            agree=int((codes == stats.AGREE).sum()), disagree=int((codes == stats.DISAGREE).sum()),
            outside=int((codes == stats.OUTSIDE).sum()),
            undetermined=int((codes == stats.UNDETERMINED).sum()),
            raw_disagree=int(attrs.get("raw_disagree", 0)),
            expected_false=float(attrs.get("expected_false_raw", math.nan)),
            detectable=_median(det), undetermined_detectable=_median(undet),
            typical=typical, max_abs_z=zmax, reasons=outside_reasons,
            domain=str(attrs.get("domain", "")), allowance=str(attrs.get("allowance", ""))))
    return rows


def _median(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else math.nan


def _typical(cmp: xr.Dataset, name: str, tested: np.ndarray) -> float:
    """Median over tested cells of the ratio (ratio tests), the estimate (difference tests),
    the fitted exponent or the bound tightness."""
    for suffix in ("ratio", "tightness", "mean" if name.endswith("_exponent") else "estimate"):
        if f"{name}_{suffix}" in cmp:
            v = np.asarray(cmp[f"{name}_{suffix}"].values, float).ravel()[tested]
            v = v[np.isfinite(v)]
            return float(np.median(v)) if len(v) else math.nan
    return math.nan
