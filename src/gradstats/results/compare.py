"""Theory vs measurement: `compare(results) -> xr.Dataset` of estimates, tests and verdicts.

`compare` walks the declared comparisons (`gradstats.comparisons.COMPARISONS`) over a
sweep's dataset. It only reads the dataset: the predictions were computed per seed on the
worker from exactly what each run measured (`gradstats.predictions`) and stored next to the
measurements. No torch, no JAX, no re-simulation.

A cell is one configuration (the sweep axes that vary) x layer x recorded step. For each
comparison (a family of cells) compare computes per cell: the seed means of the measurement
and the prediction, the test estimate (a ln ratio for ratio tests), its standard error, the
raw p-value of "the prediction is right within its allowance", the Holm-adjusted p-value over
the family's tested cells, the minimum detectable error at the seeds given and the Holm level
of the row (the error the test would flag with 80% probability), the allowance, the validity
reason (empty inside the domain) and the verdict: ``agree`` 1, ``disagree`` 0, ``outside`` 2,
``undetermined`` 3 (NaN: no such cell). Variables are named ``<comparison>_<suffix>``;
``<comparison>_agrees`` keeps the old 1/0/NaN form.

A cell whose measurement is exactly 0 on some seed where the prediction is positive
disagrees (a dead layer is the failure, not a seed to drop). A cell lies outside the lazy
domain when the NTK change of any of its seeds exceeds the limit.
"""

from __future__ import annotations

import functools
import itertools
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
PowerFn = Callable[[float], np.ndarray]


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
        """``fn(point)`` of each configuration's first seed, over the varying axes (NaN, or ""
        for ``dtype=object``, where a combination of axis values is not in the sweep)."""
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
    stats.check_probability(level, "level")
    ctx = _context(results, level)
    out: dict[str, xr.DataArray] = {}
    points = [pts[0] for pts in ctx.configs.values()]
    coupled = bool(points) and all(validity.batch_normalized(p) for p in points)
    not_batch_norm = []
    for comparison in COMPARISONS:
        if coupled and not comparison.batch_norm:  # nothing to test: say so once
            not_batch_norm.append(comparison.name)
            continue
        if progress is not None:
            progress(comparison.name)
        out.update(RUNNERS[comparison.test](ctx, comparison))
    if not_batch_norm:
        ctx.note(f"{', '.join(not_batch_norm)}: {validity.batch_normalized(points[0])}")
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
    ctx = Context(ds=ds, axes=axes, configs=configs, level=level)
    theory_notes = ds.attrs.get("theory_notes")
    if theory_notes is not None and len(theory_notes):
        notes = [theory_notes] if isinstance(theory_notes, str) else list(theory_notes)
        ctx.note(f"predictions incomplete for {len(notes)} point(s), e.g. {notes[0]}")
    return ctx


# --- selecting cells -------------------------------------------------------------------------

def _variable(ctx: Context, comparison: Comparison, name: str) -> xr.DataArray | None:
    """``name`` restricted to the comparison's steps (step dim kept), or None with a note."""
    if name not in ctx.ds:
        if not any(str(v).startswith("theory_") for v in ctx.ds.data_vars):
            if len(ctx.ds.attrs.get("theory_notes") or ()):  # the points say why (noted above)
                ctx.note("no stored predictions: none could be computed for these points")
            else:
                ctx.note("no stored predictions: these results come from gradstats < 0.2; "
                         "rerun the sweep into a new directory")
        elif comparison.needs:
            ctx.note(f"{comparison.name}: needs {comparison.needs}")
        else:
            ctx.note(f"{comparison.name}: {name} is not in the results")
        return None
    da = ctx.ds[name]
    if STEP_DIM not in da.dims:
        return da
    steps = da[STEP_DIM].values
    keep = {"init": steps == 0, "trained": steps > 0}.get(comparison.steps)
    if keep is not None:
        if not keep.any():
            ctx.note(f"{comparison.name}: needs "
                     + ("step 0 (init) recorded" if comparison.steps == "init"
                        else comparison.needs or "training steps"))
            return None
        da = da.isel({STEP_DIM: np.flatnonzero(keep)})
    return da


def _depth(ctx: Context) -> xr.DataArray:
    return ctx.per_config(lambda p: p.arch.depth)


def _layer_mask(ctx: Context, kind: str) -> xr.DataArray | None:
    """Over (axes, layer): which layers a comparison tests (None: all)."""
    if kind == "all" or LAYER_DIM not in ctx.ds.dims:
        return None
    return ctx.ds[LAYER_DIM] <= _depth(ctx)  # "hidden": the readout (layer depth+1) excluded


def _ntk_change(ctx: Context, steps: np.ndarray) -> xr.DataArray:
    """Largest relative NTK change over the seeds per (axes, step); NaN when not measured."""
    if "ntk_rel_change" in ctx.ds and STEP_DIM in ctx.ds["ntk_rel_change"].dims:
        return ctx.ds["ntk_rel_change"].max(SEED_DIM).reindex({STEP_DIM: steps})
    return ctx.per_config(lambda p: math.nan).expand_dims({STEP_DIM: steps}).copy()


