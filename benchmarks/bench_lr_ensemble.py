"""Ensembles over learning rates (sgd): one ensemble of every (lr, seed) vs one seed
ensemble per lr vs one by one, side by side in one process; writes RESULTS_lr_ensemble.md.

relu MLP, depth 4, sphere data (n_train 512, batch 32), float32, 100 sgd steps, default
record, the ntk estimator and theory inputs as every trained point records them; L lrs on
a factor-2 grid x S seeds. Process CPU time (one torch and one BLAS thread) is the ratio to
read on a shared machine. One by one is timed on the first lr's seeds and scaled by L.

Usage: python benchmarks/bench_lr_ensemble.py [--widths 64 128] [--lrs 8] [--seeds 8]
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


def points_of(width: int, lrs: list[float], seeds: int):
    return expand(parse_sweep({"name": "bench-lr", "seeds": seeds,
                               "grid": {"lr": lrs},
                               "fixed": {"width": width, "depth": 4, "steps": 100}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--lrs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_lr_ensemble.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)
    lrs = [0.4 / 2 ** k for k in range(args.lrs)]
    simulate_ensemble(points_of(64, lrs[:2], 1))  # warm-up
    load = os.getloadavg()[0]
    rows = ["| width | lrs x seeds | one by one CPU s | seed ensembles per lr CPU s | "
            "one lr ensemble CPU s | **lr ensemble vs per lr** | **vs one by one** |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for width in args.widths:
        points = points_of(width, lrs, args.seeds)
        by_lr = [[p for p in points if p.training.lr == lr] for lr in lrs]
        _, one = timed(lambda p=points: [simulate_point(q) for q in p])
        _, per_lr = timed(lambda b=by_lr: [simulate_ensemble(g) for g in b])
        _, joint = timed(lambda p=points: simulate_ensemble(p))
        rows.append(f"| {width} | {len(lrs)} x {args.seeds} | {one:.2f} | {per_lr:.2f} | "
                    f"{joint:.2f} | **{per_lr / joint:.1f}x** | **{one / joint:.1f}x** |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# Ensembles over learning rates: measured results", "",
        "Script: `benchmarks/bench_lr_ensemble.py` (this file is its output). "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end), one torch and one BLAS thread; sgd lrs "
        f"{lrs[0]:g} / 2^k, k < {len(lrs)}.", "", *rows, ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
