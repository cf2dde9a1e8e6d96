"""Per-seed spread of the weight-gradient norms of residual networks against beta, from a
`residual` preset run: the numbers README ("ResNets" paragraph) and docs/compare.md
(effective depth) quote for the factor 2 in a residual block's weight min(1, 2 r_l).

    gradstats run residual --out DIR -q --no-compare
    python scripts/residual_spread.py DIR

Per network (plain MLP; residual alpha = 1 and 1/sqrt(depth); without and with LayerNorm)
and depth: the median over hidden layers 2..depth of the per-seed variance (and standard
deviation) of ln(grad_sq_norm / theory_grad_sq_norm), the effective depth/width beta of
`gradstats.theory.validity.beta` (w_l = min(1, 2 r_l)), the same with w_l = min(1, r_l), and
the variance in units of each beta: the finite-width fluctuations beta is meant to measure
(about 4 beta for plain MLPs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gradstats import Architecture
from gradstats.results.io import load_results
from gradstats.theory import validity

FIXED = {"width": 512, "activation": "relu", "sigma_w2": 1.5, "sigma_b2": 0.05}  # the preset


def networks(ds):
    """(label, selection, Architecture kwargs) of the preset's networks."""
    for norm in ("none", "layer"):
        yield f"plain, norm {norm}", {"residual": 0, "residual_scale": "1.0", "norm": norm}, \
            {"residual": False, "norm": norm}
        for scale in ("1.0", "1/sqrt(depth)"):
            label = "alpha = 1" if scale == "1.0" else "alpha = 1/sqrt(depth)"
            yield f"residual {label}, norm {norm}", \
                {"residual": 1, "residual_scale": scale, "norm": norm}, \
                {"residual": True, "residual_scale": 1.0 if scale == "1.0" else scale, "norm": norm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a residual preset results directory")
    args = parser.parse_args()
    ds = load_results(args.results, lazy=False)
    log_ratio = np.log(ds["grad_sq_norm"] / ds["theory_grad_sq_norm"]).isel(step=0)
    print("median over hidden layers 2..depth of the per-seed variance of "
          "ln(grad_sq_norm / theory_grad_sq_norm); beta = effective depth / width\n")
    print("| network | depth | seeds | median var | median sd | beta (w = 2r) | var / beta "
          "| beta (w = r) | var / beta (w = r) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, sel, kwargs in networks(ds):
        for depth in ds["depth"].values:
            part = log_ratio.sel(sel).sel(depth=depth, layer=slice(2, int(depth)))
            finite = part.where(np.isfinite(part))
            if int(finite.count()) == 0:
                continue
            var = float(finite.var("seed", ddof=1).median())
            seeds = int(finite.count("seed").max())
            arch = Architecture(depth=int(depth), **FIXED, **kwargs)
            b2, b1 = (validity.effective_depth(arch, weight_coef=c) / FIXED["width"] for c in (2.0, 1.0))
            print(f"| {label} | {depth} | {seeds} | {var:.3g} | {np.sqrt(var):.3g} | {b2:.3g} | "
                  f"{var / b2:.2g} | {b1:.3g} | {var / b1:.2g} |")


if __name__ == "__main__":
    main()
