"""Export a sweep's dataset: netCDF, Zarr, or a tidy long table (CSV / Parquet), and read back.

The tidy table (for pandas / seaborn / R) has one row per value of every data variable:
columns ``variable``, every dim of any variable (empty where a variable lacks that dim),
``value``, then the fixed (scalar) coordinates repeated on every row. NaN padding (absent
layers, unreached steps) is dropped. Integer dims stay integers (pandas ``Int64``).

Round trips: netCDF and Zarr keep everything (values, coordinates, attrs; the ``points``
attr included). Parquet stores the layout (each variable's dims, attrs, the dims' coordinate
values, the fixed coords) as JSON in its schema metadata, so `read_export` rebuilds the
dataset exactly up to NaN. CSV has no metadata: `from_tidy` infers each variable's dims from
the columns that are filled on its rows; a column with one value everywhere is a fixed coord
(so a length-1 dim comes back as a scalar coord), and variables that were all NaN are lost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gradstats import paths
from gradstats.errors import InputError
from gradstats.results import io

FORMATS = ("netcdf", "zarr", "csv", "parquet")
SUFFIX = {"netcdf": ".nc", "zarr": ".zarr", "csv": ".csv", "parquet": ".parquet"}
META_KEY = b"gradstats"
RESERVED = ("variable", "value")


def tidy(ds: xr.Dataset) -> pd.DataFrame:
    """Long table: one row per finite-or-inf value of every data variable (NaN dropped).

    Columns: ``variable``, the union of all variables' dims (in dataset order), ``value``,
    the scalar coords.
    """
    clash = [n for n in RESERVED if n in ds.dims or n in ds.coords]
    if clash:
        raise ValueError(f"dims/coords named {', '.join(clash)} clash with tidy columns")
    dims = [str(d) for d in ds.dims]
    frames = []
    for name, var in ds.data_vars.items():
        if var.ndim == 0:
            frame = pd.DataFrame({"value": [var.values.item()]})
        else:
            frame = var.reset_coords(drop=True).to_dataframe(name="value").reset_index()
        frame = frame.dropna(subset=["value"])
        frame.insert(0, "variable", str(name))
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True, sort=False)
    table = table.reindex(columns=["variable", *dims, "value"])
    for dim in dims:
        if np.issubdtype(ds[dim].dtype, np.integer):
            table[dim] = table[dim].astype("Int64")
    for name, coord in ds.coords.items():
        if coord.ndim == 0:
            table[str(name)] = coord.values.item()
    return table


def layout(ds: xr.Dataset) -> dict:
    """What `from_tidy` needs to rebuild ``ds`` exactly: dims, attrs and coords (JSON-ready)."""
    return {
        "variables": {str(n): {"dims": [str(d) for d in v.dims], "attrs": _jsonable(v.attrs)}
                      for n, v in ds.data_vars.items()},
        "dims": {str(d): ds[d].values.tolist() for d in ds.dims if d in ds.coords},
        "coord_attrs": {str(n): _jsonable(c.attrs) for n, c in ds.coords.items()},
        "scalars": [str(n) for n, c in ds.coords.items() if c.ndim == 0],
        "attrs": _jsonable(ds.attrs),
    }


def from_tidy(table: pd.DataFrame, meta: dict | None = None) -> xr.Dataset:
    """The dataset of a tidy table (inverse of `tidy`; exact given ``meta`` = `layout`).

    Without ``meta``: columns holding one value on every row are fixed coords; each
    variable's dims are the remaining columns filled on its rows.
    """
    columns = [c for c in table.columns if c not in RESERVED]
    if meta is not None:
        scalars = list(meta["scalars"])
    else:
        scalars = [c for c in columns if table[c].notna().all() and table[c].nunique() == 1]
    dim_cols = [c for c in columns if c not in scalars]
    table = table.assign(**{c: _as_int(table[c]) for c in dim_cols})
    data_vars = {}
    for name, rows in table.groupby("variable", sort=False):
        if meta is not None:
            dims = meta["variables"][name]["dims"]
        else:
            dims = [c for c in dim_cols if rows[c].notna().all()]
        if dims:
            series = rows.set_index([rows[d].to_numpy() for d in dims])["value"]
            series.index.names = dims
            da = xr.DataArray.from_series(series)
        else:
            da = xr.DataArray(rows["value"].iloc[0])
        data_vars[name] = da
    ds = xr.Dataset(data_vars)
    if meta is not None:
        ds = _apply_layout(ds, meta)
    return ds.assign_coords({c: table[c].iloc[0] for c in scalars if c in table})


def read_export(path: Path) -> xr.Dataset:
    """Read a file written by `export` (format from the suffix) back into a dataset."""
    path = Path(path)
    if path.suffix == ".nc":
        return xr.load_dataset(path, engine=io.NETCDF_ENGINE)
    if path.suffix == ".zarr":
        return xr.open_zarr(path).load()
    if path.suffix == ".csv":
        return from_tidy(pd.read_csv(path))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(META_KEY)
        return from_tidy(table.to_pandas(), json.loads(raw) if raw else None)
    raise ValueError(f"{path}: unknown export suffix; expected one of {', '.join(SUFFIX.values())}")


def export(ds: xr.Dataset, fmt: str, out: Path) -> Path:
    """Write ``ds`` to ``out`` in format ``fmt``; returns the written path.

    Atomic: ``out`` is replaced only by a complete file (or store); a failed write leaves
    what was there. Whether ``out`` may be replaced at all is `check_target`'s question.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown {fmt!r}; choose from {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "zarr":
        io.replace_dir_atomically(out, lambda tmp: io.to_zarr(ds, tmp))
        return out
    writers = {
        "netcdf": lambda tmp: ds.to_netcdf(tmp, engine=io.NETCDF_ENGINE),
        "csv": lambda tmp: tidy(ds).to_csv(tmp, index=False),
        "parquet": lambda tmp: _write_parquet(tidy(ds), layout(ds), tmp),
    }
    io.replace_with(out, writers[fmt])
    return out


