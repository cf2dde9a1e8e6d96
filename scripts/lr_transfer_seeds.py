"""The lr-transfer numbers README quotes beyond its table: the per-seed final losses above each
width's optimal lr (why few optima are resolved at 3 seeds) and, for a run with more seeds,
the same table (`scripts/compare_report.py`'s ``lr_transfer_table``).

    gradstats run lr-transfer --out DIR3 --workers 2
    gradstats run lr-transfer --set seeds=8 --out DIR8 --workers 2
    python scripts/lr_transfer_seeds.py DIR3 DIR8

Per results directory: the lr-transfer table (`gradstats.results.lr_transfer`), then per
parameterization and width, at every grid lr above the loss-optimal one, the per-seed full
training losses at the last step and the largest over the smallest (inf: a seed diverged),
and the count of those cells where the largest is at least twice the smallest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_report import _lr_text, lr_transfer_table  # noqa: E402

from gradstats.results.io import load_results  # noqa: E402
from gradstats.results.lr_transfer import LR_DIM, WIDTH_DIM, final_loss, lr_transfer_summary  # noqa: E402
from gradstats.spec import SEED_DIM  # noqa: E402

SPREAD_FACTOR = 2.0  # "one seed's loss is often 2-4x the others'"


def above_optimum(ds) -> list[str]:
    """Markdown table: per (parameterization, width) and grid lr above the optimum, the
    per-seed losses and their max/min; then the count of cells with max/min >= 2."""
    summary = lr_transfer_summary(ds)
    loss, ran = final_loss(ds)
    lines = ["| parameterization | width | optimal lr | lr | per-seed loss | max / min |",
             "|---|---:|---|---|---|---:|"]
    spread, cells = 0, 0
    for par in summary["parameterization"].values:
        for width in summary[WIDTH_DIM].values:
            opt = float(summary["lr_opt"].sel(parameterization=par, width=width))
            if not np.isfinite(opt):
                continue
            for lr in summary[LR_DIM].values:
                sel = {"parameterization": par, WIDTH_DIM: width, LR_DIM: lr}
                if lr <= opt or not bool(ran.sel(sel).any()):
                    continue
                seeds = loss.sel(sel).transpose(SEED_DIM).values.astype(float)
                seeds = seeds[~np.isnan(seeds)]  # not run; inf (diverged) stays
                ratio = seeds.max() / seeds.min()
                cells += 1
                spread += bool(ratio >= SPREAD_FACTOR)
                lines.append(f"| {par} | {width} | {_lr_text(opt)} | {_lr_text(float(lr))} | "
                             + ", ".join(f"{v:.2f}" for v in seeds) + f" | {ratio:.2f} |")
    lines += ["", f"{spread} of {cells} cells above the optimum have a largest per-seed loss at "
              f"least {SPREAD_FACTOR:g}x the smallest."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="lr-transfer results directories")
    args = parser.parse_args()
    for path in args.results:
        ds = load_results(path, lazy=False)
        print(f"## {path.name}: {ds.sizes.get(SEED_DIM, 1)} seeds\n")
        print(lr_transfer_table(ds), "\n")
        print("\n".join(above_optimum(ds)), "\n")


if __name__ == "__main__":
    main()
