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

Both paths run on one torch thread and one BLAS thread (numpy's data generation), one after
the other per row (round-robin over repeats). The machine is shared, so besides wall time
each row reports process CPU time, which background load barely changes: its ratio is the
one to read. "ensemble" is forced (`memory_members`, the memory rule alone); the "default"
column says what `gradstats run` does for that row (`ensemble_size`: on a CPU, ensembles
only for networks small enough that per-step overhead matters, else one by one).

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
from threadpoolctl import threadpool_limits

from gradstats.simulate.ensemble import (
    ensemble_size,
    memory_members,
    simulate_ensemble,
    worth_batching,
)
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


def timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_ensembles(points, rule=memory_members) -> None:
    size = rule(points[0], len(points))
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
    rows = ["| width | steps | seeds | members | one by one CPU s | ensemble CPU s | "
            "**CPU ratio** | wall ratio | default |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for width in widths:
        steps = 100 if width <= 256 else 20
        for seeds in seeds_list:
            points = points_of(width, seeds, steps)
            sample = points[:min(seeds, ONE_BY_ONE_SAMPLE)]
            scale = seeds / len(sample)
            one, ens = [], []
            for _ in range(repeats):
                one.append([scale * t for t in timed(lambda s=sample: run_one_by_one(s))])
                ens.append(timed(lambda p=points: run_ensembles(p)))
            (w1, c1), (we, ce) = ([statistics.median(col) for col in zip(*runs, strict=True)]
                                  for runs in (one, ens))
            size = memory_members(points[0], seeds)
            default = "ensemble" if worth_batching(points[0]) and seeds > 1 else "one by one"
            rows.append(f"| {width} | {steps} | {seeds} | {size} | {c1:.2f} | {ce:.2f} | "
                        f"**{c1 / ce:.1f}x** | {w1 / we:.1f}x | {default} |")
            print(rows[-1], flush=True)
    return rows


def e2e_sweep(seeds: int):
    return expand(parse_sweep({"name": "ensemble-e2e", "seeds": seeds,
                               "grid": {"width": [64, 128], "depth": [4, 8]},
                               "fixed": {"steps": 100}}))


def e2e_table(seeds: int, repeats: int) -> list[str]:
    points = e2e_sweep(seeds)
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: JAX compiles each configuration's
        run_sweep(e2e_sweep(1), [], Path(tmp) / "out", workers=0)  # predictions once
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for repeat in range(repeats):
        for ensemble in ((True, False) if repeat % 2 == 0 else (False, True)):
            with tempfile.TemporaryDirectory() as tmp:
                times[ensemble].append(timed(lambda e=ensemble, t=tmp: run_sweep(
                    points, [], Path(t) / "out", workers=0, ensemble=e)))
            print(f"e2e ensemble={ensemble}: {times[ensemble][-1]} s", flush=True)
    configs = [[p for p in points if (p.arch.width, p.arch.depth) == (w, d)]
               for w in (64, 128) for d in (4, 8)]
    sims = [timed(lambda c=c: run_ensembles(c, ensemble_size)) for c in configs]
    sim_wall, sim_cpu = (sum(t[i] for t in sims) for i in (0, 1))
    (w_ens, c_ens), (w_one, c_one) = ([statistics.median(col) for col in zip(*times[e],
                                                                             strict=True)]
                                      for e in (True, False))
    n = len(points)
    return [
        f"`run_sweep` of {n} points (widths 64, 128 x depths 4, 8 x {seeds} seeds, "
        "100 steps, sphere data n_train 512, batch 32; in process, as `gradstats run "
        "--workers 0 --no-compare`):", "",
        "| | CPU s | wall s | CPU ms per point |", "|---|---:|---:|---:|",
        f"| one by one (`--no-ensemble`) | {c_one:.1f} | {w_one:.1f} | {1e3 * c_one / n:.0f} |",
        f"| ensembles (default) | {c_ens:.1f} | {w_ens:.1f} | {1e3 * c_ens / n:.0f} |",
        f"| of which simulation (`simulate_ensemble` alone) | {sim_cpu:.1f} | {sim_wall:.1f} | "
        f"{1e3 * sim_cpu / n:.0f} |",
        f"| **speed-up** | **{c_one / c_ens:.1f}x** | {w_one / w_ens:.1f}x | |", "",
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
    threadpool_limits(1)
    widths, seeds_list = ((64, 256), (1, 8)) if args.quick else (WIDTHS, SEEDS)
    seeds_e2e = 8 if args.quick else args.seeds_e2e
    run_ensembles(points_of(64, 2, 2))  # warm-up: imports, first kernels
    run_one_by_one(points_of(64, 1, 2))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    sim_rows = simulation_table(widths, seeds_list, args.repeats)
    e2e_rows = e2e_table(seeds_e2e, args.repeats)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "# Seed ensembles vs one by one: measured results", "",
        "Script: `benchmarks/bench_ensemble.py` (this file is its output). "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (load average {load:.1f} at the "
        f"start, {load_end:.1f} at the end), one torch and one BLAS thread, medians of "
        f"{args.repeats} repeat(s).",
        "",
        "## Simulation only", "",
        "relu MLP, depth 4, sphere data (n_train 512, batch 32), float32, default record "
        "steps (4), the `ntk` estimator and the theory inputs (a 512 x 512 float64 NTK at "
        "init per seed) as every trained point records them. members: the forced "
        "ensemble's size (a quarter of free memory, at most 256). One by one is timed on "
        f"min(S, {ONE_BY_ONE_SAMPLE}) seeds and scaled to S.", "",
        *sim_rows, "",
        "## End to end", "", *e2e_rows,
        "Per point, an ensembled run still pays, outside the simulation, the predictions, "
        "the dataset and the encoded point file of every point (results/io, predictions: "
        "the per-point overhead part of issue 18).", ""])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
