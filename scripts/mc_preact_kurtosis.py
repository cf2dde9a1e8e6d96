"""Monte Carlo of the preactivation excess kurtosis of MLPs at init, against the package's
four-point-vertex predictions: the numbers docs/theory.md and `gradstats.theory.validity`
(KURTOSIS_NEXT_ORDER_COEF) quote.

Usage: python scripts/mc_preact_kurtosis.py [--nets 20000] [--seed 0]

Independent of the simulator: ``nets`` numpy networks (standard parameterization, Gaussian
weights, one fixed input of mean square 1), the per-network means over the units of a layer
m2 = <h^2>, m4 = <h^4>, and the pooled kurtosis E[m4] / E[m2]^2 - 3 with its delta-method
standard error. Prints

1. homogeneous activations without bias (relu at sigma_w2 = 2, linear at 1): the measured
   kurtosis per layer beside the exact product formula 3 [prod_k (1 + r/n_k) - 1]
   (`finite_width.preact_excess_kurtosis_exact`) and the leading order 15 (l-1)/n, 6 (l-1)/n
   (`finite_width.preact_excess_kurtosis`), and how many standard errors away the wrong
   constants (5 and 6 (l-1)/n for relu) lie;
2. other activations and relu with bias, off criticality, width 32: the relative error
   (MC - leading) / leading of the leading order in units of (l-1)/n, per layer and its
   maximum: the envelope KURTOSIS_NEXT_ORDER_COEF must cover.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from gradstats import Architecture
from gradstats import activations as act_table
from gradstats.theory import finite_width

RESOLVED_SE = 0.5
CHUNK = 2500  # networks per batched draw (memory: CHUNK x width^2 float64 per layer)


def layer_moments(activation: str, width: int, depth: int, sigma_w2: float, sigma_b2: float,
                  nets: int, rng: np.random.Generator, input_dim: int = 8
                  ) -> tuple[np.ndarray, np.ndarray]:
    """m2, m4 of hidden layers 1..depth: (nets, depth) each."""
    phi, _ = act_table.functions(activation, "numpy")
    x = rng.standard_normal(input_dim)
    x *= math.sqrt(input_dim) / np.linalg.norm(x)
    m2, m4 = np.empty((nets, depth)), np.empty((nets, depth))
    for start in range(0, nets, CHUNK):
        k = min(CHUNK, nets - start)
        a = np.broadcast_to(x, (k, input_dim))
        for layer in range(depth):
            fan_in = a.shape[1]
            w = rng.standard_normal((k, width, fan_in)) * math.sqrt(sigma_w2 / fan_in)
            h = np.einsum("bij,bj->bi", w, a) + math.sqrt(sigma_b2) * rng.standard_normal((k, width))
            m2[start:start + k, layer] = np.mean(h**2, 1)
            m4[start:start + k, layer] = np.mean(h**4, 1)
            a = phi(h)
    return m2, m4


def pooled_kurtosis(m2: np.ndarray, m4: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[m4] / E[m2]^2 - 3 per layer and its delta-method standard error: (depth,) each."""
    a, b = m4.mean(0), m2.mean(0)
    g4, g2 = 1 / b**2, -2 * a / b**3
    se = np.empty(m2.shape[1])
    for layer in range(m2.shape[1]):
        c = np.cov(m4[:, layer], m2[:, layer])
        se[layer] = math.sqrt((g4[layer] ** 2 * c[0, 0] + 2 * g4[layer] * g2[layer] * c[0, 1]
                               + g2[layer] ** 2 * c[1, 1]) / len(m2))
    return a / b**2 - 3, se


