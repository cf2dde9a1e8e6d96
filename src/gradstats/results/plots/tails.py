"""Tails of gradient-entry samples on log-log survival axes with fitted overlays.

Takes sample arrays (any shape, flattened; e.g. the dimension-wise, iteration-wise and noise
samples) and optional power-law fit results (anything with ``alpha`` and ``xmin``, e.g.
`gradstats.simulate.distributions.PowerLawFit`, or a dict with those keys). Per panel:

- empirical survival P(|X| >= x) of the nonzero |x| (gid ``measured``);
- power law from ``xmin``: S(xmin) (x/xmin)^(1-alpha), alpha the density exponent (``power_law``);
- lognormal with the mean/std of ln|x| (``lognormal``);
- Gaussian with the sample's mean/std, as P(|X| >= x) (``gaussian``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from scipy import special

from gradstats.results.plots import common, style
from gradstats.spec import LAYER_DIM

MAX_POINTS = 4000


def survival(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted nonzero finite |x| and the empirical P(|X| >= x) = (n - i)/n at each, i = 0..n-1."""
    x = np.abs(np.asarray(sample, dtype=float).ravel())
    x = np.sort(x[np.isfinite(x) & (x > 0)])
    n = x.size
    return x, (n - np.arange(n)) / n


def _thin(x: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most `MAX_POINTS` points, log-spaced in rank, always keeping the extreme tail."""
    if x.size <= MAX_POINTS:
        return x, s
    idx = np.unique(x.size - np.geomspace(x.size, 1, MAX_POINTS).astype(int))
    return x[idx], s[idx]


def _fit_value(fit, key: str) -> float:
    value = fit.get(key) if isinstance(fit, Mapping) else getattr(fit, key, math.nan)
    return float(value) if value is not None else math.nan


def fit_tail(sample: np.ndarray):
    """A power-law fit of |sample| (CSN, no bootstrap) from `gradstats.simulate.distributions`."""
    from gradstats.simulate.distributions import fit_power_law

    return fit_power_law(sample, n_bootstrap=0, compare=False, max_sample=20000, rng=0)


@style.styled
def plot_tails(samples: Mapping[str, np.ndarray], fits: Mapping[str, object] | None = None,
               fit_missing: bool = True, title: str = "gradient entries",
               xlabel: str = "|gradient entry|", ncols: int = 3, fig: Figure | None = None,
               ax=None, fixed: xr.Dataset | None = None) -> Figure:
    """One log-log survival panel per named sample with power-law/lognormal/Gaussian overlays.
    ``fixed``: the results the samples come from (the title names their fixed axes).

    ``fits[name]`` gives the power law of panel ``name``; missing ones are fitted with
    `fit_tail` when ``fit_missing`` (else that overlay is left out). Panels fill rows of
    ``ncols``; one legend below them (right of a lone panel).
    """
    names = list(samples)
    if not names:
        raise common.MissingVariables("plot 'tails' needs at least one sample array")
    ncols = min(ncols, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = common.panel_grid(nrows, ncols, sharey=True, fig=fig, ax=ax,
                                  legend="right" if len(names) == 1 else "below")
    width = common.panel_width(axes)
    for extra in axes.ravel()[len(names):]:
        extra.set_visible(False)
    for k, name in enumerate(names):
        ax_k = axes.ravel()[k]
        raw = np.asarray(samples[name], dtype=float).ravel()
        raw = raw[np.isfinite(raw)]
        x, s = survival(raw)
        ax_k.set_title(style.wrap(f"{name} (n={raw.size})", width))
        if x.size == 0:
            continue
        xs, ss = _thin(x, s)
        ax_k.plot(xs, ss, ".", ms=2.0, color="0.15", gid="measured", label="empirical")
        grid = np.geomspace(x[0], x[-1], 200)
        mu, sd = float(raw.mean()), float(raw.std())
        if sd > 0:
            gauss = 0.5 * (special.erfc((grid - mu) / (sd * math.sqrt(2)))
                           + special.erfc((grid + mu) / (sd * math.sqrt(2))))
            ax_k.plot(grid, gauss, "-", color=style.colour(0), lw=1.2, gid="gaussian",
                      label="Gaussian")
        lx = np.log(x)
        if lx.std() > 0:
            lognorm = 0.5 * special.erfc((np.log(grid) - lx.mean()) / (lx.std() * math.sqrt(2)))
            ax_k.plot(grid, lognorm, "-", color=style.colour(2), lw=1.2, gid="lognormal",
                      label="lognormal")
        fit = (fits or {}).get(name)
        if fit is None and fit_missing:
            fit = fit_tail(raw)
        alpha, xmin = (_fit_value(fit, "alpha"), _fit_value(fit, "xmin")) if fit is not None \
            else (math.nan, math.nan)
        if np.isfinite(alpha) and np.isfinite(xmin) and xmin > 0:
            s_min = float(np.mean(x >= xmin))
            tail = np.geomspace(xmin, x[-1], 100)
            ax_k.plot(tail, s_min * (tail / xmin) ** (1.0 - alpha), "--", color=style.colour(3),
                      lw=1.5, gid="power_law", label="power law")
            ax_k.text(0.03, 0.05, f"α = {alpha:.2f}\n$x_{{min}}$ = {xmin:.2g}",
                      transform=ax_k.transAxes, fontsize=style.FONT - 1, va="bottom")
        if style.spans_decades(x):
            ax_k.set_xscale("log")
            style.log_ticks(ax_k, "x", x)
        ax_k.set_yscale("log")
        ax_k.set_ylim(max(0.3 / x.size, 1e-12), 1.5)
        if k >= len(names) - ncols:
            ax_k.set_xlabel(style.wrap(xlabel, width, style.FONT))
        if k % ncols == 0:
            ax_k.set_ylabel(r"$P(|X| \geq x)$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if len(names) == 1:
        style.legend_right(axes[0, 0], handles=handles, labels=labels)
    else:  # the same curves in every panel: one legend below them all
        style.figure_legend(fig, handles=handles, labels=labels)
    if ax is None:
        common.suptitle(fig, f"{title}: survival functions", fixed)
    return fig


def config_samples(ds: xr.Dataset, var: str, step: int | None = None
                   ) -> tuple[dict[str, np.ndarray], str]:
    """Per configuration (the varying sweep axes), the values of ``var`` at ``step`` (default
    the first), summed over layers (the whole network's per-example norm) and pooled over
    seeds: (title -> sample, a note of the step and the reduction)."""
    da = common.first_step(ds[var], step)
    if LAYER_DIM in da.dims:
        da = da.sum(LAYER_DIM, min_count=1)
    dims = common.varying(da, exclude=("sample",))
    out = {}
    for sel in common.combos(da, dims):
        values = da.sel(sel).values if sel else da.values
        if np.isfinite(values).any():
            out[common.describe(sel) or "all"] = values
    when = f"step {int(da['step'])}" if "step" in da.coords and da["step"].ndim == 0 else ""
    return out, ", ".join(t for t in (when, "summed over layers, seeds pooled") if t)


def plot_tail_configs(ds: xr.Dataset, variables: Mapping[str, str], step: int | None = None,
                      fig: Figure | None = None) -> Figure:
    """`plot_tails` of every configuration of each variable (title -> variable name)."""
    samples, note = {}, ""
    for title, var in variables.items():
        per_config, note = config_samples(ds, var, step)
        many = len(variables) > 1
        samples.update({(f"{title}: {k}" if many else k): v for k, v in per_config.items()})
    head = ", ".join(variables)
    fig = plot_tails(samples, title=f"{head} ({note})", xlabel=common.label(
        next(iter(variables.values()))), fig=fig, fixed=ds)
    return fig
