"""Per-point files on disk: atomic writes, loading with validation, combining a sweep.

Layout of a results directory::

    DIR/sweep.json        the sweep as run (name, measure, points' keys)
    DIR/points/KEY.nc     one netCDF file per finished point (KEY = Point.key())
    DIR/sweep.zarr        the consolidated dataset (rebuildable from points/ at any time)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import xarray as xr

from gradstats.results.schema import squeeze_axes
from gradstats.spec import Point

POINTS_DIR = "points"
CONSOLIDATED = "sweep.zarr"
NETCDF_ENGINE = "netcdf4"


def point_path(out_dir: Path, point: Point) -> Path:
    """Where ``point``'s file lives under ``out_dir``."""
    return Path(out_dir) / POINTS_DIR / f"{point.key()}.nc"


def write_atomic(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` as netCDF: temp file in the same dir, fsync, rename.

    A reader never sees a partial file; a crash leaves at most a stray ``.tmp`` file.
    """
    _replace_atomically(Path(path), lambda tmp: ds.to_netcdf(tmp, engine=NETCDF_ENGINE))


def encode(ds: xr.Dataset) -> bytes:
    """The bytes of ``ds``'s netCDF file, exactly as `write_atomic` would write them.

    Lets a worker do the (slow) netCDF encoding while the driver only writes bytes.
    """
    fd, tmp = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine=NETCDF_ENGINE)
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write an encoded point file (see `encode`) to ``path`` like `write_atomic`."""
    _replace_atomically(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def _replace_atomically(path: Path, write) -> None:
    """``write(tmp)`` into a temp file next to ``path``, fsync it, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_point(path: Path) -> xr.Dataset | None:
    """The point file's dataset fully loaded, or None (with a warning) if it is unreadable."""
    try:
        with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
            return ds.load()
    except FileNotFoundError:
        return None
    except Exception as err:  # truncated or corrupt file: recompute it
        warnings.warn(f"unreadable point file {path.name} ({type(err).__name__}); "
                      "it will be recomputed", stacklevel=2)
        return None


def is_done(out_dir: Path, point: Point) -> bool:
    """A point is done when its file exists, loads, and did not record a failure."""
    path = point_path(out_dir, point)
    if not path.exists():
        return False
    ds = load_point(path)
    return ds is not None and ds.attrs.get("status") == "ok"


def point_files(out_dir: Path) -> list[Path]:
    """Every point file under ``out_dir`` (sorted by key)."""
    return sorted((Path(out_dir) / POINTS_DIR).glob("*.nc"))


def combine(datasets: list[xr.Dataset], squeeze: bool = True) -> xr.Dataset:
    """One dataset from point datasets: outer join on coordinates, NaN where absent.

    Failed points contribute their ``failed`` flag; layers pad with NaN across depths.
    With ``squeeze`` the sweep axes that do not vary become scalar coordinates.
    """
    if not datasets:
        raise ValueError("no point datasets to combine")
    points = [ds.attrs.get("point", "") for ds in datasets]
    errors = [f"{ds.attrs.get('point_key')}: {ds.attrs['error']}"
              for ds in datasets if ds.attrs.get("status") == "failed"]
    stripped = [ds.drop_attrs(deep=False) for ds in datasets]
    combined = xr.merge(stripped, join="outer", compat="no_conflicts",
                        combine_attrs="drop_conflicts")
    first = datasets[0].attrs
    combined.attrs = {k: first[k] for k in ("schema_version", "gradstats_version",
                                            "torch_version", "jax_version") if k in first}
    combined.attrs["n_points"] = len(datasets)
    combined.attrs["points"] = points
    if errors:
        combined.attrs["errors"] = errors
    return squeeze_axes(combined) if squeeze else combined


def load_results(path: Path, squeeze: bool = True) -> xr.Dataset:
    """A sweep's dataset from a results directory (its point files), a .zarr or a .nc file."""
    path = Path(path)
    if path.is_dir() and (path / POINTS_DIR).is_dir():
        datasets = [ds for ds in map(load_point, point_files(path)) if ds is not None]
        if not datasets:
            raise FileNotFoundError(f"no readable point files under {path / POINTS_DIR}")
        return combine(datasets, squeeze=squeeze)
    if path.suffix == ".zarr":
        return xr.open_zarr(path).load()
    if path.suffix == ".nc":
        return xr.load_dataset(path)
    raise FileNotFoundError(f"{path} is not a results directory, .zarr store or .nc file")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def to_zarr(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` as a Zarr store, chunked by whole points (one chunk along step/layer)."""
    chunks = {dim: 1 if dim not in ("step", "layer") and size > 64 else size
              for dim, size in ds.sizes.items()}
    ds.chunk(chunks).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
