"""Rank plot of the gradient-noise covariance spectrum with the fitted decay exponent.

Needs: ``noise_eigenvalues`` (dims: sweep axes..., seed, step, rank), eigenvalues in
descending order along ``rank``. The seed mean at each rank k = 1, 2, ... is plotted on
log-log axes, one line per recorded step; the exponent s of lambda_k ~ k^-s is the OLS fit
of `gradstats.simulate.distributions.spectrum_exponent` over its default rank window.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common
from gradstats.spec import STEP_DIM

RANK_DIM = "rank"
REQUIRES = ("noise_eigenvalues",)
MAX_STEPS = 6


def fit_exponent(eigenvalues: np.ndarray):
    """`spectrum_exponent` of the positive eigenvalues (None if fewer than 3 are positive)."""
    from gradstats.simulate.distributions import spectrum_exponent

    lam = np.asarray(eigenvalues, dtype=float)
    if np.sum(np.isfinite(lam) & (lam > 0)) < 3:
        return None
    return spectrum_exponent(lam)


def plot_spectrum(ds: xr.Dataset, var: str = "noise_eigenvalues", col: str | None = None,
                  row: str | None = None) -> Figure:
    """lambda_k vs k (log-log) per step, fitted k^-s dashed over its window, facets by config.

    Lines have gid ``measured`` (ydata: seed-mean eigenvalues at ranks 1..n, positive ones)
    and ``fit``; at most `MAX_STEPS` steps (evenly chosen) are drawn.
    """
    common.require(ds, "spectrum", [var], [RANK_DIM])
    da = ds[var]
    mean, _ = common.seed_mean(da)
    extra, col, row = common.split_dims(common.varying(mean, exclude=(RANK_DIM,)), (), col, row)
    if extra:
        mean = mean.isel({d: 0 for d in extra})
    steps = mean[STEP_DIM].values if STEP_DIM in mean.dims else [None]
    if len(steps) > MAX_STEPS:
        steps = steps[np.linspace(0, len(steps) - 1, MAX_STEPS).round().astype(int)]
    fig, axes, panels = common.facet_figure(mean, col, row)
    for i, j, facet in panels:
        ax = axes[i, j]
        for k, step in enumerate(steps):
            m = mean.sel(facet) if facet else mean
            if step is not None:
                m = m.sel({STEP_DIM: step})
            lam = m.values
            ranks = np.arange(1, lam.size + 1)
            ok = np.isfinite(lam) & (lam > 0)
            if not ok.any():
                continue
            color = f"C{k % 10}"
            name = "measured" if step is None else f"step {int(step)}"
            fit = fit_exponent(lam)
            if fit is not None:
                name += f": s = {fit.s:.2f} ± {fit.stderr:.2f}"
                kk = np.arange(fit.lo, fit.hi + 1)
                ax.plot(kk, np.exp(fit.log_c) * kk ** (-fit.s), "--", color=color, lw=1, gid="fit")
            ax.plot(ranks[ok], lam[ok], "o-", ms=2.5, lw=1, color=color, gid="measured", label=name)
        common.finish_loglog(ax, "rank k", da, first_column=j == 0)
    common.suptitle(fig, f"{common.label(da, units=False)}: rank plot, λ_k ∝ k^-s fitted", mean)
    return fig
