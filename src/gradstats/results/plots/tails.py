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
from matplotlib.figure import Figure
from scipy import special

from gradstats.results.plots import common

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


def plot_tails(samples: Mapping[str, np.ndarray], fits: Mapping[str, object] | None = None,
               fit_missing: bool = True, title: str = "gradient entries",
               xlabel: str = "|gradient entry|") -> Figure:
    """One log-log survival panel per named sample with power-law/lognormal/Gaussian overlays.

    ``fits[name]`` gives the power law of panel ``name``; missing ones are fitted with
    `fit_tail` when ``fit_missing`` (else that overlay is left out).
    """
    names = list(samples)
    if not names:
        raise common.MissingVariables("plot 'tails' needs at least one sample array")
    fig, axes = common.panel_grid(1, len(names), sharey=True)
    for j, name in enumerate(names):
        ax = axes[0, j]
        raw = np.asarray(samples[name], dtype=float).ravel()
        raw = raw[np.isfinite(raw)]
        x, s = survival(raw)
        ax.set_title(f"{name} (n={raw.size})", fontsize=9)
        if x.size == 0:
            continue
        xs, ss = _thin(x, s)
        ax.plot(xs, ss, ".", ms=2.5, color="0.15", gid="measured", label="empirical")
        grid = np.geomspace(x[0], x[-1], 200)
        mu, sd = float(raw.mean()), float(raw.std())
        if sd > 0:
            gauss = 0.5 * (special.erfc((grid - mu) / (sd * math.sqrt(2)))
                           + special.erfc((grid + mu) / (sd * math.sqrt(2))))
            ax.plot(grid, gauss, "-", color="C0", lw=1.2, gid="gaussian", label="Gaussian")
        lx = np.log(x)
        if lx.std() > 0:
            lognorm = 0.5 * special.erfc((np.log(grid) - lx.mean()) / (lx.std() * math.sqrt(2)))
            ax.plot(grid, lognorm, "-", color="C2", lw=1.2, gid="lognormal", label="lognormal")
        fit = (fits or {}).get(name)
        if fit is None and fit_missing:
            fit = fit_tail(raw)
        alpha, xmin = (_fit_value(fit, "alpha"), _fit_value(fit, "xmin")) if fit is not None \
            else (math.nan, math.nan)
        if np.isfinite(alpha) and np.isfinite(xmin) and xmin > 0:
            s_min = float(np.mean(x >= xmin))
            tail = np.geomspace(xmin, x[-1], 100)
            ax.plot(tail, s_min * (tail / xmin) ** (1.0 - alpha), "--", color="C3", lw=1.5,
                    gid="power_law", label=f"power law α={alpha:.2f}, xmin={xmin:.2g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(max(0.3 / x.size, 1e-12), 1.5)
        ax.set_xlabel(xlabel)
        if j == 0:
            ax.set_ylabel("P(|X| ≥ x)")
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{title}: survival functions", fontsize=9)
    return fig

