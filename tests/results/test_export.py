"""Export round trips keep coordinates and values; the tidy table is one row per value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gradstats.results.export import FORMATS, SUFFIX, export, from_tidy, read_export, tidy


def sweep_dataset() -> xr.Dataset:
    """Two depths (layers NaN-padded), string and float sweep dims, a per-run scalar, an
    all-NaN variable, scalar coords and attrs: what `load_results` gives for a small sweep."""
    rng = np.random.default_rng(0)
    coords = {"depth": [1, 2], "activation": ["relu", "tanh"], "sigma_w2": [1.5, 2.0],
              "seed": [0, 1, 2], "step": [0, 5], "layer": [1, 2, 3]}
    shape = tuple(len(v) for v in coords.values())
    grad = rng.random(shape)
    grad[0, ..., 2] = np.nan  # depth 1 has layers 1..2 only
    loss = rng.random(shape[:-1])
    loss[1, 1, 0, 2, 1] = np.inf  # a diverged run keeps its inf
    ds = xr.Dataset(
        {"grad_sq_norm": (list(coords), grad, {"long_name": "squared norm", "units": "1"}),
         "full_loss": (list(coords)[:-1], loss, {"long_name": "loss", "units": "1"}),
         "accuracy": (list(coords)[:-1], np.full(shape[:-1], np.nan)),
         "diverged": (list(coords)[:4], (rng.random(shape[:4]) > 0.8).astype(float))},
        coords=coords)
    ds["step"].attrs = {"long_name": "training step", "units": "step"}
    ds = ds.assign_coords(width=128, loss="mse", lr=0.05)
    ds.attrs = {"schema_version": 1, "n_points": 24, "points": ['{"a":1}', '{"a":2}']}
    return ds


@pytest.mark.parametrize("fmt", ["netcdf", "zarr", "parquet"])
def test_round_trip_is_identical(tmp_path, fmt):
    ds = sweep_dataset()
    path = export(ds, fmt, tmp_path / f"out{SUFFIX[fmt]}")
    xr.testing.assert_identical(read_export(path), ds)


def test_csv_round_trip_keeps_values_and_coordinates(tmp_path):
    ds = sweep_dataset()
    back = read_export(export(ds, "csv", tmp_path / "out.csv"))
    assert set(back.data_vars) == {"grad_sq_norm", "full_loss", "diverged"}  # all-NaN dropped
    for name in back.data_vars:
        got = back[name].transpose(*ds[name].dims)
        for dim in ds[name].dims:
            np.testing.assert_array_equal(got[dim].values, ds[dim].values)
        np.testing.assert_array_equal(got.values, ds[name].values)  # NaN and inf in place
    assert back["layer"].dtype.kind == "i" and back["depth"].dtype.kind == "i"
    assert {k: back[k].item() for k in ("width", "loss", "lr")} == {"width": 128, "loss": "mse",
                                                                    "lr": 0.05}


def test_tidy_has_one_row_per_non_nan_value():
    ds = sweep_dataset()
    table = tidy(ds)
    expect = sum(int(np.sum(~np.isnan(ds[v].values))) for v in ds.data_vars)
    assert len(table) == expect
    assert list(table.columns[:8]) == ["variable", "depth", "activation", "sigma_w2", "seed",
                                       "step", "layer", "value"]
    assert str(table["layer"].dtype) == "Int64"
    assert (table["width"] == 128).all() and (table["loss"] == "mse").all()
    row = table[(table.variable == "grad_sq_norm") & (table.depth == 2) & (table.activation == "tanh")
                & (table.sigma_w2 == 1.5) & (table.seed == 1) & (table.step == 5) & (table.layer == 3)]
    assert row["value"].item() == ds["grad_sq_norm"].values[1, 1, 0, 1, 1, 2]
    assert table.loc[table.variable == "full_loss", "layer"].isna().all()
    assert not ((table.variable == "grad_sq_norm") & (table.depth == 1) & (table.layer == 3)).any()


def test_tidy_table_pivots_back_with_pandas():
    """What an R/pandas user does: filter one variable and pivot by its dims."""
    ds = sweep_dataset()
    table = tidy(ds)
    loss = table[table.variable == "full_loss"].set_index(
        ["depth", "activation", "sigma_w2", "seed", "step"])["value"]
    np.testing.assert_array_equal(loss.loc[(2, "tanh", 1.5, 2, 5)], ds.full_loss.values[1, 1, 0, 2, 1])


def test_from_tidy_infers_dims_without_metadata():
    ds = sweep_dataset()
    back = from_tidy(tidy(ds))
    assert set(back["diverged"].dims) == {"depth", "activation", "sigma_w2", "seed"}
    assert set(back["grad_sq_norm"].dims) == set(ds["grad_sq_norm"].dims)


def test_tidy_rejects_clashing_names():
    ds = xr.Dataset({"x": ("value", [1.0, 2.0])}, coords={"value": [0, 1]})
    with pytest.raises(ValueError, match="clash"):
        tidy(ds)


def test_export_rejects_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unknown 'xlsx'"):
        export(sweep_dataset(), "xlsx", tmp_path / "x.xlsx")
    assert set(FORMATS) == set(SUFFIX)


def test_cli_export_writes_readable_files(tmp_path):
    from gradstats import cli

    src = tmp_path / "results.nc"
    sweep_dataset().to_netcdf(src)
    for fmt in FORMATS:
        target = tmp_path / f"export{SUFFIX[fmt]}"
        cli.main(["export", str(src), "--format", fmt, "--out", str(target)])
        back = read_export(target)
        np.testing.assert_array_equal(back["grad_sq_norm"].transpose(*sweep_dataset().grad_sq_norm.dims),
                                      sweep_dataset()["grad_sq_norm"])
    assert pd.read_csv(tmp_path / "export.csv")["variable"].nunique() == 3


def test_a_failed_export_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "t.csv"
    target.write_text("old export")

    def broken_tidy(ds):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gradstats.results.export.tidy", broken_tidy)
    with pytest.raises(OSError):
        export(sweep_dataset(), "csv", target)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"] and target.read_text() == "old export"


def test_a_failed_zarr_export_leaves_the_old_store(tmp_path, monkeypatch):
    target = export(sweep_dataset(), "zarr", tmp_path / "t.zarr")
    before = sorted(p.relative_to(target) for p in target.rglob("*"))

    def no_space(ds, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gradstats.results.io.to_zarr", no_space)
    with pytest.raises(OSError):
        export(sweep_dataset(), "zarr", target)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["t.zarr"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_export_replaces_an_existing_target_only_with_force(tmp_path, capsys, fmt):
    from gradstats import cli

    src = tmp_path / "results.nc"
    sweep_dataset().to_netcdf(src)
    target = tmp_path / f"out{SUFFIX[fmt]}"
    cli.main(["export", str(src), "-f", fmt, "-o", str(target)])
    first = read_export(target)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", str(src), "-f", fmt, "-o", str(target)])
    assert exit_.value.code == 2 and "--force" in capsys.readouterr().err
    cli.main(["export", str(src), "-f", fmt, "-o", str(target), "--force"])
    xr.testing.assert_identical(read_export(target), first)


def test_check_has_values_refuses_only_all_nan_results():
    from gradstats.errors import InputError
    from gradstats.results.export import check_has_values

    ds = sweep_dataset()
    check_has_values(ds, "r")  # `accuracy` is all NaN, the others are not
    with pytest.raises(InputError, match="holds no values"):
        check_has_values(ds.map(lambda v: v * np.nan), "r")
    with pytest.raises(InputError, match="holds no values"):
        check_has_values(xr.Dataset(), "r")
