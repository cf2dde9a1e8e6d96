"""Per-point files: atomic writes, unreadable files, combining by coordinates, resume."""

import shutil

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

    monkeypatch.setattr(io.pointfile, "encode", boom)
    with pytest.raises(OSError):
        io.write_atomic(ds, io.point_path(tmp_path, point))
    assert not list((tmp_path / io.POINTS_DIR).glob("*"))  # no file, not even a temp one


def _content_end(data: bytes) -> int:
    """One past the last nonzero byte."""
    return max(i for i, b in enumerate(data) if b) + 1


@pytest.mark.parametrize("keep", [0.1, 0.9, 0.99])
def test_truncated_file_is_not_done(tmp_path, keep):
    point = _points()[0]
    path = io.point_path(tmp_path, point)
    io.write_atomic(record_to_dataset(simulate_point(point)), path)
    assert io.is_done(tmp_path, point)
    data = path.read_bytes()
    path.write_bytes(data[: int(_content_end(data) * keep)])
    with pytest.warns(UserWarning, match="unreadable"):
        assert not io.is_done(tmp_path, point)


def test_cutting_trailing_zero_bytes_is_detected(tmp_path):
    """Point files carry no padding: trailing zero bytes are values (here the last
    coordinate's 0s), so a file cut there is incomplete and is recomputed."""
    point = _points()[0]
    path = io.point_path(tmp_path, point)
    io.write_atomic(record_to_dataset(simulate_point(point)), path)
    data = path.read_bytes()
    assert _content_end(data) < len(data)  # the file ends with zero-valued content
    path.write_bytes(data[: _content_end(data)])
    with pytest.warns(UserWarning, match="unreadable"):
        assert io.load_point(path) is None


def test_flipped_byte_is_detected(tmp_path):
    point = _points()[0]
    path = io.point_path(tmp_path, point)
    io.write_atomic(record_to_dataset(simulate_point(point)), path)
    data = bytearray(path.read_bytes())
    data[_content_end(data) - 1] ^= 0xFF  # the last content byte: inside the last variable
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="unreadable"):
        assert io.load_point(path) is None
    # readers (show, export, compare) leave it out; only a rerun recomputes it
    with pytest.warns(UserWarning, match="it is left out .rerunning the sweep recomputes it"):
        assert io.load_point_files(tmp_path) == []
    with pytest.warns(UserWarning, match="it will be recomputed"):
        assert not io.is_done(tmp_path, point)


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


# --- Zarr stores: chunks, listing, provenance ----------------------------------------------
def test_a_small_sweep_with_long_per_example_dims_is_one_chunk_per_variable(tmp_path):
    """Batch 96: `sample` and `rank` are longer than 64 but are a point's own dims."""
    points = expand(parse_sweep({"name": "pe", "seeds": 2, "measure": ["per_example"],
                                 "grid": {"width": [4, 8]},
                                 "fixed": {"depth": 1, "input_dim": 4, "n_train": 96,
                                           "batch_size": 96, "steps": 0}}))
    store = run_sweep(points, ["per_example"], tmp_path).store
    ds = xr.open_zarr(store)
    assert ds.sizes["sample"] == 96
    for name in ds.variables:  # an all-NaN variable (accuracy under mse) writes no chunk
        chunks = [p for p in (store / name).iterdir() if not p.name.startswith(".")]
        assert len(chunks) <= 1, (name, len(chunks))
    # .zarray, .zattrs and one chunk per array, plus the group's four metadata files
    files = [p for p in store.rglob("*") if p.is_file()]
    assert len(files) <= 3 * len(ds.variables) + 5


def test_chunks_hold_whole_points_and_stay_near_the_target():
    ds = xr.Dataset({"big": (("seed", "width", "step", "sample"), np.zeros((300, 3, 4, 1000))),
                     "small": (("seed", "step"), np.zeros((300, 4)))})
    chunks = io.zarr_chunks(ds, target_bytes=10 * 4 * 1000 * 8)  # room for 10 points of `big`
    assert chunks["step"] == 4 and chunks["sample"] == 1000  # a point's own dims: whole
    assert chunks["seed"] * chunks["width"] <= 10 and chunks["seed"] >= 1
    whole = io.zarr_chunks(ds, target_bytes=ds["big"].nbytes)  # everything fits one chunk
    assert (whole["seed"], whole["width"]) == (300, 3)


@pytest.fixture
def store(tmp_path):
    ds = xr.Dataset({"a": ("seed", np.arange(5.0)), "b": ("seed", np.ones(5))},
                    coords={"seed": np.arange(5)})
    io.to_zarr(ds, tmp_path / "s.zarr")
    return tmp_path / "s.zarr"


def test_verify_store_finds_missing_added_resized_and_changed_files(store):
    assert io.verify_store(store, content=True) == []
    chunk = next(p for p in (store / "a").iterdir() if not p.name.startswith("."))
    original = chunk.read_bytes()
    chunk.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    assert io.verify_store(store) == [] and io.verify_store(store, content=True) == [
        f"a/{chunk.name} has changed since it was written"]
    chunk.write_bytes(original + b"x")
    assert io.verify_store(store) == [f"a/{chunk.name} has {len(original) + 1} bytes, "
                                      f"{len(original)} were written"]
    (store / "stray").write_text("x")
    shutil.rmtree(store / "b")
    problems = io.verify_store(store)
    assert "stray is not part of the store as written" in problems
    assert "b/.zarray is missing" in problems


def test_a_store_without_listing_still_reports_a_removed_variable(store):
    (store / io.STORE_LISTING).unlink()
    assert io.verify_store(store) == []
    shutil.rmtree(store / "b")
    assert io.verify_store(store) == ["b/.zarray is missing"]


def test_a_damaged_store_is_not_loaded(store):
    shutil.rmtree(store / "b")
    with pytest.raises(io.ResultsError, match="damaged Zarr store .b/.zarray is missing"):
        io.load_results(store)


def test_combined_dataset_records_when_how_and_where_it_was_made(tmp_path):
    import datetime as dt

    from gradstats.simulate.model import resolve_device

    points = _points()
    store = run_sweep(points, [], tmp_path, command="gradstats run t.toml --out x").store
    attrs = xr.open_zarr(store).attrs
    created = dt.datetime.fromisoformat(attrs["created"])
    assert created.tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600
    assert attrs["command"] == "gradstats run t.toml --out x"
    assert points[0].device == "auto" and attrs["device_used"] == resolve_device("auto").type
    assert io.load_results(tmp_path).attrs["command"] == "gradstats run t.toml --out x"


def test_a_file_holding_another_point_is_not_that_point(tmp_path):
    first, second = _points()[:2]
    io.write_atomic(record_to_dataset(simulate_point(first)), io.point_path(tmp_path, first))
    shutil.copyfile(io.point_path(tmp_path, first), io.point_path(tmp_path, second))
    assert io.is_done(tmp_path, first)
    with pytest.warns(UserWarning, match=f"holds point {first.key()}, not {second.key()}"):
        assert not io.is_done(tmp_path, second)
    with pytest.warns(UserWarning, match="copied or renamed"):
        assert len(io.load_point_files(tmp_path)) == 1


def test_a_failed_directory_replacement_keeps_the_old_directory(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("kept")

    def fails(tmp):
        (tmp / "new").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as raised:  # an error naming no file names the directory
        io.replace_dir_atomically(target, fails)
    assert raised.value.filename == str(target) and raised.value.errno == 28
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and (target / "old").read_text() == "kept"
    io.replace_dir_atomically(target, lambda tmp: (tmp / "new").write_text("whole"))
    assert [p.name for p in target.iterdir()] == ["new"]
