"""The validity map: where the theory's per-layer predictions hold, over the swept axes.

`validity_map(ds)` reads a results dataset (`gradstats.results.io.load_results`) and, for
each per-layer prediction the sweep stored, returns the relative error of the seed mean with
its confidence interval over seeds, side by side for the infinite-width prediction and its
finite-width correction (where one exists), and the beta = sum_l w_l / width (effective
depth over width, `gradstats.theory.validity.beta`) at which the error first exceeds a
threshold. Only datasets are read: no torch, no JAX, no re-simulation.

Quantities (dim ``quantity``):

- ``forward_q``, ``backward_q``, ``grad_sq_norm``: the ratio of seed means
  R = mean_s m_s / mean_s p_s of the measurement m and the stored per-seed prediction p
  (``theory_<name>``); the error is R - 1, its interval the Student-t interval of the ratio
  estimator (delta method: se = sd_s(m_s - R p_s) / (sqrt(n) mean_s p_s), n - 1 dof).
  ``backward_q`` is taken on hidden layers only (its readout entry is the measurement).
  The corrected ``grad_sq_norm`` prediction is p times
  `gradstats.theory.finite_width.grad_sq_norm_mean_factor` (prod over hidden layers of
  1 + 5/n_k: relu without bias, Gaussian weights, one example with target 0, i.e. inside
  `gradstats.theory.validity.hanin_nica`); elsewhere, and for ``forward_q`` and
  ``backward_q``, no correction exists and the corrected variables are NaN.
- ``preact_kurtosis``: the fourth-moment ratio of one pre-activation unit over networks,
  pooled over units and seeds, mean_s m4 / (mean_s m2)^2 / 3 = 1 + kappa/3 (m2 = forward_q,
  m4 = forward_m4), against 1 + kappa_pred/3: infinite width kappa_pred = 0, corrected
  kappa_pred = ``theory_preact_kurtosis`` (exact for relu without bias, the leading order of
  the four-point vertex otherwise). Interval: percentile bootstrap over seeds. Hidden layers
  2..depth only (layer 1 is Gaussian exactly, the readout has few units), and only where the
  predicted kappa is at most `gradstats.theory.validity.KURTOSIS_MAX` (beyond it the seed
  average of the heavy-tailed fourth moments is biased low: the cell is NaN, as compare
  leaves it outside).

The relative error is |R - 1| with interval {|e| : e in [lo, hi]} (lower end 0 when the
signed interval contains 0). ``typical_error`` is the median over seeds of |m_s / p_s - 1|:
the error one network sees (NaN for the kurtosis, a statistic over networks only).

Boundaries. Over the configurations of each combination of the other axes (activation,
sigma_w2, ...) sorted by beta, the relative error is replaced by its weighted isotonic fit
(non-decreasing in beta, weights 1 / half-width^2 of its interval: the theory's error grows
with beta, and one noisy configuration must not set the boundary); the boundary is the beta
at which that fit first exceeds the threshold, interpolated linearly in (ln beta, error)
between the last configuration below the threshold and the first above it; +inf when no configuration
exceeds it, 0 when the smallest beta already does, NaN without data. ``_lo`` / ``_hi``
boundaries come from the upper / lower ends of the error interval. The same is computed per
recorded step, per layer position (``position``: ``last_hidden`` = layer depth, ``readout``
= layer depth + 1) and, where the sweep recorded ``ntk_rel_change`` at several steps, as the
NTK change at which the error crosses the threshold over the steps of each configuration.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr
from scipy import stats as sps
from scipy.optimize import isotonic_regression

from gradstats.results import stats
from gradstats.spec import AXES, LAYER_DIM, SEED_DIM, STEP_DIM, Point
from gradstats.theory import validity

QUANTITIES = ("forward_q", "backward_q", "grad_sq_norm", "preact_kurtosis")
POSITIONS = ("last_hidden", "readout")
BETA_AXES = ("width", "depth")  # the axes beta is a function of (others keep their own map)
NEEDED = (*QUANTITIES[:3], *(f"theory_{q}" for q in QUANTITIES), "forward_m4",
          "theory_grad_sq_norm_mean_factor", "ntk_rel_change")
DEFAULT_THRESHOLD = 0.1
DEFAULT_LEVEL = 0.95
N_BOOTSTRAP = 400
_BOOT_SEED = 20240607  # a fixed stream: the map of a dataset is reproducible

CI_TEXT = {"ratio": "Student-t interval of the ratio-of-means estimator over seeds (delta "
                    "method, n - 1 dof)",
           "kurtosis": f"percentile bootstrap over seeds ({N_BOOTSTRAP} resamples)"}


def validity_map(ds: xr.Dataset, threshold: float = DEFAULT_THRESHOLD,
                 level: float = DEFAULT_LEVEL) -> xr.Dataset:
    """The validity map of ``ds`` (module docstring).

    Dims: ``quantity``, ``layer``, ``step`` and the swept axes for the errors; ``quantity``,
    ``layer`` (or ``position``), ``step`` and the axes other than width and depth for the
    beta boundaries. ``threshold`` and ``level`` in (0, 1).
    """
    stats.check_probability(threshold, "threshold")
    stats.check_probability(level, "level")
    if SEED_DIM not in ds.dims:
        raise ValueError("the results have no seed dim: the map needs measurements per seed")
    # only the variables the map reads, in memory (load_results may hand a lazy dataset)
    ds = ds[[v for v in NEEDED if v in ds.data_vars]].load()
    axes = [a for a in AXES if a in ds.dims]
    points = _first_points(ds, axes)
    beta = _per_config(ds, axes, points, validity.beta).assign_attrs(
        long_name="beta = effective depth / width", units="1",
        description="sum over hidden layers of w_l / width (gradstats.theory.validity.beta): "
                    "depth/width for a plain MLP")
    depth = _per_config(ds, axes, points, lambda p: p.arch.depth)
    factor = _grad_factor(ds, axes, points)
    rows = [_quantity(ds, q, level, factor) for q in QUANTITIES]
    rows = [r for r in rows if r is not None]
    if not rows:
        raise ValueError("the results hold none of the predictions the map needs (theory_"
                         "forward_q, theory_backward_q, theory_grad_sq_norm, forward_m4)")
    cells = xr.concat([r for r in rows], dim="quantity", coords="minimal",
                      compat="override", join="outer")
    cells = cells.assign_coords(quantity=[str(q) for q in cells["quantity"].values])
    if STEP_DIM not in cells.dims:
        cells = cells.expand_dims({STEP_DIM: [0]})
    out = _label_cells(cells)
    out["beta"] = beta
    if "ntk_rel_change" in ds:
        out["ntk_rel_change"] = ds["ntk_rel_change"].mean(SEED_DIM).assign_attrs(
            long_name="relative NTK change since init: seed mean", units="1",
            description="||Theta_t - Theta_0||_F / ||Theta_0||_F on the probe batch, "
                        "mean over seeds")
    out.update(_at_positions(out, depth))
    others = [a for a in axes if a not in BETA_AXES]
    out.update(_beta_boundaries(out, beta, others, threshold, "layer", ""))
    out.update(_beta_boundaries(out, beta, others, threshold, "position", "_at"))
    if "ntk_rel_change" in out and out.sizes.get(STEP_DIM, 1) > 1:
        out.update(_ntk_boundaries(out, threshold))
    out.attrs = {"threshold": threshold, "level": level,
                 "ci_ratio": CI_TEXT["ratio"], "ci_kurtosis": CI_TEXT["kurtosis"],
                 "corrections": "grad_sq_norm: x gradstats.theory.finite_width."
                                "grad_sq_norm_mean_factor inside validity.hanin_nica; "
                                "preact_kurtosis: theory_preact_kurtosis; forward_q, "
                                "backward_q: none (NaN)",
                 "boundary": "beta at which the isotonic fit of rel_error over "
                             "configurations sorted by beta first exceeds the threshold, "
                             "linear in (ln beta, error); "
                             "+inf: never exceeded; 0: exceeded at the smallest beta",
                 "source": "gradstats.results.validity_map"}
    return out


# --- configurations ---------------------------------------------------------------------------

def _first_points(ds: xr.Dataset, axes: list[str]) -> dict[tuple, Point]:
    """Each configuration's point (the first seed's spec), keyed by its swept-axis values."""
    texts = ds.attrs.get("points")
    if texts is None or len(texts) == 0:
        raise ValueError("results carry no point specs (attrs['points']); map a results "
                         "directory or its sweep.zarr")
    texts = [texts] if isinstance(texts, str) else list(texts)
    configs: dict[tuple, Point] = {}
    for text in texts:
        if not text:
            continue
        point = Point.from_json(text)
        values = point.axis_values()
        configs.setdefault(tuple(values[a] for a in axes), point)
    return configs


def _per_config(ds: xr.Dataset, axes: list[str], points: dict[tuple, Point],
                fn: Callable[[Point], float]) -> xr.DataArray:
    """``fn(point)`` over the swept axes (NaN where a combination is not in the sweep)."""
    coords = {a: ds[a].values for a in axes}
    da = xr.DataArray(np.full(tuple(len(v) for v in coords.values()), np.nan), dims=axes,
                      coords=coords)
    for key, point in points.items():
        da.loc[dict(zip(axes, key, strict=True))] = fn(point)
    return da


def _grad_factor(ds: xr.Dataset, axes: list[str], points: dict[tuple, Point]) -> xr.DataArray:
    """The finite-width factor of the mean squared gradient over (axes, layer); NaN outside
    the Hanin-Nica setting. From the stored prediction when the results have it."""
    if "theory_grad_sq_norm_mean_factor" in ds:
        return ds["theory_grad_sq_norm_mean_factor"].mean(SEED_DIM)
    from gradstats.theory import finite_width

    layers = ds[LAYER_DIM].values
    out = _per_config(ds, axes, points, lambda p: math.nan).expand_dims(
        {LAYER_DIM: layers}, axis=-1).copy()
    fn = getattr(finite_width, "grad_sq_norm_mean_factor", None)
    if fn is None:
        return out
    for key, point in points.items():
        if validity.hanin_nica(point) is not None:
            continue
        values = np.full(len(layers), np.nan)
        factor = np.asarray(fn(point.arch), dtype=float)
        values[: len(factor)] = factor
        out.loc[dict(zip(axes, key, strict=True))] = values
    return out


# --- per-cell errors --------------------------------------------------------------------------

def _quantity(ds: xr.Dataset, name: str, level: float,
              factor: xr.DataArray) -> xr.Dataset | None:
    if name == "preact_kurtosis":
        return _kurtosis(ds, level)
    pred_name = f"theory_{name}"
    if name not in ds or pred_name not in ds:
        return None
    m, p = xr.broadcast(ds[name], ds[pred_name])
    if name == "backward_q":  # hidden layers: the readout entry is the measurement
        hidden = ds[LAYER_DIM] <= _depth_of(ds)
        m, p = m.where(hidden), p.where(hidden)
    corr = factor if name == "grad_sq_norm" else None
    return _ratio_cells(m, p, level, corr).expand_dims(quantity=[name])


def _depth_of(ds: xr.Dataset) -> xr.DataArray:
    """Depth per configuration: the number of layers with a recorded forward_q, minus 1."""
    recorded = ds["forward_q"] if "forward_q" in ds else ds[next(iter(ds.data_vars))]
    rest = [d for d in recorded.dims if d not in AXES and d != LAYER_DIM]
    n_layers = recorded.notnull().any(rest).sum(LAYER_DIM)
    return n_layers - 1


def _ratio_cells(m: xr.DataArray, p: xr.DataArray, level: float,
                 factor: xr.DataArray | None) -> xr.Dataset:
    """Error of the ratio of seed means, its t-interval and the typical per-seed error,
    infinite width and corrected (p x factor)."""
    ok = m.notnull() & p.notnull() & (p != 0)
    m, p = m.where(ok), p.where(ok)
    n = ok.sum(SEED_DIM)
    mean_m, mean_p = m.mean(SEED_DIM), p.mean(SEED_DIM)
    ratio = mean_m / mean_p
    resid = m - ratio * p
    se = resid.std(SEED_DIM, ddof=1) / np.sqrt(n) / abs(mean_p)
    tq = xr.apply_ufunc(lambda k: sps.t.ppf((1 + level) / 2, np.maximum(k - 1, 1)), n)
    se = se.where(n >= 2)
    per_seed = m / p
    out = {}
    f = factor if factor is not None else xr.full_like(ratio, np.nan)
    for suffix, scale in (("", 1.0), ("_corrected", f)):
        err = ratio / scale - 1
        lo, hi = err - tq * se / scale, err + tq * se / scale
        out.update(_abs_interval(err, lo, hi, suffix))
        out[f"typical_error{suffix}"] = abs(per_seed / scale - 1).median(SEED_DIM)
    out["correction"] = (f * xr.ones_like(ratio)).where(ratio.notnull())
    out["n_seeds"] = n.where(n > 0).astype(float)
    return xr.Dataset(out)


def _abs_interval(err: xr.DataArray, lo: xr.DataArray, hi: xr.DataArray,
                  suffix: str) -> dict[str, xr.DataArray]:
    """|err| with the interval {|e| : e in [lo, hi]} (lower end 0 when it contains 0)."""
    lo_abs = xr.where(lo > 0, lo, xr.where(hi < 0, -hi, 0.0)).where(lo.notnull())
    hi_abs = np.maximum(abs(lo), abs(hi))
    return {f"error{suffix}": err, f"rel_error{suffix}": abs(err),
            f"rel_error{suffix}_lo": lo_abs, f"rel_error{suffix}_hi": hi_abs}


def _kurtosis(ds: xr.Dataset, level: float) -> xr.Dataset | None:
    """Pooled fourth-moment ratio (1 + kappa/3) vs 1 (infinite width) and 1 + kappa_pred/3,
    with a percentile bootstrap over seeds; hidden layers 2..depth."""
    if "forward_m4" not in ds or "forward_q" not in ds:
        return None
    m2, m4 = ds["forward_q"], ds["forward_m4"]
    layer = ds[LAYER_DIM]
    hidden = (layer >= 2) & (layer <= _depth_of(ds))
    ok = m2.notnull() & m4.notnull() & hidden
    m2, m4 = m2.where(ok), m4.where(ok)
    if "theory_preact_kurtosis" in ds:
        kpred = ds["theory_preact_kurtosis"].mean(SEED_DIM)
        # beyond KURTOSIS_MAX the seed average of the heavy-tailed m4 is biased low at a few
        # hundred seeds: no measurement of the theory there (as in compare)
        ok = ok & ~(kpred > validity.KURTOSIS_MAX)
        m2, m4 = m2.where(ok), m4.where(ok)
    else:
        kpred = xr.full_like(m2.isel({SEED_DIM: 0}, drop=True), np.nan)
    target_c = 1 + kpred / 3
    moved = [d for d in m2.dims if d != SEED_DIM] + [SEED_DIM]
    m2, m4 = m2.transpose(*moved), m4.transpose(*moved)
    ratio = _pooled_ratio(m2.values, m4.values)
    boots = _bootstrap_ratio(m2.values, m4.values)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():  # all-NaN cells (absent layers) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        qlo, qhi = np.nanquantile(boots, [alpha, 1 - alpha], axis=0)
    template = m2.isel({SEED_DIM: 0}, drop=True)
    r = template.copy(data=ratio)
    lo, hi = template.copy(data=qlo), template.copy(data=qhi)
    n = ok.sum(SEED_DIM).transpose(*template.dims)
    out = {}
    for suffix, target in (("", 1.0), ("_corrected", target_c)):
        err = r / target - 1
        out.update(_abs_interval(err, lo / target - 1, hi / target - 1, suffix))
        out[f"typical_error{suffix}"] = xr.full_like(r, np.nan)
    out["correction"] = (target_c * xr.ones_like(r)).where(r.notnull())
    out["n_seeds"] = n.where(n > 0).astype(float)
    return xr.Dataset(out).expand_dims(quantity=["preact_kurtosis"])


def _pooled_ratio(m2: np.ndarray, m4: np.ndarray) -> np.ndarray:
    """mean m4 / mean(m2)^2 / 3 over the last axis (NaN-aware)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(m4, -1) / np.nanmean(m2, -1) ** 2 / 3


