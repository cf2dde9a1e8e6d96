"""CUDA vs CPU on a few points, and GPU timings; writes benchmarks/RESULTS_gpu.md.

Run through ``benchmarks/gpu_check.sh`` (a 5-minute limit). Three parts:

1. Equality: each check point is simulated with ``device = "cpu"`` and ``device = "cuda"``
   (same seed: weights are drawn on the CPU either way, `gradstats.simulate.model.build_model`);
   every recorded statistic is compared as max |cuda - cpu| / max |cpu| over the variable
   (a scale-aware relative error; NaN patterns must match). Pass: float64 <= 1e-10,
   float32 <= ``F32_TOL`` (1e-3: summation order differs between devices and 20 SGD
   steps carry it forward; the measured worst value is reported beside it).
2. Seed ensemble vs one by one on the GPU: S seeds of one configuration through
   `gradstats.simulate.ensemble.simulate_ensemble` against `simulate_point` per seed (the
   one-by-one column times min(S, 8) seeds and scales by S / min(S, 8)). Where the ensemble
   module is absent (a checkout without it), only one by one is timed: see ENSEMBLE HOOK.
3. The per-example engine vs a plain forward + backward on the GPU (`bench_engine.py`).

With ``--cpu-dry-run`` the same code runs CPU against CPU with a small budget (to check the
script itself on a machine without a GPU); without a GPU and without that flag it says so
and exits 0 without writing anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep

HERE = Path(__file__).resolve().parent
F64_TOL = 1e-10
F32_TOL = 1e-3
SKIP = {"wall_time"}  # timings, not results


def check_points(dry: bool) -> list:
    """Small points covering relu/tanh, two widths, float32/float64 (seed 0)."""
    steps = 5 if dry else 20
    sweep = parse_sweep({
        "name": "gpu-check", "seeds": 1,
        "grid": {"activation": ["relu", "tanh"], "width": [64] if dry else [64, 256],
                 "dtype": ["float64", "float32"]},
        "fixed": {"depth": 3, "input_dim": 16, "n_train": 128, "batch_size": 32,
                  "steps": steps, "record": [0, steps], "sigma_w2": 1.8, "sigma_b2": 0.05}})
    return expand(sweep)


def compare_records(a, b) -> tuple[float, str, bool]:
    """(worst scale-aware relative error, its variable, NaN patterns equal) of two records."""
    worst, where, same_nan = 0.0, "-", True
    for name, va in a.values.items():
        if name in SKIP or name not in b.values:
            continue
        x, y = np.asarray(va), np.asarray(b.values[name])
        if x.dtype.kind not in "fiu" or x.shape != y.shape:
            continue
        x, y = x.astype(float), y.astype(float)
        finite = np.isfinite(x) & np.isfinite(y)
        same_nan &= bool(np.array_equal(np.isfinite(x), np.isfinite(y)))
        if not finite.any():
            continue
        scale = np.max(np.abs(y[finite]))
        err = float(np.max(np.abs(x[finite] - y[finite])) / scale) if scale > 0 else \
            float(np.max(np.abs(x[finite])))
        if err > worst:
            worst, where = err, name
    return worst, where, same_nan


def equality(device: str, dry: bool) -> tuple[list[str], bool]:
    rows = ["| point | dtype | worst rel. error | in variable | NaN pattern | tolerance | ok |",
            "|---|---|---:|---|---|---:|---|"]
    all_ok = True
    for point in check_points(dry):
        ref = simulate_point(dataclasses.replace(point, device="cpu"))
        got = simulate_point(dataclasses.replace(point, device=device))
        err, name, same_nan = compare_records(got, ref)
        tol = F64_TOL if point.dtype == "float64" else F32_TOL
        ok = err <= tol and same_nan
        all_ok &= ok
        rows.append(f"| {point.arch.activation} w{point.arch.width} d{point.arch.depth} | "
                    f"{point.dtype} | {err:.2e} | {name} | {'same' if same_nan else 'DIFFERS'}"
                    f" | {tol:g} | {'yes' if ok else 'NO'} |")
    return rows, all_ok


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def ensemble_timing(device: str, dry: bool) -> list[str]:
    # ENSEMBLE HOOK: the seed-ensemble simulator of issue 18 (branch `ensemble`). Where it
    # is missing this part times one by one only and says so in the results.
    try:
        from gradstats.simulate.ensemble import simulate_ensemble
    except ImportError:
        simulate_ensemble = None
    widths = [64] if dry else [64, 256, 1024]
    seed_counts = [1, 4] if dry else [1, 8, 64]
    steps = 5 if dry else 50
    rows = ["| width | seeds | one by one s | ensemble s | speedup |", "|---:|---:|---:|---:|---:|"]
    for width in widths:
        for seeds in seed_counts:
            points = expand(parse_sweep({
                "name": "gpu-ensemble", "seeds": seeds, "fixed": {
                    "width": width, "depth": 4, "input_dim": 32, "n_train": 512,
                    "batch_size": 32, "steps": steps, "record": [0, steps],
                    "device": device}}))
            simulate_point(points[0])  # warm-up (kernels, allocator)
            timed = points[: min(seeds, 8)]
            _sync(device)
            start = time.perf_counter()
            for point in timed:
                simulate_point(point)
            _sync(device)
            single = (time.perf_counter() - start) * seeds / len(timed)
            if simulate_ensemble is None:
                rows.append(f"| {width} | {seeds} | {single:.2f} | (no ensemble module) | - |")
                continue
            simulate_ensemble(points[:1])  # warm-up
            _sync(device)
            start = time.perf_counter()
            simulate_ensemble(points)
            _sync(device)
            batched = time.perf_counter() - start
            rows.append(f"| {width} | {seeds} | {single:.2f} | {batched:.2f} | "
                        f"{single / batched:.1f}x |")
    return rows


def engine_timing(device: str, dry: bool) -> list[str]:
    cmd = [sys.executable, str(HERE / "bench_engine.py"), "--device", device,
           "--repeats", "3" if dry else "30"]
    if dry:
        cmd += ["--width", "128", "--batch", "32"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return ["```", (done.stdout or "") + (done.stderr[-2000:] if done.returncode else ""), "```"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true",
                        help="run the same comparisons CPU vs CPU with a small budget")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/RESULTS_gpu.md; "
                             "a dry run writes benchmarks/RESULTS_gpu_dryrun.md)")
    args = parser.parse_args()
    has_gpu = torch.cuda.is_available()
    if not has_gpu and not args.cpu_dry_run:
        print(f"gpu_check: no CUDA GPU visible to torch {torch.__version__} (CUDA build: "
              f"{torch.version.cuda or 'none'}); nothing checked, nothing written. "
              "Run with --cpu-dry-run to exercise the script on the CPU.")
        return 0
    dry = args.cpu_dry_run
    device = "cpu" if dry else "cuda"
    out = args.out or HERE / ("RESULTS_gpu_dryrun.md" if dry else "RESULTS_gpu.md")
    torch.set_num_threads(1)
    name = torch.cuda.get_device_name(0) if has_gpu and not dry else platform.processor() or "cpu"
    started = time.perf_counter()
    eq_rows, ok = equality(device, dry)
    ens_rows = ensemble_timing(device, dry)
    eng_rows = engine_timing(device, dry)
    title = "CPU dry run (CPU vs CPU, small budget)" if dry else f"CUDA check on {name}"
    text = "\n".join([
        f"# {title}", "",
        f"Command: `benchmarks/gpu_check.sh{' --cpu-dry-run' if dry else ''}`; torch "
        f"{torch.__version__}, CUDA {torch.version.cuda or 'none'}; "
        f"{time.perf_counter() - started:.0f} s in all.", "",
        "## 1. CUDA vs CPU, same points and seeds", "",
        "Scale-aware relative error: max |device - cpu| / max |cpu| per recorded variable, "
        "worst variable shown.", "", *eq_rows, "",
        f"**{'all within tolerance' if ok else 'SOME POINTS OUTSIDE TOLERANCE'}**", "",
        "## 2. Seed ensemble vs one by one", "", *ens_rows, "",
        "## 3. Per-example engine vs plain forward + backward", "", *eng_rows, ""])
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
