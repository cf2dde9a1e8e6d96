"""Ensembles over learning rates (sgd, adam): one ensemble of every (lr, seed) vs one seed
ensemble per lr vs one by one, side by side in one process; writes RESULTS_lr_ensemble.md.

relu MLP, depth 4, sphere data (n_train 512, batch 32), float32, 100 steps, default
record, the ntk estimator and theory inputs as every trained point records them; L lrs on
a factor-2 grid (sgd from 0.4, adam from 0.01) x S seeds, every point also run one by one.
Process CPU time (one torch and one BLAS thread) is the ratio to read on a shared machine.

Usage: python benchmarks/bench_lr_ensemble.py [--widths 64 128] [--lrs 8] [--seeds 8]
           [--optimizers sgd adam]
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import torch
from bench_ensemble import timed
from threadpoolctl import threadpool_limits

from gradstats.simulate.ensemble import simulate_ensemble
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep

HERE = Path(__file__).parent


FIRST_LR = {"sgd": 0.4, "adam": 0.01}


def points_of(width: int, lrs: list[float], seeds: int, optimizer: str = "sgd"):
    return expand(parse_sweep({"name": "bench-lr", "seeds": seeds,
                               "grid": {"lr": lrs},
                               "fixed": {"width": width, "depth": 4, "steps": 100,
                                         "optimizer": optimizer}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--lrs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--optimizers", nargs="+", default=["sgd", "adam"],
                        choices=sorted(FIRST_LR))
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_lr_ensemble.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)
    for optimizer in args.optimizers:  # warm-up (and torch.optim's one-time imports)
        simulate_ensemble(points_of(64, [0.01, 0.02], 1, optimizer))
        simulate_point(points_of(64, [0.01], 1, optimizer)[0])
    load = os.getloadavg()[0]
    rows = ["| optimizer | width | lrs x seeds | one by one CPU s | seed ensembles per lr CPU s | "
            "one lr ensemble CPU s | **lr ensemble vs per lr** | **vs one by one** |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for optimizer, width in [(o, w) for o in args.optimizers for w in args.widths]:
        lrs = [FIRST_LR[optimizer] / 2 ** k for k in range(args.lrs)]
        points = points_of(width, lrs, args.seeds, optimizer)
        by_lr = [[p for p in points if p.training.lr == lr] for lr in lrs]
        _, one = timed(lambda p=points: [simulate_point(q) for q in p])
        _, per_lr = timed(lambda b=by_lr: [simulate_ensemble(g) for g in b])
        _, joint = timed(lambda p=points: simulate_ensemble(p))
        rows.append(f"| {optimizer} | {width} | {len(lrs)} x {args.seeds} | {one:.2f} | {per_lr:.2f} | "
                    f"{joint:.2f} | **{per_lr / joint:.1f}x** | **{one / joint:.1f}x** |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# Ensembles over learning rates: measured results", "",
        "Script: `benchmarks/bench_lr_ensemble.py` (this file is its output). "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end), one torch and one BLAS thread; lrs "
        f"{' and '.join(f'{o} {FIRST_LR[o]:g} / 2^k' for o in args.optimizers)}, "
        f"k < {args.lrs}.", "", *rows, ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
