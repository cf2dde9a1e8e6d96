"""The bytes of one point file: classic netCDF (64-bit offset), written and read directly.

A point file is an ordinary netCDF-3 file, exactly what ``xarray.Dataset.to_netcdf(...,
format="NETCDF3_64BIT")`` writes for a point dataset (strings as ``stringN`` char arrays with
``_Encoding = "utf-8"``, floats with ``_FillValue = NaN``), so any netCDF reader opens it.
Going through `scipy.io.netcdf_file` directly instead of xarray's backends skips the per-
variable CF encoding machinery: a quickstart point (about 70 variables, 30 dims) encodes
and decodes in a few milliseconds instead of tens (``benchmarks/bench_point_overhead.py``).

`encode` writes (name, dims, values, attrs) records and global attrs; `decode` gives them
back as stored. `gradstats.results.io` turns datasets into records (int64 as int32, a
checksum over the records) and back. Only what gradstats writes is handled: dimension
coordinates, numeric or string values; `UnsupportedFile` says when xarray must be used.
"""

from __future__ import annotations

import io as _bytes_io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.io import netcdf_file

VERSION_64BIT = 2  # netCDF classic with 64-bit offsets (NETCDF3_64BIT)
STRING_DIM = "string{}"
ENCODING_ATTR = "_Encoding"
FILL_ATTR = "_FillValue"
# netCDF-3 types this codec writes (numpy dtype -> the type stored)
NUMERIC = {np.dtype("float64"): ">f8", np.dtype("float32"): ">f4", np.dtype("int32"): ">i4",
           np.dtype("int16"): ">i2", np.dtype("int8"): ">i1"}


class UnsupportedFile(ValueError):
    """A dataset or file outside the layout this codec handles (use xarray's backends)."""


class _Buffer(_bytes_io.BytesIO):
    """A BytesIO that `netcdf_file` cannot close before its bytes are read."""

    def close(self) -> None:  # closed by `encode` once it has the bytes
        pass


Record = tuple[str, tuple[str, ...], np.ndarray, dict[str, Any]]
"""One variable: (name, dims, values, attrs)."""


def encode(variables: list[Record], attrs: Mapping[str, Any]) -> bytes:
    """The netCDF-3 bytes of ``variables`` (data variables first, then coordinates, as
    xarray writes them; numeric dtypes of `NUMERIC`, str arrays) and global ``attrs``.

    Raises `UnsupportedFile` for a dtype or attribute classic netCDF cannot hold.
    """
    buffer = _Buffer()
    out = netcdf_file(buffer, "w", version=VERSION_64BIT)
    for _, dims, values, _ in variables:
        for dim, size in zip(dims, values.shape, strict=True):
            if dim not in out.dimensions:
                out.createDimension(dim, size)
    for name, dims, values, var_attrs in variables:
        attrs_out = dict(var_attrs)
        if values.dtype.kind in "UO":
            values, width = _chars(values)
            string_dim = STRING_DIM.format(width)
            if string_dim not in out.dimensions:
                out.createDimension(string_dim, width)
            dims = (*dims, string_dim)
            attrs_out = {ENCODING_ATTR: "utf-8", **attrs_out}
        elif values.dtype in NUMERIC:
            values = values.astype(NUMERIC[values.dtype], copy=False)
            if values.dtype.kind == "f":
                attrs_out = {FILL_ATTR: values.dtype.type(math.nan), **attrs_out}
        else:
            raise UnsupportedFile(f"{name}: dtype {values.dtype} has no netCDF-3 type")
        created = out.createVariable(name, values.dtype, dims)
        for key, value in attrs_out.items():
            setattr(created, key, _attr_out(key, value))
        if values.size:
            created[...] = values
    for key, value in attrs.items():
        setattr(out, key, _attr_out(key, value))
    out.flush()
    data = buffer.getvalue()
    _bytes_io.BytesIO.close(buffer)  # closed for real now: the writer's close does nothing
    return data


def is_classic(data: bytes) -> bool:
    """Whether ``data`` starts like a classic netCDF file (what `decode` reads)."""
    return data[:3] == b"CDF" and data[3:4] in (b"\x01", b"\x02")


def decode(data: bytes) -> tuple[list[Record], dict[str, Any]]:
    """The variables and global attrs in point-file bytes: numeric values in native byte
    order, strings as str arrays (their ``stringN`` dim dropped), float ``_FillValue``
    cells as NaN, attrs as str or numpy scalars (as xarray's netCDF4 reader gives them).
    Raises on a damaged file; `UnsupportedFile` for what this reader does not handle."""
    nc = netcdf_file(_bytes_io.BytesIO(data), "r", mmap=False, maskandscale=False)
    try:
        variables = []
        for name, var in nc.variables.items():
            attrs = {k: _attr_in(v) for k, v in var._attributes.items()}
            dims = tuple(var.dimensions)
            values = var.data
            if values.dtype.kind == "S":
                if attrs.pop(ENCODING_ATTR, "utf-8") != "utf-8" or not dims:
                    raise UnsupportedFile(f"{name}: not a utf-8 string variable")
                values = _strings(values)
                dims = dims[:-1]
            else:
                values = values.astype(values.dtype.newbyteorder("="), copy=False)
                fill = attrs.pop(FILL_ATTR, None)
                if fill is not None:
                    if values.dtype.kind != "f":
                        raise UnsupportedFile(f"{name}: integer fill value")
                    if not math.isnan(float(fill)):
                        values = np.where(values == fill, np.nan, values)
            if values.shape != tuple(nc.dimensions[d] for d in dims):
                raise ValueError(f"{name}: {values.shape} values for dims {dims}")
            variables.append((name, dims, values, attrs))
        global_attrs = {k: _attr_in(v) for k, v in nc._attributes.items()}
    finally:
        nc.close()
    return variables, global_attrs


def _chars(values: np.ndarray) -> tuple[np.ndarray, int]:
    """A str array as netCDF chars: shape + (width,), dtype S1 (UTF-8 bytes)."""
    encoded = np.char.encode(values.astype(str), "utf-8")
    width = max(1, encoded.dtype.itemsize)
    return encoded.astype(f"S{width}").reshape(values.shape + (1,)).view("S1").reshape(
        values.shape + (width,)), width


def _strings(chars: np.ndarray) -> np.ndarray:
    """netCDF chars (..., width) S1 as a str array of the leading shape."""
    width = chars.shape[-1]
    joined = np.ascontiguousarray(chars).view(f"S{width}").reshape(chars.shape[:-1])
    return np.char.decode(joined, "utf-8")


def _attr_out(key: str, value: Any) -> Any:
    """An attribute value netCDF-3 can hold (int64 scalars as int32, like xarray)."""
    if isinstance(value, (bool, np.bool_)):
        return np.int8(value)
    if isinstance(value, (int, np.integer)):
        if not np.iinfo(np.int32).min <= int(value) <= np.iinfo(np.int32).max:
            raise UnsupportedFile(f"attribute {key}: {value} does not fit int32")
        return np.int32(value)
    if isinstance(value, (float, np.floating)):
        return np.float64(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise UnsupportedFile(f"attribute {key}: {type(value).__name__} values are not stored")


def _attr_in(value: Any) -> Any:
    """An attribute as xarray's netCDF4 reader returns it: str for text, numpy scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return value.tobytes().decode("utf-8")
        value = value.astype(value.dtype.newbyteorder("="))
        return value[0] if value.size == 1 else value
    return value
