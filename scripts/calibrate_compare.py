"""Calibration of `gradstats compare` in valid regimes, from independent groups of seeds.

    python scripts/calibrate_compare.py [--seeds 192] [--group 8] [--level 0.05] [--out FILE.md]
                                        [--doc]   # also rewrite docs/compare.md's calibration section

For each configuration (relu and tanh MLPs inside the infinite-width domain), simulates
``--seeds`` networks at init, splits them into independent groups of ``--group`` seeds, runs
`compare` on every group and reports per comparison (a) the raw per-cell false-disagreement
rate (nominal: ``--level``) and (b) the family-wise rate after Holm (nominal: ``--level``),
with their binomial standard errors; and (c) on all seeds at once, the estimate of
ln E[measured / predicted] (Cox) per layer against beta = depth/width: the finite-width bias
that the allowance 3 beta + 10/width of `gradstats.theory.validity` must cover.

The numbers in docs/compare.md ("Calibration and power") come from this script with the
defaults and ``--doc``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "results"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_helpers import make_points, simulate, to_results  # noqa: E402

from gradstats.comparisons import COMPARISONS  # noqa: E402
from gradstats.results import stats  # noqa: E402
from gradstats.results.compare import compare  # noqa: E402

CONFIGS = (
    dict(activation="relu", width=128, depth=6, sigma_w2=1.8),
    dict(activation="tanh", width=128, depth=6, sigma_w2=1.8),
    dict(activation="relu", width=512, depth=3, sigma_w2=2.0),
    dict(activation="tanh", width=256, depth=4, sigma_w2=1.2),
    dict(activation="relu", width=1024, depth=4, sigma_w2=2.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=192)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--level", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--doc", action="store_true", help="rewrite docs/compare.md's section")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [f"Independent groups of {args.group} seeds ({args.seeds} per configuration), "
             f"level {args.level}: raw per-cell false-disagreement rate / family-wise rate "
             "after Holm (both nominal = level), cells tested.", "",
             "| configuration | depth/width | " + " | ".join(c.name for c in COMPARISONS[:13])
             + " |", "|---|---|" + "---|" * 13]
    bias_lines = ["", "Finite-width bias on all seeds: Cox estimate of ln E[measured/predicted] "
                  "(max |.| over layers, its SE) vs the allowance 3 beta + 10/width.", "",
                  "| configuration | beta | row | max abs ln E ratio | SE | allowance |",
                  "|---|---|---|---|---|---|"]
    from gradstats.theory.validity import finite_width_allowance
    for cfg in CONFIGS:
        points = make_points(args.seeds, sigma_b2=0.05, input_dim=32, n_train=256, **cfg)
        ds = to_results(simulate(points))
        beta = cfg["depth"] / cfg["width"]
        name = f"{cfg['activation']} w{cfg['width']} d{cfg['depth']} sw2 {cfg['sigma_w2']}"
        cells = []
        groups = [compare(ds.isel(seed=slice(g * args.group, (g + 1) * args.group)),
                          level=args.level) for g in range(args.seeds // args.group)]
        for comparison in COMPARISONS[:13]:
            raw, fw, n = [], [], 0
            for cmp in groups:
                key = comparison.name
                if f"{key}_p" not in cmp:
                    continue
                codes = cmp[f"{key}_verdict"].values.ravel()
                p = cmp[f"{key}_p"].values.ravel()
                tested = np.isfinite(p) & (codes != stats.OUTSIDE)
                raw.extend(p[tested] < args.level)
                fw.append(bool((codes[tested] == stats.DISAGREE).any()))
                n += int(tested.sum())
            if n == 0:
                cells.append("outside")
                continue
            cells.append(f"{np.mean(raw):.3f} / {np.mean(fw):.2f} ({n})")
            print(name, comparison.name, cells[-1], flush=True)
        lines.append(f"| {name} | {beta:.3g} | " + " | ".join(cells) + " |")
        for row in ("grad_sq_norm", "backward_q", "forward_q"):
            m = ds[row].sel(step=0).transpose(..., "seed").values
            p = ds[f"theory_{row}"].sel(step=0).transpose(..., "seed").values if \
                "step" in ds[f"theory_{row}"].dims else ds[f"theory_{row}"].transpose(..., "seed").values
            if row != "grad_sq_norm":  # the readout is not tested (f^2 itself; equal by design)
                m, p = m[:-1], p[:-1]
            res = stats.log_ratio_test(m, p, args.level)
            est = np.abs(res.estimate)
            i = int(np.nanargmax(est))
            allowance = finite_width_allowance(points[0])
            bias_lines.append(f"| {name} | {beta:.3g} | {row} | {est[i]:.3f} | {res.se[i]:.3f} | "
                              f"{allowance:.3f} |")
    text = "\n".join(lines + bias_lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.doc:
        from compare_report import COMPARE_DOC, replace_between

        replace_between(COMPARE_DOC, "calibration", text.rstrip("\n"))


if __name__ == "__main__":
    main()
