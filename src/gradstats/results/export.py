"""Export a sweep's dataset: netCDF, Zarr, or a tidy long table (CSV / Parquet).

The tidy table has one row per (variable, coordinates) value: columns are every dim of the
variable, ``variable`` and ``value``; NaN padding (absent layers, unreached steps) is dropped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xarray as xr

from gradstats.results import io

FORMATS = ("netcdf", "zarr", "csv", "parquet")
SUFFIX = {"netcdf": ".nc", "zarr": ".zarr", "csv": ".csv", "parquet": ".parquet"}


def tidy(ds: xr.Dataset) -> pd.DataFrame:
    """Long table: one row per value of every data variable (NaN padding dropped).

    Columns: the union of all variables' dims, the scalar coords, ``variable``, ``value``.
    """
    frames = []
    scalars = {name: c.item() for name, c in ds.coords.items() if c.ndim == 0}
    for name, var in ds.data_vars.items():
        frame = var.reset_coords(drop=True).to_dataframe(name="value").reset_index()
        frame = frame.dropna(subset=["value"])
        frame.insert(0, "variable", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True, sort=False)
    for name, value in scalars.items():
        table[name] = value
    return table


def export(ds: xr.Dataset, fmt: str, out: Path) -> Path:
    """Write ``ds`` to ``out`` in format ``fmt``; returns the written path."""
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "netcdf":
        clean = ds.copy()
        clean.attrs = {k: v for k, v in ds.attrs.items() if k != "points"}
        clean.to_netcdf(out, engine=io.NETCDF_ENGINE)
    elif fmt == "zarr":
        io.to_zarr(ds, out)
    elif fmt == "csv":
        tidy(ds).to_csv(out, index=False)
    else:
        tidy(ds).to_parquet(out, index=False)
    return out