def check_target(out: Path, fmt: str, overwrite: bool = False) -> None:
    """`InputError` unless `export` may write ``out``: the format's suffix, not a directory
    (for zarr: not a directory other than a Zarr store), an existing target only with
    ``overwrite``."""
    out = Path(out)
    if fmt != "zarr":
        paths.check_output_file(out, suffix=SUFFIX[fmt], overwrite=overwrite)
        return
    if out.suffix != SUFFIX["zarr"]:
        raise InputError(f"--out: {out.name} should end in {SUFFIX['zarr']}")
    if out.exists():
        if not is_zarr_store(out):
            raise InputError(f"--out: {out} exists and is not a Zarr store; it is left alone")
        if not overwrite:
            raise InputError(f"--out: {out} exists; pass --force to replace it")
        paths.require_writable(out.parent)
        return
    paths.check_output_dir(out)
    paths.require_writable(out)


def is_zarr_store(path: Path) -> bool:
    """Whether ``path`` is a directory holding Zarr metadata (v2 or v3)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file()
                                 for name in (".zgroup", ".zmetadata", "zarr.json"))


def check_has_values(ds: xr.Dataset, source: Path) -> None:
    """`InputError` when ``ds`` has no data variable with a value (all NaN or none at all):
    a damaged store, not results worth exporting."""
    if not any(int(var.count()) for var in ds.data_vars.values()):
        raise InputError(f"RESULTS: {source} holds no values (every variable is NaN or "
                         "absent); nothing exported")


def _write_parquet(table: pd.DataFrame, meta: dict, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    merged = {**(arrow.schema.metadata or {}), META_KEY: json.dumps(meta).encode()}
    pq.write_table(arrow.replace_schema_metadata(merged), out)


def _apply_layout(ds: xr.Dataset, meta: dict) -> xr.Dataset:
    """Reindex to the recorded coordinates, restore all-NaN variables, attrs and dim order."""
    coords = {d: np.asarray(v) for d, v in meta["dims"].items()}
    out = {}
    for name, info in meta["variables"].items():
        dims = info["dims"]
        if name in ds:
            da = ds[name].reindex({d: coords[d] for d in dims if d in coords})
            da = da.transpose(*dims)
        else:
            shape = tuple(len(coords[d]) for d in dims)
            da = xr.DataArray(np.full(shape, np.nan), dims=dims,
                              coords={d: coords[d] for d in dims})
        da.attrs = info["attrs"]
        out[name] = da
    result = xr.Dataset(out).assign_coords({d: coords[d] for d in coords})
    for name, attrs in meta["coord_attrs"].items():
        if name in result.coords:
            result[name].attrs = attrs
    result.attrs = meta["attrs"]
    return result


def _as_int(column: pd.Series) -> pd.Series:
    """A float column holding only whole numbers (and gaps) as ``Int64`` (CSV reads layer as float)."""
    if column.dtype.kind != "f":
        return column
    values = column.dropna()
    return column.astype("Int64") if (values == values.round()).all() else column


def _jsonable(attrs: dict) -> dict:
    """Attrs as JSON-safe values (numpy scalars/arrays to Python)."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        out[str(key)] = value
    return out
