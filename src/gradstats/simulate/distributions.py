"""Shapes of gradient distributions: moments, normality, power-law tails, spectra, directions.

Pure numpy/scipy functions on any array (no torch), used by the ``distribution`` and
``directions`` estimators and usable on their own:

- `shape_stats`: moments (Pearson kurtosis: a normal has 3), quantiles, exact-zero fraction,
  D'Agostino-Pearson, Anderson-Darling and KS-vs-fitted-normal tests.
- `fit_power_law`: Clauset, Shalizi & Newman (2009) for continuous data, with the
  semi-parametric bootstrap goodness-of-fit p-value and Vuong likelihood-ratio tests against
  a lognormal and an exponential tail; `power_law_pass_fraction` across columns (Xie et al.
  2023 style).
- `hill_tail_index`, `stable_tail_index`: tail-index estimators and their biases.
- `spectrum_exponent`: lambda_k ~ k^-s over a rank window.
- `vmf_concentration`, `vmf_from_gram`: von Mises-Fisher concentration of directions
  (Lee, Cho & Kang 2018) beside the uniform-direction baseline.
- `norm_cv`, `gradient_stochasticity`: stochasticity of minibatch gradient norms and vectors.
- `predicted_entry_shape`: zero fraction and kurtosis of gradient entries at initialization
  of a wide network (product of independent masked Gaussians).

Conventions: the power-law exponent ``alpha`` is that of the *density*, p(x) ~ x^-alpha
(CSN); tail indices of Hill and stable estimators are those of the *survival function*,
P(X > x) ~ x^-a, so a = alpha - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import integrate, optimize, special, stats

QUANTILE_LEVELS = (0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999)

# ---------------------------------------------------------------------------------------------
# Moments and normality
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeStats:
    """Shape of a sample of n values (flattened, non-finite values dropped).

    ``kurtosis`` is Pearson's (E[(x-m)^4]/var^2, normal = 3, NOT excess). ``quantiles`` maps
    each level of `QUANTILE_LEVELS` to the sample quantile. ``normality_p``: D'Agostino-Pearson
    omnibus p (NaN for n < 8); ``anderson``/``anderson_p``: Anderson-Darling statistic for
    normality and its interpolated p; ``ks_normal_p``: KS p against a normal with the sample's
    mean and std (not Lilliefors-corrected, hence conservative).
    """

    n: int
    mean: float
    variance: float
    skewness: float
    kurtosis: float
    zero_fraction: float
    quantiles: dict[float, float] = field(default_factory=dict)
    normality_p: float = math.nan
    anderson: float = math.nan
    anderson_p: float = math.nan
    ks_normal_p: float = math.nan


def shape_stats(sample: np.ndarray, tests: bool = True) -> ShapeStats:
    """Moments, quantiles, zero fraction and normality tests of ``sample`` (any shape).

    ``tests=False`` skips quantiles, Anderson-Darling and KS (which sort the sample) and
    keeps the O(n) moments and the D'Agostino-Pearson p.
    """
    x = np.asarray(sample, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return ShapeStats(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    c = x - mean
    m2 = float(np.mean(c * c))
    if m2 > 0:
        skew = float(np.mean(c**3) / m2**1.5)
        kurt = float(np.mean(c**4) / m2**2)
    else:
        skew = kurt = math.nan
    quantiles: dict[float, float] = {}
    if tests:
        quantiles = dict(zip(QUANTILE_LEVELS, np.quantile(x, QUANTILE_LEVELS).tolist(),
                             strict=True))
    normality_p = anderson = anderson_p = ks_p = math.nan
    if n >= 8 and m2 > 0:
        normality_p = float(stats.normaltest(x).pvalue)
    if tests and n >= 8 and m2 > 0:
        ad = stats.anderson(x, "norm", method="interpolate")
        anderson, anderson_p = float(ad.statistic), float(ad.pvalue)
        ks_p = float(stats.kstest(x, "norm", args=(mean, math.sqrt(m2))).pvalue)
    return ShapeStats(n=n, mean=mean, variance=m2, skewness=skew, kurtosis=kurt,
                      zero_fraction=float(np.mean(x == 0.0)), quantiles=quantiles,
                      normality_p=normality_p, anderson=anderson, anderson_p=anderson_p,
                      ks_normal_p=ks_p)


# ---------------------------------------------------------------------------------------------
# Power laws (Clauset, Shalizi & Newman 2009, continuous case)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """A CSN power-law fit p(x) = (alpha-1)/xmin (x/xmin)^-alpha for x >= xmin.

    ``sigma`` = (alpha-1)/sqrt(n_tail) is the MLE standard error; ``ks`` the KS distance of
    the tail; ``p_value`` the semi-parametric bootstrap goodness-of-fit p (NaN without
    bootstrap): small p rejects the power law. ``lr_*`` is Vuong's normalized log-likelihood
    ratio R/(sigma_R sqrt(n_tail)) of power law vs the alternative over the tail (> 0 favours
    the power law) and ``p_*`` its two-sided p (small p: the sign is significant).
    ``n`` is the number of positive values the fit saw.
    """

    alpha: float
    sigma: float
    xmin: float
    ks: float
    p_value: float
    n_tail: int
    n: int
    lr_lognormal: float = math.nan
    p_lognormal: float = math.nan
    lr_exponential: float = math.nan
    p_exponential: float = math.nan

    def plausible(self, level: float = 0.1) -> bool:
        """CSN plausibility: the bootstrap does not reject at ``level`` (p >= level)."""
        return bool(self.p_value >= level)

    def is_power_law(self, level: float = 0.1) -> bool:
        """Plausible, and neither alternative is significantly better (Vuong p < level, R < 0)."""
        worse = [(self.lr_lognormal, self.p_lognormal), (self.lr_exponential, self.p_exponential)]
        return self.plausible(level) and not any(r < 0 and p < level for r, p in worse)


def tail_values(sample: np.ndarray, tail: str = "abs") -> np.ndarray:
    """Sorted positive values a power law is fitted to: |x| (``abs``), x (``right``), -x (``left``).

    Zeros and non-finite values are dropped (a power law lives on x > 0).
    """
    x = np.asarray(sample, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if tail == "abs":
        x = np.abs(x)
    elif tail == "left":
        x = -x
    elif tail != "right":
        raise ValueError(f"tail must be 'abs', 'right' or 'left', got {tail!r}")
    return np.sort(x[x > 0])


def _candidates(n: int, min_tail: int, max_candidates: int) -> np.ndarray:
    """Indices i (into ascending sorted data) of candidate xmins, tails of n - i >= min_tail.

    Tail sizes are geometrically spaced from n down to min_tail (all of them when there are
    at most ``max_candidates``), so the search resolves the upper tail finely.
    """
    top = n - min_tail
    if top < 0:
        return np.empty(0, dtype=np.int64)
    if top + 1 <= max_candidates:
        return np.arange(top + 1)
    n_tail = np.unique(np.geomspace(n, min_tail, max_candidates).round().astype(np.int64))
    return np.sort(n - n_tail)


def _scan(xs: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MLE alpha and KS distance for every candidate xmin of every row.

    xs: (R, n) rows sorted ascending, positive; cand: (m,) indices. Returns (alpha, ks), each
    (R, m). alpha_i = 1 + n_i / sum_{j>=i} log(x_j/x_i) from reversed cumulative sums; the KS
    distance compares the tail's empirical CDF with 1 - (x/x_i)^(1-alpha_i), vectorized over
    rows and tail points (one pass per candidate, touching only that candidate's tail).
    """
    r, n = xs.shape
    logx = np.log(xs)
    suffix = np.cumsum(logx[:, ::-1], axis=1)[:, ::-1]  # sum_{j>=i} log x_j
    n_t = (n - cand).astype(np.float64)  # (m,)
    denom = suffix[:, cand] - n_t * logx[:, cand]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(denom > 0, 1.0 + n_t / denom, np.inf)
    ks = np.full((r, cand.size), np.inf)
    for c, i in enumerate(cand):
        m = n - i
        a = alpha[:, c:c + 1]
        if not np.isfinite(a).any():
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            f = -np.expm1((1.0 - a) * (logx[:, i:] - logx[:, i:i + 1]))  # fitted CDF, (R, m)
        k = np.arange(m) / m
        dist = np.maximum(f - k, (k + 1.0 / m) - f).max(axis=1)
        ks[:, c] = np.where(np.isfinite(a[:, 0]), dist, np.inf)
    return alpha, ks


