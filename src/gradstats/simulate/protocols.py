"""Tail tests as the seed papers ran them, the package's stricter test, and matched controls.

Pure numpy/scipy (no torch). Three tests of one sample (any shape; |x| for the power laws):

- `xie_power_law_test`: the protocol of Xie et al. 2023 (and of their 2022 Hessian-spectrum
  paper), as reconstructed in docs/distributions.md ("Reproducing the seed papers"): a
  power law fitted the way the ``powerlaw`` package fits it (xmin minimizing the KS
  distance over every tail, no minimum tail fraction; MLE alpha above xmin), then a KS test
  of the fitted tail: the power law is *not rejected* when its KS distance
  d_KS <= d_c = 1.358 / sqrt(n_tail), the asymptotic Kolmogorov critical value at the 5%
  level. No bootstrap: the parameters (and xmin) are fitted to the same points, so this
  test rejects far less often than its nominal 5% (Lilliefors' effect, and xmin is chosen
  to minimize d_KS).
- `xie_gaussian_test`: their Gaussian hypothesis test: KS distance to the normal with the
  sample's mean and standard deviation, not rejected when d_KS <= 1.358 / sqrt(n).
- `strict_power_law_test`: the package's test (`fit_power_law` defaults): >= 10% of the
  sample in the tail (``min_tail_fraction=0.1``), CSN semi-parametric bootstrap p >= 0.1,
  on a random subsample of at most 2000 values (the ``distribution`` estimator's settings).

`control_sample` draws the matched controls (Gaussian, lognormal, Student-t with a known tail
index, Pareto with a known exponent) and `control_pass_rate` runs a test on many of them, so
a pass rate on gradients is always read beside what the same test calls a power law on
samples of the same size whose answer is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradstats.simulate import distributions as dist

KS_CRITICAL_05 = 1.358     # sqrt(-ln(0.025) / 2): Kolmogorov's asymptotic 5% critical value
PAPER_MIN_TAIL = 10        # the smallest tail the xmin search may pick (powerlaw: any)
PAPER_CANDIDATES = 100     # xmin candidates, geometrically spaced tail sizes (powerlaw: all)
STRICT_LEVEL = 0.1         # CSN: plausible when the bootstrap p >= 0.1
STRICT_BOOTSTRAP = 100
STRICT_MAX_SAMPLE = 2000
STRICT_CANDIDATES = 30
STUDENT_T_DOF = 3          # survival tail index a = 3, density exponent alpha = 4
PARETO_ALPHA = 2.5         # density exponent of the Pareto control
CONTROLS = ("gaussian", "lognormal", "student_t", "pareto")


@dataclass(frozen=True)
class TestResult:
    """One sample's verdict: ``passes`` (the hypothesis is not rejected), the statistic and
    its critical value (NaN where the test is a bootstrap p), the p-value (bootstrap tests),
    the fitted density exponent alpha, and the points the statistic compared (n_tail)."""

    passes: bool
    statistic: float
    critical: float
    p_value: float
    alpha: float
    n_tail: int


def xie_power_law_test(sample: np.ndarray, tail: str = "abs", critical_n: str = "tail"
                       ) -> TestResult:
    """Xie et al.'s power-law test: free-xmin KS fit, not rejected when d_KS <= 1.358/sqrt(m).

    m is the tail size (``critical_n="tail"``: the points the KS distance compares) or the
    whole sample's size (``"sample"``: the reading under which a tiny tail does not pass
    trivially); the paper's text as stored here does not say which. NaN fit (fewer than
    ``PAPER_MIN_TAIL`` positive values): ``passes`` False.
    """
    if critical_n not in ("tail", "sample"):
        raise ValueError(f"critical_n must be 'tail' or 'sample', got {critical_n!r}")
    fit = dist.fit_power_law(sample, tail=tail, n_bootstrap=0, min_tail=PAPER_MIN_TAIL,
                             min_tail_fraction=0.0, max_candidates=PAPER_CANDIDATES,
                             compare=False)
    if not math.isfinite(fit.ks):
        return TestResult(False, math.nan, math.nan, math.nan, math.nan, fit.n_tail)
    critical = KS_CRITICAL_05 / math.sqrt(fit.n_tail if critical_n == "tail" else fit.n)
    return TestResult(bool(fit.ks <= critical), fit.ks, critical, math.nan, fit.alpha, fit.n_tail)


def xie_gaussian_test(sample: np.ndarray) -> TestResult:
    """KS distance to N(mean, sd) of the sample; not rejected when d_KS <= 1.358/sqrt(n)."""
    from scipy import stats

    x = np.asarray(sample, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    sd = float(x.std()) if x.size else 0.0
    if x.size < 8 or sd == 0:
        return TestResult(False, math.nan, math.nan, math.nan, math.nan, int(x.size))
    d = float(stats.kstest(x, "norm", args=(float(x.mean()), sd)).statistic)
    critical = KS_CRITICAL_05 / math.sqrt(x.size)
    return TestResult(bool(d <= critical), d, critical, math.nan, math.nan, int(x.size))


def strict_power_law_test(sample: np.ndarray, rng: np.random.Generator | int | None = None,
                          tail: str = "abs") -> TestResult:
    """The package's test: tail >= 10% of the sample, CSN bootstrap p >= 0.1 (subsample 2000)."""
    fit = dist.fit_power_law(sample, tail=tail, n_bootstrap=STRICT_BOOTSTRAP, rng=rng,
                             max_sample=STRICT_MAX_SAMPLE, max_candidates=STRICT_CANDIDATES,
                             compare=False)
    passes = bool(math.isfinite(fit.p_value) and fit.p_value >= STRICT_LEVEL)
    return TestResult(passes, fit.ks, math.nan, fit.p_value, fit.alpha, fit.n_tail)


PROTOCOLS: dict[str, Callable[..., TestResult]] = {
    "paper": lambda x, rng: xie_power_law_test(x),
    "paper_n": lambda x, rng: xie_power_law_test(x, critical_n="sample"),
    "strict": lambda x, rng: strict_power_law_test(x, rng),
    "gaussian": lambda x, rng: xie_gaussian_test(x),
}


def control_sample(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of a control whose tail is known: ``gaussian`` (no power law), ``lognormal``
    (mu 0, sigma 1: heavier than Gaussian, no power law), ``student_t`` (3 dof: power-law tail
    with density exponent 4 above a Gaussian-like body), ``pareto`` (exact power law,
    density exponent `PARETO_ALPHA`, xmin 1)."""
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 1.0, n)
    if kind == "student_t":
        return rng.standard_t(STUDENT_T_DOF, n)
    if kind == "pareto":
        return (1.0 - rng.random(n)) ** (-1.0 / (PARETO_ALPHA - 1.0))
    raise ValueError(f"control must be one of {', '.join(CONTROLS)}, got {kind!r}")


def control_pass_rate(kind: str, n: int, protocol: str, draws: int,
                      rng: np.random.Generator | int | None = None) -> float:
    """Fraction of ``draws`` control samples of size ``n`` that ``protocol`` passes."""
    gen = np.random.default_rng(rng)
    test = PROTOCOLS[protocol]
    return float(np.mean([test(control_sample(kind, n, gen), gen).passes for _ in range(draws)]))
