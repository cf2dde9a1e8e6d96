"""Merge point datasets into one by coordinates, fast: one NaN array per variable, filled.

`merge_points(datasets)` gives what ``xr.merge(datasets, join="outer",
compat="no_conflicts", combine_attrs="drop_conflicts")`` gives for point datasets (every
dim a coordinate; each point's sweep axes and seed length-1 dims, no two points alike;
float data variables), without xarray's pairwise alignment: for 64 quickstart points it is
about 30x faster (``benchmarks/bench_point_overhead.py``). It returns None where those
conditions do not hold, and the caller merges with xarray. Tested equal to ``xr.merge``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from gradstats.spec import AXES, SEED_DIM

POINT_DIMS = (*AXES, SEED_DIM)


def merge_points(datasets: Sequence[xr.Dataset]) -> xr.Dataset | None:
    """The outer merge of point datasets (attrs dropped), or None where the fast path does
    not apply (then use ``xr.merge``)."""
    if not datasets:
        return None
    coords = _union_coords(datasets)
    if coords is None or not _distinct_points(datasets):
        return None
    positions = {dim: {_key(v): i for i, v in enumerate(values)}
                 for dim, (values, _) in coords.items()}
    data: dict[str, tuple[tuple[str, ...], np.ndarray, list[dict]]] = {}
    for ds in datasets:
        index: dict[str, slice | np.ndarray] = {}
        coord_names = set(ds.coords)
        for name, var in ds.variables.items():
            if name in coord_names:
                continue
            values = np.asarray(var.values)
            if values.dtype.kind != "f":
                return None
            if name not in data:
                shape = tuple(len(coords[d][0]) for d in var.dims)
                data[name] = (var.dims, np.full(shape, np.nan, dtype=values.dtype), [])
            dims, full, attrs = data[name]
            if var.dims != dims or values.dtype != full.dtype:
                return None
            for dim in dims:
                if dim not in index:
                    index[dim] = _positions(positions[dim], ds.variables[dim].values)
            where = tuple(index[d] for d in dims)
            if sum(isinstance(i, np.ndarray) for i in where) > 1:
                where = np.ix_(*(np.arange(len(coords[d][0]))[i] for d, i in zip(dims, where,
                                                                                  strict=True)))
            full[where] = values
            attrs.append(var.attrs)
    coord_vars = {dim: xr.Variable(dim, values, attrs) for dim, (values, attrs) in coords.items()}
    return xr.Dataset({name: xr.Variable(dims, full, _drop_conflicts(attrs))
                       for name, (dims, full, attrs) in data.items()}, coords=coord_vars)


def _positions(position: dict, values: np.ndarray) -> slice | np.ndarray:
    """Where ``values`` sit in a merged coordinate: a slice when contiguous, else indices."""
    where = np.fromiter((position[_key(v)] for v in values), dtype=np.intp, count=len(values))
    if len(where) and np.array_equal(where, np.arange(where[0], where[0] + len(where))):
        return slice(int(where[0]), int(where[0]) + len(where))
    return where


def _union_coords(datasets: Sequence[xr.Dataset]
                  ) -> dict[str, tuple[np.ndarray, dict]] | None:
    """Per dim: the union of the datasets' coordinate values (their common order when all
    agree, else sorted, like pandas' ``Index.union``) and the agreeing attrs; None when a
    dim has no coordinate or a non-dimension coordinate exists."""
    arrays: dict[str, list[np.ndarray]] = {}
    attrs: dict[str, list[dict]] = {}
    for ds in datasets:
        for name in ds.coords:
            if ds.variables[name].dims != (name,):
                return None
        for dim in ds.dims:
            if dim not in ds.coords:
                return None
            var = ds.variables[dim]
            arrays.setdefault(dim, []).append(np.asarray(var.values))
            attrs.setdefault(dim, []).append(var.attrs)
    out = {}
    for dim, values in arrays.items():
        first = values[0]
        if len(set(map(_key, first))) != len(first):
            return None  # a repeated coordinate value: xarray's alignment decides
        if all(v.shape == first.shape and v.dtype.kind == first.dtype.kind
               and np.array_equal(v, first) for v in values[1:]):
            out[dim] = (first, _drop_conflicts(attrs[dim]))
            continue
        joined = np.concatenate(values)
        if joined.dtype.kind not in "iufU" or (joined.dtype.kind == "f" and
                                              np.isnan(joined).any()):
            return None
        out[dim] = (np.unique(joined), _drop_conflicts(attrs[dim]))
    return out


def _distinct_points(datasets: Sequence[xr.Dataset]) -> bool:
    """Whether every dataset is one point (length-1 sweep axes and seed) and no two are
    the same point (overlapping cells are xarray's no_conflicts check)."""
    seen = set()
    for ds in datasets:
        if any(ds.sizes.get(dim) != 1 for dim in POINT_DIMS):
            return False
        seen.add(tuple(_key(ds.variables[dim].values[0]) for dim in POINT_DIMS))
    return len(seen) == len(datasets)


def _key(value: Any) -> Any:
    """A hashable, type-stable key of a coordinate value (numpy scalars as Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def _drop_conflicts(all_attrs: Sequence[dict]) -> dict:
    """xarray's ``combine_attrs="drop_conflicts"``: every key whose values all agree (a key
    once contradicted stays dropped)."""
    result: dict = {}
    dropped: set = set()
    for attrs in all_attrs:
        result.update({k: v for k, v in attrs.items() if k not in result and k not in dropped})
        result = {k: v for k, v in result.items() if k not in attrs or _equivalent(attrs[k], v)}
        dropped |= {k for k in attrs if k not in result}
    return result


def _equivalent(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    try:
        return bool(a == b)
    except Exception:
        return False