def _bootstrap_ratio(m2: np.ndarray, m4: np.ndarray) -> np.ndarray:
    """(N_BOOTSTRAP, ...) pooled ratios over seeds resampled with replacement."""
    rng = np.random.default_rng(_BOOT_SEED)
    n = m2.shape[-1]
    out = np.empty((N_BOOTSTRAP, *m2.shape[:-1]))
    for b in range(N_BOOTSTRAP):
        idx = rng.integers(0, n, n)
        out[b] = _pooled_ratio(m2[..., idx], m4[..., idx])
    return out


ATTRS = {
    "error": ("signed relative error of the seed mean, infinite-width prediction",
              "mean_s m / mean_s p - 1 (kurtosis: (1 + kappa/3) / 1 - 1)"),
    "rel_error": ("relative error of the seed mean, infinite-width prediction",
                  "|mean_s m - mean_s p| / mean_s p"),
    "rel_error_lo": ("relative error, infinite width: lower end of the interval", ""),
    "rel_error_hi": ("relative error, infinite width: upper end of the interval", ""),
    "typical_error": ("typical relative error of one network, infinite width",
                      "median over seeds of |m_s / p_s - 1|"),
    "error_corrected": ("signed relative error of the seed mean, finite-width corrected",
                        "mean_s m / (c mean_s p) - 1, c the correction factor "
                        "(kurtosis: ratio / (1 + kappa_pred/3) - 1); NaN: no correction"),
    "rel_error_corrected": ("relative error of the seed mean, finite-width corrected",
                            "|error_corrected|; NaN where no correction exists"),
    "rel_error_corrected_lo": ("relative error, corrected: lower end of the interval", ""),
    "rel_error_corrected_hi": ("relative error, corrected: upper end of the interval", ""),
    "typical_error_corrected": ("typical relative error of one network, corrected",
                                "median over seeds of |m_s / (c p_s) - 1|"),
    "correction": ("finite-width correction: corrected / infinite-width prediction",
                   "grad_sq_norm: grad_sq_norm_mean_factor; preact_kurtosis: 1 + kappa_pred/3 "
                   "(the infinite-width prediction's expected error is correction - 1); NaN: "
                   "no correction"),
    "n_seeds": ("seeds with a finite measurement and prediction", ""),
}


