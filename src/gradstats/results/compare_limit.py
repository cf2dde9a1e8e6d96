"""Infinite-width-limit rows (test ``width_limit``): per configuration of the other axes and
per layer, the per-width Cox estimates of ln E[measured / predicted] at init, extrapolated
linearly in 1/width to width -> infinity (`gradstats.results.stats.width_limit_test`).

The fixed-allowance rows (``log_ratio``) bound the finite-width bias by an envelope measured in
one setting (3 beta + 10/width); on other data or targets the bias can be several times larger
(README, "Convolutional networks": +43% at width 128 on the digits), and they disagree with a
theory that is right in the limit. A width_limit row needs no envelope: a finite-width bias
b/width extrapolates away, a wrong theory (off by a factor at every width) does not. Registered
in `gradstats.results.compare.RUNNERS`.
"""

from __future__ import annotations

import numpy as np
import scipy.stats as sps
import xarray as xr

from gradstats.comparisons import Comparison
from gradstats.results import stats
from gradstats.spec import SEED_DIM, STEP_DIM

MIN_WIDTHS = 3
WIDTH = "width"


def run_width_limit(ctx, comparison: Comparison) -> dict[str, xr.DataArray]:
    """The width_limit test of ``comparison`` over the sweep's widths inside its domain."""
    from gradstats.results.compare import _combos, _domain, _layer_mask, _package, _variable

    measured = _variable(ctx, comparison, comparison.measured)
    predicted = _variable(ctx, comparison, comparison.predicted)
    if measured is None or predicted is None:
        return {}
    if WIDTH not in ctx.axes or ctx.ds.sizes[WIDTH] < MIN_WIDTHS:
        ctx.note(f"{comparison.name}: needs {comparison.needs}")
        return {}
    measured, predicted = (a.isel({STEP_DIM: 0}, drop=True) if STEP_DIM in a.dims else a
                           for a in (measured, predicted))
    mask = _layer_mask(ctx, comparison.layers)
    if mask is not None:
        predicted = predicted.where(mask)
    reasons_full = _domain(ctx, comparison, np.zeros(1, int)).isel({STEP_DIM: 0}, drop=True)
    measured, predicted = xr.broadcast(measured.where(reasons_full == ""), predicted)
    cell_dims = [d for d in measured.dims if d not in (WIDTH, SEED_DIM)]
    template = xr.full_like(measured.isel({WIDTH: 0, SEED_DIM: 0}, drop=True), np.nan,
                            dtype=float).transpose(*cell_dims)
    out = {k: template.copy()
           for k in ("estimate", "se", "p", "slope", "allowance", "dof", "n_widths")}
    reasons = template.astype(object).copy(data=np.full(template.shape, "", dtype=object))
    others = [a for a in ctx.axes if a != WIDTH]
    for combo in _combos(ctx, others):
        present = [k for k in ctx.configs if all(ctx.sel(k)[a] == v for a, v in combo.items())]
        if not present:
            continue  # an absent combination is no cell
        m, p = (a.sel(combo) if combo else a for a in (measured, predicted))
        ok = [w for w in m[WIDTH].values if bool(m.sel({WIDTH: w}).notnull().any())]
        if len(ok) < MIN_WIDTHS:
            part = reasons_full.sel(combo) if combo else reasons_full
            why = sorted({str(r) for r in np.ravel(part.values) if r})
            reasons.loc[combo] = (f"fewer than {MIN_WIDTHS} widths inside the validity domain"
                                  + (f" (the others: {why[0]})" if why else ""))
            continue
        order = [WIDTH, *[d for d in cell_dims if d in m.dims], SEED_DIM]
        mv, pv = (a.sel({WIDTH: ok}).transpose(*order).values for a in (m, p))
        result = stats.width_limit_test(np.asarray(ok, float), mv, pv, ctx.level)
        for key, value in (("estimate", result.test.estimate), ("se", result.test.se),
                           ("p", result.test.pvalue), ("slope", result.slope),
                           ("allowance", result.allowance), ("dof", result.dof)):
            out[key].loc[combo] = value
        out["n_widths"].loc[combo] = len(ok)
    values = {k: v.values for k, v in out.items()}

    def power(level: float) -> np.ndarray:
        """exp(allowance + (t_{1-level/2} + t_power) SE) per cell, as `width_limit_test`."""
        with np.errstate(over="ignore", invalid="ignore"):
            margin = (sps.t.isf(level / 2, values["dof"])
                      + sps.t.ppf(stats.DEFAULT_POWER, values["dof"]))
            return np.exp(values["allowance"] + margin * values["se"])

    values["ratio"] = np.exp(values["estimate"])
    return _package(ctx, comparison, template, values, reasons,
                    "Cox ln E[measured/predicted] per width, least squares on 1/width, "
                    "intercept vs 0 within |slope| / largest width", power=power)

