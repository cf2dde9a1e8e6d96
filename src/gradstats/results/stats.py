"""Statistical machinery of theory-vs-measurement comparisons (numpy/scipy/xarray only).

- seed mean and standard error (SE = sample std / sqrt(n), ddof 1);
- z-scores and verdicts with a model-error floor: a measurement *agrees* with a prediction at
  significance ``level`` when ``|mean - pred| <= z_crit(level) * se + rel_tol * |pred|``; the
  floor ``rel_tol`` is the stated size of the finite-width error of the infinite-width theory;
- straight-line and power-law fits (OLS with a Student-t confidence interval on the slope);
- a Kolmogorov-Smirnov test of standardized values against N(0, 1);
- the standard error of a sample variance (Gaussian data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats as sps

SEED = "seed"


def seed_mean_se(da: xr.DataArray, dim: str = SEED) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean over ``dim`` (NaN skipped) and its standard error (NaN with fewer than 2 values)."""
    n = da.count(dim)
    mean = da.mean(dim)
    se = da.std(dim, ddof=1) / np.sqrt(n.where(n > 1))
    return mean, se


def z_critical(level: float) -> float:
    """Two-sided critical value of N(0, 1): P(|Z| > z) = level."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    return float(sps.norm.isf(level / 2))


def z_score(mean, se, pred):
    """(mean - pred) / se (inf where se = 0 and mean != pred); arrays broadcast."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mean - pred) / se


def t_critical(level: float, dof) -> np.ndarray | float:
    """Two-sided Student-t critical value with ``dof`` degrees of freedom (NaN if dof < 1)."""
    dof = np.asarray(dof, float)
    with np.errstate(invalid="ignore"):
        out = sps.t.isf(level / 2, np.where(dof >= 1, dof, np.nan))
    return float(out) if out.ndim == 0 else out


def verdict(mean, se, pred, level: float, rel_tol=0.0, abs_tol=0.0, dof=None):
    """1.0 where ``|mean - pred| <= crit*se + rel_tol*|pred| + abs_tol``, 0.0 where not,
    NaN where undetermined (mean, se or pred NaN: e.g. a single seed).

    ``crit`` is z_crit(level), or the Student-t critical value when ``dof`` is given (a
    standard error estimated from n seeds has dof = n - 1; arrays broadcast)."""
    crit = z_critical(level) if dof is None else t_critical(level, dof)
    if isinstance(dof, xr.DataArray):
        crit = xr.DataArray(crit, dims=dof.dims, coords=dof.coords)
    bound = crit * se + rel_tol * abs(pred) + abs_tol
    ok = abs(mean - pred) <= bound
    known = np.isfinite(mean) & np.isfinite(se) & np.isfinite(pred)
    if isinstance(ok, xr.DataArray):
        return xr.where(known, ok.astype(float), np.nan)
    return np.where(known, np.asarray(ok, dtype=float), np.nan)


def relative_error(mean, pred):
    """(mean - pred) / |pred|."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (mean - pred) / abs(pred)


@dataclass(frozen=True)
class LineFit:
    """OLS fit y = intercept + slope * x; ``ci`` the two-sided t-interval of the slope at
    the fit's level; ``dof`` = n - 2 (CI is NaN when dof < 1)."""

    slope: float
    intercept: float
    slope_se: float
    ci: tuple[float, float]
    dof: int
    n: int

    def contains(self, value: float, tol: float = 0.0) -> bool:
        """Whether ``value`` lies in the slope's CI widened by ``tol`` on each side."""
        return bool(self.ci[0] - tol <= value <= self.ci[1] + tol)


def fit_line(x: np.ndarray, y: np.ndarray, level: float = 0.05) -> LineFit:
    """OLS of y on x over the finite pairs; t-interval at two-sided ``level`` for the slope.

    x, y: (n,) arrays. Needs at least 2 distinct x values.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < 2 or np.ptp(x) == 0:
        raise ValueError(f"need at least 2 distinct x values to fit a line, got {n} points")
    xm = x.mean()
    sxx = float(((x - xm) ** 2).sum())
    slope = float(((x - xm) * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * xm)
    dof = n - 2
    if dof < 1:
        return LineFit(slope, intercept, np.nan, (np.nan, np.nan), dof, n)
    resid = y - intercept - slope * x
    s2 = float((resid ** 2).sum() / dof)
    se = float(np.sqrt(s2 / sxx))
    t = float(sps.t.isf(level / 2, dof))
    return LineFit(slope, intercept, se, (slope - t * se, slope + t * se), dof, n)


def fit_power_law(x: np.ndarray, y: np.ndarray, level: float = 0.05) -> LineFit:
    """Fit y = C x^slope by OLS of ln y on ln x (positive finite pairs only)."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    return fit_line(np.log(x[ok]), np.log(y[ok]), level)


def ks_standard_normal(z: np.ndarray) -> tuple[float, float]:
    """Kolmogorov-Smirnov statistic and p-value of the finite values of ``z`` vs N(0, 1)."""
    z = np.asarray(z, float).ravel()
    z = z[np.isfinite(z)]
    if len(z) < 2:
        return np.nan, np.nan
    res = sps.kstest(z, "norm")
    return float(res.statistic), float(res.pvalue)


def variance_se(var, n):
    """Standard error of a sample variance of ``n`` Gaussian values: var * sqrt(2 / (n - 1))."""
    n = np.asarray(n, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return var * np.sqrt(2.0 / np.where(n > 1, n - 1, np.nan))