def _label_cells(cells: xr.Dataset) -> xr.Dataset:
    for name, (long_name, how) in ATTRS.items():
        if name in cells:
            ci = ("; interval at the map's level: forward_q, backward_q, grad_sq_norm: "
                  f"{CI_TEXT['ratio']}; preact_kurtosis: {CI_TEXT['kurtosis']}"
                  if name.endswith(("_lo", "_hi")) else "")
            cells[name].attrs = {"long_name": long_name, "units": "1",
                                 "description": (how + ci).lstrip("; ")}
    return cells


def _at_positions(out: xr.Dataset, depth: xr.DataArray) -> dict[str, xr.DataArray]:
    """The per-cell errors at the last hidden layer (layer = depth) and at the readout
    (layer = depth + 1) of each configuration, over a ``position`` dim."""
    result = {}
    picks = xr.concat([depth, depth + 1], dim="position").assign_coords(position=list(POSITIONS))
    for name in ATTRS:
        if name not in out or name == "n_seeds":
            continue
        da = out[name]
        chosen = xr.concat([da.where(da[LAYER_DIM] == picks.sel(position=pos)).max(LAYER_DIM)
                            for pos in POSITIONS], dim="position")
        chosen = chosen.assign_coords(position=list(POSITIONS))
        long_name = da.attrs.get("long_name", name)
        result[f"{name}_at"] = chosen.assign_attrs(
            long_name=f"{long_name}, at the last hidden layer / readout", units="1",
            description=da.attrs.get("description", "") + "; position last_hidden: layer = "
                        "depth, readout: layer = depth + 1")
    return result


