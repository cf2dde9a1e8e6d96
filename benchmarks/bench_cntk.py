"""Analytic CNTK: gradstats.theory.conv vs neural-tangents' kernel_fn, and a GAP kernel too
large to hold at once, computed in tiles within a memory budget and streamed to Zarr.

Run in the neural-tangents environment (nt is only installed there):

    PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_cntk.py            # both parts
    PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_cntk.py --part compare
    PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_cntk.py --part big

``compare``: the same conv architecture (stride-1 3x3 SAME convs, relu, ntk
parameterization) with a Flatten and with a GlobalAvgPool readout, NNGP + NTK of n digits
images in float64; both jitted and warmed up, median of ``--repeats`` calls alternated in one
process, ratio nt / own (> 1: gradstats faster), and the largest relative deviation.
``big``: NNGP + NTK of 4000 8x8 images (scikit-learn's 1797 digits, plus synthetic smooth
torus fields to fill to 4000), global average pooling, with `cnn_kernels_to_zarr` under
``--budget-mib``; it runs in a fresh subprocess so its peak RSS is its own. Each part writes
benchmarks/results_cntk_<part>.json; benchmarks/RESULTS_cntk.md is rendered from both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS_cntk.md"
COMMAND = "PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_cntk.py"


def digits_images():
    """scikit-learn's digits as (1797, 1, 8, 8), scaled to unit mean square."""
    import numpy as np
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float64).reshape(-1, 1, 8, 8)
    return x / np.sqrt(np.mean(x * x))


