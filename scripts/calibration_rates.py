"""False-disagreement rates of compare's tests under a right prediction (Monte Carlo): the
numbers docs/compare.md quotes for why `log_ratio` uses Cox's estimate, why `log_variance`
takes the theory's kurtosis, and that `quadratic_form` is calibrated at 2-24 seeds.

    python scripts/calibration_rates.py [--reps 100000]

Every rate is printed as a multiple of the nominal level (1 = exact; the calibration tests in
tests/results/test_stats.py accept within 2x), with its Monte Carlo standard error.

- log_ratio: per-seed ratios lognormal with E[ratio] = 1 (ln ratio ~ N(-s^2/2, s^2)); the
  t-test on raw ratios, the naive t-test on ln ratio (no Jensen shift) and Cox's test
  (`gradstats.results.stats.log_ratio_test`), level 0.01.
- log_variance: ln chi^2_1 + N(0, 1) seeds (the shape of ln grad_sq_norm), the variance test
  with the theory's excess kurtosis and with the sample's, levels 0.05 and 0.01.
- quadratic_form: m = z^T A z (chi^2_1-like, one dominant eigenvalue), levels 0.01, 0.05.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats as sps

from gradstats.results import stats

LOGNORMAL_CASES = [(0.4, 4), (0.8, 4), (0.6, 8), (0.8, 8), (0.8, 16), (0.8, 32)]
LN_CHI2_KURTOSIS = np.pi**4  # 4th cumulant of ln chi^2_1
LN_CHI2_VAR = np.pi**2 / 2   # its variance, psi'(1/2)


def _rate(pvalues: np.ndarray, level: float) -> tuple[float, float]:
    """(rate / level, its Monte Carlo standard error / level)."""
    rate = float(np.mean(pvalues < level))
    return rate / level, float(np.sqrt(rate * (1 - rate) / pvalues.size)) / level


def _cell(ratio_se: tuple[float, float]) -> str:
    return f"{ratio_se[0]:.2f} ± {ratio_se[1]:.2f}"


def log_ratio_rates(rng: np.random.Generator, reps: int, level: float = 0.01) -> list[str]:
    lines = [f"### log_ratio: lognormal ratios with E[ratio] = 1, level {level:g}", "",
             "| sigma | seeds | raw-ratio t | naive log t | Cox (log_ratio_test) |",
             "|---:|---:|---:|---:|---:|"]
    for sigma, n in LOGNORMAL_CASES:
        log_ratio = rng.normal(-sigma**2 / 2, sigma, (reps, n))
        ratio = np.exp(log_ratio)
        raw = _rate(sps.ttest_1samp(ratio, 1.0, axis=-1).pvalue, level)
        naive = _rate(sps.ttest_1samp(log_ratio, 0.0, axis=-1).pvalue, level)
        cox = _rate(stats.log_ratio_test(ratio, 1.0, level).pvalue, level)
        lines.append(f"| {sigma} | {n} | {_cell(raw)} | {_cell(naive)} | {_cell(cox)} |")
    return lines


def log_variance_rates(rng: np.random.Generator, reps: int) -> list[str]:
    lines = ["### log_variance: ln chi^2_1 + N(0, 1) seeds", "",
             "| seeds | level | theory kurtosis | sample kurtosis |", "|---:|---:|---:|---:|"]
    true_var = LN_CHI2_VAR + 1.0
    kurt = LN_CHI2_KURTOSIS / true_var**2
    for n in (8, 24, 96):
        x = np.log(rng.chisquare(1, (reps, n))) + rng.normal(0.0, 1.0, (reps, n))
        for level in (0.05, 0.01):
            theory = _rate(stats.log_variance_test(x, true_var, level, excess_kurtosis=kurt).pvalue,
                           level)
            sample = _rate(stats.log_variance_test(x, true_var, level).pvalue, level)
            lines.append(f"| {n} | {level:g} | {_cell(theory)} | {_cell(sample)} |")
    return lines


def quadratic_form_rates(rng: np.random.Generator, reps: int) -> list[str]:
    eigenvalues = np.array([1.0, 0.12, 0.08, 0.05, 0.03, 0.02])
    basis, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    a = basis @ np.diag(eigenvalues) @ basis.T
    z = rng.standard_normal((reps, 24, 6))
    measured = np.einsum("rsi,ij,rsj->rs", z, a, z)
    mean, var = np.trace(a), 2 * np.trace(a @ a)
    lines = ["### quadratic_form: z^T A z seeds (chi^2_1-like)", "",
             "| seeds | level 0.01 | level 0.05 |", "|---:|---:|---:|"]
    for n in (2, 4, 8, 24):
        cells = [_cell(_rate(stats.quadratic_form_test(measured[:, :n], mean, var, level).pvalue,
                             level)) for level in (0.01, 0.05)]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100_000, help="Monte Carlo replications")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"False-disagreement rate / nominal level under a right prediction ({args.reps} "
          "replications; ± Monte Carlo SE)\n")
    for block in (log_ratio_rates(rng, args.reps), log_variance_rates(rng, args.reps),
                  quadratic_form_rates(rng, args.reps)):
        print("\n".join(block), "\n")


if __name__ == "__main__":
    main()
