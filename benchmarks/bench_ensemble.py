"""Seed ensembles vs one by one, side by side in one process; writes RESULTS_ensemble.md.

1. Simulation only: `simulate_ensemble` of S seeds (in ensembles of `ensemble_size`) vs
   `simulate_point` of each seed, for widths 64-1024 at S = 1, 8, 64 (relu MLP, depth 4,
   sphere data n_train 512, batch 32, default record, float32; 100 steps up to width 256,
   20 above, so the run stays short on a shared machine). The one-by-one column times
   min(S, 8) seeds and scales by S / min(S, 8): points run one by one are independent, so
   their time is linear in S.
2. End to end: `run_sweep` (what ``gradstats run --workers 0 --no-compare`` runs: simulation,
   predictions, datasets, point files, consolidation) of the issue's sweep, widths 64 and 128
   x depths 4 and 8, 100 steps, S seeds, with ensembles (default) vs ``ensemble=False``,
   each into a fresh directory; plus where the time of an ensembled run goes per point.

Both paths run on one torch thread, alternately (round-robin over repeats) so background
load hits both alike; the table reports medians and ratios.

Usage: python benchmarks/bench_ensemble.py [--repeats 1] [--seeds-e2e 64] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gradstats.simulate.ensemble import ensemble_size, simulate_ensemble
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import run_sweep

HERE = Path(__file__).parent
WIDTHS = (64, 128, 256, 512, 1024)
SEEDS = (1, 8, 64)
ONE_BY_ONE_SAMPLE = 8


def points_of(width: int, seeds: int, steps: int, depth: int = 4):
    return expand(parse_sweep({"name": "bench", "seeds": seeds, "fixed": {
        "width": width, "depth": depth, "steps": steps}}))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_ensembles(points) -> None:
    size = ensemble_size(points[0], len(points))
    for i in range(0, len(points), size):
        chunk = points[i:i + size]
        if len(chunk) == 1:
            simulate_point(chunk[0])
        else:
            simulate_ensemble(chunk)


def run_one_by_one(points) -> None:
    for point in points:
        simulate_point(point)


def simulation_table(widths, seeds_list, repeats: int) -> list[str]:
    rows = ["| width | steps | seeds | ensemble size | one by one s | ensemble s | speed-up |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for width in widths:
        steps = 100 if width <= 256 else 20
        for seeds in seeds_list:
            points = points_of(width, seeds, steps)
            sample = points[:min(seeds, ONE_BY_ONE_SAMPLE)]
            scale = seeds / len(sample)
            one, ens = [], []
            for _ in range(repeats):
                one.append(scale * timed(lambda s=sample: run_one_by_one(s)))
                ens.append(timed(lambda p=points: run_ensembles(p)))
            t1, te = statistics.median(one), statistics.median(ens)
            size = ensemble_size(points[0], seeds)
            rows.append(f"| {width} | {steps} | {seeds} | {size} | {t1:.2f} | {te:.2f} | "
                        f"{t1 / te:.1f}x |")
            print(rows[-1], flush=True)
    return rows


def e2e_sweep(seeds: int):
    return expand(parse_sweep({"name": "ensemble-e2e", "seeds": seeds,
                               "grid": {"width": [64, 128], "depth": [4, 8]},
                               "fixed": {"steps": 100}}))


def e2e_table(seeds: int, repeats: int) -> list[str]:
    points = e2e_sweep(seeds)
    times = {True: [], False: []}
    for _ in range(repeats):
        for ensemble in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                times[ensemble].append(timed(lambda e=ensemble, t=tmp: run_sweep(
                    points, [], Path(t) / "out", workers=0, ensemble=e)))
            print(f"e2e ensemble={ensemble}: {times[ensemble][-1]:.1f} s", flush=True)
    sim_total = sum(timed(lambda w=w, d=d: run_ensembles(
        [p for p in points if p.arch.width == w and p.arch.depth == d]))
        for w in (64, 128) for d in (4, 8))
    t_ens, t_one = statistics.median(times[True]), statistics.median(times[False])
    return [
        f"`run_sweep` of {len(points)} points (widths 64, 128 x depths 4, 8 x {seeds} seeds, "
        "100 steps, in process):", "",
        "| | seconds | per point ms |", "|---|---:|---:|",
        f"| one by one (`ensemble=False`, `--no-ensemble`) | {t_one:.1f} | "
        f"{1e3 * t_one / len(points):.0f} |",
        f"| ensembles (default) | {t_ens:.1f} | {1e3 * t_ens / len(points):.0f} |",
        f"| of which simulation (`simulate_ensemble` alone, about) | {sim_total:.1f} | "
        f"{1e3 * sim_total / len(points):.0f} |",
        f"| **speed-up** | **{t_one / t_ens:.1f}x** | |", "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeds-e2e", type=int, default=64)
    parser.add_argument("--quick", action="store_true",
                        help="widths 64, 256; seeds 1, 8; 8 seeds end to end (a smoke run)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_ensemble.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    widths, seeds_list = ((64, 256), (1, 8)) if args.quick else (WIDTHS, SEEDS)
    seeds_e2e = 8 if args.quick else args.seeds_e2e
    run_ensembles(points_of(64, 2, 2))  # warm-up: imports, first kernels
    run_one_by_one(points_of(64, 1, 2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sim_rows = simulation_table(widths, seeds_list, args.repeats)
    e2e_rows = e2e_table(seeds_e2e, args.repeats)
    text = "\n".join([
        "# Seed ensembles vs one by one: measured results", "",
        "Script: `benchmarks/bench_ensemble.py` (this file is its output). "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (load average {load:.1f} at the "
        f"start), one torch thread, medians of {args.repeats} repeat(s) timed side by side.",
        "",
        "## Simulation only", "",
        "relu MLP, depth 4, sphere data (n_train 512, batch 32), float32, default record "
        "steps; the ensemble size is `ensemble_size` (a quarter of free memory). One by one "
        f"is timed on min(S, {ONE_BY_ONE_SAMPLE}) seeds and scaled to S.", "",
        *sim_rows, "",
        "## End to end", "", *e2e_rows,
        "Per point, an ensembled run still pays, outside the simulation, the predictions, "
        "the dataset and the encoded point file of every point (results/io, predictions: "
        "the per-point overhead part of issue 18).", ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