def torus_fields(n: int, shape=(8, 8), sigma: float = 1.0, seed: int = 0):
    """n random smooth fields on the torus: white noise filtered by a periodic Gaussian of
    ``sigma`` pixels (FFT), each image scaled to unit mean square; (n, 1, *shape)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, *shape))
    freqs = np.meshgrid(*(np.fft.fftfreq(s) for s in shape), indexing="ij")
    gain = np.exp(-2 * math.pi**2 * sigma**2 * sum(f * f for f in freqs))
    fields = np.real(np.fft.ifftn(np.fft.fftn(noise, axes=(1, 2)) * gain, axes=(1, 2)))
    fields /= np.sqrt(np.mean(fields * fields, axis=(1, 2), keepdims=True))
    return fields[:, None]


def _arch(readout: str, depth: int):
    from gradstats import Architecture

    return Architecture(width=8, depth=depth, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        parameterization="ntk", architecture="cnn", kernel_size=3,
                        padding="SAME", readout=readout)


def _nt_kernel_fn(arch):
    import jax
    from neural_tangents import stax

    w, b = math.sqrt(arch.sigma_w2), math.sqrt(arch.sigma_b2)

    def conv():
        return stax.Conv(arch.width, (arch.kernel_size,) * 2, padding=arch.padding, W_std=w,
                         b_std=b, parameterization=arch.parameterization)

    layers = [conv()]
    for _ in range(arch.depth - 1):
        layers += [stax.Relu(), conv()]
    pool = stax.GlobalAvgPool() if arch.readout == "gap" else stax.Flatten()
    layers += [stax.Relu(), pool, stax.Dense(1, W_std=w, b_std=b,
                                             parameterization=arch.parameterization)]
    return jax.jit(stax.serial(*layers)[2], static_argnames="get")


def part_compare(args) -> dict:
    import jax
    import numpy as np

    from gradstats.theory.conv import tiled

    jax.config.update("jax_enable_x64", True)
    x_all = digits_images()
    rows = []
    for readout, n in (("flatten", args.n_flatten), ("gap", args.n_gap)):
        arch = _arch(readout, args.depth)
        x = x_all[:n]
        x_nhwc = np.moveaxis(x, 1, -1)
        kernel_fn = _nt_kernel_fn(arch)

        def ours(arch=arch, x=x):
            return tiled.cnn_kernels(arch, x, mode="ntk")["ntk"]

        def theirs(kernel_fn=kernel_fn, x_nhwc=x_nhwc):
            return np.asarray(jax.block_until_ready(kernel_fn(x_nhwc, None, ("nngp", "ntk"))).ntk)

        t0 = time.perf_counter()
        own_k = ours()
        first_own = time.perf_counter() - t0
        t0 = time.perf_counter()
        nt_k = theirs()
        first_nt = time.perf_counter() - t0
        own_t, nt_t = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ours()
            own_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs()
            nt_t.append(time.perf_counter() - t0)
        own, nt = statistics.median(own_t), statistics.median(nt_t)
        rows.append({"readout": readout, "n": n, "depth": args.depth, "own_s": own, "nt_s": nt,
                     "ratio": nt / own, "own_first_s": first_own, "nt_first_s": first_nt,
                     "own_all_s": own_t, "nt_all_s": nt_t,
                     "max_rel_dev": float(np.max(np.abs(own_k - nt_k)) / np.max(np.abs(nt_k)))})
        print(f"{readout}: n={n} own {own:.3f}s nt {nt:.3f}s nt/own {nt / own:.2f}", flush=True)
    return {"rows": rows, "repeats": args.repeats}


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1  # pragma: no cover


def part_big(args) -> dict:
    import resource
    import shutil
    import tempfile

    import numpy as np

    from gradstats.theory._compat import enable_x64
    from gradstats.theory.conv import tiled

    digits = digits_images()
    n_fields = max(0, args.big_n - len(digits))
    x = np.concatenate([digits[: args.big_n], torus_fields(n_fields)])
    arch = _arch("gap", args.big_depth)
    budget = args.budget_mib << 20
    wide = args.big_dtype == "float64"
    workdir = Path(tempfile.mkdtemp(prefix="bench_cntk_"))
    store = workdir / "kernel.zarr"
    try:
        with enable_x64(wide):
            tiled.cnn_kernels(arch, x[:8], mode="ntk")  # warm the jax runtime, not the tiles
            base = _rss_kib()
            t0 = time.perf_counter()
            plan = tiled.cnn_kernels_to_zarr(arch, x, str(store), mode="ntk",
                                             memory_budget=budget,
                                             dask_workers=args.workers)
            seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        import zarr

        group = zarr.open_group(str(store), mode="r")
        rng = np.random.default_rng(1)
        idx = np.sort(rng.choice(args.big_n, size=6, replace=False))
        with enable_x64(True):
            ref = tiled.cnn_kernels(arch, x[idx], mode="ntk")
        stored_ntk = group["ntk"].get_orthogonal_selection((idx, idx))
        stored_nngp = group["nngp"].get_orthogonal_selection((idx, idx))
        dev = max(float(np.max(np.abs(stored_ntk - ref["ntk"])) / np.max(np.abs(ref["ntk"]))),
                  float(np.max(np.abs(stored_nngp - ref["nngp"])) / np.max(np.abs(ref["nngp"]))))
        disk = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    n, pixels = args.big_n, 64
    itemsize = 8 if wide else 4
    out = {"n": n, "n_digits": n - n_fields, "n_fields": n_fields, "depth": args.big_depth, "dtype": args.big_dtype, "workers": args.workers,  # noqa: E501
           "budget_bytes": budget, "tile": [plan.b1, plan.b2], "tile_bytes": plan.tile_bytes,
           "seconds": seconds, "pairs_per_s": n * (n + 1) / 2 / seconds,
           "rss_base_kib": base, "rss_peak_kib": peak,
           "full_pixel_kernel_bytes": n * n * pixels * pixels * itemsize,
           "zarr_bytes": disk, "check_max_rel_dev_vs_float64": dev}
    print(json.dumps(out), flush=True)
    return out


def _environment() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        load = ", load average {:.1f} / {:.1f} / {:.1f}".format(*os.getloadavg())
    except OSError:  # pragma: no cover
        load = ""
    nt_version = "not installed"
    try:
        import neural_tangents

        nt_version = neural_tangents.__version__
    except ImportError:  # pragma: no cover
        pass
    return (f"jax {jax.__version__}, neural-tangents {nt_version}, {jax.devices()[0].platform} "
            f"({cpu}), {os.cpu_count()} cpus{load}")


def render() -> None:
    """RESULTS_cntk.md from the parts' JSON files."""
    lines = ["# Analytic CNTK: gradstats.theory.conv vs neural-tangents", "",
             f"    {COMMAND}", "", "Written by benchmarks/bench_cntk.py from "
             "results_cntk_compare.json and results_cntk_big.json (do not edit by hand).", ""]
    comp = HERE / "results_cntk_compare.json"
    if comp.exists():
        c = json.loads(comp.read_text())
        lines += ["## Side by side (one process)", "", c["environment"], "",
                  f"Conv network: depth {c['rows'][0]['depth']} (3x3 SAME convs, 8 channels "
                  "given, infinite in the kernel), relu, ntk parameterization, sigma_w2 = 2, "
                  "sigma_b2 = 0.1; NNGP + NTK of the first n digits images (1, 8, 8), float64. "
                  f"Median of {c['repeats']} calls each, alternated, after one warm-up call "
                  "(the first call, compile included, is listed separately). gradstats: "
                  "`tiled.cnn_kernels(arch, x, mode='ntk')` (tiles sized automatically); "
                  "neural-tangents: the jitted `kernel_fn` of the same `stax.serial`.", "",
                  "| readout | n | gradstats (s) | neural-tangents (s) | nt / own | first call own / nt (s) | max rel. deviation |",  # noqa: E501
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for r in c["rows"]:
            lines.append(f"| {r['readout']} | {r['n']} | {r['own_s']:.3f} | {r['nt_s']:.3f} | "
                         f"{r['ratio']:.2f} | {r['own_first_s']:.1f} / {r['nt_first_s']:.1f} | "
                         f"{r['max_rel_dev']:.1e} |")
        lines += ["", "All timed calls (s): " + "; ".join(
            f"{r['readout']} own {', '.join(f'{t:.2f}' for t in r['own_all_s'])} / nt "
            f"{', '.join(f'{t:.2f}' for t in r['nt_all_s'])}" for r in c["rows"]), ""]
    big = HERE / "results_cntk_big.json"
    if big.exists():
        b = json.loads(big.read_text())
        gib = 1 << 30
        lines += ["## A GAP kernel too large to hold at once", "", b["environment"], "",
                  f"NNGP + NTK of {b['n']} images of 8x8 ({b['n_digits']} of scikit-learn's digits "
                  f"scaled to unit mean square, plus {b['n_fields']} synthetic smooth torus "
                  "fields, each scaled to unit mean square), "
                  f"depth {b['depth']}, relu, global average pooling, {b['dtype']}, through "
                  f"`tiled.cnn_kernels_to_zarr` with memory_budget = {b['budget_bytes'] / (1 << 20):.0f} MiB "
                  f"and {b['workers']} Dask thread(s) (each tile within budget / workers).", "",
                  "| quantity | value |", "|---|---:|",
                  f"| full pixel x pixel kernel of all pairs (one array) | {b['full_pixel_kernel_bytes'] / gib:.0f} GiB |",  # noqa: E501
                  f"| tile (image pairs) | {b['tile'][0]} x {b['tile'][1]} |",
                  f"| tile working set (XLA memory analysis) | {b['tile_bytes'] / (1 << 20):.1f} MiB |",
                  f"| process RSS before / peak | {b['rss_base_kib'] / 1024:.0f} / {b['rss_peak_kib'] / 1024:.0f} MiB |",  # noqa: E501
                  f"| peak RSS increase during the run | {(b['rss_peak_kib'] - b['rss_base_kib']) / 1024:.0f} MiB |",  # noqa: E501
                  f"| wall time | {b['seconds']:.0f} s ({b['pairs_per_s']:.0f} image pairs / s) |",
                  f"| Zarr store on disk (nngp + ntk) | {b['zarr_bytes'] / (1 << 20):.0f} MiB |",
                  f"| max rel. deviation of 6x6 stored entries from a float64 recomputation | {b['check_max_rel_dev_vs_float64']:.1e} |",  # noqa: E501
                  ""]
    RESULTS.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("all", "compare", "big", "render"), default="all")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--n-flatten", type=int, default=512)
    p.add_argument("--n-gap", type=int, default=96)
    p.add_argument("--big-n", type=int, default=4000)
    p.add_argument("--big-depth", type=int, default=1)
    p.add_argument("--big-dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--budget-mib", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    if args.part in ("all", "compare"):
        res = part_compare(args)
        res["environment"] = _environment()
        (HERE / "results_cntk_compare.json").write_text(json.dumps(res, indent=1))
    if args.part == "all":  # the big part in its own process (its own peak RSS)
        rest = [a for a in sys.argv[1:] if a not in ("--part", "all")]
        subprocess.run([sys.executable, __file__, "--part", "big", *rest], check=True)
    if args.part == "big":
        res = part_big(args)
        res["environment"] = _environment()
        (HERE / "results_cntk_big.json").write_text(json.dumps(res, indent=1))
    render()


if __name__ == "__main__":
    main()
