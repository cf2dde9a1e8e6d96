"""Empirical-vs-analytic NTK relative error against width (log-log) with a fitted slope.

Needs a relative-error DataArray with a ``width`` dim (other dims: ``seed`` is averaged, a
``step`` dim keeps its first value, the rest become lines). Infinite-width theory predicts
fluctuations of the empirical NTK of order width^(-1/2): the dotted reference has slope -1/2.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common

WIDTH_DIM = "width"
LINE_DIMS = ("activation", "depth", "sigma_w2", "parameterization")


def plot_ntk_width(err: xr.DataArray, step: int | None = None, col: str | None = None,
                   row: str | None = None) -> Figure:
    """Seed mean ± standard error of ``err`` vs width on log-log axes, one line per config.

    Each line gets an OLS fit of ln(mean) on ln(width) (dashed, gid ``fit``, slope in the
    legend) and a slope -1/2 reference through the data's geometric centre (dotted, gid
    ``reference``). Measured points have gid ``measured``.
    """
    if WIDTH_DIM not in err.dims:
        raise common.MissingVariables(f"plot 'ntk' needs a {WIDTH_DIM!r} dim; {err.name} has "
                                      f"dims {', '.join(map(str, err.dims))}")
    err = common.first_step(err, step)
    line_dims, col, row = common.split_dims(common.varying(err, exclude=(WIDTH_DIM,)),
                                            LINE_DIMS, col, row)
    mean, se = common.seed_mean(err)
    fig, axes, panels = common.facet_figure(mean, col, row)
    for i, j, facet in panels:
        ax = axes[i, j]
        for k, sel in enumerate(common.combos(mean, line_dims)[: common.MAX_LINES]):
            m = mean.sel({**facet, **sel})
            widths, y = m[WIDTH_DIM].values.astype(float), m.values
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            s = se.sel({**facet, **sel}).values
            color = f"C{k % 10}"
            name = common.describe(sel) or "measured"
            ax.errorbar(widths[ok], y[ok], yerr=np.where(np.isfinite(s), s, 0)[ok], fmt="o-",
                        ms=4, lw=1.2, color=color, capsize=2, label=name, gid="measured")
            slope, intercept, slope_se = common.loglog_fit(widths[ok], y[ok])
            if np.isfinite(slope):
                ax.plot(widths[ok], np.exp(intercept) * widths[ok] ** slope, "--", color=color,
                        lw=1, gid="fit", label=f"fit slope {slope:.2f}"
                        + (f" ± {slope_se:.2f}" if np.isfinite(slope_se) else ""))
                centre = np.exp(np.mean(np.log(y[ok])))
                wc = np.exp(np.mean(np.log(widths[ok])))
                ax.plot(widths[ok], centre * (widths[ok] / wc) ** -0.5, ":", color="0.35", lw=1.2,
                        gid="reference", label="slope −1/2" if k == 0 else None)
        common.finish_loglog(ax, "width", err, first_column=j == 0)
    common.suptitle(fig, f"{common.label(err, units=False)} vs width", err)
    return fig
