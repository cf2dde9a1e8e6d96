"""How often the tail estimators of `gradstats.simulate.distributions` call a sample heavy-tailed
when it is not (and reject a true power law): the numbers docs/distributions.md quotes for
``min_tail_fraction = 0.1`` and for the alpha-stable index's bias.

    python scripts/tail_estimator_rates.py [--draws 50]      (about 3 min on one core)

1. `fit_power_law` (CSN, bootstrap 50) on n = 5000 samples with ``min_tail_fraction`` 0.1 (the
   default) and 0 (textbook CSN): the fraction of draws whose power law is *plausible*
   (bootstrap p >= 0.1) and *called a power law* (`is_power_law(0.1)`: plausible and no
   alternative significantly better), for a Gaussian, a lognormal(0, 1) and the wide-relu
   gradient-entry model (masked Gaussian times relu(Gaussian)); and for Pareto samples
   (alpha 2.5; n = 1000 and 5000) the fraction rejected (p < 0.1; nominal 0.1).
2. `stable_tail_index` at n = 10^4 (200 draws): mean and per-draw sd for a Gaussian and a
   Student-t with 3 degrees of freedom (finite variance), and the Hill index of the latter at
   k = 200.
Each rate with its binomial standard error.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from gradstats.simulate import distributions as D

N = 5000
LEVEL = 0.1


def samplers(rng: np.random.Generator) -> dict:
    return {
        "gaussian": lambda: rng.standard_normal(N),
        "lognormal(0, 1)": lambda: rng.lognormal(0.0, 1.0, N),
        "relu product": lambda: rng.standard_normal(N) * (rng.random(N) < 0.5)
        * np.maximum(rng.standard_normal(N), 0.0),
    }


def pareto(rng: np.random.Generator, n: int, alpha: float) -> np.ndarray:
    """Density exponent alpha above xmin = 1."""
    return (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0))


def _rate(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{p:.2f} ± {math.sqrt(p * (1 - p) / len(hits)):.2f}"


def power_law_rates(rng: np.random.Generator, draws: int) -> list[str]:
    lines = [f"### fit_power_law, n = {N}, bootstrap 50, {draws} draws per cell", "",
             "| sample | min_tail_fraction | plausible | called a power law |",
             "|---|---:|---:|---:|"]
    for name, draw in samplers(rng).items():
        for fraction in (0.1, 0.0):
            fits = [D.fit_power_law(draw(), n_bootstrap=50, rng=rng, min_tail_fraction=fraction)
                    for _ in range(draws)]
            lines.append(f"| {name} | {fraction:g} | {_rate([f.plausible(LEVEL) for f in fits])} "
                         f"| {_rate([f.is_power_law(LEVEL) for f in fits])} |")
    lines += ["", "| Pareto alpha 2.5, n | rejected (p < 0.1) |", "|---:|---:|"]
    for n in (1000, N):
        fits = [D.fit_power_law(pareto(rng, n, 2.5), n_bootstrap=50, rng=rng, compare=False)
                for _ in range(draws)]
        lines.append(f"| {n} | {_rate([not f.plausible(LEVEL) for f in fits])} |")
    return lines


def stable_index_bias(rng: np.random.Generator, draws: int = 200) -> list[str]:
    gauss = np.array([D.stable_tail_index(rng.standard_normal(10_000)) for _ in range(draws)])
    t3 = rng.standard_t(3, size=(draws, 10_000))
    stable = np.array([D.stable_tail_index(r) for r in t3])
    hill = np.array([D.hill_tail_index(r, 200) for r in t3])
    return [f"### stable_tail_index, n = 10^4, {draws} draws (mean, per-draw sd)", "",
            f"gaussian: {gauss.mean():.2f}, sd {gauss.std(ddof=1):.2f}",
            f"student-t(3): {stable.mean():.2f}, sd {stable.std(ddof=1):.2f}; "
            f"Hill (k = 200) {hill.mean():.2f}, sd {hill.std(ddof=1):.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("\n".join(power_law_rates(rng, args.draws)), "\n", flush=True)
    print("\n".join(stable_index_bias(rng)))


if __name__ == "__main__":
    main()
