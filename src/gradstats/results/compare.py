"""Theory vs measurement: `compare(results) -> xr.Dataset` of means, predictions and verdicts.

Inputs of the theory. Theory at init depends on the inputs and targets of the minibatch, so
it is evaluated on exactly the step-0 minibatch each run used, re-created from the point spec
(`gradstats.simulate.probe_estimators.init_batch`; data and batch order derive from the point's
content key). Each seed has its own data draw, so a configuration's prediction is the mean of
its per-seed predictions: the expectation of the seed mean. Predictions have no seed dim.

Verdicts (`gradstats.results.stats.verdict`): a seed mean agrees with its prediction at
significance ``level`` when ``|mean - pred| <= crit * se + rel_tol * |pred|``, crit the
two-sided Student-t critical value with n_seeds - 1 degrees of freedom (the SE is estimated
from the seeds; z_crit for large n). The
model-error floor ``rel_tol = model_coef * beta`` with ``beta = max(depth, 1) / width``
(Hanin & Nica's sum of inverse widths) states that infinite-width theory is off by O(depth /
width) at finite width. ``*_agrees`` is 1 (agrees), 0 (disagrees) or NaN (undetermined, e.g.
one seed). Comparisons whose statistics were not recorded are skipped with a note in
``attrs["notes"]``.

Output variables (``<stat>`` a registry statistic with ``theory=True``, at step 0):
``<stat>_mean``, ``_se``, ``_pred``, ``_rel_err``, ``_z``, ``_agrees`` over the varying sweep
axes (and ``layer``); ``<q>_decay_*`` per-layer decay rates ln(q_l / q_{l+1}) vs theory and
``ln_chi1``; ``active_fraction_*``; ``ntk_init_rel_err_*`` and ``ntk_rel_change_*`` fitted
width exponents; ``nngp_*`` output Gaussianity; ``ln_grad_sq_norm_var_*`` finite-width
fluctuations; ``batch_noise_*`` minibatch gradient noise across batch sizes;
``product_bound_*``, ``relu_masked_bound_*`` (``_valid``, ``_tightness``) deterministic bounds
on the step-0 gradient norms (`gradstats.theory.bounds`); ``noise_scale_*`` B_simple at the
first and last recorded step (no theory: undetermined).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from gradstats import statistics
from gradstats.results import stats
from gradstats.spec import AXES, LAYER_DIM, SEED_DIM, STEP_DIM, Point

DEFAULT_LEVEL = 0.01
DEFAULT_MODEL_COEF = 3.0
ACTIVE_THRESHOLD = 1e-6  # as the simulator's active_fraction
NNGP_PROBE = 16  # inputs per network for the output-Gaussianity test
SUFFIXES = ("mean", "se", "pred", "rel_err", "z", "agrees")

Key = tuple


@dataclass
class Context:
    """What every comparison needs: the results, their points by configuration, settings."""

    ds: xr.Dataset
    axes: list[str]
    configs: dict[Key, list[Point]]
    theory: Any
    level: float
    model_coef: float
    notes: list[str] = field(default_factory=list)
    _preds: dict[Key, dict[str, np.ndarray] | None] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return self.ds.sizes.get(LAYER_DIM, 0)

    def sel(self, key: Key) -> dict[str, Any]:
        return dict(zip(self.axes, key, strict=True))

    def predictions(self, key: Key) -> dict[str, np.ndarray] | None:
        """Seed-mean theory predictions of configuration ``key`` at init (cached)."""
        if key not in self._preds:
            self._preds[key] = _predict_config(self, self.configs[key])
        return self._preds[key]


def compare(results: xr.Dataset, theory: Any = None, level: float = DEFAULT_LEVEL,
            model_coef: float = DEFAULT_MODEL_COEF) -> xr.Dataset:
    """Theory vs measurement for every comparison the results allow.

    ``results``: a sweep's dataset (`load_results`), which must carry its points in
    ``attrs["points"]``. ``theory``: any object with the functions of `gradstats.theory`
    (``predict_statistics``, ``signal_propagation``, ``nngp``, ``ntk``, ...); default the
    package itself. Returns the comparison dataset (see the module docstring).
    """
    ctx = _context(results, theory, level, model_coef)
    out: dict[str, xr.DataArray] = {}
    for comparison in COMPARISONS:
        out.update(comparison(ctx))
    cmp = xr.Dataset(out)
    cmp.attrs = {"level": level, "z_crit": stats.z_critical(level), "model_coef": model_coef,
                 "tolerance": "|mean - pred| <= t_crit(n_seeds-1)*se + model_coef*max(depth,1)/width*|pred|",
                 "notes": list(ctx.notes)}
    return cmp


# --- context ---------------------------------------------------------------------------------

def _context(ds: xr.Dataset, theory: Any, level: float, model_coef: float) -> Context:
    points_json = ds.attrs.get("points")
    if points_json is None or len(points_json) == 0:
        raise ValueError("results carry no point specs (attrs['points']); compare a results "
                         "directory or its sweep.zarr")
    if isinstance(points_json, str):
        points_json = [points_json]
    if theory is None:
        import gradstats.theory as theory
    axes = [a for a in AXES if a in ds.dims]
    configs: dict[Key, list[Point]] = {}
    for text in points_json:
        point = Point.from_json(text)
        values = point.axis_values()
        configs.setdefault(tuple(values[a] for a in axes), []).append(point)
    for pts in configs.values():
        pts.sort(key=lambda p: p.seed)
    return Context(ds=ds, axes=axes, configs=configs, theory=theory, level=level,
                   model_coef=model_coef)


def _lookup(obj: Any, name: str) -> Any:
    """``obj.name`` or None; lazy theory submodules that are not there yet count as absent."""
    try:
        return getattr(obj, name)
    except (AttributeError, ImportError):
        return None


def _theory_fn(ctx: Context, name: str, what: str) -> Callable | None:
    fn = _lookup(ctx.theory, name)
    if not callable(fn):
        fn = None
        _note(ctx, f"{what}: skipped, theory has no {name}()")
    return fn


def _note(ctx: Context, text: str) -> None:
    if text not in ctx.notes:
        ctx.notes.append(text)


def _predict_config(ctx: Context, points: list[Point]) -> dict[str, np.ndarray] | None:
    """Mean over the seeds' step-0 minibatches of ``theory.predict_statistics``."""
    fn = _theory_fn(ctx, "predict_statistics", "per-layer statistics at init")
    if fn is None:
        return None
    from gradstats.simulate.probe_estimators import init_batch

    acc: dict[str, list[np.ndarray]] = {}
    for point in points:
        x, y = init_batch(point)
        try:
            pred = fn(point.arch, x, y, loss=point.training.loss)
        except (ValueError, TypeError) as err:
            _note(ctx, f"per-layer statistics: theory failed for loss={point.training.loss} "
                       f"({type(err).__name__}: {err})")
            return None
        for name, value in pred.items():
            acc.setdefault(name, []).append(np.asarray(value, dtype=float))
    return {name: np.mean(values, axis=0) for name, values in acc.items()}


