"""Per-point files: atomic writes, unreadable files, combining by coordinates, resume."""

import numpy as np
import pytest
import xarray as xr

from gradstats.results import io
from gradstats.results.schema import record_to_dataset
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import run_sweep


def _points(**fixed):
    base = {"width": 16, "input_dim": 8, "n_train": 32, "batch_size": 8, "steps": 3,
            "record": [0, 3]}
    return expand(parse_sweep({"name": "t", "seeds": 2, "grid": {"depth": [1, 3]},
                               "fixed": {**base, **fixed}}))


def test_point_dataset_has_labelled_dims_and_provenance():
    point = _points()[0]
    ds = record_to_dataset(simulate_point(point))
    assert ds.sizes["width"] == 1 and ds.sizes["seed"] == 1
    assert list(ds["layer"].values) == [1, 2]
    assert list(ds["step"].values) == [0, 3]
    for name, var in ds.data_vars.items():
        assert var.attrs["long_name"] and "units" in var.attrs, name
    assert ds.attrs["point_key"] == point.key()
    assert "torch_version" in ds.attrs and ds.attrs["status"] == "ok"


def test_write_is_atomic_and_round_trips(tmp_path):
    point = _points()[0]
    ds = record_to_dataset(simulate_point(point))
    path = io.point_path(tmp_path, point)
    io.write_atomic(ds, path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left
    xr.testing.assert_identical(io.load_point(path), ds)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    point = _points()[0]
    ds = record_to_dataset(simulate_point(point))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", boom)
    with pytest.raises(OSError):
        io.write_atomic(ds, io.point_path(tmp_path, point))
    assert list((tmp_path / io.POINTS_DIR).iterdir()) == []


@pytest.mark.parametrize("keep", [0.1, 0.9, 0.99])
def test_truncated_file_is_not_done(tmp_path, keep):
    point = _points()[0]
    path = io.point_path(tmp_path, point)
    io.write_atomic(record_to_dataset(simulate_point(point)), path)
    assert io.is_done(tmp_path, point)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.warns(UserWarning, match="unreadable"):
        assert not io.is_done(tmp_path, point)


def test_flipped_byte_is_detected(tmp_path):
    point = _points()[0]
    path = io.point_path(tmp_path, point)
    io.write_atomic(record_to_dataset(simulate_point(point)), path)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last variable's values
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="unreadable"):
        assert io.load_point(path) is None


def test_combine_pads_layers_across_depths():
    points = _points()
    combined = io.combine([record_to_dataset(simulate_point(p)) for p in points])
    assert combined.sizes["depth"] == 2 and combined.sizes["seed"] == 2
    assert "width" not in combined.dims and combined["width"].item() == 16
    shallow = combined["grad_sq_norm"].sel(depth=1)
    assert np.all(np.isnan(shallow.sel(layer=[3, 4])))
    assert np.all(np.isfinite(shallow.sel(layer=[1, 2])))
    assert np.all(np.isfinite(combined["grad_sq_norm"].sel(depth=3)))


def test_resume_skips_finished_points(tmp_path):
    points = _points()
    first = run_sweep(points[:2], [], tmp_path, consolidate_store=False)
    assert first.computed == 2
    mtimes = {p: p.stat().st_mtime_ns for p in io.point_files(tmp_path)}
    second = run_sweep(points, [], tmp_path)
    assert (second.skipped, second.computed) == (2, len(points) - 2)
    for path, mtime in mtimes.items():
        assert path.stat().st_mtime_ns == mtime
    store = xr.open_zarr(second.store)
    assert store.sizes["seed"] == 2 and store.sizes["depth"] == 2
    assert store.attrs["n_points"] == len(points)
