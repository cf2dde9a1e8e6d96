"""Sweep execution overhead and parallel speedup, side by side in one process.

1. Overhead (scheduling + storage) of the quickstart sweep as a fraction of compute:
   baseline = `simulate_point` called on every point in a loop (compute only);
   measured = `run_sweep` into a fresh directory (claims, locks, netCDF writes, manifest,
   consolidation to Zarr), in-process and on an already started 2-worker Dask cluster
   (compared with the ideal compute/2).
2. Speedup of ``--workers 2`` over ``--workers 0`` on a CPU-bound sweep, both through
   `run_sweep`; the 2-worker run always starts a local cluster (start-up and shutdown
   included), even where ``gradstats run`` would judge the sweep too small for one.

Usage: python benchmarks/bench_sweep_overhead.py [--repeats 3] [--quick]
Prints medians over repeats (the machine is shared: rerun when quiet).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep, resolve_sweep
from gradstats.sweeps.execute import run_sweep
from gradstats.sweeps.executors import DaskExecutor

CPU_BOUND = {"name": "cpu-bound", "seeds": 4, "grid": {"width": [256, 512], "depth": [3, 5]},
             "fixed": {"input_dim": 32, "n_train": 256, "batch_size": 64, "steps": 100,
                       "record": 4}}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compute_only(points) -> None:
    for point in points:
        simulate_point(point)


def sweep_into_tmp(points, **kwargs) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(points, [], Path(tmp) / "out", **kwargs)


def cluster_sweep(points) -> None:
    """``--workers 2`` forced onto a local cluster (start-up and shutdown included), even
    where `make_executor` would judge the sweep too small for one."""
    executor = DaskExecutor(n_workers=2)
    try:
        sweep_into_tmp(points, executor=executor)
    finally:
        executor.close()


def overhead(points, repeats: int) -> dict[str, float]:
    """Median seconds of compute only, in-process run_sweep, and run_sweep on 2 Dask workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like a Dask worker: compare storage and scheduling, not BLAS
    compute_only(points[:2])  # warm up imports and kernels
    executor = DaskExecutor(n_workers=2)
    sweep_into_tmp(points[:4], executor=executor)  # warm the workers
    rows: dict[str, list[float]] = {"compute": [], "in_process": [], "dask2": [], "noop": []}
    noops = 200
    try:
        for _ in range(repeats):
            rows["compute"].append(timed(lambda: compute_only(points)))
            rows["in_process"].append(timed(lambda: sweep_into_tmp(points)))
            rows["dask2"].append(timed(lambda: sweep_into_tmp(points, executor=executor)))
            rows["noop"].append(timed(lambda: list(executor.map_unordered(len, [()] * noops)))
                                / noops)
    finally:
        executor.close()
        torch.set_num_threads(threads)
    return {name: statistics.median(values) for name, values in rows.items()}


def storage_breakdown(points, repeats: int) -> dict[str, float]:
    """Median milliseconds per point of each storage step (and netCDF3 via scipy for contrast)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    records = [simulate_point(p) for p in points]
    torch.set_num_threads(threads)
    rows: dict[str, list[float]] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for name, ms in _storage_once(Path(tmp), points, records).items():
                rows.setdefault(name, []).append(ms)
    return {name: statistics.median(values) for name, values in rows.items()}


def _storage_once(out: Path, points, records) -> dict[str, float]:
    from gradstats.results import io
    from gradstats.results.schema import record_to_dataset
    from gradstats.sweeps.execute import consolidate

    ms: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        ms[name] = 1e3 * (now - clock) / len(points)
        clock = now

    datasets = [record_to_dataset(r) for r in records]
    lap("record_to_dataset")
    for ds, point in zip(datasets, points, strict=True):
        io.write_atomic(ds, io.point_path(out, point))
    lap("write_atomic (netcdf4)")
    for point in points:
        io.is_done(out, point)
    lap("is_done (load)")
    consolidate(out)
    lap("consolidate")
    for i, ds in enumerate(datasets):
        ds.to_netcdf(out / f"{i}.nc3", engine="scipy")
    lap("to_netcdf scipy (netCDF3)")
    return ms


def speedup(points, repeats: int) -> dict[str, float]:
    """Median seconds of the CLI path with --workers 0 and --workers 2."""
    rows: dict[str, list[float]] = {"workers0": [], "workers0_1thread": [], "workers2": []}
    threads = torch.get_num_threads()
    for _ in range(repeats):
        rows["workers0"].append(timed(lambda: sweep_into_tmp(points, workers=0)))
        torch.set_num_threads(1)
        rows["workers0_1thread"].append(timed(lambda: sweep_into_tmp(points, workers=0)))
        torch.set_num_threads(threads)
        rows["workers2"].append(timed(lambda: cluster_sweep(points)))
    return {name: statistics.median(values) for name, values in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller CPU-bound sweep")
    args = parser.parse_args()

    quick = expand(resolve_sweep("quickstart"))
    o = overhead(quick, args.repeats)
    print(f"quickstart: {len(quick)} points, median of {args.repeats}")
    print(f"{'variant':<34}{'seconds':>9}{'vs compute':>12}")
    print(f"{'compute only (simulate_point loop)':<34}{o['compute']:>9.2f}{1.0:>12.3f}")
    print(f"{'run_sweep in-process':<34}{o['in_process']:>9.2f}"
          f"{o['in_process'] / o['compute']:>12.3f}")
    print(f"{'run_sweep, 2 Dask workers (started)':<34}{o['dask2']:>9.2f}"
          f"{o['dask2'] / (o['compute'] / 2):>12.3f}   (vs ideal compute/2)")
    point_s = o["compute"] / len(quick)
    print(f"{'Dask round trip of a no-op task':<34}{o['noop']:>9.4f}{o['noop'] / point_s:>12.3f}"
          "   (vs one point's compute; seeds of small configs share a task)")
    print(f"overhead in-process: {100 * (o['in_process'] / o['compute'] - 1):.1f}% of compute; "
          f"on 2 workers: {100 * (2 * o['dask2'] / o['compute'] - 1):.1f}% (goal < 5%)")

    per_point_ms = 1e3 * o["compute"] / len(quick)
    print(f"\nstorage per point (ms; compute is {per_point_ms:.0f} ms/point on one thread)")
    for name, ms in storage_breakdown(quick, args.repeats).items():
        print(f"{name:<34}{ms:>9.1f}{ms / per_point_ms:>12.3f}")

    spec = dict(CPU_BOUND)
    if args.quick:
        spec = {**spec, "seeds": 2}
    bound = expand(parse_sweep(spec))
    s = speedup(bound, args.repeats)
    print(f"\nCPU-bound sweep: {len(bound)} points, median of {args.repeats} "
          f"(torch default threads = {torch.get_num_threads()} in-process)")
    print(f"{'variant':<34}{'seconds':>9}{'speedup':>12}")
    print(f"{'--workers 0 (in-process)':<34}{s['workers0']:>9.2f}{1.0:>12.2f}")
    print(f"{'--workers 0, torch 1 thread':<34}{s['workers0_1thread']:>9.2f}"
          f"{s['workers0'] / s['workers0_1thread']:>12.2f}")
    print(f"{'--workers 2 (local Dask cluster)':<34}{s['workers2']:>9.2f}"
          f"{s['workers0'] / s['workers2']:>12.2f}   (goal >= 1.7; "
          f"{s['workers0_1thread'] / s['workers2']:.2f} over one thread)")


if __name__ == "__main__":
    main()