def _init_slice(ctx: Context, name: str) -> xr.DataArray | None:
    """``name`` at step 0 (dims: axes, seed, layer...), or None with a note."""
    if name not in ctx.ds:
        return None
    da = ctx.ds[name]
    if STEP_DIM in da.dims:
        if 0 not in ctx.ds[STEP_DIM].values:
            _note(ctx, f"{name}: skipped, step 0 (init) was not recorded")
            return None
        da = da.sel({STEP_DIM: 0})
    return da


def _empty(ctx: Context, extra: dict[str, np.ndarray] | None = None) -> xr.DataArray:
    """NaN array over the varying axes (plus ``extra`` dims with coordinates)."""
    coords = {a: ctx.ds[a].values for a in ctx.axes}
    coords.update(extra or {})
    shape = tuple(len(v) for v in coords.values())
    return xr.DataArray(np.full(shape, np.nan), dims=list(coords), coords=coords)


def _beta(ctx: Context) -> xr.DataArray:
    """max(depth, 1) / width over the varying axes (broadcasts scalar coords)."""
    return np.maximum(ctx.ds["depth"], 1) / ctx.ds["width"]


def _package(prefix: str, mean, se, pred, agrees, long_name: str, units: str = "1",
             description: str = "") -> dict[str, xr.DataArray]:
    """The six variables of one comparison with attrs."""
    values = {"mean": mean, "se": se, "pred": pred, "rel_err": stats.relative_error(mean, pred),
              "z": stats.z_score(mean, se, pred), "agrees": agrees}
    labels = {"mean": f"{long_name}: seed mean", "se": f"{long_name}: standard error",
              "pred": f"{long_name}: theory", "rel_err": f"{long_name}: relative error",
              "z": f"{long_name}: z-score", "agrees": f"{long_name}: agrees with theory"}
    out = {}
    for suffix, value in values.items():
        da = value if isinstance(value, xr.DataArray) else xr.DataArray(value)
        da = da.drop_vars([c for c in da.coords if c not in da.dims])
        unit = "1" if suffix in ("rel_err", "z", "agrees") else units
        da.attrs = {"long_name": labels[suffix], "units": unit, "description": description}
        out[f"{prefix}_{suffix}"] = da
    return out


# --- per-layer registry statistics at init -------------------------------------------------

