"""Width exponent of the NTK change under SGD in each parameterization of a coord-check run,
fitted as `ntk_change_exponent` fits it, but over every parameterization (the row itself is
kept to the ntk parameterization: docs/compare.md, "NTK-change width exponent").

For each (parameterization, sgd, lr) cell of ``ntk_rel_change`` at the last recorded step,
over widths >= ``--min-width`` (the relu threshold of
`gradstats.theory.validity.NTK_CHANGE_WIDTH_MIN`): the OLS slope of ln change on ln width
over widths and seeds (`gradstats.results.compare.fit_exponent_part`), its SE, and
(slope + 1) / SE, the distance from the ntk parameterization's width^-1 in SEs.

Usage: python scripts/compare_report.py coord-check --results DIR   # runs the preset
       python scripts/ntk_change_standard.py DIR/coord-check [--min-width 1024]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gradstats.results.compare import fit_exponent_part
from gradstats.results.io import load_results
from gradstats.theory.validity import NTK_CHANGE_WIDTH_MIN


def rows(results: Path, min_width: int) -> list[tuple[str, float, float, float, list]]:
    """(parameterization, lr, slope, SE, widths) of every sgd cell that has values."""
    ds = load_results(results, lazy=False)
    change = ds["ntk_rel_change"].isel(step=-1).sel(optimizer="sgd")
    change = change.sel(width=change["width"] >= min_width)
    out = []
    for param in change["parameterization"].values:
        for lr in change["lr"].values:
            part = change.sel(parameterization=param, lr=lr)
            if not bool(part.notnull().any()):
                continue
            fit, widths = fit_exponent_part(part)
            if fit is not None:
                out.append((str(param), float(lr), fit.slope, fit.slope_se, widths))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a coord-check results directory")
    parser.add_argument("--min-width", type=int, default=NTK_CHANGE_WIDTH_MIN["piecewise"])
    args = parser.parse_args()
    print("| parameterization | lr | widths | slope ± SE | (slope + 1) / SE |")
    print("|---|---|---|---|---|")
    for param, lr, slope, se, widths in rows(args.results, args.min_width):
        z = (slope + 1) / se if np.isfinite(se) and se > 0 else float("nan")
        span = f"{min(widths)}-{max(widths)}"
        print(f"| {param} | {lr:g} | {span} | {slope:.2f} ± {se:.2f} | {z:.1f} |")


if __name__ == "__main__":
    main()
