"""Batch-norm gradient explosion at init: the prediction table and the Monte Carlo table of
docs/batchnorm.md.

    python scripts/batchnorm_mc.py            (about 5 min on 2 cores)

1. lambda(B), the per-layer growth of |dL/dW_l|^2 toward the input at infinite width
   (`gradstats.theory.batchnorm.bn_gradient_growth_rate`), per activation and batch size.
2. Explicit networks, torch autograd in float64 (the network of
   tests/theory/test_theory_batchnorm.py, written out again here so the table does not depend
   on the code under test): d = 64 orthonormal inputs, depth 20,
   h_1 = sigma_w/sqrt(d) W_1 x, h_l = sigma_w/sqrt(n) W_l phi(BN(h_{l-1})), readout f likewise,
   L = 1/(2B) sum_b f_b^2 (MSE with y = 0), BN = torch's batch_norm in training mode (eps 1e-5,
   no affine). Per seed the slope -d ln|dL/dW_l|^2 / dl over layers 2..15; the table holds the
   seed mean minus ln lambda(B) with its standard error (16 seeds; 12 at width 2048), and the
   measured slopes at width 1024.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from gradstats.theory import batchnorm as bn

INPUT_DIM, DEPTH, FIT = 64, 20, (2, 15)
PREDICTION_ACTIVATIONS = ("relu", "tanh", "linear", "gelu", "erf", "sigmoid")
PREDICTION_BATCHES = (4, 8, 16, 32, 64, 128)
CASES = [("relu", 8), ("relu", 32), ("tanh", 8), ("tanh", 32), ("linear", 8), ("linear", 32)]
WIDTHS = (128, 256, 512, 1024)
PHI = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda t: t}


def log_grad_norms(activation: str, b: int, width: int, seed: int) -> np.ndarray:
    """ln |dL/dW_l|^2 for l = 1..DEPTH+1 of one explicit network (sigma_w = 1: BN makes every
    ratio independent of it)."""
    gen = torch.Generator().manual_seed(seed)
    dt = torch.float64
    qx, _ = torch.linalg.qr(torch.randn(INPUT_DIM, b, generator=gen, dtype=dt))
    x = qx.T * math.sqrt(INPUT_DIM)  # x x^T / d = I: BSB1 from layer 1
    fans = [INPUT_DIM] + [width] * DEPTH
    outs = [width] * DEPTH + [1]
    ws = [torch.randn(o, i, generator=gen, dtype=dt, requires_grad=True)
          for i, o in zip(fans, outs, strict=True)]
    h = x @ ws[0].T / math.sqrt(INPUT_DIM)
    for w in ws[1:]:
        h = PHI[activation](F.batch_norm(h, None, None, training=True, eps=1e-5)) @ w.T
        h = h / math.sqrt(width)
    loss = (h[:, 0] ** 2).sum() / (2 * b)
    return np.array([math.log(float((g * g).sum())) for g in torch.autograd.grad(loss, ws)])


def slopes(activation: str, b: int, width: int, seeds: int) -> np.ndarray:
    """Per seed: -d ln|dL/dW_l|^2 / dl, OLS over layers FIT."""
    layers = np.arange(FIT[0], FIT[1] + 1)
    return np.array([-np.polyfit(layers, log_grad_norms(activation, b, width, s)[layers - 1], 1)[0]
                     for s in range(seeds)])


def prediction_table() -> list[str]:
    lines = ["| B | " + " | ".join(PREDICTION_ACTIVATIONS) + " |",
             "|---|" + "---|" * len(PREDICTION_ACTIVATIONS)]
    for b in PREDICTION_BATCHES:
        lines.append(f"| {b} | " + " | ".join(f"{bn.bn_gradient_growth_rate(a, b):.4f}"
                                            for a in PREDICTION_ACTIVATIONS) + " |")
    lines.append("| inf | " + " | ".join(f"{bn.bn_gradient_growth_rate_large_batch(a):.4f}"
                                         for a in PREDICTION_ACTIVATIONS) + " |")
    return lines


def monte_carlo_table(seeds: int, seeds_2048: int) -> list[str]:
    log_rate = {c: math.log(bn.bn_gradient_growth_rate(*c)) for c in CASES}
    lines = ["| width | " + " | ".join(f"{a} B={b}" for a, b in CASES) + " |",
             "|---|" + "---|" * len(CASES)]
    at_1024 = {}
    for width in WIDTHS:
        cells = []
        for case in CASES:
            s = slopes(*case, width, seeds)
            cells.append(f"{s.mean() - log_rate[case]:+.3f}±{s.std(ddof=1) / math.sqrt(seeds):.3f}")
            if width == WIDTHS[-1]:
                at_1024[case] = (s.mean(), s.std(ddof=1) / math.sqrt(seeds))
        lines.append(f"| {width} | " + " | ".join(cells) + " |")
        print(f"  width {width} done", flush=True)
    if seeds_2048:
        s = slopes("relu", 32, 2048, seeds_2048)
        cells = [""] * len(CASES)
        cells[CASES.index(("relu", 32))] = (f"{s.mean() - log_rate[('relu', 32)]:+.4f}±"
                                           f"{s.std(ddof=1) / math.sqrt(seeds_2048):.4f} "
                                           f"({seeds_2048} seeds)")
        lines.append("| 2048 | " + " | ".join(cells) + " |")
    lines += ["", "ln lambda: " + ", ".join(f"{a} B={b} {log_rate[(a, b)]:.3f}" for a, b in CASES),
              f"measured slopes at width {WIDTHS[-1]}: " + ", ".join(
                  f"{a} B={b} {m:.3f} ± {se:.3f}" for (a, b), (m, se) in at_1024.items())]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--seeds-2048", type=int, default=12, help="0: skip the width-2048 row")
    args = parser.parse_args()
    print("lambda(B): per-layer factor of |dL/dW_l|^2 toward the input, infinite width\n")
    print("\n".join(prediction_table()), "\n")
    print(f"Monte Carlo: seed-mean slope over layers {FIT[0]}..{FIT[1]} minus ln lambda(B), "
          f"± standard error ({args.seeds} seeds), depth {DEPTH}, float64\n", flush=True)
    print("\n".join(monte_carlo_table(args.seeds, args.seeds_2048)))


if __name__ == "__main__":
    main()
