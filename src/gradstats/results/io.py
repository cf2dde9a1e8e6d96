"""Per-point files on disk: atomic writes, loading with validation, combining a sweep.

Layout of a results directory::

    DIR/sweep.json        the sweep as run (name, measure, points' keys)
    DIR/points/KEY.nc     one netCDF file per finished point (KEY = Point.key())
    DIR/sweep.zarr        the consolidated dataset (rebuildable from points/ at any time)

Files are created with the process's umask (like any other program's files). A point file
counts only when its checksum holds and the key stored in it is the key in its name; a Zarr
store written here lists its files with sizes and digests (`verify_store`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from gradstats.errors import InputError
from gradstats.results import pointfile
from gradstats.results.merge import merge_points
from gradstats.results.schema import squeeze_axes
from gradstats.spec import AXES, SEED_DIM, Point

POINTS_DIR = "points"
CONSOLIDATED = "sweep.zarr"
NETCDF_ENGINE = "netcdf4"
# Point files use the classic 64-bit-offset format, written and read directly (`pointfile`,
# a few ms per quickstart point; through xarray's backends it was 30-80 ms). Classic netCDF
# has no int64, so integer values are stored as int32 and restored to int64 on load; a
# checksum attr detects truncated or corrupt files (a truncated classic file can otherwise
# load without error).
POINT_FORMAT = "NETCDF3_64BIT"
CHECKSUM_ATTR = "content_sha256"
# A file inside every Zarr store written by `to_zarr`: each file's size and SHA-256.
STORE_LISTING = ".gradstats-files"
# Files of ours inside a store (not part of the listing).
STORE_META_PREFIX = ".gradstats-"
# Zarr chunks hold whole points and are kept to about this many bytes.
CHUNK_TARGET_BYTES = 8 * 2**20


class ResultsError(InputError):
    """A results file or directory that cannot be read as one (damaged, wrong kind)."""


def point_path(out_dir: Path, point: Point) -> Path:
    """Where ``point``'s file lives under ``out_dir``."""
    return Path(out_dir) / POINTS_DIR / f"{point.key()}.nc"


def write_atomic(ds: xr.Dataset, path: Path) -> None:
    """Write ``ds`` to ``path`` as netCDF: temp file in the same dir, fsync, rename.

    A reader never sees a partial file; a crash leaves at most a stray ``.tmp`` file.
    """
    write_bytes_atomic(encode(ds), path)


def encode(ds: xr.Dataset) -> bytes:
    """The bytes of ``ds``'s point file, exactly as `write_atomic` writes them (a few ms:
    `pointfile`), so a worker can encode while the driver only writes bytes."""
    records = _records(ds)
    attrs = {**ds.attrs, CHECKSUM_ATTR: _digest(records)}
    try:
        return pointfile.encode(records, attrs)
    except pointfile.UnsupportedFile:  # e.g. a list-valued attr: xarray's writer takes it
        return _xarray_bytes(records, attrs)


