"""Seed-mean measured / predicted per-layer squared gradient norms of two sweeps side by side.

    gradstats run scripts/sweeps/validity-digits-mlp.toml --out DIR/mlp -q --no-compare
    gradstats run scripts/sweeps/validity-digits-cnn.toml --out DIR/cnn -q --no-compare
    python scripts/finite_width_excess.py DIR/mlp DIR/cnn

Prints, per statistic (``grad_sq_norm``, ``bias_grad_sq_norm``) and depth, the ratio
mean_seeds(measured) / mean_seeds(infinite-width prediction) over (width, layer) at step 0,
for each results directory: the finite-width excess that `compare`'s validity domains must
keep out (the README cites these tables).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xarray as xr


def ratios(results: Path, name: str) -> xr.DataArray:
    """(width, depth, layer) seed-mean ratio of ``name`` to its prediction at step 0."""
    ds = xr.open_zarr(results / "sweep.zarr")
    r = (ds[name].mean("seed") / ds[f"theory_{name}"].mean("seed")).squeeze()
    return (r.isel(step=0) if "step" in r.dims else r).load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args()
    for name in ("grad_sq_norm", "bias_grad_sq_norm"):
        for results in args.results:
            r = ratios(results, name)
            print(f"## {name}: {results}")
            for depth in r["depth"].values:
                table = r.sel(depth=depth).dropna("layer", how="all").to_pandas()
                print(f"depth {depth} (rows: width; columns: layer)")
                print(table.round(3).to_string(), "\n")


if __name__ == "__main__":
    main()
