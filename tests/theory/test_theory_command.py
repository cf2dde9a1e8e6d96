"""The `gradstats theory` command function (registered by the CLI)."""

from __future__ import annotations

import subprocess
import sys

import pytest

typer = pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

from gradstats.theory.command import theory_command  # noqa: E402


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command("theory")(theory_command)
    app.command("noop")(lambda: None)  # two commands: `theory` stays a subcommand
    return app


def test_prints_mean_field_table(app):
    r = CliRunner().invoke(app, ["theory", "--activation", "tanh", "--sigma-w2", "1.0",
                                 "--sigma-b2", "0.05", "--depth", "4"])
    assert r.exit_code == 0, r.output
    assert "0.193593" in r.output and "0.759032" in r.output and "ordered" in r.output
    r = CliRunner().invoke(app, ["theory", "--activation", "relu", "--sigma-w2", "2"])
    assert r.exit_code == 0 and "critical" in r.output and "beta" in r.output


def test_phase_diagram_to_netcdf(app, tmp_path):
    pytest.importorskip("netCDF4")
    import xarray as xr

    out = tmp_path / "pd.nc"
    r = CliRunner().invoke(app, ["theory", "--phase-diagram", "--activation", "erf",
                                 "--grid-points", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(out) as ds:
        assert ds["chi_1"].shape == (4, 4) and "sigma_w2_critical" in ds
        assert ds.attrs["activation"] == "erf"


def test_bad_values(app):
    r = CliRunner().invoke(app, ["theory", "--activation", "swish"])
    assert r.exit_code != 0 and "activation" in r.output
    r = CliRunner().invoke(app, ["theory", "--sigma-w2", "-1"])
    assert r.exit_code != 0 and "sigma" in r.output


def test_importing_the_command_does_not_import_jax():
    code = ("import sys; import gradstats.theory.command, gradstats.theory; "
            "assert 'jax' not in sys.modules, 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
