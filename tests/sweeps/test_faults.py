"""Faults: a killed driver, a killed Dask worker, two runs on one directory, a truncated
file, a point that raises, a network that explodes. Finished work is never lost or redone."""

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
from gradstats.results import io
from gradstats.sweeps import expand, load_sweep, parse_sweep
from gradstats.sweeps.execute import COMPUTE_LOG_ENV, run_sweep

# 12 points of a few tenths of a second each on one thread: a run takes a few seconds.
SWEEP_TOML = """
name = "faults"
seeds = 2
[grid]
activation = ["relu", "tanh"]
width = [16, 32, 48]
[fixed]
depth = 2
input_dim = 8
n_train = 64
batch_size = 16
steps = 80
record = 3
"""
TINY = {"depth": 1, "input_dim": 4, "n_train": 16, "batch_size": 4, "steps": 2, "record": 2}



@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text(SWEEP_TOML)
    return path


def _env(log: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", COMPUTE_LOG_ENV: str(log)}


def _run_cli(sweep: Path, out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gradstats.cli", "run", str(sweep), "--out", str(out), "-w", "0",
         "-q"], env=_env(log), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _logged_keys(log: Path) -> list[str]:
    return log.read_text().split()[0::2] if log.exists() else []


def _identical_without_wall_time(a: xr.Dataset, b: xr.Dataset) -> None:
    xr.testing.assert_identical(a.drop_vars("wall_time"), b.drop_vars("wall_time"))


@pytest.mark.slow
def test_sigkilled_run_resumes_keeping_every_finished_point(sweep_file, tmp_path, monkeypatch):
    out, first_log, second_log = tmp_path / "out", tmp_path / "log1", tmp_path / "log2"
    points = expand(load_sweep(sweep_file))
    proc = _run_cli(sweep_file, out, first_log)
    deadline = time.monotonic() + 120
    while len(io.point_files(out)) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {f.stem: (f.stat().st_ino, f.stat().st_mtime_ns) for f in io.point_files(out)}
    assert 3 <= len(finished) < len(points)

    monkeypatch.setenv(COMPUTE_LOG_ENV, str(second_log))
    main(["run", str(sweep_file), "--out", str(out), "-w", "0", "-q"])
    recomputed = _logged_keys(second_log)
    assert not set(recomputed) & set(finished)  # no finished point computed twice
    assert sorted(recomputed + list(finished)) == sorted(p.key() for p in points)
    assert {k: v for k, v in ((f.stem, (f.stat().st_ino, f.stat().st_mtime_ns))
                              for f in io.point_files(out)) if k in finished} == finished

    reference = run_sweep(points, [], tmp_path / "ref", name="faults")
    _identical_without_wall_time(xr.open_zarr(out / io.CONSOLIDATED).load(),
                                 xr.open_zarr(reference.store).load())


@pytest.mark.slow
def test_two_runs_on_one_directory_compute_each_point_once(sweep_file, tmp_path):
    out, log = tmp_path / "out", tmp_path / "log"
    procs = [_run_cli(sweep_file, out, log) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    keys = _logged_keys(log)
    points = expand(load_sweep(sweep_file))
    assert sorted(keys) == sorted(p.key() for p in points)  # each exactly once
    store = xr.open_zarr(out / io.CONSOLIDATED).load()
    assert store.attrs["n_points"] == len(points)
    assert all(io.is_done(out, p) for p in points)


@pytest.mark.slow
def test_dask_worker_killed_mid_sweep_is_retried_and_the_sweep_completes(tmp_path):
    from gradstats.sweeps.executors import DaskExecutor

    points = expand(parse_sweep({"name": "k", "seeds": 4, "grid": {"width": [16, 32]},
                                 "fixed": {**TINY, "steps": 100, "n_train": 64}}))
    executor = DaskExecutor(n_workers=2)
    killed = []

    def kill_one_worker(done: int, total: int) -> None:
        if done >= 1 and not killed:
            pid = next(iter(executor.client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        threads = list(executor.map_unordered(
            lambda _: __import__("torch").get_num_threads(), range(4)))
        summary = run_sweep(points, [], tmp_path / "dask", executor=executor,
                            progress=kill_one_worker, task_seconds=0)
    finally:
        executor.close()
    assert threads == [1, 1, 1, 1]
    assert killed and not _alive(killed[0])
    assert summary.computed == len(points) and not summary.failed
    assert all(io.is_done(tmp_path / "dask", p) for p in points)
    reference = run_sweep(points, [], tmp_path / "ref")
    _identical_without_wall_time(xr.open_zarr(summary.store).load(),
                                 xr.open_zarr(reference.store).load())


def test_truncated_point_file_is_detected_and_recomputed(tmp_path):
    points = expand(parse_sweep({"name": "t", "seeds": 3, "fixed": TINY}))
    run_sweep(points, [], tmp_path)
    victim, *others = io.point_files(tmp_path)
    kept = {f: f.stat().st_ino for f in others}
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.warns(UserWarning, match="unreadable point file"):
        summary = run_sweep(points, [], tmp_path)
    assert (summary.computed, summary.skipped) == (1, 2)
    assert io.load_point(victim).attrs["status"] == "ok"
    assert {f: f.stat().st_ino for f in others} == kept


def test_point_that_raises_is_recorded_the_sweep_goes_on_and_exit_code_is_1(
        tmp_path, monkeypatch, capsys):
    import gradstats.simulate.training as training

    sweep = tmp_path / "s.toml"
    sweep.write_text('name = "s"\nseeds = 3\n[fixed]\n' + "".join(
        f"{k} = {v}\n" for k, v in TINY.items()))
    real = training.simulate_point

    def flaky(point, measure=(), on_step=None):
        if point.seed == 1:
            raise RuntimeError("boom at seed 1")
        return real(point, measure, on_step)

    monkeypatch.setattr(training, "simulate_point", flaky)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(sweep), "--out", str(out), "-w", "0", "-q"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    points = expand(load_sweep(sweep))
    bad = next(p for p in points if p.seed == 1)
    assert f"failed {bad.key()}" in err and "boom at seed 1" in err
    record = io.load_point(io.point_path(out, bad))
    assert record.attrs["status"] == "failed" and "boom at seed 1" in record.attrs["error"]
    assert [io.is_done(out, p) for p in points] == [p.seed != 1 for p in points]
    store = xr.open_zarr(out / io.CONSOLIDATED).load()
    assert float(store["failed"].sel(seed=1)) == 1.0

    monkeypatch.setattr(training, "simulate_point", real)
    summary = run_sweep(points, [], out)  # a rerun retries only the failed point
    assert (summary.computed, summary.skipped, summary.failed) == (1, 2, [])


def test_exploding_network_is_recorded_as_diverged_and_the_sweep_goes_on(tmp_path):
    points = expand(parse_sweep({
        "name": "boom", "grid": {"sigma_w2": [50.0, 1.0]},
        "fixed": {"depth": 10, "width": 32, "lr": 10.0, "steps": 20, "record": list(range(21)),
                  "input_dim": 8, "n_train": 32, "batch_size": 8, "activation": "relu"}}))
    summary = run_sweep(points, [], tmp_path)
    assert summary.computed == 2 and not summary.failed
    exploded = io.load_point(io.point_path(tmp_path, points[0])).squeeze()
    assert exploded.attrs["status"] == "ok"
    assert float(exploded["diverged"]) == 1.0
    step = float(exploded["diverged_step"])
    assert 0 <= step < 20
    grads = exploded["grad_sq_norm"]
    assert grads.dtype == np.float64
    at_step = [grads.sel(step=step).values, exploded["batch_loss"].sel(step=step).values]
    assert not all(np.isfinite(v).all() for v in at_step)  # the inf/nan itself is recorded
    assert np.isfinite(grads.sel(step=grads.step[grads.step < step])).all()
    assert grads.sel(step=grads.step[grads.step > step]).isnull().all()
    tame = io.load_point(io.point_path(tmp_path, points[1])).squeeze()
    assert float(tame["diverged"]) == 0.0 and float(tame["diverged_step"]) == -1.0
    assert np.isfinite(tame["grad_sq_norm"]).all()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
