"""Faults: a killed driver, a killed Dask worker, two runs on one directory, a truncated
file, a point that raises, a network that explodes, a point whose file cannot be encoded, a
full disk. Finished work is never lost or redone."""

import errno
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
         "-q", "--no-compare"], env=_env(log), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _logged_keys(log: Path) -> list[str]:
    return log.read_text().split()[0::2] if log.exists() else []


def _identical_without_wall_time(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same values, coordinates and attrs, but for compute time and when/how it was combined."""
    def strip(ds: xr.Dataset) -> xr.Dataset:
        ds = ds.drop_vars("wall_time")
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "command")}
        return ds
    xr.testing.assert_identical(strip(a), strip(b))


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
    main(["run", str(sweep_file), "--out", str(out), "-w", "0", "-q", "--no-compare"])
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
    with pytest.warns(UserWarning, match="point file .* is unreadable"):
        summary = run_sweep(points, [], tmp_path)
    assert (summary.computed, summary.skipped) == (1, 2)
    assert io.load_point(victim).attrs["status"] == "ok"
    assert {f: f.stat().st_ino for f in others} == kept


def _fail_ensembles_with(monkeypatch, fails) -> None:
    """A seed ensemble holding a point for which ``fails(point)`` raises, as an ensemble
    does when a member's computation raises; the run then computes its points one by one."""
    import gradstats.simulate.ensemble as ensemble

    real = ensemble.simulate_ensemble

    def flaky(points, measure=None):
        if any(fails(p) for p in points):
            raise RuntimeError("an ensemble member raised")
        return real(points, measure)

    monkeypatch.setattr(ensemble, "simulate_ensemble", flaky)


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
    _fail_ensembles_with(monkeypatch, lambda p: p.seed == 1)  # then seeds run one by one
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(sweep), "--out", str(out), "-w", "0", "-q", "--no-compare"])
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


# --- files that cannot be written -----------------------------------------------------------
EIGHT = {"name": "eight", "seeds": 4, "grid": {"width": [4, 8]}, "fixed": TINY}


def _eight_sweep(tmp_path: Path) -> Path:
    path = tmp_path / "eight.toml"
    path.write_text('name = "eight"\nseeds = 4\n[grid]\nwidth = [4, 8]\n[fixed]\n' + "".join(
        f"{k} = {v}\n" for k, v in TINY.items()))
    return path


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _assert_stopped_then_resumed(tmp_path, out, capsys, restore, saved: int | None = None
                                 ) -> None:
    """The stopped run's one line; nothing half-written; a rerun completes it identically.
    ``saved``: how many points the stopped run must have saved (None: some, not all)."""
    argv = ["run", str(_eight_sweep(tmp_path)), "-o", str(out), "-q", "--no-compare", "-w", "0"]
    code, _, err = _main(argv, capsys)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: ") and "No space left on device" in err and "rerun" in err
    found = int(err.split(" of 8 points saved")[0].rsplit(" ", 1)[1])
    assert found == saved if saved is not None else 0 < found < 8, err
    saved = found
    assert len(io.point_files(out)) == saved
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written
    assert not (out / io.CONSOLIDATED).exists()
    restore()
    code, stdout, err = _main(argv, capsys)
    assert (code, err) == (0, "") and f"{8 - saved} computed, {saved} already done" in stdout
    reference = run_sweep(expand(parse_sweep(EIGHT)), [], tmp_path / "ref", name="eight")
    _identical_without_wall_time(xr.open_zarr(out / io.CONSOLIDATED).load(),
                                 xr.open_zarr(reference.store).load())


def test_disk_full_stops_the_run_with_one_line_and_a_rerun_resumes_identically(
        tmp_path, monkeypatch, capsys):
    real = io.write_bytes_atomic
    written = []

    def fills_up(data, path):
        if len(written) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(data, path)
        written.append(path)

    monkeypatch.setattr(io, "write_bytes_atomic", fills_up)
    _assert_stopped_then_resumed(tmp_path, tmp_path / "out", capsys, saved=3,
                                 restore=lambda: monkeypatch.setattr(io, "write_bytes_atomic", real))


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs nearly filled by ``filler`` (skipped where mounting is not allowed): room
    for the whole sweep and its store once the filler is removed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_really_full_disk_stops_the_run_and_a_rerun_resumes_identically(
        tmp_path, small_disk, capsys):
    out = small_disk / "out"
    # Room for sweep.json (about 6 kB), sweep.toml (one 4 kB page), the lock files of an
    # ensemble's points (one 4 kB page each; a seed ensemble claims its 4 points together)
    # and a few point files (16 kB each), not for eight.
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * (free - 56 * 1024))
    _assert_stopped_then_resumed(tmp_path, out, capsys, restore=filler.unlink)


def test_a_full_disk_while_consolidating_keeps_the_old_store(tmp_path, monkeypatch, capsys):
    points = expand(parse_sweep({**EIGHT, "seeds": 2}))
    run_sweep(points, [], tmp_path / "out", name="eight")
    store = tmp_path / "out" / io.CONSOLIDATED
    before = sorted(p.relative_to(store) for p in store.rglob("*"))

    def no_space(ds, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(io, "to_zarr", no_space)
    code, _, err = _main(["run", str(_eight_sweep(tmp_path)), "-o", str(tmp_path / "out"), "-q",
                          "-w", "0"], capsys)
    assert code == 1 and len(err.splitlines()) == 1 and "8 of 8 points saved" in err
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]


def test_a_point_whose_file_cannot_be_encoded_is_recorded_failed_and_the_sweep_goes_on(
        tmp_path, monkeypatch):
    real = io.encode

    def refuses_seed_1(ds):
        if ds.attrs.get("status") == "ok" and int(ds["seed"][0]) == 1:
            raise ValueError("seed: integer values do not fit the point-file format")
        return real(ds)

    monkeypatch.setattr(io, "encode", refuses_seed_1)
    points = expand(parse_sweep({"name": "e", "seeds": 3, "fixed": TINY}))
    summary = run_sweep(points, [], tmp_path)
    assert summary.computed == 3 and [p.seed for p, _ in summary.failed] == [1]
    record = io.load_point(io.point_path(tmp_path, points[1]))
    assert record.attrs["status"] == "failed" and "do not fit" in record.attrs["error"]
    assert [io.is_done(tmp_path, p) for p in points] == [True, False, True]


def test_a_point_whose_failure_record_cannot_be_encoded_either_is_reported_without_a_file(
        tmp_path, monkeypatch):
    real = io.encode

    def refuses_seed_1(ds):
        if int(ds["seed"][0]) == 1:
            raise ValueError("cannot encode")
        return real(ds)

    monkeypatch.setattr(io, "encode", refuses_seed_1)
    points = expand(parse_sweep({"name": "e", "seeds": 3, "fixed": TINY}))
    summary = run_sweep(points, [], tmp_path)
    (failed, error), = summary.failed
    assert failed == points[1] and "not saved: ValueError: cannot encode" in error
    assert not io.point_path(tmp_path, points[1]).exists()
    assert io.is_done(tmp_path, points[0]) and io.is_done(tmp_path, points[2])
    monkeypatch.setattr(io, "encode", real)
    assert run_sweep(points, [], tmp_path).computed == 1  # the rerun retries it
