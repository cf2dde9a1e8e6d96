"""Per-point storage overhead vs compute, and the quickstart end to end vs its simulation.

1. Per point, in one process on the same quickstart points (torch on one thread): compute
   (`simulate_point` + `predict_record`) against each storage step: dataset, encode
   (+ checksum), atomic write, read back with checksum (resume / `is_done`), and the
   point's share of combining the sweep and writing ``sweep.zarr``. With ``--baseline
   SRC`` (the ``src`` folder of another checkout, e.g. the old main in a ``git worktree``)
   its ``results/io.py`` runs the same steps side by side on the same datasets.
2. End to end: ``gradstats run quickstart -w WORKERS`` (``--workers``, default 0: in
   process; run + compare, the table printed to /dev/null) as a subprocess, against the
   sum of the points' own ``wall_time`` (the simulation alone), both on one torch thread;
   with ``--baseline`` the baseline's CLI runs the same sweep beside it, in alternating
   order, ``--repeats`` times.

Usage: python benchmarks/bench_point_overhead.py [--seeds 16] [--repeats 1] [--workers 0]
           [--baseline OLD/src] [--out benchmarks/RESULTS_overhead.md]
Writes the markdown tables to ``--out`` and prints them. The machine may be shared: the
ratios are measured side by side; the absolute seconds are not comparable across runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from gradstats.predictions import predict_record
from gradstats.results import io
from gradstats.results.schema import record_to_dataset
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import apply_overrides, expand, resolve_sweep

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def _ms(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start) / n


def load_baseline(src: Path, name: str):
    """``gradstats/results/NAME.py`` of another checkout (run on this checkout's records)."""
    spec = importlib.util.spec_from_file_location(f"baseline_{name}",
                                                  src / f"gradstats/results/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def storage_steps(module, datasets, points, out: Path) -> dict[str, float]:
    """Milliseconds per point of each storage step of ``module`` (an io module)."""
    n = len(points)
    encoded = []
    rows = {"encode + checksum": _ms(lambda: encoded.extend(module.encode(d) for d in datasets),
                                     n)}
    paths = [module.point_path(out, p) for p in points]
    rows["atomic write"] = _ms(lambda: [module.write_bytes_atomic(b, p)
                                        for b, p in zip(encoded, paths, strict=True)], n)
    if hasattr(module, "_DECODED"):
        module._DECODED.clear()  # a cold read, as at resume
    rows["read + checksum (is_done)"] = _ms(lambda: [module.is_done(out, p) for p in points], n)
    loaded = []
    rows["load all point files"] = _ms(lambda: loaded.extend(module.load_point_files(out)), n)
    combined = []
    rows["combine"] = _ms(lambda: combined.append(module.combine(loaded)), n)
    rows["write sweep.zarr"] = _ms(lambda: module.to_zarr(combined[0], out / "sweep.zarr"), n)
    return rows


def per_point(points, baseline_src: Path | None) -> tuple[dict, dict, dict | None]:
    """(compute ms/point, this checkout's storage ms/point, the baseline's or None)."""
    torch.set_num_threads(1)
    records, compute = [], {"simulate_point": 0.0, "predict_record": 0.0}
    simulate_point(points[0])  # warm up torch
    for point in points:
        start = time.perf_counter()
        record = simulate_point(point)
        middle = time.perf_counter()
        record.values.update(predict_record(record).values)
        compute["simulate_point"] += 1e3 * (middle - start) / len(points)
        compute["predict_record"] += 1e3 * (time.perf_counter() - middle) / len(points)
        records.append(record)
    datasets = []
    dataset_ms = _ms(lambda: datasets.extend(record_to_dataset(r) for r in records), len(points))
    with tempfile.TemporaryDirectory() as tmp:
        io.to_zarr(io.combine(datasets[:2]), Path(tmp) / "warm.zarr")  # import zarr once
        ours = {"record_to_dataset": dataset_ms,
                **storage_steps(io, datasets, points, Path(tmp) / "new")}
        base = None
        if baseline_src is not None:
            old_schema = load_baseline(baseline_src, "schema")
            old_ms = _ms(lambda: [old_schema.record_to_dataset(r) for r in records],
                         len(points))
            base = {"record_to_dataset": old_ms,
                    **storage_steps(load_baseline(baseline_src, "io"), datasets, points,
                                    Path(tmp) / "old")}
            a = xr.load_dataset(io.point_path(Path(tmp) / "new", points[0]))
            b = xr.load_dataset(io.point_path(Path(tmp) / "old", points[0]))
            xr.testing.assert_equal(a, b)  # same file contents either way
    return compute, ours, base


def end_to_end(src: Path, seeds: int, out: Path, workers: int = 0) -> tuple[float, float, float]:
    """(wall seconds of ``gradstats run quickstart -w WORKERS`` with compare, sum of its
    points' simulation wall_time, the CPU seconds of the process and its workers) with the
    package at ``src``."""
    import resource

    # one torch/BLAS thread in both runs: on a loaded 2-core machine torch's default 2
    # threads made the same simulation up to 15x slower from one minute to the next
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gradstats.cli", "run", "quickstart", "-w", str(workers),
           "--out", str(out), "--set", f"seeds={seeds}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ds = io.load_results(out, lazy=False)
    return wall, float(np.nansum(ds["wall_time"].values)), cpu


def markdown(compute, ours, base, e2e, args) -> str:
    point_ms = sum(compute.values()) or float("nan")
    lines = [f"# Per-point overhead and the quickstart end to end ({args.seeds} seeds)", "",
             f"Command: `python benchmarks/bench_point_overhead.py --seeds {args.seeds} "
             f"--repeats {args.repeats}{' --baseline OLD/src' if args.baseline else ''}"
             f"{' --skip-per-point' if args.skip_per_point else ''}"
             f"{' --skip-end-to-end' if args.skip_end_to_end else ''}"
             f"{f' --workers {args.workers}' if args.workers else ''}`; "
             f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.", "",
             "## 1. Storage per point vs compute (ms per point, torch on one thread)", ""]
    if compute:
        lines += [f"Compute: simulate {compute['simulate_point']:.1f} ms + predictions "
                  f"{compute['predict_record']:.1f} ms = {point_ms:.1f} ms per point.", ""]
    else:
        lines += ["(skipped: --skip-per-point)", ""]
    head = "| step | this branch | vs compute |" + (" baseline | vs compute | speedup |"
                                                    if base else "")
    if compute:
        lines += [head, "|---|" + "---:|" * (2 + 3 * bool(base))]
    for name, ms in ours.items() if compute else ():
        row = f"| {name} | {ms:.2f} | {ms / point_ms:.3f} |"
        if base:
            row += f" {base[name]:.2f} | {base[name] / point_ms:.3f} | {base[name] / ms:.1f}x |"
        lines.append(row)
    if compute:
        total = sum(ours.values())
        row = f"| **total** | {total:.2f} | **{total / point_ms:.3f}** |"
        if base:
            old = sum(base.values())
            row += f" {old:.2f} | {old / point_ms:.3f} | {old / total:.1f}x |"
        lines += [row, ""]
    lines += [f"## 2. End to end: `gradstats run quickstart -w {args.workers}` (run + compare)",
              "",
              "| package | run | wall s | CPU s | simulation s (sum of wall_time) | "
              "wall / simulation |", "|---|---:|---:|---:|---:|---:|"]
    for name, runs in e2e.items():
        for i, (wall, sim, cpu) in enumerate(runs, 1):
            lines.append(f"| {name} | {i} | {wall:.1f} | {cpu:.1f} | {sim:.1f} | "
                         f"{wall / sim:.2f} |")
    if "baseline" in e2e:
        new, old = (statistics.median(r[0] for r in e2e[k]) for k in ("this branch", "baseline"))
        new_cpu, old_cpu = (statistics.median(r[2] for r in e2e[k])
                            for k in ("this branch", "baseline"))
        lines += ["", f"End-to-end speedup over the baseline: **{old_cpu / new_cpu:.2f}x** in "
                      f"CPU time ({old_cpu:.1f} vs {new_cpu:.1f} s), {old / new:.2f}x in wall "
                      f"time ({old:.1f} vs {new:.1f} s); medians of {args.repeats}, runs "
                      "alternating."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--baseline", type=Path, default=None,
                        help="src/ of another checkout to compare with (e.g. the old main)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_overhead.md")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--skip-per-point", action="store_true")
    parser.add_argument("--workers", type=int, default=0,
                        help="-w of the end-to-end runs (0: in process; 2: the CLI's default "
                             "on 2 cores)")
    args = parser.parse_args()

    sweep = apply_overrides(resolve_sweep("quickstart"), [f"seeds={args.seeds}"])
    points = expand(sweep)
    compute, ours, base = ({}, {}, None) if args.skip_per_point else \
        per_point(points, args.baseline)
    e2e: dict[str, list[tuple[float, float, float]]] = {}
    if not args.skip_end_to_end:
        runs = [("this branch", SRC)] + ([("baseline", args.baseline)] if args.baseline else [])
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.repeats):
                for name, src in runs if i % 2 == 0 else runs[::-1]:  # alternate the order
                    e2e.setdefault(name, []).append(
                        end_to_end(src, args.seeds, Path(tmp) / f"{name[:4]}{i}",
                                   args.workers))
    text = markdown(compute, ours, base, e2e, args)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
