"""Run the built-in presets and draw their figures into docs/gallery/*.png.

Usage: python scripts/make_gallery.py [PRESET ...] [--results DIR] [--out docs/gallery]
       [--dpi 150] [--max-seeds N] [--draw-only]

For every preset (``gradstats presets``; or only those named) it runs
``gradstats run PRESET --out DIR/PRESET -q`` (resumable: finished points are skipped on a
rerun) and draws every plot kind the results allow as ``<out>/<preset>_<kind>.png`` in the
one plotting style (`gradstats.results.plots.style`, PNG at ``--dpi``). ``--max-seeds N``
caps each preset's seeds at N (``--set seeds=N``; the figures say how many seeds they
average) so the whole gallery runs in modest time on a laptop CPU; ``--draw-only`` redraws
from results already in ``--results``. Prints each file with its size and the time taken.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from pathlib import Path


def run_preset(preset: str, out: Path, max_seeds: int | None) -> None:
    """``gradstats run PRESET --out OUT -q --no-compare --no-limits [--set seeds=N]`` in a
    subprocess (exit checked)."""
    from gradstats.sweeps.presets import preset_text

    cmd = [sys.executable, "-m", "gradstats.cli", "run", preset, "--out", str(out), "-q",
           "--no-compare", "--no-limits"]  # built-in presets: ntk-change is over the limits
    seeds = tomllib.loads(preset_text(preset)).get("seeds", 1)
    if max_seeds is not None and seeds > max_seeds:
        cmd += ["--set", f"seeds={max_seeds}"]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def draw(results: Path, out: Path, prefix: str, dpi: int) -> list[Path]:
    """Every available plot kind of ``results`` as ``out/<prefix>_<kind>.png``."""
    from gradstats.results import load_results, plots

    ds = load_results(results, lazy=False)
    written = []
    for kind in plots.kinds_available(ds):
        start = time.perf_counter()
        try:
            fig = plots.render(ds, kind)
        except plots.MissingVariables as err:
            print(f"  skipped {kind}: {err}")
            continue
        path = plots.save(fig, out / f"{prefix}_{kind}.png", "png", dpi=dpi)
        print(f"  wrote {path} ({path.stat().st_size / 1000:.0f} kB, "
              f"{time.perf_counter() - start:.1f} s)", flush=True)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help="presets to draw (default: all)")
    parser.add_argument("--results", type=Path, default=Path("results/gallery"))
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--max-seeds", type=int, default=None)
    parser.add_argument("--draw-only", action="store_true")
    args = parser.parse_args()

    from gradstats.sweeps.presets import preset_names

    for preset in args.presets or preset_names():
        start = time.perf_counter()
        if not args.draw_only:
            run_preset(preset, args.results / preset, args.max_seeds)
        draw(args.results / preset, args.out, preset, args.dpi)
        print(f"{preset}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