def _xarray_bytes(records: list[pointfile.Record], attrs: dict) -> bytes:
    """The same file through xarray's netCDF writer (slower; for what `pointfile` lacks)."""
    fd, tmp = tempfile.mkstemp(suffix=".nc")
    os.close(fd)
    try:
        _dataset(records, attrs, restore=False).to_netcdf(tmp, engine=NETCDF_ENGINE,
                                                          format=POINT_FORMAT)
        return Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write an encoded point file (see `encode`) to ``path`` like `write_atomic`."""
    _replace_atomically(Path(path), lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(text: str, path: Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` like `write_atomic`."""
    _replace_atomically(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def replace_with(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` to a temp file next to ``path``, then rename it over ``path``: readers
    see the old file or the whole new one, and a failed write leaves nothing behind."""
    _replace_atomically(Path(path), write)


def replace_dir_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` into a temp directory next to ``path``, then swap it in by renames:
    readers see the old directory or the whole new one; a failure leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = Path(f"{tmp}.old")
    try:
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700; directories follow the umask
        try:
            write(tmp)
        except OSError as err:
            if err.filename is None:  # zarr's writes (disk full) name no file: name the store
                raise OSError(err.errno, err.strerror or str(err), str(path)) from err
            raise
        moved = path.exists()
        if moved:
            path.rename(old)
        try:
            tmp.rename(path)
        except BaseException:
            if moved:
                old.rename(path)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace_atomically(path: Path, write: Callable[[str], object]) -> None:
    """``write(tmp)`` into a temp file next to ``path``, fsync it, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; files follow the umask
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None:  # a failed write() names no file: name the one we wrote
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_point(path: Path, expected_key: str | None = None) -> xr.Dataset | None:
    """The point file's dataset fully loaded, or None (with a warning) if it is unreadable
    or, given ``expected_key``, holds another point (e.g. a file copied over another's)."""
    ds, problem = read_point(path, expected_key)
    if problem is not None:
        # read by show/export/compare/plot (a run has recomputed its bad files by then)
        warnings.warn(f"point file {Path(path).name} {problem}; it is left out (rerunning the "
                      "sweep recomputes it)", stacklevel=2)
    return ds


def read_point(path: Path, expected_key: str | None = None) -> tuple[xr.Dataset | None, str | None]:
    """(dataset, None) for a good point file, (None, problem) otherwise, the problem a phrase
    ("is unreadable (...)", "holds point ..."); (None, None) when the file does not exist."""
    records, attrs, problem = _checked(path, expected_key)
    if records is None:
        return None, problem
    try:
        return _dataset(records, attrs), None
    except Exception as err:
        return None, f"is unreadable ({type(err).__name__})"


def _checked(path: Path, expected_key: str | None
             ) -> tuple[list[pointfile.Record] | None, dict, str | None]:
    """A point file's (records, attrs, None) when its checksum and key hold, else
    (None, {}, problem); (None, {}, None) when it does not exist."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, {}, None
    except OSError as err:
        return None, {}, f"is unreadable ({type(err).__name__})"
    try:
        records, attrs = _decode(path, data)
    except Exception as err:  # truncated or corrupt file: recompute it
        return None, {}, f"is unreadable ({type(err).__name__})"
    expected = attrs.pop(CHECKSUM_ATTR, None)
    try:
        intact = expected is not None and expected == _digest(records)
    except Exception:  # values that cannot be digested are as bad as a wrong digest
        intact = False
    if not intact:
        return None, {}, "is unreadable (checksum mismatch)"
    stored = attrs.get("point_key")
    if expected_key is not None and stored != expected_key:
        return None, {}, f"holds point {stored}, not {expected_key} (a copied or renamed file)"
    return records, attrs, None


def _decode(path: Path, data: bytes) -> tuple[list[pointfile.Record], dict]:
    """A point file's records and attrs: classic netCDF read directly (`pointfile`), any
    other netCDF (files of older versions) through xarray."""
    if pointfile.is_classic(data):
        try:
            return pointfile.decode(data)
        except pointfile.UnsupportedFile:
            pass
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as ds:
        ds = ds.load()
    records = [(str(name), tuple(var.dims), np.asarray(var.values), dict(var.attrs))
               for name, var in ds.variables.items()]
    return records, dict(ds.attrs)


def content_digest(ds: xr.Dataset) -> str:
    """SHA-256 over every variable's name, dims and values (attrs other than values
    excluded), as stored: integers as the file's int32 (the checksum attr of a point file)."""
    return _digest(_records(ds))


def _digest(records: list[pointfile.Record]) -> str:
    """SHA-256 over each record's name, dims and values, sorted by name."""
    digest = hashlib.sha256()
    for name, dims, values, _ in sorted(records, key=lambda r: r[0]):
        numeric = values.dtype.kind in "iuf"
        digest.update(f"{name}|{dims}|{values.dtype.kind if numeric else 's'}".encode())
        if numeric:
            digest.update(np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<"))).tobytes())
        else:
            digest.update(repr(values.tolist()).encode())
    return digest.hexdigest()


def _records(ds: xr.Dataset) -> list[pointfile.Record]:
    """``ds``'s variables as stored in a point file: data variables, then coordinates;
    int64 as int32 (a ValueError naming the variable if a value does not fit)."""
    records = []
    for name in [*ds.data_vars, *ds.coords]:
        var = ds.variables[name]
        if name in ds.coords and var.dims != (name,):
            raise ValueError(f"{name}: a point file holds dimension coordinates only")
        values = np.asarray(var.values)
        if values.dtype == np.int64:
            if values.size and (values.max() > np.iinfo(np.int32).max
                                or values.min() < np.iinfo(np.int32).min):
                raise ValueError(f"{name}: integer values do not fit the point-file format")
            values = values.astype(np.int32)
        elif values.dtype == object:
            values = values.astype(str)
        records.append((str(name), tuple(map(str, var.dims)), values, dict(var.attrs)))
    return records


def _dataset(records: list[pointfile.Record], attrs: dict, restore: bool = True) -> xr.Dataset:
    """The point dataset of stored records: (with ``restore``) int32 back to int64, strings
    as str arrays; variables named like their one dim are coordinates."""
    coords, data_vars = {}, {}
    for name, dims, values, var_attrs in records:
        if not restore:
            pass
        elif values.dtype == np.int32:
            values = values.astype(np.int64)
        elif values.dtype == object:
            values = values.astype(str)
        target = coords if dims == (name,) else data_vars
        target[name] = xr.Variable(dims, values, var_attrs)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def is_done(out_dir: Path, point: Point) -> bool:
    """A point is done when its file exists, is intact (checksum, key), and did not record
    a failure (checked without building its dataset)."""
    path = point_path(out_dir, point)
    if not path.exists():
        return False
    records, attrs, problem = _checked(path, point.key())
    if problem is not None:
        warnings.warn(f"point file {path.name} {problem}; it will be recomputed", stacklevel=2)
    return records is not None and attrs.get("status") == "ok"


def point_files(out_dir: Path) -> list[Path]:
    """Every point file under ``out_dir`` (sorted by key)."""
    return sorted((Path(out_dir) / POINTS_DIR).glob("*.nc"))


def newer_than_points(stored: Path, out_dir: Path) -> bool:
    """Whether the file ``stored`` exists and was written after every point file under
    ``out_dir`` (e.g. a comparison that is still current)."""
    stored = Path(stored)
    if not stored.is_file():
        return False
    newest = max((f.stat().st_mtime for f in point_files(out_dir)), default=0.0)
    return stored.stat().st_mtime >= newest


def load_point_files(out_dir: Path) -> list[xr.Dataset]:
    """Every good point file under ``out_dir`` (bad ones are skipped with a warning).

    Files already read by this process and unchanged since (same size and modification
    time) are not read again: a run's consolidation, its results table and its comparison
    read each point file once. The datasets are shared: do not modify them in place.
    """
    key = str(Path(out_dir).resolve())
    known = _DECODED.pop(key, {})
    fresh: dict[str, tuple[tuple[int, int], xr.Dataset]] = {}
    for path in point_files(out_dir):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            continue
        signature = (stat.st_size, stat.st_mtime_ns)
        hit = known.get(path.name)
        ds = hit[1] if hit is not None and hit[0] == signature else \
            load_point(path, expected_key=path.stem)
        if ds is not None:
            fresh[path.name] = (signature, ds)
    _DECODED[key] = fresh
    while len(_DECODED) > DECODED_DIRS:  # the directories read last
        _DECODED.pop(next(iter(_DECODED)))
    return [ds for _, ds in fresh.values()]


# Decoded point files of the directories read last: {dir: {file name: ((size, mtime), ds)}}.
_DECODED: dict[str, dict[str, tuple[tuple[int, int], xr.Dataset]]] = {}
DECODED_DIRS = 4


def combine(datasets: list[xr.Dataset], squeeze: bool = True, command: str | None = None
            ) -> xr.Dataset:
    """One dataset from point datasets: outer join on coordinates, NaN where absent.

    Failed points contribute their ``failed`` flag; layers pad with NaN across depths.
    With ``squeeze`` the sweep axes that do not vary become scalar coordinates. Attrs say
    when it was combined (``created``), by which ``command`` (when given) and on which
    devices the points ran (``device_used``: the ``device`` coordinate is what the sweep
    asked for, e.g. ``auto``).
    """
    if not datasets:
        raise ValueError("no point datasets to combine")
    points = [ds.attrs.get("point", "") for ds in datasets]
    errors = [f"{ds.attrs.get('point_key')}: {ds.attrs['error']}"
              for ds in datasets if ds.attrs.get("status") == "failed"]
    combined = merge_points(datasets)  # one array per variable, filled: fast, small
    if combined is None:  # not plain point datasets: xarray's merge, in a tree
        stripped = [ds.drop_attrs(deep=False) for ds in datasets]
        combined = _tree_merge(sorted(stripped, key=_coord_key))
    else:
        combined = combined.transpose(*[d for d in AXES if d in combined.dims], ...)
    first = datasets[0].attrs
    combined.attrs = {k: first[k] for k in ("schema_version", "gradstats_version",
                                            "torch_version", "jax_version") if k in first}
    combined.attrs["n_points"] = len(datasets)
    combined.attrs["points"] = points
    combined.attrs["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if command:
        combined.attrs["command"] = command
    used = sorted({str(ds.attrs["device"]) for ds in datasets
                   if ds.attrs.get("status") == "ok" and "device" in ds.attrs})
    combined.attrs["device_used"] = ", ".join(used) or "none"
    if errors:
        combined.attrs["errors"] = errors
    theory_notes = [f"{ds.attrs.get('point_key')}: {ds.attrs['theory_notes']}"
                    for ds in datasets if ds.attrs.get("theory_notes")]
    if theory_notes:  # predictions that failed on the worker (compare reports them)
        combined.attrs["theory_notes"] = theory_notes
    return squeeze_axes(combined) if squeeze else combined


def _coord_key(ds: xr.Dataset) -> tuple:
    """Sort key of a point dataset: its sweep-axis values, then its seed (neighbours in this
    order share most coordinates, so their merges stay small)."""
    return tuple(str(ds[d].values.tolist()) for d in (*AXES, SEED_DIM) if d in ds.coords)


MERGE_GROUP = 64  # points merged at once: neighbours in `_coord_key` order


def _tree_merge(datasets: list[xr.Dataset]) -> xr.Dataset:
    """``xr.merge`` (outer join, no conflicts) of ``datasets`` in groups of MERGE_GROUP
    neighbours, then pairwise in a balanced tree: one merge of all aligns every point to the
    whole sweep's grid at once (memory ~ points x grid; above 13 GB, unfinished, for the
    1792-point validity preset), the tree holds a few grids at a time. Same result: the outer
    merge is associative."""
    def merge(group: list[xr.Dataset]) -> xr.Dataset:
        return xr.merge(group, join="outer", compat="no_conflicts",
                        combine_attrs="drop_conflicts")

    datasets = [merge(datasets[i:i + MERGE_GROUP])
                for i in range(0, len(datasets), MERGE_GROUP)]
    while len(datasets) > 1:
        datasets = [merge(datasets[i:i + 2]) for i in range(0, len(datasets), 2)]
    merged = datasets[0]
    return merged.transpose(*[d for d in AXES if d in merged.dims], ...)


def load_results(path: Path | str, squeeze: bool = True, *, lazy: bool = True) -> xr.Dataset:
    """A sweep's dataset from a results directory, a .zarr store or a .nc file.

    Dims: the sweep axes that vary, ``seed``, ``step``, ``layer``, ... (docs/schema.md); the
    axes that do not vary are scalar coordinates (``squeeze=False`` keeps them as length-1
    dims).

    A results directory is read from its consolidated ``sweep.zarr`` when that store was
    built from exactly the current point files (the same dataset as combining them, 8-29x
    faster than decoding them: `benchmarks/RESULTS_load.md`), else its point files are
    combined in memory (``squeeze=False`` always combines). ``lazy`` (default): variables are
    dask arrays, read from disk when computed (``.load()``, ``.compute()``, ``.values``, a
    plot); ``lazy=False``: everything in memory as numpy arrays.

    Raises FileNotFoundError when there is nothing there, `ResultsError` (one line naming
    the path) when it cannot be read.
    """
    if isinstance(path, xr.Dataset):
        raise ResultsError("load_results takes a path; this is already a dataset")
    if not isinstance(path, str | os.PathLike):
        raise ResultsError(f"load_results takes a results path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir() and (path / POINTS_DIR).is_dir():
        if squeeze and _store_is_current(path):
            return open_store(path / CONSOLIDATED, lazy=lazy)
        datasets = load_point_files(path)
        if not datasets:
            raise FileNotFoundError(f"no readable point files under {path / POINTS_DIR}")
        combined = combine(datasets, squeeze=squeeze, command=_manifest_command(path))
        return combined.chunk() if lazy else combined
    if path.suffix == ".zarr" and path.is_dir():
        return open_store(path, lazy=lazy)
    if path.suffix == ".nc" and path.is_file():
        try:
            ds = xr.open_dataset(path, chunks={}) if lazy else xr.load_dataset(path)
        except Exception as err:
            raise ResultsError(f"{path}: cannot read it as netCDF ({type(err).__name__}: "
                               f"{err})") from None
        if not ds.data_vars:  # some readers take a damaged file for an empty one
            raise ResultsError(f"{path}: no data variables in it; not a results file")
        if is_comparison(ds):
            raise ResultsError(f"{path} is a comparison (what gradstats compare writes), not "
                               f"results; pass the results directory it was made from"
                               f"{' (' + str(path.parent) + ')' if path.parent.name else ''}")
        return ds
    raise ResultsError(f"{path} is not a results directory (with {POINTS_DIR}/), a .zarr store "
                       "or a .nc file")


def is_comparison(ds: xr.Dataset) -> bool:
    """Whether ``ds`` is a comparison dataset (`gradstats.results.compare.compare`'s: verdict
    variables, a test level, no seeds) rather than a sweep's results."""
    return ("level" in ds.attrs and "seed" not in ds.dims
            and any(str(name).endswith("_verdict") for name in ds.data_vars))


def _store_is_current(out_dir: Path) -> bool:
    """Whether ``DIR/sweep.zarr`` holds exactly the current point files (`store_is_current`)."""
    from gradstats.sweeps.execute import store_is_current

    return store_is_current(out_dir)


def open_store(path: Path, lazy: bool = False) -> xr.Dataset:
    """A Zarr store (dask-backed with ``lazy``, else fully loaded); `ResultsError` if it is
    damaged or unreadable (checked before anything is returned)."""
    path = Path(path)
    problems = verify_store(path)
    if problems:
        remedy = (f"rerun its sweep into {path.parent} to rebuild it from the point files, or "
                  f"read {path.parent} itself" if path.name == CONSOLIDATED else
                  "export it again")
        more = f" and {len(problems) - 1} more problems" if len(problems) > 1 else ""
        raise ResultsError(f"{path}: damaged Zarr store ({problems[0]}{more}); {remedy}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr's notes on consolidated metadata
            ds = xr.open_zarr(path)
            return ds if lazy else ds.load()
    except Exception as err:
        raise ResultsError(f"{path}: cannot read it as a Zarr store ({type(err).__name__}: "
                           f"{err})") from None


def _manifest_command(out_dir: Path) -> str | None:
    """The command recorded in ``DIR/sweep.json`` (None if absent or unreadable)."""
    try:
        return json.loads((Path(out_dir) / "sweep.json").read_text()).get("command")
    except (OSError, ValueError, AttributeError):
        return None


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
    """Write ``ds`` as a Zarr store (`zarr_chunks`), then its file listing (`verify_store`)."""
    ds.chunk(zarr_chunks(ds)).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    listing = {name: list(entry) for name, entry in _store_files(Path(path), digest=True).items()}
    (Path(path) / STORE_LISTING).write_text(json.dumps(listing, sort_keys=True))


def zarr_chunks(ds: xr.Dataset, target_bytes: int = CHUNK_TARGET_BYTES) -> dict[str, int]:
    """Chunk sizes per dim: a point's own dims (step, layer, sample, rank, ...) whole; the
    sweep axes and seed whole while a chunk of the largest variable stays under
    ``target_bytes``, then one value per chunk (a chunk then holds whole points)."""
    point_dims = {*AXES, SEED_DIM}
    chunks = {dim: size for dim, size in ds.sizes.items() if dim not in point_dims}
    per_point = max((math.prod(chunks.get(d, 1) for d in var.dims if d not in point_dims)
                     * var.dtype.itemsize for var in ds.data_vars.values()), default=1)
    room = max(1, target_bytes // max(per_point, 1))
    for dim in [d for d in ds.dims if d in point_dims]:
        size = ds.sizes[dim]
        chunks[dim] = size if size <= room else max(1, room)
        room = max(1, room // size) if size <= room else 1
    return chunks


def verify_store(path: Path, content: bool = False) -> list[str]:
    """Problems of a Zarr store written by `to_zarr`: files missing, added or resized
    (with ``content``, also changed bytes). A store without a listing has none to check."""
    path = Path(path)
    try:
        listing = json.loads((path / STORE_LISTING).read_text())
    except FileNotFoundError:
        return _missing_arrays(path)
    except (OSError, ValueError) as err:
        return [f"{STORE_LISTING} is unreadable ({type(err).__name__})"]
    found = _store_files(path, digest=content)
    problems = [f"{name} is missing" for name in sorted(set(listing) - set(found))]
    problems += [f"{name} is not part of the store as written" for name in sorted(set(found) - set(listing))]
    for name in sorted(set(listing) & set(found)):
        size, digest = listing[name]
        if found[name][0] != size:
            problems.append(f"{name} has {found[name][0]} bytes, {size} were written")
        elif content and found[name][1] != digest:
            problems.append(f"{name} has changed since it was written")
    return problems


def _missing_arrays(path: Path) -> list[str]:
    """For a store without a listing: arrays its consolidated metadata names whose own
    metadata file is gone (a removed variable would otherwise read back as all fill value)."""
    try:
        names = json.loads((path / ".zmetadata").read_text())["metadata"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [f"{name} is missing" for name in sorted(names)
            if name.endswith("/.zarray") and not (path / name).is_file()]


def _store_files(path: Path, digest: bool) -> dict[str, tuple[int, str]]:
    """{relative name: (size, sha256 or "")} of every file in a store but ours."""
    files = {}
    for root, _, names in os.walk(path):
        for name in names:
            full = Path(root) / name
            rel = full.relative_to(path).as_posix()
            if rel.startswith(STORE_META_PREFIX):
                continue
            sha = hashlib.sha256(full.read_bytes()).hexdigest() if digest else ""
            files[rel] = (full.stat().st_size, sha)
    return files
