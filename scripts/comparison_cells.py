"""The per-cell results of named comparisons in a comparison file, as markdown tables.

    gradstats compare DIR            # writes DIR/comparison.nc
    python scripts/comparison_cells.py DIR/comparison.nc ntk_init_exponent grad_sq_norm_marginal

For each comparison, one row per cell with a finite p-value (outside cells too, without a
Holm p-value): the cell's coordinates, the measured and predicted values, the test estimate
with its standard error, the Holm-adjusted p-value, the minimum detectable error and the
verdict: the single-cell numbers README quotes (fitted exponents, measured / predicted
ratios).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import xarray as xr

VERDICTS = ("disagree", "agree", "outside", "undetermined")
COLUMNS = ("mean", "pred", "ratio", "estimate", "se", "p_holm", "detectable")


def rows(comparison: xr.Dataset, name: str, columns: tuple[str, ...] = COLUMNS
         ) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of comparison ``name``'s tested cells: ``columns`` (suffixes of its
    variables) where present."""
    p = comparison[f"{name}_p"]
    dims = [d for d in p.dims if p.sizes[d] > 1]
    columns = [c for c in columns if f"{name}_{c}" in comparison]
    out = []
    for index in itertools.product(*(range(p.sizes[d]) for d in p.dims)):
        at = dict(zip(p.dims, index, strict=True))
        if not np.isfinite(float(p.isel(at))):
            continue
        where = [str(p[d].values[at[d]]) for d in dims]
        values = [f"{float(comparison[f'{name}_{c}'].isel(at)):.3g}" for c in columns]
        verdict = VERDICTS[int(comparison[f"{name}_verdict"].isel(at))]
        out.append([*where, *values, verdict])
    return [*dims, *columns, "verdict"], out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("comparison", type=Path, help="comparison.nc written by gradstats compare")
    parser.add_argument("names", nargs="+", help="comparison names (gradstats compare's rows)")
    args = parser.parse_args()
    comparison = xr.open_dataset(args.comparison)
    for name in args.names:
        if f"{name}_p" not in comparison:
            raise SystemExit(f"{args.comparison}: no comparison {name!r}")
        header, body = rows(comparison, name)
        print(f"## {name}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in body:
            print("| " + " | ".join(row) + " |")
        print()


if __name__ == "__main__":
    main()