def layer_statistics(ctx: Context) -> dict[str, xr.DataArray]:
    """Every registry statistic with theory=True vs ``predict_statistics`` at step 0."""
    out: dict[str, xr.DataArray] = {}
    names = [s.name for s in statistics.REGISTRY.values() if s.theory and s.name in ctx.ds]
    if not names:
        _note(ctx, "per-layer statistics: no statistic with theory in the results")
        return out
    rel_tol = ctx.model_coef * _beta(ctx)
    for name in names:
        measured = _init_slice(ctx, name)
        if measured is None:
            continue
        pred = _empty(ctx, {d: ctx.ds[d].values for d in measured.dims
                            if d not in ctx.axes and d != SEED_DIM})
        found = False
        for key in ctx.configs:
            p = ctx.predictions(key)
            if p is None or name not in p:
                continue
            value = np.asarray(p[name], dtype=float)
            if LAYER_DIM in pred.dims:
                value = _pad(value, ctx.n_layers)
            pred.loc[ctx.sel(key)] = value
            found = True
        if not found:
            _note(ctx, f"{name}: skipped, theory gave no prediction")
            continue
        mean, se = stats.seed_mean_se(measured)
        agrees = stats.verdict(mean, se, pred, ctx.level, rel_tol=rel_tol,
                               dof=measured.count(SEED_DIM) - 1)
        stat = statistics.get(name)
        out.update(_package(name, mean, se, pred, agrees, stat.long_name, stat.units,
                            "at init (step 0); theory: predict_statistics on the step-0 minibatch"))
    return out


def _pad(value: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    out[: len(value)] = value[:n]
    return out


# --- decay rates across layers -----------------------------------------------------------------

def decay_rates(ctx: Context) -> dict[str, xr.DataArray]:
    """Per-layer decay rate r = mean over layers of ln(q_l / q_{l+1}) (OLS slope of -ln q_l
    vs l) of backward_q (hidden layers 1..depth) and grad_sq_norm (layers 2..depth), per seed,
    vs the same fit of the predicted curve; ``ln_chi1`` is the fixed-point rate ln chi_1
    (r < 0: gradients vanish toward the input, r > 0: they explode)."""
    out: dict[str, xr.DataArray] = {}
    signal = _lookup(ctx.theory, "signal_propagation")
    for name, first in (("backward_q", 1), ("grad_sq_norm", 2)):
        measured = _init_slice(ctx, name)
        if measured is None:
            _note(ctx, f"{name} decay rate: skipped, {name} not recorded")
            continue
        seeds = measured[SEED_DIM].values
        meas = _empty(ctx, {SEED_DIM: seeds})
        pred, ln_chi1 = _empty(ctx), _empty(ctx)
        for key, points in ctx.configs.items():
            depth = points[0].arch.depth
            layers = np.arange(first, depth + 1)
            if len(layers) < 2:
                continue
            curve = measured.sel(ctx.sel(key)).sel({LAYER_DIM: layers})
            for s in seeds:
                values = curve.sel({SEED_DIM: s}).values
                if np.all(np.isfinite(values)) and np.all(values > 0):
                    meas.loc[{**ctx.sel(key), SEED_DIM: s}] = _rate(layers, values)
            p = ctx.predictions(key)
            if p is not None and name in p:
                pred.loc[ctx.sel(key)] = _rate(layers, np.asarray(p[name])[layers - 1])
            if signal is not None:
                ln_chi1.loc[ctx.sel(key)] = math.log(float(signal(points[0].arch).chi_1))
        if bool(meas.isnull().all()):
            _note(ctx, f"{name} decay rate: skipped, needs depth >= {first + 1}")
            continue
        mean, se = stats.seed_mean_se(meas)
        agrees = stats.verdict(mean, se, pred, ctx.level, dof=meas.count(SEED_DIM) - 1,
                               abs_tol=ctx.model_coef / ctx.ds["width"])
        out.update(_package(f"{name}_decay", mean, se, pred, agrees,
                            f"per-layer decay rate of {name}", "1/layer",
                            "mean ln(q_l/q_{l+1}) over layers at init; tolerance adds "
                            "model_coef/width"))
        ln_chi1.attrs = {"long_name": "ln chi_1 (fixed-point decay rate)", "units": "1/layer"}
        out["ln_chi1"] = ln_chi1
    if signal is None:
        _note(ctx, "ln chi_1: skipped, theory has no signal_propagation()")
    return out


def _rate(layers: np.ndarray, values: np.ndarray) -> float:
    """-slope of ln(values) vs layer: the mean ln(q_l / q_{l+1})."""
    return -stats.fit_line(layers, np.log(values)).slope


# --- active fraction ---------------------------------------------------------------------------

def _dphi(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """phi' in numpy, matching `gradstats.simulate.model.activation_derivative`."""
    from scipy.special import erf, expit

    fns = {
        "relu": lambda h: (h > 0).astype(float),
        "tanh": lambda h: 1 - np.tanh(h) ** 2,
        "erf": lambda h: 2 / np.sqrt(np.pi) * np.exp(-h * h),
        "sigmoid": lambda h: expit(h) * (1 - expit(h)),
        "gelu": lambda h: 0.5 * (1 + erf(h / np.sqrt(2))) + h * np.exp(-0.5 * h * h) / np.sqrt(2 * np.pi),
        "linear": np.ones_like,
        "softplus": expit,
        "abs": np.sign,
        "leaky_relu": lambda h: np.where(h > 0, 1.0, 0.01),
    }
    return fns[name]


def predicted_active_fraction(activation: str, q: float, n_grid: int = 20001) -> float:
    """P(|phi'(h)| > 1e-6) for h ~ N(0, q) (Riemann sum on [-12, 12] standard deviations)."""
    z = np.linspace(-12, 12, n_grid)
    w = np.exp(-0.5 * z * z)
    active = np.abs(_dphi(activation)(np.sqrt(q) * z)) > ACTIVE_THRESHOLD
    return float((w * active).sum() / w.sum())


def active_fraction(ctx: Context) -> dict[str, xr.DataArray]:
    """Fraction of active units per hidden layer vs P(|phi'(h_l)| > 1e-6), h_l ~ N(0, q_l)
    with q_l the predicted forward_q (1/2 for relu at any q)."""
    measured = _init_slice(ctx, "active_fraction")
    if measured is None:
        _note(ctx, "active_fraction: skipped, not recorded")
        return {}
    pred = _empty(ctx, {LAYER_DIM: ctx.ds[LAYER_DIM].values})
    for key, points in ctx.configs.items():
        p = ctx.predictions(key)
        if p is None or "forward_q" not in p:
            continue
        arch = points[0].arch
        values = [predicted_active_fraction(arch.activation, float(q))
                  for q in np.asarray(p["forward_q"])[: arch.depth]] + [1.0]
        pred.loc[ctx.sel(key)] = _pad(np.asarray(values), ctx.n_layers)
    if bool(pred.isnull().all()):
        return {}
    mean, se = stats.seed_mean_se(measured)
    agrees = stats.verdict(mean, se, pred, ctx.level, rel_tol=ctx.model_coef * _beta(ctx),
                           dof=measured.count(SEED_DIM) - 1)
    return _package("active_fraction", mean, se, pred, agrees, "fraction of active units",
                    description="at init; theory P(|phi'(h)| > 1e-6), h ~ N(0, q_l)")


def _along(da: xr.DataArray, dim: str) -> np.ndarray:
    """The coordinate of ``dim`` broadcast to ``da``'s shape (``dim`` first)."""
    coord = da[dim].values.astype(float)
    return np.broadcast_to(coord.reshape(-1, *([1] * (da.ndim - 1))), da.shape)


def _combos(ctx: Context, axes: list[str]) -> list[dict[str, Any]]:
    """Every combination of the coordinates of ``axes`` as selection dicts."""
    values = [ctx.ds[a].values for a in axes]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*values)]