def _best(xs: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: index of the KS-minimizing candidate, its alpha and its KS. Shapes (R,)."""
    alpha, ks = _scan(xs, cand)
    k = np.argmin(ks, axis=1)
    rows = np.arange(xs.shape[0])
    return cand[k], alpha[rows, k], ks[rows, k]


def _loglik_power_law(x: np.ndarray, xmin: float, alpha: float) -> np.ndarray:
    return np.log((alpha - 1.0) / xmin) - alpha * np.log(x / xmin)


def _loglik_exponential(x: np.ndarray, xmin: float) -> np.ndarray:
    """Pointwise log-likelihood of the MLE exponential truncated at xmin: lam = 1/(mean-xmin)."""
    lam = 1.0 / max(float(np.mean(x)) - xmin, np.finfo(float).tiny)
    return np.log(lam) - lam * (x - xmin)


def _loglik_lognormal(x: np.ndarray, xmin: float) -> np.ndarray:
    """Pointwise log-likelihood of the MLE lognormal truncated at xmin (numerical MLE)."""
    lx, lxmin = np.log(x), math.log(xmin)

    def pointwise(theta: np.ndarray) -> np.ndarray:
        mu, s = theta[0], math.exp(theta[1])
        z = (lx - mu) / s
        return (-lx - math.log(s) - 0.5 * math.log(2 * math.pi) - 0.5 * z * z
                - special.log_ndtr((mu - lxmin) / s))

    start = np.array([lx.mean(), math.log(max(lx.std(), 1e-3))])
    res = optimize.minimize(lambda t: -pointwise(t).sum(), start, method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 2000})
    return pointwise(res.x)


def vuong(l1: np.ndarray, l2: np.ndarray) -> tuple[float, float]:
    """Vuong's normalized log-likelihood ratio R/(sigma sqrt(n)) and its two-sided p."""
    d = l1 - l2
    n = d.size
    sd = float(d.std())
    if n < 2 or sd == 0 or not np.isfinite(sd):
        return math.nan, math.nan
    r = float(d.sum()) / (sd * math.sqrt(n))
    return r, float(special.erfc(abs(r) / math.sqrt(2)))


def fit_power_law(sample: np.ndarray, tail: str = "abs", n_bootstrap: int = 100,
                  rng: np.random.Generator | int | None = None, min_tail: int = 10,
                  min_tail_fraction: float = 0.1, max_candidates: int = 50, max_sample: int | None = None,
                  compare: bool = True) -> PowerLawFit:
    """Fit a continuous power law to the tail of ``sample`` (CSN 2009).

    Steps: positive values of ``tail`` (`tail_values`; optionally a uniform random subsample
    of ``max_sample`` of them); xmin minimizing the KS distance over candidates (all data
    values leaving >= max(``min_tail``, ``min_tail_fraction`` * n) points in the tail, or
    ``max_candidates`` of them with geometrically spaced tail sizes);
    alpha = 1 + n_tail / sum log(x/xmin) with sigma = (alpha-1)/sqrt(n_tail); bootstrap p:
    ``n_bootstrap`` synthetic samples of the same size, each drawing Binomial(n, n_tail/n)
    points from the fitted power law and the rest uniformly from the data below xmin,
    refitted with the same xmin search; p = fraction of synthetic KS >= observed KS.
    Likelihood ratios (``compare``) against the MLE exponential and lognormal truncated at
    xmin, over the tail. Returns NaNs when fewer than ``min_tail`` positive values remain.

    ``min_tail_fraction`` departs from pure CSN (which is ``min_tail_fraction=0``): with a free
    xmin the search happily fits the extreme 2-5% of a Gaussian sample (alpha ~ 6, p often
    > 0.1), so "power law" would only mean "has a largest few values". Requiring >= 10% of the
    sample in the tail (default) makes Gaussian, lognormal(0, 1) and relu-gradient-like
    samples of n = 5000 fail (tested) while Pareto samples pass at the nominal rate.
    """
    gen = np.random.default_rng(rng)
    x = tail_values(sample, tail)
    if max_sample is not None and x.size > max_sample:
        x = np.sort(gen.choice(x, size=max_sample, replace=False))
    n = x.size
    cand = _candidates(n, max(min_tail, math.ceil(min_tail_fraction * n)), max_candidates)
    if cand.size == 0:
        return PowerLawFit(math.nan, math.nan, math.nan, math.nan, math.nan, 0, n)
    i, alpha, ks = (float(v[0]) for v in _best(x[None, :], cand))
    i = int(i)
    xmin, n_tail = float(x[i]), n - i
    sigma = (alpha - 1.0) / math.sqrt(n_tail)
    p_value = math.nan
    if n_bootstrap > 0 and np.isfinite(alpha):
        synth = _bootstrap_samples(x, i, alpha, n_bootstrap, gen)
        _, _, ks_boot = _best(synth, cand)
        p_value = float(np.mean(ks_boot >= ks))
    lr = [math.nan] * 4
    if compare and np.isfinite(alpha):
        xt = x[i:]
        lpl = _loglik_power_law(xt, xmin, alpha)
        lr[0], lr[1] = vuong(lpl, _loglik_lognormal(xt, xmin))
        lr[2], lr[3] = vuong(lpl, _loglik_exponential(xt, xmin))
    return PowerLawFit(alpha=alpha, sigma=sigma, xmin=xmin, ks=ks, p_value=p_value,
                       n_tail=n_tail, n=n, lr_lognormal=lr[0], p_lognormal=lr[1],
                       lr_exponential=lr[2], p_exponential=lr[3])


def _bootstrap_samples(x: np.ndarray, i: int, alpha: float, reps: int,
                       gen: np.random.Generator) -> np.ndarray:
    """CSN semi-parametric synthetic data sets, (reps, n), each row sorted ascending."""
    n = x.size
    xmin = x[i]
    n_pl = gen.binomial(n, (n - i) / n, size=reps)
    u = 1.0 - gen.random((reps, n))  # in (0, 1]
    pl = xmin * u ** (-1.0 / (alpha - 1.0))
    if i > 0:
        body = x[gen.integers(0, i, size=(reps, n))]
        synth = np.where(np.arange(n)[None, :] < n_pl[:, None], pl, body)
    else:
        synth = pl
    return np.sort(synth, axis=1)


def power_law_pass_fraction(samples: np.ndarray, level: float = 0.1, **fit_kwargs) -> float:
    """Fraction of columns of ``samples`` (n_obs, n_columns) whose power law is plausible.

    Each column is fitted with `fit_power_law` (``fit_kwargs`` passed on, ``compare`` off) and
    passes when the bootstrap p >= ``level`` (Xie et al. 2023 count such passes). Columns with
    too few positive values are left out; NaN when none is left.
    """
    cols = np.asarray(samples, dtype=np.float64)
    if cols.ndim == 1:
        cols = cols[:, None]
    fit_kwargs.setdefault("compare", False)
    ps = [fit_power_law(cols[:, c], **fit_kwargs).p_value for c in range(cols.shape[1])]
    ps = np.asarray([p for p in ps if np.isfinite(p)])
    return float(np.mean(ps >= level)) if ps.size else math.nan


# ---------------------------------------------------------------------------------------------
# Tail indices
# ---------------------------------------------------------------------------------------------


def hill_tail_index(sample: np.ndarray, k: int) -> float:
    """Hill estimator of the survival tail index a (P(|X| > x) ~ x^-a) from the top k of |x|.

    a_hat = 1 / (mean_{i<k} log X_(i) - log X_(k)), X_(0) >= X_(1) >= ... the order
    statistics of |x|. Standard error ~ a/sqrt(k). Biased when the tail is not an exact Pareto
    above X_(k) (second-order terms; large k) and noisy for small k. The CSN density
    exponent is alpha = a + 1.
    """
    x = np.sort(np.abs(np.asarray(sample, dtype=np.float64).ravel()))[::-1]
    x = x[np.isfinite(x) & (x > 0)]
    if not 1 <= k < x.size:
        raise ValueError(f"k must be in 1..{x.size - 1}, got {k}")
    gamma = float(np.mean(np.log(x[:k])) - math.log(x[k]))
    return 1.0 / gamma if gamma > 0 else math.inf


def stable_tail_index(sample: np.ndarray, block: int | None = None, center: bool = True,
                      rng: np.random.Generator | int | None = None) -> float:
    """Alpha-stable tail index (Mohammadi, Mohammadpour & Ogata 2015; Simsekli et al. 2019).

    With n = block * m values X_i (centered by the sample mean if ``center``; shuffled when
    ``rng`` is given) and block sums Y_j of ``block`` consecutive X's (default
    block = floor(sqrt(n))): 1/a_hat = (mean log|Y| - mean log|X|) / log(block), clipped to
    (0, 2]. Exact in expectation for symmetric alpha-stable data. Bias: for finite-variance but
    heavy-tailed data (e.g. Student-t with 3 degrees of freedom) block sums converge to the
    normal slowly, so a_hat < 2 does *not* prove infinite variance. NaN when there are fewer
    than 4 values, or when 1/a_hat <= 0 (block sums no larger than the values: all-zero or
    constant samples, or too few values for the estimate to mean anything).
    """
    x = np.asarray(sample, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if rng is not None:
        x = np.random.default_rng(rng).permutation(x)
    if center:
        x = x - x.mean()
    if not np.any(x):  # all zero (or constant, centered): no tail to index
        return math.nan
    b = block or int(math.isqrt(x.size))
    m = x.size // b if b >= 2 else 0
    if m < 1:
        return math.nan
    x = x[: b * m]
    y = x.reshape(m, b).sum(axis=1)
    eps = np.finfo(float).tiny
    inv = (np.mean(np.log(np.abs(y) + eps)) - np.mean(np.log(np.abs(x) + eps))) / math.log(b)
    return float(min(2.0, 1.0 / inv)) if inv > 0 else math.nan


# ---------------------------------------------------------------------------------------------
# Covariance spectra
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpectrumFit:
    """lambda_k ~ C k^-s fitted over ranks lo..hi (1-based, inclusive).

    ``stderr`` is the OLS standard error of the slope under independent homoscedastic
    residuals in log-log; neighbouring eigenvalues are correlated, so it is optimistic.
    """

    s: float
    stderr: float
    log_c: float
    r2: float
    lo: int
    hi: int


def spectrum_exponent(eigenvalues: np.ndarray, rank_window: tuple[int, int] | None = None
                      ) -> SpectrumFit:
    """Power-law decay exponent s of a spectrum: log lambda_k = log C - s log k by OLS.

    Eigenvalues are sorted in decreasing order and ranked k = 1, 2, ...; non-positive ones
    are dropped. The default window is k = 1..ceil(n_pos/2) (the upper half of the positive
    spectrum, away from the numerical floor); ``hi`` is clipped to the positive count.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())[::-1]
    lam = lam[np.isfinite(lam) & (lam > 0)]
    lo, hi = rank_window if rank_window is not None else (1, max(3, math.ceil(lam.size / 2)))
    hi = min(hi, lam.size)
    if lo < 1 or hi - lo + 1 < 3:
        raise ValueError(f"rank window ({lo}, {hi}) needs >= 3 positive eigenvalues")
    k = np.arange(lo, hi + 1, dtype=np.float64)
    lx, ly = np.log(k), np.log(lam[lo - 1:hi])
    res = stats.linregress(lx, ly)
    return SpectrumFit(s=float(-res.slope), stderr=float(res.stderr), log_c=float(res.intercept),
                       r2=float(res.rvalue**2), lo=int(lo), hi=int(hi))


# ---------------------------------------------------------------------------------------------
# Directions: von Mises-Fisher
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VMFFit:
    """vMF fit of n unit directions in d dims, beside the uniform-direction baseline.

    ``r_bar``: mean resultant length ||mean of unit vectors||; ``kappa``: MLE solving
    A_d(kappa) = r_bar; ``kappa_banerjee``: r(d - r^2)/(1 - r^2) (Banerjee et al. 2005).
    ``r_bar_uniform`` = 1/sqrt(n) is the rms r_bar of n uniform directions
    (E r_bar^2 = 1/n exactly) and ``kappa_uniform`` the MLE at that r_bar (~ d/sqrt(n) for
    d >> n): a kappa near it means the directions are indistinguishable from uniform.
    Undefined fits are NaN: every field for n < 2, r_bar and the kappas when a vector is 0.
    """

    n: int
    dim: int
    r_bar: float
    kappa: float
    kappa_banerjee: float
    r_bar_uniform: float
    kappa_uniform: float


def bessel_ratio(dim: float, kappa: np.ndarray | float) -> np.ndarray:
    """A_d(kappa) = I_{d/2}(kappa) / I_{d/2-1}(kappa), stable for large d and kappa.

    Uses exponentially scaled Bessel functions (scipy.special.ive); where they underflow
    (kappa << d) it runs the backward recurrence A_nu = kappa / (2 nu + kappa A_{nu+1})
    (for A_nu = I_nu/I_{nu-1}) down from order nu + 200, started from Amos' bound.
    """
    k = np.atleast_1d(np.asarray(kappa, dtype=np.float64))
    nu = dim / 2.0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        num, den = special.ive(nu, k), special.ive(nu - 1.0, k)
        out = num / den
    bad = ~np.isfinite(out) | (den <= 1e-250) | (num <= 1e-250)
    if bad.any():
        out[bad] = _bessel_ratio_recurrence(nu, k[bad])
    out = np.where(k == 0, 0.0, out)
    return out if np.ndim(kappa) else out[0]


def _bessel_ratio_recurrence(nu: float, k: np.ndarray, steps: int = 200) -> np.ndarray:
    """I_nu(k)/I_{nu-1}(k) by backward recurrence from order nu + steps (Amos lower bound)."""
    top = nu + steps
    a = k / (top - 0.5 + np.sqrt(k * k + (top + 0.5) ** 2))
    for order in np.arange(top - 1.0, nu - 0.5, -1.0):
        a = k / (2.0 * order + k * a)
    return a


def banerjee_kappa(r_bar: float, dim: int) -> float:
    """Banerjee et al. (2005) approximation kappa = r (d - r^2) / (1 - r^2) (NaN for NaN r)."""
    if math.isnan(r_bar):
        return math.nan
    return r_bar * (dim - r_bar**2) / (1.0 - r_bar**2) if r_bar < 1 else math.inf


def vmf_kappa_mle(r_bar: float, dim: int) -> float:
    """Exact MLE of kappa: the root of A_d(kappa) = r_bar (A_d increases from 0 to 1)."""
    if not 0 <= r_bar < 1:
        return math.inf if r_bar >= 1 else math.nan
    if r_bar == 0:
        return 0.0
    guess = max(banerjee_kappa(r_bar, dim), 1e-12)
    lo, hi = guess / 4.0, guess * 4.0
    f = lambda lk: float(bessel_ratio(dim, math.exp(lk))) - r_bar  # noqa: E731
    while f(math.log(lo)) > 0:
        lo /= 4.0
    while f(math.log(hi)) < 0:
        hi *= 4.0
    return math.exp(optimize.brentq(f, math.log(lo), math.log(hi), xtol=1e-12, rtol=1e-12))


def _vmf_fit(r_bar: float, n: int, dim: int) -> VMFFit:
    if n < 2:  # one direction: r_bar = 1 and kappa = inf say nothing
        return VMFFit(n=n, dim=dim, r_bar=math.nan, kappa=math.nan, kappa_banerjee=math.nan,
                      r_bar_uniform=math.nan, kappa_uniform=math.nan)
    r_u = 1.0 / math.sqrt(n)
    return VMFFit(n=n, dim=dim, r_bar=r_bar, kappa=vmf_kappa_mle(r_bar, dim),
                  kappa_banerjee=banerjee_kappa(r_bar, dim), r_bar_uniform=r_u,
                  kappa_uniform=vmf_kappa_mle(r_u, dim) if n > 1 else math.inf)


def vmf_concentration(unit_vectors: np.ndarray) -> VMFFit:
    """vMF fit of the rows of ``unit_vectors`` (n, d); rows are normalized first."""
    v = np.asarray(unit_vectors, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    n, d = v.shape
    return _vmf_fit(float(np.linalg.norm(v.mean(axis=0))), n, d)


def vmf_from_gram(gram: np.ndarray, dim: int) -> VMFFit:
    """vMF fit from the (n, n) Gram matrix of n vectors in ``dim`` dims (not necessarily unit).

    r_bar^2 = (1/n^2) sum_ij G_ij / sqrt(G_ii G_jj).
    """
    g = np.asarray(gram, dtype=np.float64)
    norms = np.sqrt(np.diag(g))
    c = g / np.outer(norms, norms)
    n = g.shape[0]
    r_bar = math.sqrt(max(float(c.sum()) / n**2, 0.0))
    return _vmf_fit(r_bar, n, dim)


# ---------------------------------------------------------------------------------------------
# Stochasticity of gradients (Lee et al. 2018)
# ---------------------------------------------------------------------------------------------


def norm_cv(norms: np.ndarray) -> float:
    """Gradient norm stochasticity: std/mean of the norms of n gradients (population std).

    NaN for n < 2 (no spread to measure) and when every norm is 0.
    """
    x = np.asarray(norms, dtype=np.float64).ravel()
    mean = float(x.mean()) if x.size else 0.0
    if x.size < 2 or mean == 0.0:
        return math.nan
    return float(x.std() / mean)


def gradient_stochasticity(gram: np.ndarray, eps: float = float(np.finfo(np.float64).eps)) -> float:
    """Noise-to-signal ratio of n gradient vectors g_i from their (n, n) Gram matrix.

    sqrt(mean_i ||g_i - g_bar||^2) / ||g_bar||, with ||g_bar||^2 = sum(G)/n^2 and
    mean_i ||g_i - g_bar||^2 = mean(diag G) - ||g_bar||^2 (the inverse gradient SNR).
    A spread at or below the centering round-off n^2 eps max_i G_ii (``eps`` the machine
    epsilon of the Gram's arithmetic; `engine.centering_roundoff`) is 0. inf when g_bar = 0
    with spread; NaN when every vector is 0 (0/0) or n < 2.
    """
    g = np.asarray(gram, dtype=np.float64)
    n = g.shape[0]
    if n < 2 or not np.any(np.diag(g) > 0):
        return math.nan
    mean_sq = float(g.sum()) / n**2
    var = float(np.trace(g)) / n - mean_sq
    var = var if var > n * n * eps * float(np.max(np.diag(g))) else 0.0
    return math.sqrt(var / mean_sq) if mean_sq > 0 else math.inf


# ---------------------------------------------------------------------------------------------
# Infinite-width baseline at initialization
# ---------------------------------------------------------------------------------------------

_LEAKY_SLOPE = 0.01
_PHI = {
    "relu": lambda h: np.maximum(h, 0.0),
    "tanh": np.tanh,
    "erf": special.erf,
    "sigmoid": special.expit,
    "gelu": lambda h: 0.5 * h * (1.0 + special.erf(h / math.sqrt(2.0))),
    "linear": lambda h: h,
    "softplus": lambda h: np.logaddexp(0.0, h),
    "abs": np.abs,
    "leaky_relu": lambda h: np.where(h > 0, h, _LEAKY_SLOPE * h),
}
_DPHI = {
    "relu": lambda h: (h > 0).astype(float),
    "tanh": lambda h: 1.0 - np.tanh(h) ** 2,
    "erf": lambda h: 2.0 / math.sqrt(math.pi) * np.exp(-h * h),
    "sigmoid": lambda h: special.expit(h) * (1.0 - special.expit(h)),
    "gelu": lambda h: 0.5 * (1.0 + special.erf(h / math.sqrt(2.0)))
    + h * np.exp(-0.5 * h * h) / math.sqrt(2.0 * math.pi),
    "linear": np.ones_like,
    "softplus": special.expit,
    "abs": np.sign,
    "leaky_relu": lambda h: np.where(h > 0, 1.0, _LEAKY_SLOPE),
}
# P(phi(u) != 0) and P(phi'(u) != 0) for u ~ N(0, q), q > 0: only relu has exact zeros.
_NONZERO_PHI = {"relu": 0.5}
_NONZERO_DPHI = {"relu": 0.5}


def _gauss_moment(fn, q: float, power: int) -> float:
    """E[fn(sqrt(q) z)^power], z ~ N(0,1), by quadrature split at the kink z = 0."""
    s = math.sqrt(q)
    f = lambda z: float(fn(np.asarray(s * z)) ** power) * math.exp(-0.5 * z * z)  # noqa: E731
    total = integrate.quad(f, -np.inf, 0.0)[0] + integrate.quad(f, 0.0, np.inf)[0]
    return total / math.sqrt(2.0 * math.pi)


def _moment_ratio(fn, q: float) -> float:
    """E[f^4] / E[f^2]^2 (uncentered) for f = fn(sqrt(q) z)."""
    return _gauss_moment(fn, q, 4) / _gauss_moment(fn, q, 2) ** 2


def predicted_entry_shape(activation: str, position: str = "hidden", batch_size: int = 1,
                          q_in: float = 1.0, q_out: float = 1.0, input_kurtosis: float = 3.0,
                          output_kurtosis: float = 3.0) -> dict[str, float]:
    """Zero fraction and Pearson kurtosis of the entries of dL/dW_l at init, wide-net model.

    Model: an entry of a single example's gradient is c * delta_i * a_j with
    a_j = phi(h_{l-1,j}), h_{l-1} ~ N(0, q_in) (``hidden`` and ``readout`` layers; the input
    x_j for ``first``, uncentered kurtosis ``input_kurtosis``), delta_i = phi'(h_{l,i}) g_i with
    h_l ~ N(0, q_out) and g_i ~ N(0, .) independent of everything (gradient independence;
    ``readout``: delta = dl/df, uncentered kurtosis ``output_kurtosis`` across outputs, 1 for a
    single output). Since delta is symmetric the entries have mean 0 and
    kurtosis = [3 E phi'^4/(E phi'^2)^2] * [E phi^4/(E phi^2)^2]: relu hidden layers give
    (3*2)*6 = 36 and 3/4 exact zeros. A batch of B examples with *independent* pre-activations
    (near-orthogonal inputs) averages B i.i.d. entries: zero fraction zf^B, kurtosis
    3 + (K1 - 3)/B; correlated inputs (real data) keep both closer to the B = 1 values.
    """
    phi, dphi = _PHI[activation], _DPHI[activation]
    nz_a = _NONZERO_PHI.get(activation, 1.0)
    nz_d = _NONZERO_DPHI.get(activation, 1.0)
    if position == "hidden":
        ka = _moment_ratio(phi, q_in)
        kd = 3.0 * _moment_ratio(dphi, q_out)
    elif position == "first":
        ka, nz_a = input_kurtosis, 1.0
        kd = 3.0 * _moment_ratio(dphi, q_out)
    elif position == "readout":
        ka = _moment_ratio(phi, q_in)
        kd, nz_d = output_kurtosis, 1.0
    else:
        raise ValueError(f"position must be 'first', 'hidden' or 'readout', got {position!r}")
    zf1, k1 = 1.0 - nz_a * nz_d, ka * kd
    return {"zero_fraction": zf1**batch_size, "kurtosis": 3.0 + (k1 - 3.0) / batch_size,
            "zero_fraction_single": zf1, "kurtosis_single": k1}
