"""Width-exponent rows of the update statistics (the coord check): per configuration of the
other axes and per recorded step > 0, an OLS fit of ln(value) on ln(width) over widths and
seeds against the exponent `gradstats.theory.coord.change_exponents` derives for the
configuration's parameterization and optimizer. Valid at step 1 only (later steps: outside,
with the reason). Registered in `gradstats.results.compare.RUNNERS` as ``width_exponent``.
"""

from __future__ import annotations

import numpy as np
import scipy.stats as sps
import xarray as xr

from gradstats import comparisons as decl
from gradstats.comparisons import Comparison
from gradstats.results import stats
from gradstats.spec import LAYER_DIM, SEED_DIM, STEP_DIM
from gradstats.theory import coord

MIN_WIDTHS = 4


def group_values(ctx, comparison: Comparison) -> xr.DataArray | None:
    """The measured value of the comparison's layer group over (axes, seed, step > 0):
    layer 1 (input), the geometric mean over layers 2..depth (hidden), or the statistic
    itself (output, no layer dim)."""
    from gradstats.results.compare import _depth, _variable

    da = _variable(ctx, comparison, comparison.measured)
    if da is None:
        return None
    if LAYER_DIM not in da.dims:
        return da
    if comparison.layers == "input":
        return da.sel({LAYER_DIM: 1}, drop=True)
    layer = da[LAYER_DIM]
    hidden = (layer >= 2) & (layer <= _depth(ctx))
    return np.exp(np.log(da.where(hidden & (da > 0))).mean(LAYER_DIM))


def reason(point, step: int, group: str) -> str:
    """Why a (configuration, step) cell is outside the derivation ("" inside)."""
    if not point.arch.is_mlp:
        return "the derivation is for plain MLPs (no residual blocks, no normalization)"
    if group == "hidden" and point.arch.depth < 2:
        return "no hidden layer 2..depth"
    return coord.validity(int(step)) or ""


def run_width_exponent(ctx, comparison: Comparison) -> dict[str, xr.DataArray]:
    from gradstats.results.compare import _combos, _package

    values = group_values(ctx, comparison)
    if values is None:
        return {}
    if "width" not in ctx.axes or ctx.ds.sizes["width"] < MIN_WIDTHS:
        ctx.note(f"{comparison.name}: needs {comparison.needs}")
        return {}
    group = comparison.layers
    others = [a for a in ctx.axes if a != "width"]
    steps = values[STEP_DIM].values
    cells = values.isel(width=0, drop=True).isel({SEED_DIM: 0}, drop=True)
    template = xr.full_like(cells, np.nan, dtype=float).transpose(*others, STEP_DIM)
    slope, se, dof, pred, n_widths = (template.copy() for _ in range(5))
    reasons = template.astype(object).copy(data=np.full(template.shape, "", dtype=object))
    for combo in _combos(ctx, others):
        present = [k for k in ctx.configs if all(ctx.sel(k)[a] == v for a, v in combo.items())]
        if not present:
            continue
        point = ctx.configs[present[0]][0]
        expected = coord.change_exponents(point.arch.parameterization, point.training.optimizer)
        for step in steps:
            cell = {**combo, STEP_DIM: step}
            pred.loc[cell] = expected[group]
            why = reason(point, step, group)
            part = values.sel(cell).transpose("width", ...)
            ok = [w for w in part["width"].values if bool((part.sel(width=w) > 0).any())]
            if not why and len(ok) < MIN_WIDTHS:
                why = f"fewer than {MIN_WIDTHS} widths measured"
            reasons.loc[cell] = why
            if why:
                continue
            part = part.sel(width=ok)
            fit = stats.fit_width_exponent(part["width"].values, part.values, ctx.level)
            if fit is None:
                continue
            slope.loc[cell], se.loc[cell], dof.loc[cell] = fit.slope, fit.slope_se, fit.dof
            n_widths.loc[cell] = len(ok)
    allowance = decl.COORD_EXPONENT_ALLOWANCE
    estimate = slope.values - pred.values
    excess = np.abs(estimate) - allowance
    with np.errstate(invalid="ignore", divide="ignore"):
        tail = sps.t.sf(excess / se.values, dof.values) + sps.t.sf(
            (np.abs(estimate) + allowance) / se.values, dof.values)
    pvalue = np.where(np.isfinite(estimate), np.where(excess <= 0, 1.0, np.minimum(tail, 1.0)),
                      np.nan)

    def power(level: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            margin = sps.t.isf(level / 2, dof.values) + sps.t.ppf(stats.DEFAULT_POWER, dof.values)
        return allowance + margin * se.values

    out = {"mean": slope.values, "pred": pred.values, "estimate": estimate, "se": se.values,
           "p": pvalue, "n_widths": n_widths.values}
    return _package(ctx, comparison, template, out, reasons,
                    f"OLS ln y ~ ln width over widths and seeds at each step; exponent from "
                    f"the abc table (gradstats.theory.coord) +- {allowance}", power=power)
