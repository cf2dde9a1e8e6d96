"""Rank plot of the gradient-noise covariance spectrum with the fitted decay exponent.

Needs: ``noise_eigenvalues`` (dims: sweep axes..., seed, step, rank), eigenvalues in
descending order along ``rank``. The seed mean at each rank k = 1, 2, ... is plotted on
log-log axes, one line per recorded step; the exponent s of lambda_k ~ k^-s is the OLS fit
of `gradstats.simulate.distributions.spectrum_exponent` over its default rank window.
Eigenvalues below `REL_FLOOR` x the largest are numerically zero (the covariance of B
examples has rank <= B - 1) and are left out; the figure says how many.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from gradstats.results.plots import common, style
from gradstats.spec import STEP_DIM

RANK_DIM = "rank"
REQUIRES = ("noise_eigenvalues",)
MAX_STEPS = 6
REL_FLOOR = 1e-8  # float32 round-off of a Gram matrix: relative eigenvalues below are zero


def fit_exponent(eigenvalues: np.ndarray):
    """`spectrum_exponent` of the positive eigenvalues (None if fewer than 3 are positive)."""
    from gradstats.simulate.distributions import spectrum_exponent

    lam = np.asarray(eigenvalues, dtype=float)
    if np.sum(np.isfinite(lam) & (lam > 0)) < 3:
        return None
    return spectrum_exponent(lam)


def above_floor(lam: np.ndarray, floor: float = REL_FLOOR) -> np.ndarray:
    """Which eigenvalues are finite and above ``floor`` x the largest finite one."""
    lam = np.asarray(lam, dtype=float)
    finite = np.isfinite(lam)
    if not finite.any():
        return finite
    return finite & (lam > floor * np.nanmax(np.where(finite, lam, np.nan)))


@style.styled
def plot_spectrum(ds: xr.Dataset, var: str = "noise_eigenvalues", col: str | None = None,
                  row: str | None = None, fig: Figure | None = None, ax=None) -> Figure:
    """lambda_k vs k (log-log) per step, fitted k^-s dashed over its window, facets by config.

    Lines have gid ``measured`` (ydata: seed-mean eigenvalues at ranks 1..n above the
    relative floor; a band of gid ``band``: ± its standard error over seeds) and ``fit``;
    at most `MAX_STEPS` steps (evenly chosen) are drawn, the title names them.
    Every configuration gets its own panel.
    """
    common.require(ds, "spectrum", [var], [RANK_DIM])
    da = ds[var]
    mean, se = common.seed_mean(da)
    extra, col, row = common.split_dims(common.varying(mean, exclude=(RANK_DIM,)), (), col, row)
    if extra:  # more than two varying axes: one column per combination of the rest
        stacked = extra + ([col] if col else [])
        col = "+".join(stacked)
        mean, se = mean.stack({col: stacked}), se.stack({col: stacked})
    steps = mean[STEP_DIM].values if STEP_DIM in mean.dims else [None]
    if len(steps) > MAX_STEPS:
        steps = steps[np.linspace(0, len(steps) - 1, MAX_STEPS).round().astype(int)]
    facets = common.facet_figure(mean, col, row, fig=fig, ax=ax)
    dropped, legends = 0, []
    for p in facets.panels:
        entries = []
        for k, step in enumerate(steps):
            m, e = (mean.sel(p.facet), se.sel(p.facet)) if p.facet else (mean, se)
            if step is not None:
                m, e = m.sel({STEP_DIM: step}), e.sel({STEP_DIM: step})
            lam = m.values
            ranks = np.arange(1, lam.size + 1)
            ok = above_floor(lam)
            dropped = max(dropped, int((np.isfinite(lam) & ~ok).sum()))
            if not ok.any():
                continue
            color = style.colour(k)
            name = "measured" if step is None else f"step {int(step)}"
            fit = fit_exponent(np.where(ok, lam, np.nan))
            if fit is not None:
                name += f": s = {fit.s:.2f} ± {fit.stderr:.2f}"
                kk = np.arange(fit.lo, fit.hi + 1)
                p.ax.plot(kk, np.exp(fit.log_c) * kk ** (-fit.s), "--", color=color, lw=1,
                          gid="fit")
            p.ax.plot(ranks[ok], lam[ok], "o-", ms=2.5, lw=1, color=color, gid="measured")
            style.band(p.ax, ranks[ok], lam[ok], e.values[ok], color, log=True)
            entries.append((name, color))
        p.ax.set_xscale("log")
        p.ax.xaxis.set_minor_formatter(NullFormatter())  # under a decade: no crowded labels
        style.auto_scale(p.ax)
        legends.append((p, entries))
    facets.share_y()
    for p, entries in legends:
        p.ax.set_xlabel("rank k")
        if p.j == 0:  # stacked rows: the symbol (the title names the quantity)
            p.ax.set_ylabel(common.label(da) if facets.axes.shape[0] == 1
                            else common.short_label(da))
        # the fitted exponents differ per panel: a legend each (right of a lone panel,
        # below each panel of a grid, so that the plot areas keep their size)
        place = style.legend_right if len(facets.panels) == 1 else style.legend_below
        place(p.ax, entries, [("dashed: fitted $k^{-s}$", {"ls": "--"})])
    note = (f"eigenvalues < {REL_FLOOR:g} x the largest (numerically zero) left out: "
            f"up to {dropped} per line" if dropped else "")
    if ax is None:
        common.suptitle(facets.fig, f"{common.label(da, units=False)}: rank plot, "
                        r"$\lambda_k \propto k^{-s}$ fitted (seed mean ± SE)", mean, note)
    return facets.fig
