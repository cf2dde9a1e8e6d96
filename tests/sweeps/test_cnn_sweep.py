"""End to end: a small cnn sweep on digits images runs through `gradstats run`, records every
spine and per-example statistic per layer, resumes after a SIGKILL without recomputing a
finished point, and its predictions are skipped with one reason while conv theory is absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gradstats.cli import main
from gradstats.predictions import missing_theory
from gradstats.results import io
from gradstats.sweeps import expand, load_sweep
from gradstats.sweeps.execute import COMPUTE_LOG_ENV, run_sweep

CNN_TOML = """
name = "cnn-small"
seeds = 2
measure = ["per_example"]
[grid]
channels = [4, 8, 12]
[fixed]
architecture = "cnn"
data = "digits-images"
depth = 2
n_train = 64
batch_size = 16
steps = 40
record = [0, 20, 40]
device = "cpu"
"""
PER_LAYER = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "forward_m4", "backward_q",
             "active_fraction", "weight_sq_norm", "precision_loss", "layer_grad_noise_trace")


def _run_cli(sweep: Path, out: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", COMPUTE_LOG_ENV: str(log)}
    return subprocess.Popen(
        [sys.executable, "-m", "gradstats.cli", "run", str(sweep), "--out", str(out), "-w", "0",
         "-q", "--no-compare"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _logged_keys(log: Path) -> list[str]:
    return log.read_text().split()[0::2] if log.exists() else []


def _identical_without_wall_time(a: xr.Dataset, b: xr.Dataset) -> None:
    def strip(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.drop_vars("wall_time")
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "command")}
        return ds
    xr.testing.assert_identical(strip(a), strip(b))


@pytest.fixture
def cnn_file(tmp_path):
    path = tmp_path / "cnn.toml"
    path.write_text(CNN_TOML)
    return path


@pytest.mark.slow
def test_cnn_sweep_resumes_after_a_kill_and_records_every_layer(cnn_file, tmp_path,
                                                                monkeypatch, capsys):
    out, first_log, second_log = tmp_path / "out", tmp_path / "log1", tmp_path / "log2"
    points = expand(load_sweep(cnn_file))
    proc = _run_cli(cnn_file, out, first_log)
    deadline = time.monotonic() + 300
    while len(io.point_files(out)) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {f.stem for f in io.point_files(out)}
    assert 2 <= len(finished) < len(points)

    monkeypatch.setenv(COMPUTE_LOG_ENV, str(second_log))
    main(["run", str(cnn_file), "--out", str(out), "-w", "0", "--no-compare"])
    printed = capsys.readouterr()
    assert "6 points" in printed.out and printed.err == ""
    recomputed = _logged_keys(second_log)
    assert not set(recomputed) & finished
    assert sorted(recomputed + list(finished)) == sorted(p.key() for p in points)
    assert not (out / "comparison.nc").exists()

    ds = xr.open_zarr(out / io.CONSOLIDATED).load()
    assert ds.sizes["layer"] == 3 and list(ds["width"].values) == [4, 8, 12]
    for name in PER_LAYER:
        values = ds[name].values
        assert np.isfinite(values).all(), name
    assert (ds["per_example_grad_sq_norm"] > 0).all()
    # the CNN-GP/CNTK theory is merged: the points carry their per-layer predictions
    assert np.isfinite(ds["theory_forward_q"].values).any()
    assert not any("predictions skipped" in n for n in ds.attrs.get("theory_notes", []))

    monkeypatch.delenv(COMPUTE_LOG_ENV)
    reference = run_sweep(points, ["per_example"], tmp_path / "ref", name="cnn-small")
    _identical_without_wall_time(ds, xr.open_zarr(reference.store).load())


def test_missing_conv_theory_is_one_reason():
    point = expand(load_sweep_text(CNN_TOML))[0]
    reason = missing_theory(point)
    try:
        import gradstats.theory.conv.layer_maps  # noqa: F401
    except ImportError:
        assert reason is not None and 'architecture = "cnn"' in reason
    else:
        assert reason is None
    assert missing_theory(expand(load_sweep_text('name = "m"'))[0]) is None


def load_sweep_text(text: str):
    import tomllib

    from gradstats.sweeps import parse_sweep

    return parse_sweep(tomllib.loads(text))