# --- probes re-created from the spec: network outputs and empirical NTK at init ---------------

def nngp_outputs(ctx: Context) -> dict[str, xr.DataArray]:
    """Outputs at init over seeds vs the NNGP Gaussian. Per network, outputs on the first
    16 training inputs are whitened with the NNGP kernel K (`_whiten`); under the theory
    the pooled z (directions x outputs x seeds) are iid N(0, 1): a KS test, and mean z^2 = 1
    (SE sqrt(2 / n))."""
    nngp = _theory_fn(ctx, "nngp", "NNGP outputs")
    if nngp is None:
        return {}
    from gradstats.simulate.probe_estimators import init_outputs, probe_inputs

    ks, pvalue, var, var_se = (_empty(ctx) for _ in range(4))
    for key, points in ctx.configs.items():
        zs = []
        for point in points:
            x = probe_inputs(point, NNGP_PROBE)
            k = np.asarray(nngp(point.arch, x), dtype=float)
            zs.append(_whiten(k, init_outputs(point, x)).ravel())
        z = np.concatenate(zs)
        sel = ctx.sel(key)
        ks.loc[sel], pvalue.loc[sel] = stats.ks_standard_normal(z)
        var.loc[sel], var_se.loc[sel] = float(np.mean(z**2)), math.sqrt(2.0 / len(z))
    one = xr.ones_like(var)
    out = _package("nngp_output_var", var, var_se, one,
                   stats.verdict(var, var_se, one, ctx.level, rel_tol=ctx.model_coef * _beta(ctx)),
                   "mean squared whitened output at init",
                   description="mean of z^2, z = chol(K_nngp)^-1 f over 16 inputs and all seeds")
    agrees = xr.where(pvalue.notnull(), (pvalue > ctx.level).astype(float), np.nan)
    out["nngp_ks_stat"] = ks.assign_attrs(long_name="KS statistic of whitened outputs vs N(0,1)",
                                          units="1")
    out["nngp_ks_pvalue"] = pvalue.assign_attrs(long_name="KS p-value", units="1")
    out["nngp_ks_agrees"] = agrees.assign_attrs(
        long_name="outputs at init Gaussian with NNGP covariance (KS p > level)", units="1")
    return out


