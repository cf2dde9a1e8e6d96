"""`gradstats compare` vs the simulation it compares, side by side in one process.

    python benchmarks/bench_compare.py [PRESET] [--repeats 3] [--out benchmarks/RESULTS_compare.md]

For every point of the preset (default: quickstart) it times `simulate_point` and the
worker-side predictions (`predict_record`, which a sweep runs right after each point), then
`compare` on the combined dataset (what `gradstats compare` does after loading), each the
median of ``--repeats`` runs after one warm-up (JAX compiles once per configuration: the
warm-up pays for it, and a sweep pays it once per worker). Target (issue 11): compare <= 10%
of the simulation time or under 1 s, whichever is larger.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from gradstats.predictions import predict_record
    from gradstats.results.compare import compare
    from gradstats.results.io import combine
    from gradstats.results.schema import record_to_dataset
    from gradstats.simulate.training import simulate_point
    from gradstats.sweeps import expand, resolve_sweep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", nargs="?", default="quickstart")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    points = expand(resolve_sweep(args.preset))

    def sweep_once() -> tuple[float, float, list]:
        sim = pred = 0.0
        datasets = []
        for point in points:
            t0 = time.perf_counter()
            record = simulate_point(point)
            t1 = time.perf_counter()
            record.values.update(predict_record(record).values)
            t2 = time.perf_counter()
            sim, pred = sim + t1 - t0, pred + t2 - t1
            datasets.append(record_to_dataset(record))
        return sim, pred, datasets

    sweep_once()  # warm-up: torch, JAX compilation
    sims, preds, compares = [], [], []
    for _ in range(args.repeats):
        sim, pred, datasets = sweep_once()
        ds = combine(datasets)
        t0 = time.perf_counter()
        compare(ds)
        compares.append(time.perf_counter() - t0)
        sims.append(sim)
        preds.append(pred)
    sim, pred, cmp = (statistics.median(v) for v in (sims, preds, compares))
    lines = [f"# compare vs simulation: {args.preset} ({len(points)} points), median of "
             f"{args.repeats}, one torch/BLAS thread", "",
             "| what | seconds | / simulation |", "|---|---|---|",
             f"| simulation (`simulate_point`, all points) | {sim:.2f} | 1 |",
             f"| predictions on the worker (`predict_record`) | {pred:.2f} | {pred / sim:.2f} |",
             f"| `compare` on the combined dataset | {cmp:.2f} | {cmp / sim:.3f} |", "",
             f"Target: compare <= max(10% of simulation, 1 s) = {max(0.1 * sim, 1.0):.2f} s: "
             f"{'met' if cmp <= max(0.1 * sim, 1.0) else 'NOT met'}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
