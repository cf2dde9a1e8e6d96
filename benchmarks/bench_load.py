"""Reading a finished results directory: its consolidated ``sweep.zarr`` vs combining its
point files, side by side in one process, and that both give the same dataset.

`load_results(DIR, lazy=False)` (what show, export, compare, plot and report read) opens the
store when it was built from the current point files and combines the point files
otherwise. Per directory, the best of ``--repeats`` of:

- store: ``load_results(DIR, lazy=False)`` with the store current (the default path);
- points, cold: the point files decoded and combined (``io.load_point_files`` +
  ``io.combine``, what ``load_results`` did for ``lazy=False`` before), the decoded-file
  cache cleared first;
- points, cached: the same with this process's decoded files reused (a command that read
  the point files already, e.g. ``run`` after its consolidation).

Equality: the two datasets are ``xarray.testing.assert_identical`` apart from the ``created``
attribute (when each was combined).

Usage: python benchmarks/bench_load.py DIR [DIR ...] [--repeats 2]
           [--out benchmarks/RESULTS_load.md]
The machine may be shared: the ratios are measured side by side; the seconds are not
comparable across runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import xarray as xr

from gradstats.results import io

HERE = Path(__file__).resolve().parent


def _seconds(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _combined(out_dir: Path, cached: bool) -> xr.Dataset:
    if not cached:
        io._DECODED.clear()
    return io.combine(io.load_point_files(out_dir), command=io._manifest_command(out_dir))


def measure(out_dir: Path, repeats: int) -> dict[str, object]:
    """Seconds of each way of reading ``out_dir`` (best of ``repeats``) and the equality."""
    if not io._store_is_current(out_dir):
        raise SystemExit(f"{out_dir}: sweep.zarr is not current; rerun its sweep first")
    best = {"store": float("inf"), "cold": float("inf"), "cached": float("inf")}
    store = combined = None
    for _ in range(repeats):
        seconds, store = _seconds(lambda: io.load_results(out_dir, lazy=False))
        best["store"] = min(best["store"], seconds)
        seconds, combined = _seconds(lambda: _combined(out_dir, cached=False))
        best["cold"] = min(best["cold"], seconds)
        seconds, _ = _seconds(lambda: _combined(out_dir, cached=True))
        best["cached"] = min(best["cached"], seconds)
    store.attrs.pop("created", None)
    combined.attrs.pop("created", None)
    xr.testing.assert_identical(store, combined)
    return {**best, "points": len(io.point_files(out_dir)),
            "mb": sum(p.stat().st_size for p in io.point_files(out_dir)) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_load.md")
    args = parser.parse_args()
    rows = ["| results | points | point files MB | store s | points cold s | points cached s "
            "| cold / store | cached / store | same dataset |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for out_dir in args.dirs:
        m = measure(out_dir, args.repeats)
        rows.append(f"| {out_dir.name} | {m['points']} | {m['mb']:.1f} | {m['store']:.2f} | "
                    f"{m['cold']:.2f} | {m['cached']:.2f} | {m['cold'] / m['store']:.1f}x | "
                    f"{m['cached'] / m['store']:.1f}x | yes |")
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    text = "\n".join([
        "# Reading a results directory: sweep.zarr vs its point files",
        "",
        f"Script: `benchmarks/bench_load.py {' '.join(d.name for d in args.dirs)} --repeats "
        f"{args.repeats}` (this file is its output; the directories are the presets' runs "
        "from `scripts/compare_report.py`). Wall seconds, best of the repeats, side by side "
        f"in one process; load average {load:.1f} at the end. 'same dataset': "
        "`xarray.testing.assert_identical` apart from the `created` attribute.",
        "",
        *rows, ""])
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