def _whiten(k: np.ndarray, f: np.ndarray, rcond: float = 1e-6) -> np.ndarray:
    """z = Lambda^-1/2 V^T f over the eigenpairs of K with eigenvalue > rcond * max (a
    near-singular K, e.g. deep ordered networks, keeps only its resolvable directions):
    f (n, outputs) -> z (kept, outputs), iid N(0, 1) when f ~ N(0, K) per output."""
    evals, evecs = np.linalg.eigh(0.5 * (k + k.T))
    keep = evals > rcond * evals.max()
    return (evecs[:, keep].T @ f) / np.sqrt(evals[keep])[:, None]


def ntk_init(ctx: Context) -> dict[str, xr.DataArray]:
    """Empirical NTK at init (re-created network, the `ntk` estimator's probe of the first
    min(64, n_train) inputs, traced over outputs) vs output_dim * theory.ntk: relative
    Frobenius error per seed, and its fitted width exponent (theory -1/2)."""
    if not _enough_widths(ctx, "empirical vs analytic NTK at init"):
        return {}
    ntk = _theory_fn(ctx, "ntk", "empirical vs analytic NTK")
    if ntk is None:
        return {}
    from gradstats.simulate.probe_estimators import init_ntk, probe_inputs

    err = _empty(ctx, {SEED_DIM: ctx.ds[SEED_DIM].values})
    for key, points in ctx.configs.items():
        for point in points:
            x = probe_inputs(point)
            theta = point.arch.output_dim * np.asarray(ntk(point.arch, x), dtype=float)
            rel = np.linalg.norm(init_ntk(point, x) - theta) / np.linalg.norm(theta)
            err.loc[{**ctx.sel(key), SEED_DIM: point.seed}] = rel
    mean, se = stats.seed_mean_se(err)
    out = {"ntk_init_rel_err_mean": mean.assign_attrs(
               long_name="relative error of empirical NTK at init: seed mean", units="1"),
           "ntk_init_rel_err_se": se.assign_attrs(
               long_name="relative error of empirical NTK at init: standard error", units="1")}
    out.update(_width_exponent(ctx, err, "ntk_init_exponent", -0.5,
                               "width exponent of empirical-NTK relative error"))
    return out


def ntk_change(ctx: Context) -> dict[str, xr.DataArray]:
    """Relative NTK change at the last recorded step vs width: fitted exponent vs -1/2
    (lazy training, ntk parameterization)."""
    if "ntk_rel_change" not in ctx.ds:
        _note(ctx, "NTK change vs width: skipped, ntk_rel_change not recorded "
                   "(measure = [\"ntk\"])")
        return {}
    last = ctx.ds[STEP_DIM].values.max()
    if last == 0:
        _note(ctx, "NTK change vs width: skipped, no training steps recorded")
        return {}
    change = ctx.ds["ntk_rel_change"].sel({STEP_DIM: last}).drop_vars(STEP_DIM)
    return _width_exponent(ctx, change, "ntk_change_exponent", -0.5,
                           f"width exponent of relative NTK change at step {int(last)}")


EXPONENT_TOL = 0.1


def _enough_widths(ctx: Context, what: str) -> bool:
    if "width" not in ctx.axes or ctx.ds.sizes["width"] < 3:
        _note(ctx, f"{what}: skipped, needs at least 3 widths")
        return False
    return True


def _width_exponent(ctx: Context, values: xr.DataArray, prefix: str, pred: float,
                    long_name: str) -> dict[str, xr.DataArray]:
    """OLS fit of ln(values) on ln(width) over widths and seeds, per combination of the other
    axes; agrees when the t-interval at ``level`` widened by 0.1 contains ``pred``."""
    if not _enough_widths(ctx, long_name):
        return {}
    others = [a for a in ctx.axes if a != "width"]
    template = _empty(ctx).isel(width=0, drop=True)
    slope, se, lo, hi, ok = (template.copy() for _ in range(5))
    for sel in _combos(ctx, others):
        part = (values.sel(sel) if sel else values).transpose("width", ...)
        widths = _along(part, "width")
        try:
            fit = stats.fit_power_law(widths, part.values, ctx.level)
        except ValueError:
            continue
        slope.loc[sel], se.loc[sel] = fit.slope, fit.slope_se
        lo.loc[sel], hi.loc[sel] = fit.ci
        ok.loc[sel] = float(fit.contains(pred, EXPONENT_TOL)) if np.isfinite(fit.ci[0]) else np.nan
    predicted = xr.full_like(slope, pred)
    out = _package(prefix, slope, se, predicted, ok, long_name,
                   description=f"OLS ln y ~ ln width over widths and seeds; agrees when the "
                               f"t-interval +- {EXPONENT_TOL} contains {pred}")
    out[f"{prefix}_ci_low"] = lo.assign_attrs(long_name=f"{long_name}: CI low", units="1")
    out[f"{prefix}_ci_high"] = hi.assign_attrs(long_name=f"{long_name}: CI high", units="1")
    return out


# --- minibatch gradient noise across batch sizes -----------------------------------------------

