"""Finite-width bias of the per-layer predictions against width, and how compare reads it.

    gradstats run scripts/sweeps/validity-digits-mlp.toml --out DIR/mlp -q --no-compare -w 0
    gradstats run scripts/sweeps/limit-digits-cnn.toml --out DIR/cnn -q --no-compare -w 0
    gradstats compare DIR/mlp; gradstats compare DIR/cnn
    python scripts/width_bias.py DIR/mlp DIR/cnn

Per results directory, per row (grad_sq_norm, bias_grad_sq_norm, backward_q) and per
configuration of the axes other than width: Cox's estimate of ln E[measured / predicted] at
init per width and layer with its SE (`gradstats.results.stats.log_ratio_test`, all seeds)
and width x that estimate (constant for a bias b/width: the law the ``*_limit`` rows
extrapolate). Then, from DIR/comparison.nc, the verdict counts of each fixed-allowance row
beside its ``_limit`` row, and the limit rows' cells (extrapolated ratio, ln estimate and SE,
fitted 1/width slope, allowance, Holm p-value, verdict), and for cells fitted over 4 or more
widths the intercept refitted without the smallest one. docs/measured/width_limit.md holds
this script's output.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import comparison_cells
import numpy as np
import xarray as xr

from gradstats.results import stats

ROWS = ("grad_sq_norm", "bias_grad_sq_norm", "backward_q")
LIMIT_COLUMNS = ("ratio", "estimate", "se", "slope", "allowance", "p_holm")


def bias_tables(ds: xr.Dataset, row: str) -> list[str]:
    """Markdown tables (one per configuration of the non-width axes) of Cox ln E ratio."""
    measured, predicted = ds[row], ds[f"theory_{row}"]
    if "step" in measured.dims:
        measured = measured.sel(step=0)
    if "step" in predicted.dims:
        predicted = predicted.sel(step=0)
    others = [d for d in measured.dims if d not in ("width", "seed", "layer")
              and measured.sizes[d] > 1]
    lines = []
    for combo in itertools.product(*(ds[d].values for d in others)):
        sel = dict(zip(others, combo, strict=True))
        m = measured.sel(sel).transpose("width", "layer", "seed")
        p = predicted.sel(sel).transpose("width", "layer", "seed")
        result = stats.log_ratio_test(m.values, p.values, 0.01)
        layers = [int(v) for v in m["layer"].values]
        keep = [i for i in range(len(layers)) if np.isfinite(result.estimate[:, i]).any()
                and np.nanmax(np.abs(result.se[:, i])) > 1e-6]  # skip exact (conditioned) layers
        label = ", ".join(f"{k} {v}" for k, v in sel.items()) or "all"
        lines += [f"{row}, {label}: Cox ln E[measured/predicted] (SE) | width x estimate", "",
                  "| width | " + " | ".join(f"layer {layers[i]}" for i in keep) + " | "
                  + " | ".join(f"w x l{layers[i]}" for i in keep) + " |",
                  "|---:|" + "---:|" * (2 * len(keep))]
        for j, w in enumerate(m["width"].values):
            est, se = result.estimate[j], result.se[j]
            lines.append(f"| {int(w)} | " + " | ".join(f"{est[i]:+.3f} ({se[i]:.3f})" for i in keep)
                         + " | " + " | ".join(f"{w * est[i]:+.1f}" for i in keep) + " |")
        lines.append("")
    return lines


def verdict_counts(cmp: xr.Dataset) -> list[str]:
    lines = ["| row | agree | disagree | outside | undetermined |", "|---|---:|---:|---:|---:|"]
    for row in ROWS:
        for name in (row, f"{row}_limit"):
            if f"{name}_verdict" not in cmp:
                lines.append(f"| `{name}` | (not tested) | | | |")
                continue
            codes = cmp[f"{name}_verdict"].values.ravel()
            counts = [int((codes == k).sum()) for k in (1, 0, 2, 3)]
            lines.append(f"| `{name}` | " + " | ".join(str(c) for c in counts) + " |")
    return lines


def limit_cells(cmp: xr.Dataset, name: str) -> list[str]:
    """One line per tested cell of limit row ``name``: the extrapolated ln E ratio and the fit."""
    header, body = comparison_cells.rows(cmp, name, LIMIT_COLUMNS)
    return [f"`{name}` cells:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in body), ""]


def without_smallest_width(ds: xr.Dataset, cmp: xr.Dataset, row: str) -> list[str]:
    """The limit row's intercepts refitted without the smallest width it used, for cells fitted
    over 4 or more widths (`stats.width_limit_test` on the same seeds): how much of an
    intercept is curvature from the smallest width."""
    n_widths = cmp[f"{row}_limit_n_widths"]
    lines = [f"`{row}_limit` without the smallest width (cells fitted over >= 4 widths):", "",
             "| cell | layer | estimate (all widths) | estimate (without the smallest) | se |",
             "|---|---:|---:|---:|---:|"]
    inside = cmp[f"{row}_limit_estimate"]
    for index in itertools.product(*(range(n_widths.sizes[d]) for d in n_widths.dims)):
        at = dict(zip(n_widths.dims, index, strict=True))
        if not (float(n_widths.isel(at)) >= 4 and np.isfinite(float(inside.isel(at)))):
            continue
        sel = {d: n_widths[d].values[at[d]] for d in n_widths.dims}
        layer = sel.pop("layer")
        m = ds[row].sel(step=0, **sel, layer=layer)
        # the domain (beta <= 0.1, width >= 64) keeps the largest widths: the row's fit used
        # the n_widths largest; drop the smallest of those
        widths = sorted(int(w) for w in m["width"].values)[-int(n_widths.isel(at)):][1:]
        m = m.sel(width=widths).transpose("width", "seed").values
        p = ds[f"theory_{row}"].sel(step=0, **sel, layer=layer, width=widths)
        result = stats.width_limit_test(np.array(widths, float), m,
                                        p.transpose("width", "seed").values, 0.01)
        label = ", ".join(f"{k} {v}" for k, v in sel.items())
        lines.append(f"| {label} | {int(layer)} | {float(inside.isel(at)):+.3f} | "
                     f"{float(result.test.estimate):+.3f} | {float(result.test.se):.3f} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+", help="results directories")
    args = parser.parse_args()
    for results in args.results:
        ds = xr.open_zarr(results / "sweep.zarr").load()
        print(f"## {results.name} ({ds.sizes['seed']} seeds)\n")
        for row in ROWS:
            print("\n".join(bias_tables(ds, row)))
        comparison = results / "comparison.nc"
        if comparison.exists():
            with xr.open_dataset(comparison) as cmp:
                print(f"compare's verdicts ({comparison.name}):\n")
                cmp = cmp.load()
                print("\n".join(verdict_counts(cmp)) + "\n")
                for row in ROWS:
                    if f"{row}_limit_p" in cmp:
                        print("\n".join(limit_cells(cmp, f"{row}_limit")))
                for row in ROWS[:2]:
                    if f"{row}_limit_n_widths" in cmp and float(
                            cmp[f"{row}_limit_n_widths"].max()) >= 4:
                        print("\n".join(without_smallest_width(ds, cmp, row)))


if __name__ == "__main__":
    main()