def measure(activation: str, width: int, depth: int, sigma_w2: float, sigma_b2: float,
            nets: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Measured kurtosis (and se), leading order and (without bias) the exact formula, per
    hidden layer 1..depth."""
    kurt, se = pooled_kurtosis(*layer_moments(activation, width, depth, sigma_w2, sigma_b2,
                                              nets, rng))
    arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                        sigma_b2=sigma_b2, bias=sigma_b2 > 0, input_dim=8)
    out = {"mc": kurt, "se": se, "lead": finite_width.preact_excess_kurtosis(arch)[:depth]}
    if sigma_b2 == 0 and activation in ("relu", "linear"):
        out["exact"] = finite_width.preact_excess_kurtosis_exact(arch)[:depth]
    return out


def homogeneous(nets: int, rng: np.random.Generator) -> None:
    print("## Homogeneous activations without bias: measured vs exact and leading order\n")
    print("| activation | width | layer | measured | se | exact | leading | "
          "(measured - 5 (l-1)/n) / se | (measured - 6 (l-1)/n) / se |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for activation, sw2, width, depth, layers in (("relu", 2.0, 32, 6, range(2, 7)),
                                                  ("relu", 2.0, 64, 9, [9]),
                                                  ("linear", 1.0, 32, 6, [6])):
        r = measure(activation, width, depth, sw2, 0.0, nets, rng)
        for layer in layers:
            i = layer - 1
            # the wrong constants for relu: 5 (l-1)/n and 6 (l-1)/n (linear's)
            z = [(r["mc"][i] - c * (layer - 1) / width) / r["se"][i] for c in (5, 6)]
            zs = " | ".join(f"{v:.1f}" if activation == "relu" else "-" for v in z)
            print(f"| {activation} | {width} | {layer} | {r['mc'][i]:.3f} | {r['se'][i]:.3f} | "
                  f"{r['exact'][i]:.3f} | {r['lead'][i]:.3f} | {zs} |")
    print()


OFF_CRITICAL = (("tanh", 1.5, 0.1), ("gelu", 3.0, 0.2), ("softplus", 2.0, 0.1),
                ("sigmoid", 4.0, 0.1), ("relu", 2.5, 0.5), ("relu", 1.5, 0.5))


def envelope(nets: int, rng: np.random.Generator, width: int = 32, depth: int = 6) -> None:
    print(f"## Leading order off criticality (width {width}): (measured - leading) / leading "
          "in units of (l-1)/n, +- se\n")
    print(f"max: the largest |value| among the cells whose se is below {RESOLVED_SE} (the "
          "others do not resolve the next order)\n")
    print("| activation | sigma_w2 | sigma_b2 | " + " | ".join(
        f"layer {layer}" for layer in range(2, depth + 1)) + " | max |")
    print("|---|---:|---:|" + "---:|" * depth)
    worst = []
    for activation, sw2, sb2 in OFF_CRITICAL:
        r = measure(activation, width, depth, sw2, sb2, nets, rng)
        layers = np.arange(2, depth + 1)  # layer 1 is Gaussian: leading order 0
        scale = r["lead"][1:] * (layers - 1) / width
        rel, rel_se = (r["mc"][1:] - r["lead"][1:]) / scale, r["se"][1:] / scale
        cells = [f"{v:+.2f} +- {e:.2f}" for v, e in zip(rel, rel_se, strict=True)]
        ok = np.flatnonzero(rel_se < RESOLVED_SE)
        if ok.size:
            i = ok[np.argmax(np.abs(rel[ok]))]
            worst.append((abs(rel[i]), rel_se[i], activation, sw2, sb2, int(layers[i])))
            cells.append(f"{abs(rel[i]):.2f} (layer {layers[i]})")
        else:
            cells.append("-")
        print(f"| {activation} | {sw2:g} | {sb2:g} | " + " | ".join(cells) + " |")
    if not worst:
        print("\nno cell resolved: more networks needed\n")
        return
    top = max(worst)
    print(f"\nlargest resolved |relative error| / ((l-1)/n): {top[0]:.2f} +- {top[1]:.2f} "
          f"({top[2]}, sigma_w2 = {top[3]:g}, sigma_b2 = {top[4]:g}, layer {top[5]})\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.nets} networks per setting, seed {args.seed}\n")
    homogeneous(args.nets, rng)
    envelope(args.nets, rng)


if __name__ == "__main__":
    main()