def batch_noise(ctx: Context) -> dict[str, xr.DataArray]:
    """E||g_B||^2 = ||g||^2 + (N-B)/(B(N-1)) tr Sigma (sampling without replacement, Sigma the
    per-example covariance over the N training examples): the slope of the seed-mean total
    squared minibatch gradient vs c_B = (N-B)/(B(N-1)) across batch sizes vs tr Sigma
    estimated from grad_noise_trace (x B/(B-1) x (N-1)/N, unbiased)."""
    if "grad_noise_trace" not in ctx.ds:
        _note(ctx, "batch-size gradient noise: skipped, grad_noise_trace not recorded "
                   "(measure = [\"per_example\"])")
        return {}
    if "batch_size" not in ctx.axes or ctx.ds.sizes["batch_size"] < 3:
        _note(ctx, "batch-size gradient noise: skipped, needs at least 3 batch sizes")
        return {}
    g2 = _init_slice(ctx, "grad_sq_norm").sum(LAYER_DIM, min_count=1)
    bias = _init_slice(ctx, "bias_grad_sq_norm")
    if bias is not None:
        g2 = g2 + bias.fillna(0.0).sum(LAYER_DIM)
    b = ctx.ds["batch_size"].astype(float)
    n = ctx.ds["n_train"].astype(float)
    trace = _init_slice(ctx, "grad_noise_trace") * b / (b - 1) * (n - 1) / n
    others = [a for a in ctx.axes if a != "batch_size"]
    template = _empty(ctx).isel(batch_size=0, drop=True)
    slope, slope_se, tr_mean, tr_se = (template.copy() for _ in range(4))
    for sel in _combos(ctx, others):
        y = (g2.sel(sel) if sel else g2).transpose("batch_size", ...)
        n_sel = float((n.sel(sel) if "n_train" in sel else n).values)
        b_values = _along(y, "batch_size")
        fit = stats.fit_line((n_sel - b_values) / (b_values * (n_sel - 1)), y.values, ctx.level)
        slope.loc[sel], slope_se.loc[sel] = fit.slope, fit.slope_se
        t = (trace.sel(sel) if sel else trace).values.ravel()
        t = t[np.isfinite(t)]
        tr_mean.loc[sel], tr_se.loc[sel] = t.mean(), t.std(ddof=1) / math.sqrt(len(t))
    se = np.sqrt(slope_se**2 + tr_se**2)
    return _package("batch_noise", slope, se, tr_mean,
                    stats.verdict(slope, se, tr_mean, ctx.level),
                    "tr Sigma from E||g_B||^2 vs (N-B)/(B(N-1))",
                    description="mean: fitted slope; pred: tr Sigma from per-example gradients")


# --- finite width: Hanin-Nica fluctuations of ln grad_sq_norm -----------------------------

def finite_width(ctx: Context) -> dict[str, xr.DataArray]:
    """Variance over seeds of ln grad_sq_norm at init per layer vs the finite-width theory
    (``theory.finite_width.ln_grad_sq_norm_variance(arch)`` -> (layer,), Hanin & Nica 2019:
    variance ~ 5 beta for relu He init);
    SE of a sample variance sqrt(2/(n-1)) * var."""
    fn = None
    for owner in (ctx.theory, _lookup(ctx.theory, "finite_width")):
        for name in FINITE_WIDTH_FUNCTIONS:
            candidate = _lookup(owner, name) if owner is not None else None
            fn = fn or (candidate if callable(candidate) and not isinstance(
                candidate, type(math)) else None)
    if fn is None:
        _note(ctx, "finite-width fluctuations: skipped, theory has none of "
                   + ", ".join(f"{n}()" for n in FINITE_WIDTH_FUNCTIONS))
        return {}
    measured = _init_slice(ctx, "grad_sq_norm")
    log_g = np.log(measured.where(measured > 0))
    var = log_g.var(SEED_DIM, ddof=1)
    se = stats.variance_se(var, log_g.count(SEED_DIM))
    pred = _empty(ctx, {LAYER_DIM: ctx.ds[LAYER_DIM].values})
    for key, points in ctx.configs.items():
        point = points[0]
        if point.training.batch_size != 1 or point.data.teacher != "zero":
            _note(ctx, "finite-width fluctuations: the prediction is for one example with target 0 "
                       "(batch_size = 1, teacher = \"zero\"); skipped for this sweep")
            continue
        try:
            value = np.asarray(fn(point.arch), dtype=float)
        except ValueError as err:  # e.g. not a relu network
            _note(ctx, f"finite-width fluctuations: {err}")
            continue
        pred.loc[ctx.sel(key)] = _pad(np.broadcast_to(np.asarray(value, float),
                                                      (points[0].arch.n_layers,)), ctx.n_layers)
    if bool(pred.isnull().all()):
        _note(ctx, "finite-width fluctuations: skipped, theory gave no ln_grad_sq_norm_var")
        return {}
    return _package("ln_grad_sq_norm_var", var, se, pred,
                    stats.verdict(var, se, pred, ctx.level), "variance of ln grad_sq_norm",
                    description="over seeds at init vs Hanin-Nica finite-width prediction")


