"""Statistical machinery of theory-vs-measurement comparisons (numpy/scipy/xarray only).

Per-cell tests behind the four-valued verdicts (numpy arrays; the seed axis is the LAST axis;
NaN or otherwise invalid seeds are dropped per cell; cells with fewer than 2 valid seeds give
NaN results):

- ``log_ratio_test``: does E[measured / predicted] = 1? Cox's method for the log of a lognormal
  mean on per-seed log-ratios, Student-t critical values, optional interval null
  ``|effect| <= allowance``;
- ``quadratic_form_test``: statistics whose per-seed null mean and variance are known from
  theory (chi^2-like quadratic forms), with a moment-matched gamma null;
- ``difference_test``: one-sample t-test of additive statistics against a prediction;
- ``holm`` / ``benjamini_hochberg``: multiplicity-adjusted p-values over a family of cells;
- ``verdict_codes``: DISAGREE / AGREE / OUTSIDE / UNDETERMINED from adjusted p-values and the
  minimum detectable effect (the effect a test would flag with probability ``power``).

- ``log_variance_test``: the variance over seeds of a statistic vs a predicted variance;
- straight-line and power-law fits (OLS with a Student-t confidence interval on the slope),
  used for fitted width exponents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps


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


def fit_width_exponent(widths: np.ndarray, values: np.ndarray, level: float) -> LineFit | None:
    """Width exponent of ``values`` (width first, any further dims: seeds, ...) against
    ``widths`` (width,); None when too few positive finite points remain to fit."""
    widths = np.asarray(widths, float).reshape(-1, *([1] * (np.ndim(values) - 1)))
    try:
        return fit_power_law(np.broadcast_to(widths, np.shape(values)), values, level)
    except ValueError:
        return None


# --- per-cell tests for four-valued verdicts ---------------------------------------------------

DISAGREE, AGREE, OUTSIDE, UNDETERMINED = 0, 1, 2, 3
VERDICT_NAMES = {DISAGREE: "disagree", AGREE: "agree", OUTSIDE: "outside", UNDETERMINED: "undetermined"}
DEFAULT_POWER = 0.8


@dataclass(frozen=True)
class TestResult:
    """Per-cell result of one test; every field is an array of the cell shape (the inputs'
    broadcast shape without the trailing seed axis).

    estimate: the effect on the test's scale (ln ratio for ratio tests, difference otherwise);
    se: its standard error; pvalue: two-sided p-value of H0 "|effect| <= allowance" (1 when the
    estimate lies inside the allowance); detectable: minimum detectable effect at the test's
    ``power`` (a ratio >= 1 for ratio tests, an absolute difference otherwise); n: seeds used.
    """

    __test__ = False  # not a pytest test class

    estimate: np.ndarray
    se: np.ndarray
    pvalue: np.ndarray
    detectable: np.ndarray
    n: np.ndarray


def check_probability(value: float, name: str) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value}")


def _cell_allowance(allowance: ArrayLike, cell_shape: tuple[int, ...]) -> np.ndarray:
    """``allowance`` broadcast to the cell shape; it must be finite and >= 0."""
    allowance = np.broadcast_to(np.asarray(allowance, float), cell_shape)
    if not np.all(np.isfinite(allowance) & (allowance >= 0)):
        raise ValueError("allowance must be finite and >= 0")
    return allowance


def _seed_moments(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance (ddof 1) over the last axis of the ``valid`` entries.

    values, valid: (..., seed). Returns three arrays of shape (...); mean and variance are NaN
    where fewer than 2 entries are valid."""
    n = valid.sum(-1)
    enough = n >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(valid, values, 0.0).sum(-1) / n
        resid = np.where(valid, values - mean[..., None], 0.0)
        var = (resid**2).sum(-1) / (n - 1)
    return n, np.where(enough, mean, np.nan), np.where(enough, var, np.nan)


def _t_dof(n: np.ndarray) -> np.ndarray:
    """n - 1 as float, NaN where n < 2."""
    return np.where(n >= 2, n - 1.0, np.nan)


