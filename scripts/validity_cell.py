"""The relative error of one per-layer prediction of a validity map, with its interval.

    gradstats run validity --out DIR -q --no-compare
    gradstats validity DIR
    python scripts/validity_cell.py DIR/validity.nc grad_sq_norm layer=9 width=128 depth=8 \\
        activation=relu sigma_w2=2

Prints, for the cell the ``key=value`` selections pick (every other non-scalar dim must have
size 1 after them), the signed error R - 1 of the seed-mean ratio, the interval of |R - 1|,
the typical per-seed error and, where the map has one, the finite-width corrected error
(`gradstats.results.validity_map`): the numbers README and `gradstats.theory.validity` quote
for single configurations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr


def _value(ds: xr.Dataset, dim: str, text: str):
    """``text`` converted to the dtype of coordinate ``dim``."""
    kind = ds[dim].dtype.kind
    return float(text) if kind == "f" else int(text) if kind in "iu" else text


def cell(vmap: xr.Dataset, quantity: str, selections: list[str]) -> xr.Dataset:
    """The map's per-cell variables (those on dims of ``error``) at one cell, as scalars.

    The map is an outer product of the sweep's axes, so dims left unselected (here sigma_b2 and
    bias, which the preset pairs with the activation) hold empty (NaN) cells: the one finite
    cell among them is the one the run measured; several are an error."""
    sel = {"quantity": quantity}
    for item in selections:
        dim, _, text = item.partition("=")
        sel[dim] = _value(vmap, dim, text)
    per_cell = vmap[[v for v in vmap.data_vars if set(vmap[v].dims) <= set(vmap["error"].dims)]]
    floats = {d: v for d, v in sel.items() if isinstance(v, float)}
    out = per_cell.sel({d: v for d, v in sel.items() if d not in floats})
    out = out.sel(floats, method="nearest") if floats else out
    rest = [d for d in out["error"].dims if out.sizes[d] > 1]
    if rest:
        out = out.stack(cell=rest)
        out = out.isel(cell=np.flatnonzero(np.isfinite(out["error"].values)))
        if out.sizes["cell"] != 1:
            raise SystemExit(f"{out.sizes['cell']} measured cells left; select {', '.join(rest)}")
    return out.squeeze()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vmap", type=Path, help="validity.nc written by gradstats validity")
    parser.add_argument("quantity")
    parser.add_argument("selections", nargs="+", help="dim=value")
    args = parser.parse_args()
    c = cell(xr.open_dataset(args.vmap), args.quantity, args.selections)
    where = ", ".join(f"{k} = {c[k].values}" for k in ("activation", "sigma_w2", "sigma_b2",
                                                        "bias", "width", "depth", "layer"))
    print(f"{args.quantity} at {where} ({int(c['n_seeds'])} seeds, beta = {float(c['beta']):.4g}):")
    print(f"  infinite width: R - 1 = {float(c['error']):+.3f}, |R - 1| in "
          f"[{float(c['rel_error_lo']):.3f}, {float(c['rel_error_hi']):.3f}], typical per-seed "
          f"|m/p - 1| {float(c['typical_error']):.3f}")
    if np.isfinite(float(c["error_corrected"])):
        print(f"  finite-width corrected (x {float(c['correction']):.3f}): R - 1 = "
              f"{float(c['error_corrected']):+.3f}, |R - 1| in "
              f"[{float(c['rel_error_corrected_lo']):.3f}, {float(c['rel_error_corrected_hi']):.3f}]")


if __name__ == "__main__":
    main()
