"""Run the built-in presets and draw their figures into docs/gallery/*.png (small PNGs).

Usage: python scripts/make_gallery.py [PRESET ...] [--results DIR] [--out docs/gallery] [--dpi 72]

For every preset (``gradstats presets``; or only those named) it runs
``gradstats run PRESET --out DIR/PRESET -q`` (resumable: finished points are skipped on a
rerun) and draws every plot kind the results allow as ``<out>/<preset>_<kind>.png``. Without
preset names it also runs the quickstart preset as a phase sweep,
``--set sigma_w2=1.0,1.5,2.0,2.5,3.0 --set sigma_b2=0.0,0.5 --set width=128
--set activation=tanh --set seeds=2 --set steps=1 --set record=1``, for the phase diagram.
Prints each file with its size; warns when one exceeds 150 kB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MAX_BYTES = 150_000
PHASE_SETS = ["sigma_w2=1.0,1.5,2.0,2.5,3.0", "sigma_b2=0.0,0.5", "width=128", "activation=tanh",
              "seeds=2", "steps=1", "record=1"]


def run_preset(preset: str, out: Path, sets: list[str] = ()) -> None:
    """``gradstats run PRESET --out OUT -q [--set ...]`` in a subprocess (exit code checked)."""
    cmd = [sys.executable, "-m", "gradstats.cli", "run", preset, "--out", str(out), "-q"]
    for s in sets:
        cmd += ["--set", s]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def draw(results: Path, out: Path, prefix: str, dpi: int, kinds: list[str] | None = None) -> list[Path]:
    """Every available plot kind (or ``kinds``) of ``results`` as ``out/<prefix>_<kind>.png``."""
    from gradstats.results import load_results, plots

    ds = load_results(results, lazy=False)
    written = []
    for kind in kinds or plots.kinds_available(ds):
        try:
            fig = plots.render(ds, kind)
        except plots.MissingVariables as err:
            print(f"  skipped {kind}: {err}")
            continue
        path = plots.save(fig, out / f"{prefix}_{kind}.png", "png", dpi=dpi)
        size = path.stat().st_size
        print(f"  wrote {path} ({size / 1000:.0f} kB)" + ("  WARNING: > 150 kB" if size > MAX_BYTES else ""))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help="presets to draw (default: all)")
    parser.add_argument("--results", type=Path, default=Path("results/gallery"))
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--dpi", type=int, default=72)
    args = parser.parse_args()

    from gradstats.sweeps.presets import preset_names

    for preset in args.presets or preset_names():
        run_preset(preset, args.results / preset)
        draw(args.results / preset, args.out, preset, args.dpi)
    if not args.presets:
        run_preset("quickstart", args.results / "phase", PHASE_SETS)
        draw(args.results / "phase", args.out, "phase", args.dpi, kinds=["phase", "layers"])


if __name__ == "__main__":
    main()