def _interval_t_pvalue(
    estimate: np.ndarray, se: np.ndarray, allowance: np.ndarray, dof: np.ndarray
) -> np.ndarray:
    """p-value of H0 |effect| <= allowance, evaluated at the boundary effect = +-allowance
    nearest the estimate: T.sf((|estimate| - a)/se) + T.sf((|estimate| + a)/se) outside the
    allowance (the two-sided p-value 2 T.sf(|estimate|/se) when a = 0; about one-sided when
    a >> se), 1 inside it, NaN where estimate, se or dof is NaN."""
    excess = np.abs(estimate) - allowance
    with np.errstate(divide="ignore", invalid="ignore"):
        outside_p = np.minimum(1.0, sps.t.sf(excess / se, dof)
                               + sps.t.sf((np.abs(estimate) + allowance) / se, dof))
    p = np.where(excess > 0, outside_p, 1.0)
    known = np.isfinite(estimate) & np.isfinite(se) & np.isfinite(dof)
    return np.where(known, p, np.nan)


def _power_margin(level: float, power: float, dof: np.ndarray) -> np.ndarray:
    """t_{1-level/2} + t_{power} with ``dof`` degrees of freedom: the detectable effect in SEs."""
    return sps.t.isf(level / 2, dof) + sps.t.ppf(power, dof)


