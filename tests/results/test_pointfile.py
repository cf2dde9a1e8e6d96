"""The direct point-file codec and the fast merge agree with xarray's own writer, reader
and ``xr.merge`` (the slow, obvious paths), on synthetic point datasets (no simulation)."""

import numpy as np
import pytest
import xarray as xr

from gradstats.results import io, pointfile
from gradstats.results.merge import merge_points
from gradstats.results.schema import POINT_DIMS, failure_dataset, point_coords, provenance
from gradstats.spec import LAYER_DIM, STEP_DIM
from gradstats.sweeps import expand, parse_sweep


def _points():
    return expand(parse_sweep({"name": "t", "seeds": 2,
                               "grid": {"depth": [1, 3], "activation": ["relu", "tanh"]},
                               "fixed": {"width": 16, "input_dim": 8, "n_train": 32,
                                         "batch_size": 8, "steps": 3, "record": [0, 3]}}))


def _dataset(point, seed_value=0.0, units="1") -> xr.Dataset:
    """A point dataset shaped like `record_to_dataset`'s: length-1 sweep dims, step, layer."""
    rng = np.random.default_rng(point.seed + 10 * point.arch.depth)
    n_layers = point.arch.n_layers
    ones = (1,) * len(POINT_DIMS)
    ds = xr.Dataset(
        {"grad_sq_norm": (list(POINT_DIMS) + [STEP_DIM, LAYER_DIM],
                          rng.normal(size=ones + (2, n_layers)) + seed_value,
                          {"long_name": "squared norm", "units": units}),
         "diverged": (list(POINT_DIMS), np.zeros(ones), {"long_name": "diverged", "units": "1"})},
        coords=point_coords(point))
    ds = ds.assign_coords({STEP_DIM: np.array([0, 3], dtype=np.int64),
                           LAYER_DIM: np.arange(1, n_layers + 1, dtype=np.int64)})
    ds[STEP_DIM].attrs = {"long_name": "training step", "units": "step"}
    ds.attrs = provenance(point, device="cpu")
    return ds


def test_xarray_reads_our_bytes_as_it_reads_its_own(tmp_path):
    ds = _dataset(_points()[0])
    ours = tmp_path / "ours.nc"
    ours.write_bytes(io.encode(ds))
    theirs = tmp_path / "theirs.nc"
    as_int32 = ds.assign_coords({n: ds[n].astype(np.int32) for n in ds.coords
                                 if ds[n].dtype == np.int64})
    as_int32.to_netcdf(theirs, engine="netcdf4", format=io.POINT_FORMAT)
    mine = xr.load_dataset(ours, engine="netcdf4")
    assert len(mine.attrs.pop(io.CHECKSUM_ATTR)) == 64
    xr.testing.assert_identical(mine, xr.load_dataset(theirs, engine="netcdf4"))


def test_files_of_the_xarray_writer_still_load_and_pass_their_checksum(tmp_path):
    """Point files written before this codec (xarray's netcdf4 engine) resume unchanged."""
    ds = _dataset(_points()[1])
    as_int32 = ds.assign_coords({n: ds[n].astype(np.int32) for n in ds.coords
                                 if ds[n].dtype == np.int64})
    as_int32.attrs[io.CHECKSUM_ATTR] = io.content_digest(ds)
    path = tmp_path / "old.nc"
    as_int32.to_netcdf(path, engine="netcdf4", format=io.POINT_FORMAT)
    loaded, problem = io.read_point(path, expected_key=ds.attrs["point_key"])
    assert problem is None
    xr.testing.assert_identical(loaded, ds)


def test_round_trip_keeps_strings_ints_and_nan():
    ds = _dataset(_points()[2])
    ds["grad_sq_norm"][..., 0, 0] = np.nan
    records, attrs = pointfile.decode(io.encode(ds))
    names = {r[0]: r for r in records}
    assert names["activation"][2].tolist() == [ds["activation"].item()]
    assert names["width"][2].dtype == np.int32
    assert np.isnan(names["grad_sq_norm"][2][..., 0, 0]).all()
    assert attrs["point_key"] == ds.attrs["point_key"]


def test_an_integer_too_large_for_the_file_names_the_variable():
    ds = _dataset(_points()[0]).assign_coords(step=np.array([0, 2**40]))
    with pytest.raises(ValueError, match="step"):
        io.encode(ds)


def _xr_merge(datasets):
    return xr.merge([d.drop_attrs(deep=False) for d in datasets], join="outer",
                    compat="no_conflicts", combine_attrs="drop_conflicts")


def test_fast_merge_equals_xr_merge_across_depths_activations_and_failures():
    points = _points()
    datasets = [_dataset(p) for p in points[:-1]] + [failure_dataset(points[-1], "boom")]
    datasets[1] = datasets[1].drop_vars("diverged")  # a variable some points lack
    datasets[2]["grad_sq_norm"].attrs["units"] = "other"  # a conflicting attr is dropped
    fast = merge_points(datasets)
    assert fast is not None
    xr.testing.assert_identical(fast, _xr_merge(datasets))
    assert "units" not in fast["grad_sq_norm"].attrs
    assert np.isnan(fast["grad_sq_norm"].sel(depth=1, layer=[3, 4])).all()


def test_fast_merge_declines_duplicate_points_and_combine_falls_back():
    point = _points()[0]
    same = [_dataset(point), _dataset(point)]
    assert merge_points(same) is None
    xr.testing.assert_identical(io.combine(same, squeeze=False).drop_attrs(deep=False),
                                _xr_merge(same))
    with pytest.raises(xr.MergeError):  # conflicting values of one point: xarray's verdict
        io.combine([_dataset(point), _dataset(point, seed_value=1.0)])


def test_an_attr_the_direct_writer_lacks_goes_through_xarray_and_still_loads(tmp_path):
    ds = _dataset(_points()[3])
    ds.attrs["levels"] = [1, 2, 3]  # a list attr: classic netCDF holds it, our writer does not
    path = tmp_path / "p.nc"
    path.write_bytes(io.encode(ds))
    loaded, problem = io.read_point(path)
    assert problem is None
    assert list(loaded.attrs["levels"]) == [1, 2, 3]
    xr.testing.assert_identical(loaded.drop_attrs(deep=False), ds.drop_attrs(deep=False))