# --- product bounds on per-layer gradient norms at init ------------------------------------

BOUND_RTOL = {"float32": 1e-4, "float64": 1e-9}  # round-off of the float32/64 measurement
BOUND_FUNCTIONS = ("product_bound", "relu_masked_bound")


def _bound_fn(ctx: Context, name: str) -> Callable | None:
    """``theory.<name>`` or ``theory.bounds.<name>`` (looked up at call time), or None."""
    for owner in (ctx.theory, _lookup(ctx.theory, "bounds")):
        fn = _lookup(owner, name) if owner is not None else None
        if callable(fn):
            return fn
    return None


def product_bounds(ctx: Context) -> dict[str, xr.DataArray]:
    """`theory.bounds.product_bound` (and, for relu, `relu_masked_bound`) per layer on each
    seed's re-created step-0 network and minibatch (`init_bound_inputs`), scaled to the raw
    weights (x w_mult, `bounds.raw_scale`), vs the measured minibatch gradient norm
    sqrt(grad_sq_norm) at step 0. ``<bound>_valid``: 1 when bound >= norm * (1 - rtol) on
    every seed (rtol the dtype's round-off allowance), ``<bound>_tightness``: seed mean (and
    SE) of bound / norm (>= 1 when valid); ``<bound>_agrees`` repeats ``_valid`` for the
    summary."""
    measured = _init_slice(ctx, "grad_sq_norm")
    if measured is None:
        _note(ctx, "product bounds: skipped, grad_sq_norm at step 0 not recorded")
        return {}
    fns = {name: _bound_fn(ctx, name) for name in BOUND_FUNCTIONS}
    if fns["product_bound"] is None:
        _note(ctx, "product bounds: skipped, theory has no bounds.product_bound()")
        return {}
    from gradstats.simulate.probe_estimators import init_bound_inputs

    seeds = ctx.ds[SEED_DIM].values
    layers = ctx.ds[LAYER_DIM].values
    ratio = {name: _empty(ctx, {SEED_DIM: seeds, LAYER_DIM: layers}) for name in fns}
    valid = {name: _empty(ctx, {SEED_DIM: seeds, LAYER_DIM: layers}) for name in fns}
    for key, points in ctx.configs.items():
        for point in points:
            sel = {**ctx.sel(key), SEED_DIM: point.seed}
            norm = np.sqrt(np.asarray(measured.sel(sel).values, dtype=float))
            inputs = None
            for name, fn in fns.items():
                if fn is None or (name == "relu_masked_bound" and point.arch.activation != "relu"):
                    continue
                inputs = inputs or init_bound_inputs(point)
                args = (inputs["weights"], inputs["preacts"], inputs["grad_output"], inputs["x"])
                bound = np.asarray(fn(*args, point.arch.activation) if name == "product_bound"
                                   else fn(*args), dtype=float)
                bound = bound * np.asarray(inputs["w_mult"], dtype=float)  # raw weights
                n = min(len(bound), len(norm))
                b, m = _pad(bound, len(layers)), np.full(len(layers), np.nan)
                m[:n] = norm[:n]
                ok = np.where(np.isfinite(b) & np.isfinite(m),
                              (b >= m * (1 - BOUND_RTOL.get(point.dtype, 1e-4))).astype(float),
                              np.nan)
                valid[name].loc[sel] = ok
                ratio[name].loc[sel] = np.where(m > 0, b / np.where(m > 0, m, 1.0), np.nan)
    out: dict[str, xr.DataArray] = {}
    for name in fns:
        if bool(valid[name].isnull().all()):
            if name == "relu_masked_bound" and fns[name] is not None:
                continue  # no relu network in the sweep: nothing to say
            _note(ctx, f"{name}: skipped, theory gave no bound")
            continue
        tested = valid[name].count(SEED_DIM)
        all_valid = (valid[name].min(SEED_DIM) == 1).astype(float).where(tested > 0)
        mean, se = stats.seed_mean_se(ratio[name])
        what = "product bound" if name == "product_bound" else "relu masked product bound"
        desc = (f"theory.bounds.{name} on the step-0 network and minibatch (raw weights) vs "
                f"sqrt(grad_sq_norm) at step 0")
        out[f"{name}_valid"] = all_valid.assign_attrs(
            long_name=f"{what} >= measured gradient norm on every seed", units="1",
            description=desc)
        out[f"{name}_agrees"] = all_valid.copy().assign_attrs(
            long_name=f"{what} holds (= {name}_valid)", units="1", description=desc)
        out[f"{name}_tightness"] = mean.assign_attrs(
            long_name=f"{what} / measured gradient norm: seed mean", units="1", description=desc)
        out[f"{name}_tightness_se"] = se.assign_attrs(
            long_name=f"{what} / measured gradient norm: standard error", units="1")
    return out