def _lazy_condition(comparison: Comparison) -> bool:
    return comparison.domain in ("lazy", "ntk_change") or comparison.steps in ("training",
                                                                                "trained")


def _domain(ctx: Context, comparison: Comparison, steps: np.ndarray) -> xr.DataArray:
    """Reason each (config, step) lies outside the comparison's domain ("" inside)."""
    change = _ntk_change(ctx, steps)
    in_domain = validity.DOMAINS[comparison.domain]
    if comparison.domain == "infinite_width":
        in_domain = functools.partial(validity.infinite_width, beta_max=comparison.beta_max)
    reasons = ctx.per_config(lambda p: "", dtype=object).expand_dims({STEP_DIM: steps}).copy()
    for key, points in ctx.configs.items():
        # batch norm first: where the row does not hold for it, that is the reason to give
        base = None if comparison.batch_norm else validity.batch_normalized(points[0])
        if base is None:
            base = in_domain(points[0])
        for step in steps:
            reason = base
            if reason is None and _lazy_condition(comparison):
                reason = validity.lazy_training(
                    int(step), float(change.sel({**ctx.sel(key), STEP_DIM: step})))
            reasons.loc[{**ctx.sel(key), STEP_DIM: step}] = reason or ""
    return reasons


def _allowance(ctx: Context, comparison: Comparison, steps: np.ndarray) -> xr.DataArray:
    """Model-error allowance per (config, step), in the test's units (0 for absent configs)."""
    base = {"finite_width": validity.finite_width_allowance,
            "rate": lambda p: 2 * validity.finite_width_allowance(p) / _decay_span(comparison, p),
            "bn_width": validity.batch_norm_rate_allowance,
            "none": lambda p: 0.0, "exponent": lambda p: decl.EXPONENT_ALLOWANCE,
            "lazy_loss": lambda p: 0.0}[comparison.allowance]
    allow = ctx.per_config(base).expand_dims({STEP_DIM: steps}).copy()
    if comparison.steps == "training" and comparison.allowance == "finite_width":
        change = _ntk_change(ctx, steps).fillna(0.0)
        allow = allow + xr.where(allow[STEP_DIM] > 0, change, 0.0)
    if comparison.allowance == "lazy_loss":
        allow = allow + _lazy_loss_allowance(ctx, steps)
    return allow.fillna(0.0)


def _lazy_loss_allowance(ctx: Context, steps: np.ndarray) -> xr.DataArray:
    """eps_t |ln(L_0 / L_t)| of the linearized prediction (seed means; eps_t the largest NTK
    change over seeds), at most `validity.LAZY_LOSS_ALLOWANCE_MAX`."""
    if "theory_full_loss_lazy_init" not in ctx.ds:
        return xr.zeros_like(_ntk_change(ctx, steps))
    loss_0 = ctx.ds["theory_full_loss_lazy_init"].mean(SEED_DIM)
    loss_t = ctx.ds["theory_full_loss_lazy"].mean(SEED_DIM).reindex({STEP_DIM: steps})
    allow = (_ntk_change(ctx, steps) * abs(np.log(loss_0 / loss_t))).fillna(0.0)
    return np.minimum(allow, validity.LAZY_LOSS_ALLOWANCE_MAX)


def _decay_span(comparison: Comparison, point: Point) -> int:
    """Layers between the first and last fitted layer of a decay rate (>= 1)."""
    return max(point.arch.depth - comparison.first_layer, 1)


def _cells(measured: xr.DataArray, *others: xr.DataArray) -> list[xr.DataArray]:
    """Broadcast ``others`` against ``measured`` and put ``seed`` last everywhere."""
    arrays = xr.broadcast(measured, *others)
    dims = [d for d in arrays[0].dims if d != SEED_DIM] + [SEED_DIM]
    return [a.transpose(*[d for d in dims if d in a.dims]) for a in arrays]


def _cell_template(da: xr.DataArray) -> xr.DataArray:
    """An empty float array over ``da``'s cell dims (``da`` without seed)."""
    cells = da.isel({SEED_DIM: 0}, drop=True) if SEED_DIM in da.dims else da
    return xr.full_like(cells, np.nan, dtype=float)


def _flags(reasons: xr.DataArray, template: xr.DataArray) -> np.ndarray:
    """Boolean ``outside`` over the template's cells from reason strings."""
    r = reasons.broadcast_like(template).transpose(*template.dims).values
    return np.vectorize(bool, otypes=[bool])(r) if r.size else np.zeros(r.shape, bool)


# --- packaging -------------------------------------------------------------------------------

