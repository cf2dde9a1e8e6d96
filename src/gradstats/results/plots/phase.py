"""Order/chaos phase diagram: measured per-layer gradient growth over (sigma_w2, sigma_b2).

Needs: ``grad_sq_norm`` with a ``sigma_w2`` dim (``sigma_b2`` a dim or a fixed coord) and at
least 3 layers. Optional: ``chi_1`` over (sigma_w2, sigma_b2); else the chi_1 = 1 curve is
from ``gradstats.theory.critical_sigma_w2`` when it imports.

Colour: ln chi_hat, the measured log growth per layer of ||dL/dW_l||^2 towards the input,
from the OLS slope of ln(seed mean) over layers 2..L: ln g_l = c - l ln chi_hat. Theory says
chi_hat = chi_1, so the colour changes sign on the chi_1 = 1 (edge of chaos) curve.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from gradstats.results.plots import common
from gradstats.results.plots.theory_link import critical_curve
from gradstats.spec import LAYER_DIM

REQUIRES = ("grad_sq_norm",)
REQUIRES_DIMS = ("sigma_w2",)
CURVE_POINTS = 8


def measured_log_chi(da: xr.DataArray, first_layer: int = 2) -> xr.DataArray:
    """ln chi_hat = -(OLS slope of ln(seed mean of da) vs layer) over layers >= ``first_layer``.

    ``da``: (..., [seed], layer); returns (...) without seed and layer. NaN layers (depth
    padding) are skipped; fewer than 2 finite layers give NaN.
    """
    mean, _ = common.seed_mean(da)
    mean = mean.sel({LAYER_DIM: mean[LAYER_DIM] >= first_layer})
    layers = mean[LAYER_DIM].values.astype(float)

    def slope(y: np.ndarray) -> float:
        ok = np.isfinite(y) & (y > 0)
        if ok.sum() < 2:
            return np.nan
        return float(-np.polyfit(layers[ok], np.log(y[ok]), 1)[0])

    return xr.apply_ufunc(slope, mean, input_core_dims=[[LAYER_DIM]], vectorize=True)


def plot_phase(ds: xr.Dataset, var: str = "grad_sq_norm", step: int | None = None,
               col: str | None = None, row: str | None = None) -> Figure:
    """Scatter of ln chi_hat over (sigma_w2, sigma_b2), one panel per other configuration.

    The chi_1 = 1 curve (black) comes from a ``chi_1`` variable or `gradstats.theory`.
    The scatter of each panel has gid ``measured``; its colour array is ln chi_hat.
    """
    common.require(ds, "phase", [var], ["sigma_w2", LAYER_DIM])
    rate = measured_log_chi(common.first_step(ds[var], step))
    others = common.varying(rate, exclude=("sigma_w2", "sigma_b2"))
    lines, col, row = common.split_dims(others, (), col, row)
    if lines:  # more than two other dims: keep the first value of the rest
        rate = rate.isel({d: 0 for d in lines})
    fig, axes, panels = common.facet_figure(rate, col, row, sharey=True)
    bound = float(np.nanmax(np.abs(rate.values))) if np.isfinite(rate.values).any() else 1.0
    norm = TwoSlopeNorm(0.0, -max(bound, 1e-6), max(bound, 1e-6))
    fixed = common.scalar_coords(rate)
    for i, j, facet in panels:
        ax = axes[i, j]
        r = rate.sel(facet) if facet else rate
        if "sigma_b2" not in r.dims:
            r = r.expand_dims(sigma_b2=[fixed.get("sigma_b2", 0.0)])
        r = r.transpose("sigma_b2", "sigma_w2")
        sw, sb = np.meshgrid(r["sigma_w2"].values, r["sigma_b2"].values)
        sc = ax.scatter(sw.ravel(), sb.ravel(), c=r.values.ravel(), cmap="RdBu_r", norm=norm,
                        marker="s", s=120, edgecolors="0.3", linewidths=0.4, gid="measured")
        _critical_curve(ax, ds, {**fixed, **facet}, r["sigma_w2"].values, r["sigma_b2"].values)
        ax.set_xlabel(common.label(ds["sigma_w2"]) if "sigma_w2" in ds.coords else "sigma_w2")
        if j == 0:
            ax.set_ylabel("sigma_b2")
    fig.colorbar(sc, ax=axes, label="measured ln χ̂ per layer (>0 exploding)", shrink=0.9)
    common.suptitle(fig, f"order/chaos phase diagram from {var}", rate)
    return fig


def _critical_curve(ax, ds: xr.Dataset, values: dict, sw: np.ndarray, sb: np.ndarray) -> None:
    """Draw the chi_1 = 1 curve: contour of the dataset's ``chi_1`` over (sigma_w2, sigma_b2),
    else ``gradstats.theory.critical_sigma_w2`` on `CURVE_POINTS` values of sigma_b2. None for
    batch-normalized networks: the MLP's edge of chaos does not describe them."""
    if values.get("norm", ds.coords["norm"].item() if "norm" in ds.coords
                  and ds["norm"].ndim == 0 else "none") == "batch":
        return
    if "chi_1" in ds.data_vars and {"sigma_w2", "sigma_b2"} <= set(ds["chi_1"].dims):
        chi = ds["chi_1"].sel({k: v for k, v in values.items() if k in ds["chi_1"].dims
                               and k not in ("sigma_w2", "sigma_b2")})
        chi = chi.transpose("sigma_b2", "sigma_w2", ...)
        cs = ax.contour(chi["sigma_w2"].values, chi["sigma_b2"].values, chi.values, levels=[1.0],
                        colors="k", linewidths=1.3)
        cs.set_gid("theory")
    else:
        grid_b = np.linspace(0.0, max(float(sb.max()), 0.1) * 1.05, CURVE_POINTS)
        crit = critical_curve(str(values.get("activation", "relu")), grid_b)
        if not np.isfinite(crit).any():
            return
        ax.plot(crit, grid_b, "k-", lw=1.3, gid="theory")
        ax.set_xlim(min(sw.min(), np.nanmin(crit)) - 0.1, max(sw.max(), np.nanmax(crit)) + 0.1)
    ax.plot([], [], "k-", label="χ₁ = 1 (theory)")
    ax.legend(fontsize=7, loc="upper left")