# --- gradient noise scale over training ----------------------------------------------------

def noise_scale(ctx: Context) -> dict[str, xr.DataArray]:
    """The simple noise scale B_simple = tr Sigma / ||g||^2 (McCandlish et al. 2018; the
    ``grad_noise_scale`` statistic of the ``per_example`` estimator) at the first and the last
    recorded step: seed means and SEs. Theory makes no prediction: ``noise_scale_agrees`` is
    NaN (undetermined) everywhere."""
    if "grad_noise_scale" not in ctx.ds:
        _note(ctx, "gradient noise scale: skipped, grad_noise_scale not recorded "
                   "(measure = [\"per_example\"])")
        return {}
    da = ctx.ds["grad_noise_scale"]
    steps = ctx.ds[STEP_DIM].values
    out: dict[str, xr.DataArray] = {}
    for which, step in (("first", steps.min()), ("last", steps.max())):
        mean, se = stats.seed_mean_se(da.sel({STEP_DIM: step}).drop_vars(STEP_DIM))
        label = f"simple gradient noise scale B_simple at step {int(step)} ({which} recorded)"
        out[f"noise_scale_{which}_mean"] = mean.assign_attrs(
            long_name=f"{label}: seed mean", units="examples", step=int(step))
        out[f"noise_scale_{which}_se"] = se.assign_attrs(
            long_name=f"{label}: standard error", units="examples", step=int(step))
    out["noise_scale_agrees"] = xr.full_like(out["noise_scale_first_mean"], np.nan).assign_attrs(
        long_name="B_simple: no theory prediction (undetermined)", units="1")
    return out


FINITE_WIDTH_FUNCTIONS = ("ln_grad_sq_norm_variance",)

COMPARISONS: list[Callable[[Context], dict[str, xr.DataArray]]] = [
    layer_statistics, decay_rates, active_fraction, nngp_outputs, ntk_init, ntk_change,
    finite_width, batch_noise, product_bounds, noise_scale,
]


# --- summary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One comparison in the printed table."""

    name: str
    agree: int
    disagree: int
    undetermined: int
    median_rel_err: float
    max_abs_z: float
    detail: str


def summary_rows(cmp: xr.Dataset) -> list[SummaryRow]:
    """A row per ``*_agrees`` variable of a comparison dataset."""
    rows = []
    for name in cmp.data_vars:
        if not name.endswith("_agrees"):
            continue
        prefix = name.removesuffix("_agrees")
        verdicts = cmp[name]
        # NaN padding (layers beyond a depth, absent zip combinations) is no test
        for companion in ("pred", "mean", "pvalue", "tightness"):
            if f"{prefix}_{companion}" in cmp:
                verdicts = verdicts.where(cmp[f"{prefix}_{companion}"].notnull(), -1.0)
        verdicts = verdicts.values.ravel()
        rel = cmp.get(f"{prefix}_rel_err")
        z = cmp.get(f"{prefix}_z")
        med = float(np.nanmedian(np.abs(rel.values))) if rel is not None and \
            np.isfinite(rel.values).any() else np.nan
        zmax = float(np.nanmax(np.abs(z.values))) if z is not None and \
            np.isfinite(z.values).any() else np.nan
        rows.append(SummaryRow(prefix, int((verdicts == 1).sum()), int((verdicts == 0).sum()),
                               int(np.isnan(verdicts).sum()), med, zmax, _detail(cmp, prefix)))
    return rows


def _detail(cmp: xr.Dataset, prefix: str) -> str:
    """A short numeric hint per comparison (fitted exponents, KS p-values, rates)."""
    def rng(name: str) -> str:
        v = cmp[name].values
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return "-"
        return f"{v.min():.3g}" if v.min() == v.max() else f"{v.min():.3g}..{v.max():.3g}"

    if f"{prefix}_ci_low" in cmp:
        return (f"fit {rng(prefix + '_mean')} CI [{rng(prefix + '_ci_low')}, "
                f"{rng(prefix + '_ci_high')}] vs {rng(prefix + '_pred')}")
    if f"{prefix}_tightness" in cmp:
        return f"bound/norm {rng(prefix + '_tightness')}"
    if prefix == "noise_scale":
        first, last = cmp["noise_scale_first_mean"], cmp["noise_scale_last_mean"]
        return (f"B_simple step {first.attrs.get('step', '?')}: {rng('noise_scale_first_mean')}"
                f", step {last.attrs.get('step', '?')}: {rng('noise_scale_last_mean')}")
    if prefix == "nngp_ks":
        return f"p = {rng('nngp_ks_pvalue')}"
    if prefix.endswith("_decay") and "ln_chi1" in cmp:
        return f"rate {rng(prefix + '_mean')}, theory {rng(prefix + '_pred')}, " \
               f"ln chi1 {rng('ln_chi1')}"
    return f"theory {rng(prefix + '_pred')}" if f"{prefix}_pred" in cmp else ""