def _package(ctx: Context, comparison: Comparison, template: xr.DataArray,
             values: dict[str, np.ndarray], reasons: xr.DataArray, description: str,
             power: PowerFn | None = None) -> dict[str, xr.DataArray]:
    """Holm-adjust, compute the detectable error at the Holm level, decide the verdicts and
    label every variable of one comparison.

    ``power(level)`` returns the minimum detectable error per cell at ``level``; it is
    evaluated at level / m, m the number of tested cells of the row (Holm's first step), so
    "agree" means the row could have seen an error of ``max_detectable`` in that cell.
    """
    p = np.asarray(values["p"], dtype=float)
    outside = _flags(reasons, template)
    if "mean" in values and comparison.test not in ("exponent", "width_exponent"):
        # no cell where nothing was measured or both sides are exactly 0 (e.g. bias gradients
        # at sigma_b = 0), inside the domain or out
        mean = np.broadcast_to(np.asarray(values["mean"], dtype=float), p.shape)
        pred = np.broadcast_to(np.asarray(values.get("pred", np.nan), dtype=float), p.shape)
        empty = ~np.isfinite(mean) | ((mean == 0) & ~(np.nan_to_num(pred) > 0))
        outside = outside & ~empty
    tested = np.isfinite(p) & ~outside
    n_tested = int(tested.sum())
    p_holm = np.full(p.shape, np.nan)
    if n_tested:
        p_holm[tested] = stats.holm(p[tested])
    detectable = np.full(p.shape, np.nan)
    if power is not None and n_tested:
        detectable = np.broadcast_to(np.asarray(power(ctx.level / n_tested), dtype=float),
                                     p.shape).copy()
    max_detectable = comparison.max_detectable
    if comparison.test == "pooled_kurtosis":  # relative: an error of (ratio - 1) x kappa
        max_detectable = comparison.max_detectable * np.abs(np.broadcast_to(
            np.asarray(values["pred"], dtype=float), p.shape))
    if comparison.layers == "decay":  # ln 2 over the whole network, per layer
        max_detectable = math.log(decl.MAX_RATIO) / np.maximum(
            _depth(ctx).broadcast_like(template).transpose(*template.dims).values, 1)
    powered = detectable
    if not np.isfinite(np.atleast_1d(max_detectable)).any():  # a deterministic bound
        powered, max_detectable = np.zeros(p.shape), math.inf
    codes = stats.verdict_codes(np.where(tested, p_holm, p), powered, ctx.level,
                                max_detectable, outside=outside)
    codes = np.where(outside | np.isfinite(p), codes, np.nan)
    agrees = np.where(codes == stats.AGREE, 1.0, np.where(codes == stats.DISAGREE, 0.0, np.nan))
    labelled = {**{k: v for k, v in values.items() if k != "p"}, "p": p, "p_holm": p_holm,
                "detectable": detectable, "verdict": codes, "agrees": agrees}
    out = {}
    for suffix, value in labelled.items():
        da = template.copy(data=np.broadcast_to(np.asarray(value, dtype=float),
                                                template.shape).copy())
        da.attrs = {"long_name": f"{comparison.title}: {MEANING.get(suffix, suffix)}",
                    "units": "1"}
        out[f"{comparison.name}_{suffix}"] = da
    out[f"{comparison.name}_verdict"].attrs.update({
        "flag_values": [0, 1, 2, 3], "flag_meanings": "disagree agree outside undetermined",
        "test": comparison.test, "steps": comparison.steps,
        "tested_steps": _tested_steps(template, tested, comparison),
        "domain": decl.domain_text(comparison), "allowance": decl.allowance_text(comparison),
        "max_detectable": float(np.max(np.atleast_1d(max_detectable))),
        "level": ctx.level, "n_tested": n_tested,
        "raw_disagree": int((tested & (p < ctx.level)).sum()),
        "expected_false_raw": stats.expected_false_disagreements(n_tested, ctx.level),
        "description": description, "source": comparison.source})
    reason = reasons.broadcast_like(template).transpose(*template.dims)
    out[f"{comparison.name}_reason"] = reason.where(outside, "").astype(str).assign_attrs(
        long_name=f"{comparison.title}: why outside the validity domain ('' inside)")
    return out


