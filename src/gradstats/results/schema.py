"""The dataset contract: how one point's record becomes a labelled xarray dataset.

A point's dataset has every sweep axis (`gradstats.spec.AXES`) and ``seed`` as length-1
dims with their values as coordinates, so the files of a sweep combine by coordinates; then
``step``, ``layer`` (1..depth+1) and any extra dims a statistic declares (``sample``,
``rank``, ...) with integer coordinates. Variables carry ``long_name``, ``units`` and
``description`` from the registry. See docs/schema.md.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import metadata

import numpy as np
import xarray as xr

from gradstats import __version__, statistics
from gradstats.spec import AXES, LAYER_DIM, SEED_DIM, STEP_DIM, Point

SCHEMA_VERSION = 2  # 2: theory inputs and per-seed predictions stored beside the measurements
POINT_DIMS = (*AXES, SEED_DIM)


def point_coords(point: Point) -> dict[str, list]:
    """Length-1 coordinates of the point on every sweep axis and ``seed``."""
    coords = {name: [value] for name, value in point.axis_values().items()}
    coords[SEED_DIM] = [point.seed]
    return coords


def record_to_dataset(record) -> xr.Dataset:
    """A `PointRecord` (from `gradstats.simulate`) as the point's dataset."""
    point: Point = record.point
    n_layers = point.arch.n_layers
    data_vars = {}
    for name, value in record.values.items():
        stat = statistics.get(name)
        value = np.asarray(value)
        dims = list(stat.dims)
        if value.ndim != len(dims):
            raise ValueError(f"{name}: value has shape {value.shape}, registry dims {stat.dims}")
        data_vars[name] = (list(POINT_DIMS) + dims,
                           value.reshape((1,) * len(POINT_DIMS) + value.shape), stat.attrs())
    coords: dict = point_coords(point)
    extra = {STEP_DIM: (STEP_DIM, np.asarray(record.steps, dtype=np.int64),
                        {"long_name": "training step", "units": "step"}),
             LAYER_DIM: (LAYER_DIM, np.arange(1, n_layers + 1, dtype=np.int64),
                         {"long_name": "layer", "units": "1",
                          "description": "dense layer 1..depth+1 (depth+1 is the readout)"})}
    sizes: dict[str, int] = {}
    for dims, value, _ in data_vars.values():
        sizes.update(zip(dims, value.shape, strict=True))
    for dim, size in sizes.items():  # step, layer; any other dim: integer coordinates 0..n-1
        if dim not in coords:
            coords[dim] = extra.get(dim, np.arange(size, dtype=np.int64))
    # one constructor call: assigning coordinates one at a time rebuilt the dataset each time
    return xr.Dataset(data_vars, coords=coords, attrs=provenance(point, device=record.device))


def failure_dataset(point: Point, error: str) -> xr.Dataset:
    """A point that raised: its coordinates, ``failed = 1`` and the error message."""
    failed = xr.DataArray(np.ones((1,) * len(POINT_DIMS)), dims=POINT_DIMS,
                          attrs={"long_name": "point failed", "units": "1"})
    ds = xr.Dataset({"failed": failed}, coords=point_coords(point))
    ds.attrs = {**provenance(point, device="none"), "status": "failed", "error": error[:2000]}
    return ds


def provenance(point: Point, device: str) -> dict[str, str | int]:
    """Attrs that say what made the file: enough to rerun the point."""
    return {
        "schema_version": SCHEMA_VERSION,
        "gradstats_version": __version__,
        "torch_version": _version("torch"),
        "jax_version": _version("jax"),
        "device": device,
        "point": point.to_json(),
        "point_key": point.key(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": "ok",
    }


def squeeze_axes(ds: xr.Dataset) -> xr.Dataset:
    """Drop length-1 sweep-axis dims to scalar coords, leaving the axes that vary as dims."""
    fixed = [d for d in AXES if d in ds.dims and ds.sizes[d] == 1]
    return ds.squeeze(fixed)


def sweep_points(ds: xr.Dataset) -> list[dict]:
    """The points recorded in a dataset's attrs (one JSON per file) - for `show`."""
    return [json.loads(p) for p in ds.attrs.get("points", [])]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
