"""Short human summaries of a sweep's dataset (for `gradstats run` and `gradstats show`)."""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr
from rich.console import Console
from rich.table import Table

from gradstats.spec import AXES, SEED_DIM

MAX_ROWS = 40


def varying_axes(ds: xr.Dataset) -> list[str]:
    """The sweep axes that are dims of ``ds`` (the ones that vary)."""
    return [d for d in AXES if d in ds.dims]


def mean_and_se(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Seed mean and its standard error (NaN with one seed)."""
    n = da.count(SEED_DIM)
    mean = da.mean(SEED_DIM)
    se = da.std(SEED_DIM, ddof=1) / np.sqrt(n.where(n > 1))
    return mean, se


def _fmt(mean: float, se: float) -> str:
    if not np.isfinite(mean):
        return "nan" if np.isnan(mean) else f"{mean}"
    if np.isfinite(se):
        return f"{mean:.3g} ± {se:.2g}"
    return f"{mean:.3g}"


def print_overview(ds: xr.Dataset, console: Console) -> None:
    """Dims, fixed values, variables and failed points of a sweep's dataset."""
    console.print(f"[bold]{ds.attrs.get('n_points', '?')} point files[/bold]; dims: "
                  + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
    fixed = {n: c.item() for n, c in ds.coords.items() if c.ndim == 0}
    console.print("fixed: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    console.print("variables: " + ", ".join(sorted(ds.data_vars)))
    errors = ds.attrs.get("errors", [])
    if isinstance(errors, str):
        errors = [errors]
    for line in errors:
        console.print(f"[red]failed[/red] {line.splitlines()[0]}")
    if "diverged" in ds and float(ds["diverged"].sum()) > 0:
        console.print(f"[yellow]{int(ds['diverged'].sum())} runs diverged[/yellow]")


def print_summary(ds: xr.Dataset, console: Console) -> None:
    """Per configuration (seed means ± standard errors): init gradient norms of the first
    and last layer, their ratio, mean squared pre-activation of the last hidden layer, and
    the full-batch loss at the first and last recorded step."""
    if "grad_sq_norm" not in ds:
        console.print("no measurements in this dataset (all points failed?)")
        return
    axes = varying_axes(ds)
    table = Table(*axes, "grad_sq_norm L1 (init)", "grad_sq_norm readout (init)",
                  "ratio L1/readout", "forward_q last hidden", "loss first → last",
                  title="seed mean ± standard error")
    init = ds.isel(step=0)
    combos = list(itertools.product(*(ds[a].values for a in axes)))
    for combo in combos[:MAX_ROWS]:
        sel = init.sel(dict(zip(axes, combo, strict=True)))
        layers = sel["grad_sq_norm"].dropna("layer", how="all").layer.values
        if len(layers) == 0:
            continue
        first, last = int(layers[0]), int(layers[-1])
        g1 = sel["grad_sq_norm"].sel(layer=first)
        gl = sel["grad_sq_norm"].sel(layer=last)
        ratio = np.log10(g1 / gl)
        fq = sel["forward_q"].sel(layer=max(last - 1, 1))
        loss = ds["full_loss"].sel(dict(zip(axes, combo, strict=True)))
        steps = loss.dropna("step", how="all").step.values
        loss0, loss1 = (mean_and_se(loss.sel(step=s)) for s in (steps[0], steps[-1]))
        cells = [_fmt(*(float(v) for v in mean_and_se(x))) for x in (g1, gl)]
        r_mean, r_se = mean_and_se(ratio)
        cells.append(f"10^({_fmt(float(r_mean), float(r_se))})")
        cells.append(_fmt(*(float(v) for v in mean_and_se(fq))))
        cells.append(f"{float(loss0[0]):.3g} → {float(loss1[0]):.3g}")
        table.add_row(*(str(c) for c in combo), *cells)
    console.print(table)
    if len(combos) > MAX_ROWS:
        console.print(f"... {len(combos) - MAX_ROWS} more configurations")