MEANING = {
    "mean": "measured: seed mean", "pred": "prediction: seed mean",
    "ratio": "exp(estimate): measured / predicted", "estimate": "test estimate",
    "se": "standard error of the estimate", "p": "raw p-value",
    "p_holm": "Holm-adjusted p-value within the comparison",
    "detectable": "minimum detectable error at the row's Holm level (80% power)",
    "allowance": "model-error allowance", "verdict": "verdict",
    "agrees": "agrees with theory (1 / 0 / NaN)", "rel_err": "measured / predicted - 1",
    "z": "estimate / standard error", "tightness": "bound / measured norm: seed mean",
    "ks_stat": "KS statistic", "n_values": "pooled values", "zero_seeds": "seeds measured 0",
    "n_widths": "widths in the fit", "ln_chi1": "ln chi_1 (fixed-point rate)",
    "slope": "fitted coefficient of 1/width (ln units x width)",
    "dof": "degrees of freedom of the test"}


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
    if comparison.layers in ("decay", "window"):
        return _decay(ctx, comparison, measured, predicted)
    mask = _layer_mask(ctx, comparison.layers)
    if mask is not None:
        predicted = predicted.where(mask)
    steps = measured[STEP_DIM].values if STEP_DIM in measured.dims else np.zeros(1, int)
    reasons, allowance = _domain(ctx, comparison, steps), _allowance(ctx, comparison, steps)
    if STEP_DIM not in measured.dims:
        reasons, allowance = (a.isel({STEP_DIM: 0}, drop=True) for a in (reasons, allowance))
    m, p, allow = _cells(measured, predicted, allowance)
    template = _cell_template(m)
    allow_cells = allow.isel({SEED_DIM: 0}).values
    mv, pv = m.values, p.values
    if comparison.test == "log_ratio":
        def test(level: float) -> stats.TestResult:
            return stats.log_ratio_test(mv, pv, level, allowance=allow_cells)
    else:
        def test(level: float) -> stats.TestResult:
            return stats.difference_test(mv - pv, 0.0, level, allowance=allow_cells)
    result = test(ctx.level)
    pvalue = result.pvalue
    values: dict[str, np.ndarray] = {}
    if comparison.test == "log_ratio":
        zero_seeds = ((mv == 0) & (pv > 0)).sum(axis=-1)  # dead where theory says alive
        pvalue = np.where(zero_seeds > 0, 0.0, pvalue)
        values = {"ratio": np.exp(result.estimate), "zero_seeds": zero_seeds}
    mean, pred = m.mean(SEED_DIM).values, p.mean(SEED_DIM).values
    with np.errstate(divide="ignore", invalid="ignore"):
        values.update({"mean": mean, "pred": pred, "estimate": result.estimate,
                       "se": result.se, "p": pvalue, "allowance": allow_cells,
                       "rel_err": mean / pred - 1, "z": result.estimate / result.se})
    return _package(ctx, comparison, template, values, reasons,
                    f"{comparison.test} test per seed; {comparison.title}",
                    power=lambda level: test(level).detectable)


def _decay(ctx: Context, comparison: Comparison, measured: xr.DataArray,
           predicted: xr.DataArray) -> dict[str, xr.DataArray]:
    """Per-seed mean ln(q_l / q_{l+1}) over layers first_layer..depth of the measurement vs
    the predicted curve's (same seed): a difference test per configuration at step 0.
    ``"window"`` rows fit layers first_layer..depth - readout_gap and take the predicted rate
    itself (a prediction without a layer dim)."""
    if STEP_DIM in measured.dims:
        if 0 not in measured[STEP_DIM].values:
            ctx.note(f"{comparison.name}: needs step 0 (init) recorded")
            return {}
        measured, predicted = (a.sel({STEP_DIM: 0}) if STEP_DIM in a.dims else a
                               for a in (measured, predicted))
    first = comparison.first_layer
    coords = {a: ctx.ds[a].values for a in ctx.axes}
    coords[SEED_DIM] = measured[SEED_DIM].values
    rate_m = xr.DataArray(np.full(tuple(len(v) for v in coords.values()), np.nan),
                          dims=list(coords), coords=coords)
    rate_p = rate_m.copy()
    window = comparison.layers == "window"
    last_gap = comparison.readout_gap if window else 0
    for key, points in ctx.configs.items():
        layers = np.arange(first, points[0].arch.depth + 1 - last_gap)
        if len(layers) < 2:
            continue
        for seed in rate_m[SEED_DIM].values:
            s = {**ctx.sel(key), SEED_DIM: seed}
            rate_m.loc[s] = _rate(layers, measured.sel(s).sel({LAYER_DIM: layers}).values)
            if LAYER_DIM not in predicted.dims:  # the predicted per-layer rate itself
                rate_p.loc[s] = float(predicted.sel(s).values)
            else:
                rate_p.loc[s] = _rate(layers, predicted.sel(s).sel({LAYER_DIM: layers}).values)
    if bool(rate_m.isnull().all()):
        ctx.note(f"{comparison.name}: needs depth >= {first + 1 + last_gap}")
        return {}
    steps = np.zeros(1, int)
    reasons = _domain(ctx, comparison, steps).isel({STEP_DIM: 0}, drop=True)
    allowance = _allowance(ctx, comparison, steps).isel({STEP_DIM: 0}, drop=True)
    m, p, allow = _cells(rate_m, rate_p, allowance)
    template = _cell_template(m)
    allow_cells = allow.isel({SEED_DIM: 0}).values
    diff = m.values - p.values

    def test(level: float) -> stats.TestResult:
        return stats.difference_test(diff, 0.0, level, allowance=allow_cells)

    result = test(ctx.level)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {"mean": m.mean(SEED_DIM).values, "pred": p.mean(SEED_DIM).values,
                  "estimate": result.estimate, "se": result.se, "p": result.pvalue,
                  "allowance": allow_cells, "z": result.estimate / result.se}
    if "theory_ln_chi1" in ctx.ds and not window:
        ln_chi1 = ctx.ds["theory_ln_chi1"].mean(SEED_DIM)
        values["ln_chi1"] = ln_chi1.broadcast_like(template).transpose(*template.dims).values
    description = ("mean ln(q_l/q_{l+1}) over layers per seed vs the predicted curve's, at init"
                   if not window else
                   f"OLS rate -d ln q_l/dl over layers {first}..depth-{last_gap} per seed vs "
                   "the predicted rate, at init")
    return _package(ctx, comparison, template, values, reasons, description,
                    power=lambda level: test(level).detectable)