# --- boundaries -------------------------------------------------------------------------------

def crossing(x: np.ndarray, y: np.ndarray, threshold: float, log: bool = True,
             weights: np.ndarray | None = None) -> float:
    """The x at which y first exceeds ``threshold`` over points sorted by x, interpolated
    linearly in (ln x, y) (``log``) or (x, y) between the last point below and the first
    above; +inf if y never exceeds it, 0.0 if the first point already exceeds it, NaN
    without finite points (``log``: points with x <= 0 are left out). With ``weights``, y is
    first replaced by its weighted isotonic (non-decreasing in x) regression, so that one
    noisy point does not set the crossing."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if log else True)
    if weights is not None:
        weights = np.asarray(weights, float).ravel()
        ok &= np.isfinite(weights) & (weights > 0)
    if not ok.any():
        return math.nan
    order = np.argsort(x[ok], kind="stable")
    xs, ys = x[ok][order], y[ok][order]
    if weights is not None:
        ys = isotonic_regression(ys, weights=weights[ok][order]).x
    above = np.flatnonzero(ys > threshold)
    if len(above) == 0:
        return math.inf
    i = int(above[0])
    if i == 0:
        return 0.0
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    t = (threshold - y0) / (y1 - y0)
    if log:
        return float(math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))))
    return float(x0 + t * (x1 - x0))


def _weights(lo: xr.DataArray, hi: xr.DataArray) -> xr.DataArray:
    """Inverse squared half-width of the error's interval (floored at 0.001): the weights of
    the isotonic fit before a boundary is read off."""
    half = np.maximum((hi - lo) / 2, 1e-3)
    return 1.0 / half**2


BOUNDARY_PARTS = {"": "rel_error", "_lo": "rel_error_hi", "_hi": "rel_error_lo"}


def _beta_boundaries(out: xr.Dataset, beta: xr.DataArray, others: list[str], threshold: float,
                     along: str, suffix: str) -> dict[str, xr.DataArray]:
    """beta_boundary{suffix}{_corrected}{,_lo,_hi} over (quantity, along, step, others)."""
    result = {}
    config_dims = [d for d in BETA_AXES if d in beta.dims]
    for corr in ("", "_corrected"):
        for part, source in BOUNDARY_PARTS.items():
            name = source.replace("rel_error", f"rel_error{corr}") + suffix
            w = _weights(out[f"rel_error{corr}_lo{suffix}"], out[f"rel_error{corr}_hi{suffix}"])
            err, b, w = xr.broadcast(out[name], beta, w)
            if config_dims:
                err, b, w = (a.stack(_config=config_dims) for a in (err, b, w))
            else:
                err, b, w = (a.expand_dims(_config=[0]) for a in (err, b, w))
            bound = xr.apply_ufunc(lambda x, y, ww: crossing(x, y, threshold, weights=ww),
                                   b, err, w, input_core_dims=[["_config"]] * 3,
                                   vectorize=True)
            keep = ["quantity", along, STEP_DIM, *others]
            bound = bound.transpose(*[d for d in keep if d in bound.dims])
            which = "infinite-width" if not corr else "finite-width-corrected"
            end = {"": "", "_lo": " (lower end: from rel_error_hi)",
                   "_hi": " (upper end: from rel_error_lo)"}[part]
            result[f"beta_boundary{suffix}{corr}{part}"] = bound.assign_attrs(
                long_name=f"beta where the {which} prediction's error exceeds "
                          f"{threshold:g}{end}", units="1",
                description=f"over configurations ({', '.join(config_dims) or 'one'}) sorted "
                            "by beta, the error's isotonic fit (weights 1/half-width^2 of its "
                            "interval), linear in (ln beta, error) between the last below and "
                            "the first above the threshold; inf: never exceeded, 0: exceeded "
                            "at the smallest beta, NaN: no data")
    return result


def _ntk_boundaries(out: xr.Dataset, threshold: float) -> dict[str, xr.DataArray]:
    """ntk_change_boundary{_corrected}: the seed-mean NTK change at which the error crosses
    the threshold over the recorded steps of each configuration (linear interpolation)."""
    result = {}
    for corr in ("", "_corrected"):
        err, change = xr.broadcast(out[f"rel_error{corr}"], out["ntk_rel_change"])
        bound = xr.apply_ufunc(crossing, change, err,
                               kwargs={"threshold": threshold, "log": False},
                               input_core_dims=[[STEP_DIM], [STEP_DIM]], vectorize=True)
        which = "infinite-width" if not corr else "finite-width-corrected"
        result[f"ntk_change_boundary{corr}"] = bound.assign_attrs(
            long_name=f"NTK change where the {which} prediction's error exceeds "
                      f"{threshold:g}", units="1",
            description="over the recorded steps of each configuration sorted by the seed "
                        "mean of ntk_rel_change, linear interpolation; inf: never exceeded, "
                        "0: exceeded at the smallest change")
    return result


def write_map(vmap: xr.Dataset, path) -> None:
    """Write ``vmap`` to netCDF at ``path`` atomically (temporary file + rename)."""
    from gradstats.results import io

    io.replace_with(path, lambda tmp: vmap.to_netcdf(tmp))