def log_ratio_test(
    measured: ArrayLike, predicted: ArrayLike, level: float, allowance: ArrayLike = 0.0,
    power: float = DEFAULT_POWER,
) -> TestResult:
    """Test E[measured / predicted] = 1 per cell from per-seed log-ratios d_s = ln(m_s / p_s).

    measured, predicted: arrays broadcasting to (..., seed) by numpy rules (a per-cell
    prediction needs a trailing length-1 seed axis). Seeds where either is not finite and > 0
    are dropped. allowance: >= 0 in log units, broadcastable to the cell shape (...).

    Cox's method for the log of a lognormal mean (Zhou & Gao 1997): estimate
    theta = mean(d) + s^2/2 and SE = sqrt(s^2/n + s^4/(2(n-1))), s^2 the sample variance of d;
    p: the interval-null p-value at the nearest boundary (`_interval_t_pvalue`). The
    -s^2/2 Jensen shift is why a t-test on mean(d) rejects a correct prediction ever more often
    as n grows, and the skew of the ratios is why a t-test on raw ratios does too.
    detectable = exp(allowance + (t_{1-level/2} + t_{power}) * SE): the ratio a prediction
    would have to be off by to be flagged with probability ``power``. This is a large-sample
    formula: for Gaussian log-ratios at level 0.01 and power 0.8 the exact power at that effect
    is 0.73 at n = 4, 0.78 at n = 8, 0.79 at n = 16 (noncentral t).
    """
    check_probability(level, "level")
    check_probability(power, "power")
    m, p = np.broadcast_arrays(np.asarray(measured, float), np.asarray(predicted, float))
    valid = np.isfinite(m) & np.isfinite(p) & (m > 0) & (p > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log(m / p)
    n, mean, var = _seed_moments(log_ratio, valid)
    allowance = _cell_allowance(allowance, n.shape)
    dof = _t_dof(n)
    theta = mean + var / 2
    se = np.sqrt(var / n + var**2 / (2 * dof))
    pvalue = _interval_t_pvalue(theta, se, allowance, dof)
    with np.errstate(over="ignore"):  # 2 seeds: t quantiles of 1 dof overflow exp -> inf
        detectable = np.exp(allowance + _power_margin(level, power, dof) * se)
    return TestResult(theta, se, pvalue, detectable, n)


#: ln-units floor of the width_limit allowance: 1e-5 relative, ~100 float32 epsilons (the
#: round-off of a summed squared norm), 4 orders below the factor 2 a row must see
WIDTH_LIMIT_ROUNDOFF = 1e-5


@dataclass(frozen=True)
class WidthLimitResult:
    """`width_limit_test` per cell: ``test`` for the intercept (estimate: the extrapolated
    ln E[measured / predicted] at infinite width), ``slope`` the fitted coefficient b of
    1/width, ``allowance`` |b| / max(widths), ``dof`` the intercept's Welch-Satterthwaite
    degrees of freedom."""

    __test__ = False  # not a pytest test class

    test: TestResult
    slope: np.ndarray
    allowance: np.ndarray
    dof: np.ndarray


def width_limit_test(
    widths: ArrayLike, measured: ArrayLike, predicted: ArrayLike, level: float,
    power: float = DEFAULT_POWER,
) -> WidthLimitResult:
    """Test that ln E[measured / predicted] tends to 0 as the width grows, from >= 3 widths.

    widths: (W,); measured, predicted: broadcasting to (W, ..., seed), per seed and width (a
    cell needs every width: one without 2 valid seeds makes it NaN). Per width, Cox's
    theta_w = ln E[ratio] and its SE s_w with n_w - 1 dof (`log_ratio_test`); then least
    squares of theta_w on x_w = 1/w, one weight per width: theta = a + b x. The intercept
    a = sum_w c_w theta_w is the infinite-width limit, SE^2 = sum_w c_w^2 s_w^2 (widths are
    independent networks), dof by Welch-Satterthwaite. The O(1/w^2) remainder of the
    expansion biases a by about c / (w_min w_max); while the expansion converges at w_min
    (|c| / w_min < |b|) that is below |b| / w_max, the leading correction at the largest
    width, which is the allowance: H0 |a| <= |b| / w_max + `WIDTH_LIMIT_ROUNDOFF`
    (`_interval_t_pvalue`; the floor covers float32 round-off where the prediction is exact,
    e.g. a readout bias gradient conditioned on the measured residual).
    detectable = exp(allowance + (t_{1-level/2} + t_{power}) SE), as `log_ratio_test`.
    """
    check_probability(level, "level")
    check_probability(power, "power")
    widths = np.asarray(widths, float)
    if widths.ndim != 1 or len(widths) < 3 or np.any(widths <= 0):
        raise ValueError("widths must be >= 3 positive values")
    per_width = log_ratio_test(measured, predicted, level, power=power)
    theta, se = per_width.estimate, per_width.se  # (W, ...)
    nu = _t_dof(per_width.n)
    design = np.stack([np.ones_like(widths), 1.0 / widths], axis=1)  # (W, 2)
    coef = np.linalg.pinv(design)  # (2, W): intercept and slope weights
    shape = (len(widths),) + (1,) * (theta.ndim - 1)
    c_a, c_b = coef[0].reshape(shape), coef[1].reshape(shape)
    known = np.all(np.isfinite(theta) & np.isfinite(se) & np.isfinite(nu), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        intercept = np.where(known, (c_a * theta).sum(0), np.nan)
        slope = np.where(known, (c_b * theta).sum(0), np.nan)
        parts = c_a**2 * se**2
        var = parts.sum(0)
        dof = np.where(var > 0, var**2 / (parts**2 / nu).sum(0), np.inf)
        se_a = np.where(known, np.sqrt(var), np.nan)
    dof = np.where(known, dof, np.nan)
    allowance = np.abs(slope) / widths.max() + WIDTH_LIMIT_ROUNDOFF
    pvalue = _interval_t_pvalue(intercept, se_a, np.nan_to_num(allowance), dof)
    with np.errstate(over="ignore", invalid="ignore"):
        detectable = np.exp(allowance + _power_margin(level, power, dof) * se_a)
    n = per_width.n.sum(0)
    return WidthLimitResult(TestResult(intercept, se_a, pvalue, detectable, n), slope,
                            allowance, dof)


def quadratic_form_test(
    measured: ArrayLike, null_mean: ArrayLike, null_var: ArrayLike, level: float,
    power: float = DEFAULT_POWER,
) -> TestResult:
    """Test per cell that measurements follow a null distribution known from theory.

    measured, null_mean, null_var: arrays broadcasting to (..., seed): per seed the measured
    m_s and the mean mu_s and variance v_s of its null distribution (e.g. a chi^2-like
    quadratic form of Gaussian network outputs). Seeds with m_s, mu_s or v_s not finite, or
    mu_s <= 0, or v_s <= 0 are dropped.

    T = mean_s(m_s / mu_s) has null mean 1 and null variance V = sum_s(v_s / mu_s^2) / n^2,
    known rather than estimated, so the test is calibrated at 2-4 seeds. The null of T is
    approximated by the gamma distribution with that mean and variance (Satterthwaite/Welch;
    exact for a sum of equal chi^2 variables); p = min(1, 2 min(F(T), 1 - F(T))).
    estimate = ln T; se = sqrt(V) is the SE of T itself (ratio scale, not log scale).
    detectable = max(c_up, 1 / c_down), with c_up = q(1 - level/2) / q(1 - power) and
    c_down = q(level/2) / q(power), q the gamma null quantiles: a measurement distributed as
    c_up (or c_down) times its null is flagged with probability ``power``.
    """
    check_probability(level, "level")
    check_probability(power, "power")
    m, mu, v = np.broadcast_arrays(*(np.asarray(a, float) for a in (measured, null_mean, null_var)))
    valid = np.isfinite(m) & np.isfinite(mu) & np.isfinite(v) & (mu > 0) & (v > 0)
    n = valid.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(valid, m / mu, 0.0).sum(-1) / n
        var = np.where(valid, v / mu**2, 0.0).sum(-1) / n**2
    enough = n >= 2
    ratio, var = np.where(enough, ratio, np.nan), np.where(enough, var, np.nan)
    null = sps.gamma(1 / var, scale=var)  # mean 1, variance var
    pvalue = np.minimum(1.0, 2 * np.minimum(null.cdf(ratio), null.sf(ratio)))
    c_up = null.isf(level / 2) / null.isf(power)
    c_down = null.ppf(level / 2) / null.ppf(power)
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(ratio)
        detectable = np.maximum(c_up, 1 / c_down)
    return TestResult(estimate, np.sqrt(var), pvalue, detectable, n)


def difference_test(
    values: ArrayLike, predicted: ArrayLike, level: float, allowance: ArrayLike = 0.0,
    power: float = DEFAULT_POWER,
) -> TestResult:
    """One-sample t-test per cell of additive statistics (decay rates, fractions) against a
    prediction, with interval null |mean - predicted| <= allowance.

    values, predicted: arrays broadcasting to (..., seed) by numpy rules (a per-cell prediction
    needs a trailing length-1 seed axis); seeds where either is not finite are dropped.
    allowance: >= 0, broadcastable to the cell shape (...). estimate = mean(values - predicted),
    SE = s / sqrt(n); p: the interval-null p-value at the nearest boundary;
    detectable = allowance + (t_{1-level/2} + t_{power}) * SE, an absolute difference
    (large-sample formula: at level 0.01 and power 0.8 the exact power at that effect is 0.73 at
    n = 4, 0.78 at n = 8, 0.79 at n = 16).
    """
    check_probability(level, "level")
    check_probability(power, "power")
    x, p = np.broadcast_arrays(np.asarray(values, float), np.asarray(predicted, float))
    valid = np.isfinite(x) & np.isfinite(p)
    n, mean, var = _seed_moments(x - p, valid)
    allowance = _cell_allowance(allowance, n.shape)
    dof = _t_dof(n)
    se = np.sqrt(var / n)
    pvalue = _interval_t_pvalue(mean, se, allowance, dof)
    detectable = allowance + _power_margin(level, power, dof) * se
    return TestResult(mean, se, pvalue, detectable, n)


def pooled_kurtosis_test(
    m2: ArrayLike, m4: ArrayLike, predicted: ArrayLike, level: float,
    allowance: ArrayLike = 0.0, influence_sd: ArrayLike | None = None,
    power: float = DEFAULT_POWER,
) -> TestResult:
    """Test per cell the excess kurtosis of a law from per-seed second and fourth moments.

    m2, m4: (..., seed) per-seed means of x^2 and x^4 over exchangeable draws (units of a
    layer); seeds where either is not finite are dropped. predicted, allowance: broadcastable
    to the cell shape (...). estimate = mean(m4) / mean(m2)^2 - 3 - predicted (the ratio of
    seed averages: within one seed the draws may share a random scale, the kurtosis being its
    fluctuation between seeds); SE by the delta method, the standard deviation over seeds of
    the influence values (m4 - a)/b^2 - 2 a (m2 - b)/b^3 (a, b the seed means of m4, m2) over
    sqrt(n); t with n - 1 dof; p and detectable as in `difference_test`. ``influence_sd``
    (cell shape): the theory's standard deviation of the influence values, used instead of
    the sample one (fourth moments are heavy-tailed: the sample SE is small exactly when the
    estimate is low, and made the test falsely disagree 2-4x too often at 32-128 seeds).
    """
    check_probability(level, "level")
    check_probability(power, "power")
    m2, m4 = np.broadcast_arrays(np.asarray(m2, float), np.asarray(m4, float))
    valid = np.isfinite(m2) & np.isfinite(m4)
    n, b, _ = _seed_moments(m2, valid)
    _, a, _ = _seed_moments(m4, valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        influence = (m4 - a[..., None]) / b[..., None] ** 2 \
            - 2 * a[..., None] * (m2 - b[..., None]) / b[..., None] ** 3
        _, _, var = _seed_moments(influence, valid)
        estimate = a / b**2 - 3 - np.asarray(predicted, float)
    allowance = _cell_allowance(allowance, n.shape)
    dof = _t_dof(n)
    if influence_sd is not None:
        var = np.broadcast_to(np.asarray(influence_sd, float), n.shape) ** 2
    se = np.sqrt(var / n)
    pvalue = _interval_t_pvalue(estimate, se, allowance, dof)
    detectable = allowance + _power_margin(level, power, dof) * se
    return TestResult(estimate, se, pvalue, detectable, n)


def log_variance_test(
    values: ArrayLike, predicted_var: ArrayLike, level: float,
    excess_kurtosis: ArrayLike | None = None, power: float = DEFAULT_POWER,
) -> TestResult:
    """Test per cell that the variance over seeds of ``values`` equals ``predicted_var``.

    values: (..., seed), non-finite seeds dropped; predicted_var: broadcastable to the cell
    shape (...); excess_kurtosis likewise. estimate = ln(s^2 / v) with s^2 the sample variance
    (ddof 1); its large-sample SE is sqrt(2/(n-1) + kappa/n), kappa the excess kurtosis of the
    per-seed law (Var s^2 / sigma^4 = 2/(n-1) + kappa/n), so a heavy-tailed law does not read
    as a disagreement. Pass the kurtosis the theory predicts: the sample kurtosis (used when
    ``excess_kurtosis`` is None) is biased low at small n and makes the test anti-conservative
    (for ln chi^2_1 + N(0, 1) at 24-96 seeds about 2x nominal at level 0.05, 3.5x at 0.01;
    scripts/calibration_rates.py), the predicted one keeps it at or below nominal. p:
    two-sided Student-t with n - 1 dof; detectable = exp((t_{1-level/2} + t_{power}) * SE), a
    ratio of variances. Cells with < 4 seeds: NaN.
    """
    check_probability(level, "level")
    check_probability(power, "power")
    x = np.asarray(values, float)
    valid = np.isfinite(x)
    n, mean, var = _seed_moments(x, valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.where(valid, x - mean[..., None], 0.0)
        m4 = (resid**4).sum(-1) / n
        m2 = (resid**2).sum(-1) / n
        excess = np.maximum(m4 / m2**2 - 3.0, 0.0) if excess_kurtosis is None else \
            np.broadcast_to(np.asarray(excess_kurtosis, float), n.shape)
        dof = np.where(n >= 4, n - 1.0, np.nan)
        se = np.sqrt(2.0 / dof + excess / n)
        estimate = np.log(var / np.broadcast_to(np.asarray(predicted_var, float), var.shape))
    estimate = np.where(np.isfinite(dof), estimate, np.nan)
    pvalue = _interval_t_pvalue(estimate, se, np.zeros(n.shape), dof)
    detectable = np.exp(_power_margin(level, power, dof) * se)
    return TestResult(estimate, se, pvalue, detectable, n)


def log_mean_test(
    log_values: ArrayLike, predicted_mean: ArrayLike, level: float, power: float = DEFAULT_POWER,
) -> TestResult:
    """Test per cell that the mean over seeds of ``log_values`` (ln of a statistic) equals
    ``predicted_mean``: estimate = mean - predicted (a log ratio of geometric means), SE =
    s / sqrt(n) with s the sample sd, p two-sided Student-t with n - 1 dof, detectable =
    exp((t_{1-level/2} + t_{power}) SE). log_values: (..., seed), non-finite seeds dropped;
    predicted_mean broadcastable to the cell shape. Cells with < 4 seeds: NaN."""
    check_probability(level, "level")
    check_probability(power, "power")
    x = np.asarray(log_values, float)
    n, mean, var = _seed_moments(x, np.isfinite(x))
    dof = np.where(n >= 4, n - 1.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(var / n)
        estimate = mean - np.broadcast_to(np.asarray(predicted_mean, float), mean.shape)
    estimate = np.where(np.isfinite(dof), estimate, np.nan)
    pvalue = _interval_t_pvalue(estimate, se, np.zeros(n.shape), dof)
    detectable = np.exp(_power_margin(level, power, dof) * se)
    return TestResult(estimate, se, pvalue, detectable, n)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values over all finite entries of ``pvalues`` (any shape):
    the k-th smallest of m becomes max_{j<=k} min(1, (m - j + 1) p_(j)). NaN entries stay NaN
    and do not count in m. Rejecting where the adjusted p < level bounds the probability of
    any false rejection in the family by level."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    ranked_order = np.argsort(p[finite], kind="stable")
    ranked = p[finite][ranked_order]
    m = ranked.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * ranked))
    finite_out = np.empty(m)
    finite_out[ranked_order] = adjusted
    out[finite] = finite_out
    return out


def benjamini_hochberg(pvalues: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over all finite entries of ``pvalues`` (any shape):
    the k-th smallest of m becomes min_{j>=k} min(1, m p_(j) / j). NaN entries stay NaN and do
    not count in m. Rejecting where the adjusted p < level bounds the expected fraction of
    false rejections among rejections by level (independent or positively dependent tests)."""
    p = np.asarray(pvalues, float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = sps.false_discovery_control(p[finite], method="bh")
    return out


def verdict_codes(
    pvalue_adjusted: ArrayLike, detectable: ArrayLike, level: float, max_detectable: ArrayLike,
    outside: ArrayLike | None = None,
) -> np.ndarray:
    """Four-valued verdict codes per cell (float array of the inputs' broadcast shape).

    OUTSIDE where ``outside`` (bool mask) is true; else NaN where the p-value is NaN (no data);
    else DISAGREE where pvalue_adjusted < level (even when power is low); else UNDETERMINED
    where detectable > max_detectable or is NaN (the test could not have seen a prediction off
    by max_detectable); else AGREE. detectable and max_detectable are on the same scale (a
    ratio for ratio tests, an absolute difference otherwise)."""
    check_probability(level, "level")
    p = np.asarray(pvalue_adjusted, float)
    detectable = np.asarray(detectable, float)
    powered = detectable <= max_detectable
    codes = np.where(p < level, DISAGREE, np.where(powered, AGREE, UNDETERMINED)).astype(float)
    codes = np.where(np.isnan(p), np.nan, codes)
    if outside is not None:
        codes = np.where(np.asarray(outside, bool), OUTSIDE, codes)
    return codes


def expected_false_disagreements(n_tested: int, level: float) -> float:
    """Expected number of false disagreements among ``n_tested`` cells where the prediction is
    right, each tested alone at ``level``: n_tested * level. Holm-adjusted verdicts instead bound
    the probability of even one false disagreement in the family by ``level``."""
    check_probability(level, "level")
    return float(n_tested) * level