def _rate(layers: np.ndarray, values: np.ndarray) -> float:
    """-slope of ln(values) vs layer: the mean ln(q_l / q_{l+1}) (NaN unless all > 0)."""
    values = np.asarray(values, dtype=float)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        return math.nan
    return -stats.fit_line(layers, np.log(values)).slope


def _ratio_values(result: stats.TestResult, mean, pred) -> dict[str, np.ndarray]:
    """The per-cell variables of a ratio test: seed means, ratio, estimate, SE, raw p."""
    return {"mean": np.asarray(mean, dtype=float), "pred": np.asarray(pred, dtype=float),
            "ratio": np.exp(result.estimate), "estimate": result.estimate, "se": result.se,
            "p": result.pvalue}


def run_quadratic_form(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """chi^2-like statistics against their per-seed null distribution over f ~ GP."""
    mean_name, var_name = comparison.predicted
    measured = _variable(ctx, comparison, comparison.measured)
    null_mean = _variable(ctx, comparison, mean_name)
    null_var = _variable(ctx, comparison, var_name)
    if measured is None or null_mean is None or null_var is None:
        return {}
    if comparison.null_inflation:
        # Var(m) = Var_f(E[m|f]) + E_f[Var(m|f)], Var(m|f) = E[m|f]^2 (e^{s^2} - 1) with the
        # theory's envelope s^2 = 4 beta (`validity.conditional_log_variance`), not estimated
        s2 = ctx.per_config(validity.conditional_log_variance).fillna(0.0)
        null_var = null_var + (null_mean**2 + null_var) * np.expm1(s2)
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    if STEP_DIM not in measured.dims:
        reasons = reasons.isel({STEP_DIM: 0}, drop=True)
    m, mu, var = _cells(measured, null_mean, null_var)
    template = _cell_template(m)
    mv, muv, vv = m.values, mu.values, var.values

    def test(level: float) -> stats.TestResult:
        return stats.quadratic_form_test(mv, muv, vv, level)

    result = test(ctx.level)
    mean, pred = m.mean(SEED_DIM).values, mu.mean(SEED_DIM).values
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {**_ratio_values(result, mean, pred), "rel_err": mean / pred - 1,
                  "z": (np.exp(result.estimate) - 1) / result.se}
    return _package(ctx, comparison, template, values, reasons,
                    "seed mean of measured / null mean vs the gamma law of the theory's null "
                    "mean and variance (f ~ GP at init)", power=lambda level: test(level).detectable)


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
    mv, muv = m.values, mu.values

    def test(level: float) -> stats.TestResult:
        return stats.quadratic_form_test(mv, muv, 2 * muv, level)

    result = test(ctx.level)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = _ratio_values(result, (m / mu).mean(SEED_DIM).values, np.ones(template.shape))
    return _package(ctx, comparison, template, values, reasons,
                    "mean z^2 of NNGP-whitened step-0 outputs; chi^2 null",
                    power=lambda level: test(level).detectable)


def run_ks(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Pooled NNGP-whitened step-0 outputs (all seeds) vs N(0, 1), per configuration. The
    detectable error is a CDF distance: the KS critical value at the row's Holm level plus
    0.84 x 0.5/sqrt(N) (80% power; 0.5/sqrt(N) bounds the statistic's sd), to be compared with
    the distance of a factor-2 variance error (`comparisons.KS_MAX_DISTANCE`)."""
    z = _variable(ctx, comparison, comparison.measured)
    if z is None:
        return {}
    reasons = _domain(ctx, comparison, np.zeros(1, int)).isel({STEP_DIM: 0}, drop=True)
    cells = z.isel({d: 0 for d in z.dims if d not in (*ctx.axes, SEED_DIM)}, drop=True)
    template = _cell_template(cells)
    p, ks, n = (np.full(template.shape, np.nan) for _ in range(3))
    for key in ctx.configs:
        sel = ctx.sel(key)
        pooled = (z.sel(sel) if sel else z).values.ravel()
        pooled = pooled[np.isfinite(pooled)]
        if len(pooled) < 8:
            continue
        res = sps.kstest(pooled, "norm")
        index = tuple(list(template[a].values).index(sel[a]) for a in template.dims)
        ks[index], p[index], n[index] = res.statistic, res.pvalue, len(pooled)

    def power(level: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            critical = sps.kstwo.isf(level, np.where(n > 0, n, 1).astype(int))
        return np.where(n > 0, critical + 0.84 * 0.5 / np.sqrt(np.where(n > 0, n, 1)), np.nan)

    return _package(ctx, comparison, template, {"ks_stat": ks, "p": p, "n_values": n},
                    reasons, "Kolmogorov-Smirnov of pooled whitened outputs vs N(0, 1)",
                    power=power)


def run_bound(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """A bound on sqrt(grad_sq_norm) at step 0 holds on every seed (up to round-off)."""
    measured = _variable(ctx, comparison, comparison.measured)
    bound = _variable(ctx, comparison, comparison.predicted)
    if measured is None or bound is None:
        return {}
    rtol = ctx.per_config(lambda p: BOUND_RTOL.get(p.dtype, 1e-4)).fillna(1e-4)
    m, b, r = _cells(np.sqrt(measured), bound, rtol)
    template = _cell_template(m)
    finite = np.isfinite(m.values) & np.isfinite(b.values)
    holds = np.where(finite, b.values >= m.values * (1 - r.values), True)
    p = np.where(finite.any(axis=-1), np.where(holds.all(axis=-1), 1.0, 0.0), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(finite & (m.values > 0), b.values / m.values, np.nan)
        n_ok = np.isfinite(ratio).sum(axis=-1)
        tight = np.where(n_ok > 0, np.nansum(ratio, axis=-1) / np.maximum(n_ok, 1), np.nan)
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    if STEP_DIM not in measured.dims:
        reasons = reasons.isel({STEP_DIM: 0}, drop=True)
    values = {"mean": m.mean(SEED_DIM).values, "pred": b.mean(SEED_DIM).values, "p": p,
              "tightness": tight}
    return _package(ctx, comparison, template, values, reasons,
                    "deterministic bound on every seed's step-0 gradient norm")


def run_log_variance(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Variance over seeds of ln(measured) vs the prediction, as ln(s^2 / v) with SE
    sqrt(2/(n-1) + kappa/n), kappa the excess kurtosis the theory predicts."""
    measured = _variable(ctx, comparison, comparison.measured)
    predicted = _variable(ctx, comparison, comparison.predicted)
    if measured is None or predicted is None:
        return {}
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    m, p = _cells(np.log(measured.where(measured > 0)), predicted)
    template = _cell_template(m)
    kurt = None
    if comparison.kurtosis and comparison.kurtosis in ctx.ds:
        k = ctx.ds[comparison.kurtosis].mean(SEED_DIM)
        kurt = k.broadcast_like(template).transpose(*template.dims).values
    mv, pred = m.values, p.mean(SEED_DIM).values

    def test(level: float) -> stats.TestResult:
        return stats.log_variance_test(mv, pred, level, excess_kurtosis=kurt)

    result = test(ctx.level)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = _ratio_values(result, np.exp(result.estimate) * pred, pred)
    return _package(ctx, comparison, template, values, reasons,
                    "variance over seeds of ln grad_sq_norm at init vs Hanin-Nica",
                    power=lambda level: test(level).detectable)


def run_log_mean(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Mean over seeds of ln(measured) vs ln(``predicted[0]``) + ``predicted[1]`` (the
    infinite-width mean and the finite-width shift of the mean log), a t-test on the log
    scale: the ratio shown is exp(mean ln m - predicted), a ratio of geometric means."""
    mean_name, shift_name = comparison.predicted
    measured = _variable(ctx, comparison, comparison.measured)
    mean = _variable(ctx, comparison, mean_name)
    shift = _variable(ctx, comparison, shift_name)
    if measured is None or mean is None or shift is None:
        return {}
    reasons = _domain(ctx, comparison, np.zeros(1, int))
    m, mu, sh = _cells(np.log(measured.where(measured > 0)), mean, shift)
    template = _cell_template(m)
    with np.errstate(invalid="ignore", divide="ignore"):
        pred = (np.log(mu.where(mu > 0)) + sh).mean(SEED_DIM).values
    mv = m.values

    def test(level: float) -> stats.TestResult:
        return stats.log_mean_test(mv, pred, level)

    result = test(ctx.level)
    with np.errstate(invalid="ignore", over="ignore"):
        values = _ratio_values(result, np.exp(np.nanmean(mv, axis=-1)), np.exp(pred))
    return _package(ctx, comparison, template, values, reasons,
                    "mean over seeds of ln grad_sq_norm at init vs Hanin-Nica",
                    power=lambda level: test(level).detectable)


def run_pooled_kurtosis(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """Excess kurtosis of a layer's pre-activations pooled over units and seeds,
    mean_s m4 / (mean_s m2)^2 - 3 with m2 = forward_q and m4 = ``measured`` per seed, vs the
    prediction (``predicted[0]``), with the theory's null standard error (``predicted[1]``:
    the per-seed sd of the delta-method influence values), per layer at step 0. Cells outside
    `validity.preact_kurtosis_layer` (layer 1, the readout, predicted kurtosis above
    KURTOSIS_MAX) are `outside`; an error of (MAX_RATIO - 1) x the prediction must be visible."""
    m4 = _variable(ctx, comparison, comparison.measured)
    m2 = _variable(ctx, comparison, "forward_q")
    pred_name, sd_name = comparison.predicted
    if m4 is None or m2 is None:
        return {}
    predicted = _variable(ctx, comparison, pred_name)
    if predicted is None:
        return {}
    # the exact standard error is stored only inside the domain: elsewhere the cells are
    # outside (the leading-order prediction is stored for every plain Gaussian MLP on spheres)
    sd = ctx.ds[sd_name] if sd_name in ctx.ds else xr.full_like(predicted, np.nan)
    steps = m4[STEP_DIM].values if STEP_DIM in m4.dims else np.zeros(1, int)
    reasons = _domain(ctx, comparison, steps)
    if STEP_DIM not in m4.dims:
        reasons = reasons.isel({STEP_DIM: 0}, drop=True)
    mm4, mm2, pp, ss = _cells(m4, m2, predicted, sd)
    template = _cell_template(mm4)
    pred = pp.mean(SEED_DIM)
    reasons = reasons.broadcast_like(template).transpose(*template.dims).copy()
    for key, points in ctx.configs.items():
        sel = ctx.sel(key)
        if reasons.sel(sel).isel({d: 0 for d in reasons.dims if d not in ctx.axes}).item():
            continue  # the whole configuration is outside
        for layer in template[LAYER_DIM].values:
            value = float(pred.sel({**sel, LAYER_DIM: layer}).max()) if STEP_DIM in pred.dims \
                else float(pred.sel({**sel, LAYER_DIM: layer}))
            reason = validity.preact_kurtosis_layer(points[0], int(layer), value)
            if reason and int(layer) <= points[0].arch.n_layers:
                reasons.loc[{**sel, LAYER_DIM: layer}] = reason
    pv, sdv = pred.values, ss.mean(SEED_DIM).values
    m2v, m4v = mm2.values, mm4.values

    def test(level: float) -> stats.TestResult:
        return stats.pooled_kurtosis_test(m2v, m4v, pv, level, influence_sd=sdv)

    result = test(ctx.level)
    values = {"mean": result.estimate + pv, "pred": pv, "estimate": result.estimate,
              "se": result.se, "p": result.pvalue, "allowance": np.zeros(template.shape),
              "z": result.estimate / result.se}
    return _package(ctx, comparison, template, values, reasons,
                    "pooled excess kurtosis over units and seeds at init vs the exact formula",
                    power=lambda level: test(level).detectable)


def exponent_inputs(results: xr.Dataset, name: str) -> xr.DataArray | None:
    """What the exponent row ``name`` fits: its measured variable over (axes..., seed), at
    each configuration's last finite step for step-dependent rows, NaN outside the row's
    validity domain; None when the results cannot feed the row. Figures fit it with
    `fit_exponent_part`, exactly as `compare` does."""
    ctx = _context(results, DEFAULT_LEVEL)
    out = _exponent_values(ctx, decl.by_name(name))
    return None if out is None else out[0]


def fit_exponent_part(part: xr.DataArray, level: float = DEFAULT_LEVEL
                      ) -> tuple[stats.LineFit | None, list]:
    """The width-exponent fit of one configuration's values (width, [seed]) over the widths
    with any finite value (None with fewer than 3), and those widths."""
    ok = [w for w in part["width"].values if bool(part.sel(width=w).notnull().any())]
    if len(ok) < 3:
        return None, ok
    part = part.sel(width=ok).transpose("width", ...)
    return stats.fit_width_exponent(part["width"].values, part.values, level), ok


def _exponent_values(ctx: Context, comparison: Comparison
                     ) -> tuple[xr.DataArray, xr.DataArray] | None:
    """(values NaN outside the domain, reasons) of an exponent row; None with a note."""
    values = _variable(ctx, comparison, comparison.measured)
    if values is None:
        return None
    if "width" not in ctx.axes or ctx.ds.sizes["width"] < 3:
        ctx.note(f"{comparison.name}: needs {comparison.needs}")
        return None
    if STEP_DIM in values.dims:
        values, last = _last_finite_step(values)
        if not np.any(last > 0):
            ctx.note(f"{comparison.name}: needs {comparison.needs}")
            return None
        reasons_full = _last_step_domain(ctx, comparison, last)
    else:
        reasons_full = _domain(ctx, comparison, np.zeros(1, int)).isel({STEP_DIM: 0}, drop=True)
    return values.where(reasons_full == ""), reasons_full


def run_exponent(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    """OLS of ln(value) on ln(width) over widths (inside the domain) and seeds, per
    combination of the other axes; H0 |slope - predicted| <= allowance."""
    prepared = _exponent_values(ctx, comparison)
    if prepared is None:
        return {}
    values, reasons_full = prepared
    pred = comparison.exponent
    others = [a for a in ctx.axes if a != "width"]
    template = xr.full_like(reasons_full.isel(width=0, drop=True), np.nan, dtype=float)
    slope, se, p, n_widths, dof = (template.copy() for _ in range(5))
    reasons = template.astype(object).copy(data=np.full(template.shape, "", dtype=object))
    for combo in _combos(ctx, others):
        present = [k for k in ctx.configs if all(ctx.sel(k)[a] == v for a, v in combo.items())]
        if not present:
            continue  # an absent combination is no cell
        fit, ok = fit_exponent_part(values.sel(combo) if combo else values, ctx.level)
        if len(ok) < 3:
            part = reasons_full.sel(combo) if combo else reasons_full
            why = sorted({str(r) for r in np.ravel(part.values) if r})
            reasons.loc[combo] = "fewer than 3 widths inside the validity domain" + (
                f" (the others: {why[0]})" if why else "")
            continue
        if fit is None:
            continue
        slope.loc[combo], se.loc[combo], dof.loc[combo] = fit.slope, fit.slope_se, fit.dof
        n_widths.loc[combo] = len(ok)
    estimate = slope.values - pred
    excess = np.abs(estimate) - decl.EXPONENT_ALLOWANCE
    with np.errstate(invalid="ignore", divide="ignore"):
        tail = sps.t.sf(excess / se.values, dof.values) + sps.t.sf(
            (np.abs(estimate) + decl.EXPONENT_ALLOWANCE) / se.values, dof.values)
    pvalue = np.where(np.isfinite(estimate), np.where(excess <= 0, 1.0, np.minimum(tail, 1.0)),
                      np.nan)

    def power(level: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            margin = sps.t.isf(level / 2, dof.values) + sps.t.ppf(stats.DEFAULT_POWER, dof.values)
        return decl.EXPONENT_ALLOWANCE + margin * se.values

    values_out = {"mean": slope.values, "pred": np.full(template.shape, pred),
                  "estimate": estimate, "se": se.values, "p": pvalue,
                  "n_widths": n_widths.values}
    return _package(ctx, comparison, template, values_out, reasons,
                    f"OLS ln y ~ ln width over widths and seeds; exponent {pred} "
                    f"+- {decl.EXPONENT_ALLOWANCE}", power=power)


def _last_finite_step(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Per configuration and seed, the value at the last step where it is finite, and that
    step per configuration (max over seeds; -1 where none)."""
    steps = da[STEP_DIM]
    finite = da.notnull()
    last = steps.where(finite).max(STEP_DIM)  # per (axes, seed)
    picked = da.where(steps == last).max(STEP_DIM)
    return picked, last.max(SEED_DIM).fillna(-1)


def _last_step_domain(ctx: Context, comparison: Comparison, last: xr.DataArray) -> xr.DataArray:
    """Reasons over the varying axes at each configuration's own last step."""
    reasons = ctx.per_config(lambda p: "", dtype=object)
    for key in ctx.configs:
        step = int(last.sel(ctx.sel(key))) if ctx.axes else int(last)
        if step < 0:
            continue
        reason = _domain(ctx, comparison, np.array([step])).sel(ctx.sel(key)).isel({STEP_DIM: 0})
        reasons.loc[ctx.sel(key)] = str(reason.item())
    return reasons


def _combos(ctx: Context, axes: list[str]) -> list[dict[str, Any]]:
    values = [ctx.ds[a].values for a in axes]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*values)]


RUNNERS: dict[str, Callable[[Context, Comparison], dict[str, xr.DataArray]]] = {
    "log_ratio": run_ratio_or_difference, "difference": run_ratio_or_difference,
    "quadratic_form": run_quadratic_form, "chi2_whitened": run_chi2_whitened, "ks": run_ks,
    "bound": run_bound, "log_variance": run_log_variance, "log_mean": run_log_mean, "exponent": run_exponent,
    "pooled_kurtosis": run_pooled_kurtosis,
    "width_exponent": lambda ctx, c: _run_width_exponent(ctx, c),
    "width_limit": lambda ctx, c: _run_width_limit(ctx, c),
    "claim": lambda ctx, c: _run_claim(ctx, c),
}


def _run_claim(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    from gradstats.results.claims import run_claim  # seed-paper claims (issue 19)

    return run_claim(ctx, comparison)


def _run_width_limit(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    from gradstats.results.compare_limit import run_width_limit

    return run_width_limit(ctx, comparison)


def _run_width_exponent(ctx: Context, comparison: Comparison) -> dict[str, xr.DataArray]:
    from gradstats.results.compare_updates import run_width_exponent

    return run_width_exponent(ctx, comparison)


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
        rows.append(SummaryRow(
            name=name, title=comparison.title, test=comparison.test,
            steps=str(attrs.get("tested_steps", "")),
            agree=int((codes == stats.AGREE).sum()), disagree=int((codes == stats.DISAGREE).sum()),
            outside=int((codes == stats.OUTSIDE).sum()),
            undetermined=int((codes == stats.UNDETERMINED).sum()),
            raw_disagree=int(attrs.get("raw_disagree", 0)),
            expected_false=float(attrs.get("expected_false_raw", math.nan)),
            detectable=_median(det), undetermined_detectable=_median(undet),
            typical=typical, reasons=outside_reasons,
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
