"""Sweep execution: grouping, resume, locks, executors (in-process and a local Dask cluster)."""

import os
import signal
import subprocess
import sys
import time

import pytest
import xarray as xr

from gradstats.results import io
from gradstats.sweeps import expand, locks, parse_sweep
from gradstats.sweeps.execute import (
    COMPUTE_LOG_ENV,
    Task,
    estimated_seconds,
    group_tasks,
    run_sweep,
)
from gradstats.sweeps.executors import InProcessExecutor, make_executor

TINY = {"depth": 1, "input_dim": 4, "n_train": 16, "batch_size": 4, "steps": 2, "record": 2}



def tiny_points(seeds=2, widths=(4, 8), **fixed):
    return expand(parse_sweep({"name": "t", "seeds": seeds, "grid": {"width": list(widths)},
                               "fixed": {**TINY, **fixed}}))


def test_group_tasks_groups_seeds_of_one_config_only():
    points = tiny_points(seeds=5, widths=(4, 8, 16))
    tasks = [Task(p, ()) for p in points]
    groups = group_tasks(tasks, target_seconds=1e9)  # everything is "small"
    assert len(groups) == 3
    for group in groups:
        assert len({t.point.config_key() for t in group}) == 1
        assert sorted(t.point.seed for t in group) == [0, 1, 2, 3, 4]
    assert sorted(t.point.key() for g in groups for t in g) == sorted(p.key() for p in points)


def test_group_tasks_chunks_by_estimated_cost_and_target_zero_gives_singletons():
    points = tiny_points(seeds=5, widths=(4,))
    tasks = [Task(p, ()) for p in points]
    cost = estimated_seconds(points[0])
    assert [len(g) for g in group_tasks(tasks, target_seconds=2.5 * cost)] == [2, 2, 1]
    assert [len(g) for g in group_tasks(tasks, target_seconds=0)] == [1] * 5
    assert [len(g) for g in group_tasks(tasks, target_seconds=0.1 * cost)] == [1] * 5


def test_estimate_grows_with_width_steps_and_depth():
    base = tiny_points(seeds=1, widths=(64,), steps=10)[0]
    wider = tiny_points(seeds=1, widths=(256,), steps=10)[0]
    longer = tiny_points(seeds=1, widths=(64,), steps=100)[0]
    deeper = tiny_points(seeds=1, widths=(64,), steps=10, depth=4)[0]
    e = estimated_seconds
    assert e(wider) > e(base) and e(longer) > e(base) and e(deeper) > e(base)


def test_make_executor_stays_in_process_when_a_cluster_cannot_pay_off():
    assert isinstance(make_executor(0), InProcessExecutor)
    assert isinstance(make_executor(2, n_tasks=1), InProcessExecutor)
    assert isinstance(make_executor(2, n_tasks=10, work_seconds=0.5), InProcessExecutor)


def test_run_writes_every_point_and_rerun_skips_them(tmp_path):
    points = tiny_points()
    seen = []
    summary = run_sweep(points, [], tmp_path, progress=lambda d, t: seen.append((d, t)))
    assert (summary.total, summary.computed, summary.skipped, summary.failed) == (4, 4, 0, [])
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    files = io.point_files(tmp_path)
    assert sorted(f.stem for f in files) == sorted(p.key() for p in points)
    stats = {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files}
    store = xr.open_zarr(summary.store).load()
    assert store.sizes["width"] == 2 and store.sizes["seed"] == 2
    assert not list((tmp_path / locks.LOCKS_DIR).iterdir())  # every lock released and removed

    again = run_sweep(points, [], tmp_path)
    assert (again.computed, again.skipped) == (0, 4)
    assert {f: (f.stat().st_ino, f.stat().st_mtime_ns) for f in files} == stats


def test_a_copy_without_its_times_still_holds_a_current_store(tmp_path):
    """``cp -r`` (no preserved modification times) or ``touch``: the store is matched to the
    point files by content then; a changed file still makes it stale."""
    import shutil

    from gradstats.sweeps.execute import store_is_current

    run_sweep(tiny_points(), [], tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b", copy_function=shutil.copy)  # new mtimes
    assert store_is_current(tmp_path / "b")
    store = tmp_path / "b" / io.CONSOLIDATED
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*")}
    assert run_sweep(tiny_points(), [], tmp_path / "b").computed == 0
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*")} == before  # not rewritten
    first = io.point_files(tmp_path / "b")[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 1  # same name, size and (restored) time; other content
    stat = first.stat()
    first.write_bytes(bytes(data))
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not store_is_current(tmp_path / "b")


def test_eager_loading_reads_the_store_only_while_it_matches_the_point_files(tmp_path):
    """load_results(lazy=False) (show, export, compare, plot): the current store gives the
    dataset that combining the point files gives; once a point file changes, the files."""
    import numpy as np

    from gradstats.results.io import load_results

    run_sweep(tiny_points(), [], tmp_path)
    io._DECODED.clear()
    from_files = io.combine(io.load_point_files(tmp_path))
    eager = load_results(tmp_path, lazy=False)
    assert isinstance(eager["grad_sq_norm"].data, np.ndarray)
    xr.testing.assert_identical(eager.drop_attrs(deep=False), from_files.drop_attrs(deep=False))
    assert eager.attrs["points"] == from_files.attrs["points"]

    first = io.point_files(tmp_path)[0]  # a point recomputed (here: rewritten) after the store
    ds = io.load_point(first)
    ds["grad_sq_norm"] = ds["grad_sq_norm"] * 2
    io.write_atomic(ds, first)
    changed = load_results(tmp_path, lazy=False)
    assert not changed["grad_sq_norm"].equals(eager["grad_sq_norm"])
    io._DECODED.clear()
    xr.testing.assert_identical(changed.drop_attrs(deep=False),
                                io.combine(io.load_point_files(tmp_path)).drop_attrs(deep=False))


def test_a_consolidation_killed_mid_write_leaves_nothing_after_the_next(tmp_path):
    run_sweep(tiny_points(seeds=1), [], tmp_path)
    for name in (".sweep.zarr.k1ll3d.tmp", ".sweep.zarr.k1ll3d.tmp.old"):  # mkdtemp's names
        (tmp_path / name / "x").mkdir(parents=True)
    run_sweep(tiny_points(seeds=2), [], tmp_path)  # new points: the store is rebuilt
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".tmp.old"))]


def test_duplicate_points_are_computed_once(tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv(COMPUTE_LOG_ENV, str(log))
    points = tiny_points(seeds=1, widths=(4,))
    summary = run_sweep(points * 3, [], tmp_path / "out")
    assert summary.total == 1 and summary.computed == 1
    assert len(log.read_text().splitlines()) == 1


def test_point_held_by_another_live_run_is_not_computed_here(tmp_path, monkeypatch):
    """A point locked by another process is waited for; when that process finishes it,
    this run counts it as done and never computes it."""
    log = tmp_path / "log"
    monkeypatch.setenv(COMPUTE_LOG_ENV, str(log))
    out = tmp_path / "out"
    points = tiny_points(seeds=1)
    held = points[0]
    holder = _hold_lock_in_subprocess(locks.lock_path(out, held.key()))
    try:
        finisher = _finish_after(holder, points=[held], out=out)
        summary = run_sweep(points, [], out)
    finally:
        holder.kill()
        holder.wait()
    finisher.join()
    assert finisher.wrote
    assert summary.computed == 1 and summary.skipped == 1
    assert log.read_text().split()[0::2] == [points[1].key()]


def test_point_of_a_run_that_died_is_computed_here(tmp_path):
    out = tmp_path / "out"
    points = tiny_points(seeds=1)
    holder = _hold_lock_in_subprocess(locks.lock_path(out, points[0].key()))
    finisher = _finish_after(holder, points=[], out=out)  # dies without writing anything
    summary = run_sweep(points, [], out)
    finisher.join()
    holder.wait()
    assert summary.computed == 2 and summary.skipped == 0
    assert io.is_done(out, points[0])


def test_the_running_lock_is_shared_and_removed_by_its_last_holder(tmp_path):
    first, second = locks.hold_running(tmp_path), locks.hold_running(tmp_path)  # no waiting
    path = locks.lock_path(tmp_path, locks.RUNNING)
    first.release()
    assert path.exists() and locks.run_is_live(tmp_path)  # the second run is still going
    second.release()
    assert not path.exists() and not locks.run_is_live(tmp_path)


def test_lock_excludes_a_second_open_and_dies_with_its_holder(tmp_path):
    path = tmp_path / "k.lock"
    first = locks.try_lock(path)
    assert first is not None and locks.try_lock(path) is None and locks.is_locked(path)
    first.release()
    assert not path.exists() and not locks.is_locked(path)

    holder = _hold_lock_in_subprocess(path)
    assert locks.is_locked(path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    again = locks.try_lock(path)  # the kernel dropped the dead holder's lock: nothing stale
    assert again is not None
    again.release()


# --- helpers ---------------------------------------------------------------------------

HOLD_SCRIPT = """
import sys, time
from gradstats.sweeps import locks
lock = locks.try_lock(sys.argv[1])
print("held" if lock else "busy", flush=True)
time.sleep(120)
"""


def _hold_lock_in_subprocess(path):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


class _finish_after:
    """In a thread: wait a little, write ``points``' files as the holding run would (not
    through compute_point, so nothing is logged), then kill the holder (its lock goes too)."""

    def __init__(self, holder, points, out):
        import threading

        self.wrote = False

        def work():
            time.sleep(0.5)
            from gradstats.results.schema import record_to_dataset
            from gradstats.simulate.training import simulate_point

            for point in points:
                io.write_atomic(record_to_dataset(simulate_point(point)),
                                io.point_path(out, point))
            self.wrote = True
            holder.kill()

        self.thread = threading.Thread(target=work)
        self.thread.start()

    def join(self):
        self.thread.join()


def test_env_log_names_each_point_and_pid(tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv(COMPUTE_LOG_ENV, str(log))
    points = tiny_points(seeds=1, widths=(4,))
    run_sweep(points, [], tmp_path / "out", consolidate_store=False)
    assert log.read_text().split() == [points[0].key(), str(os.getpid())]


def test_in_process_executor_turns_a_crashing_task_into_on_error():
    def crash(task):
        raise MemoryError(f"task {task}")

    results = list(InProcessExecutor().map_unordered(
        crash, [1, 2], on_error=lambda task, err: (task, type(err).__name__)))
    assert results == [(1, "MemoryError"), (2, "MemoryError")]
    with pytest.raises(MemoryError):
        list(InProcessExecutor().map_unordered(crash, [1]))


def test_failed_tasks_records_every_point_of_the_group(tmp_path):
    from gradstats.sweeps.execute import failed_tasks

    points = tiny_points(seeds=2, widths=(4,))
    outcomes = failed_tasks([Task(p, ()) for p in points], RuntimeError("KilledWorker"))
    assert [o.point for o in outcomes] == points and not any(o.ok for o in outcomes)
    assert all(o.dataset.attrs["status"] == "failed" for o in outcomes)
    assert all("KilledWorker" in o.error for o in outcomes)


def test_default_workers_on_a_tiny_sweep_runs_without_starting_a_cluster(tmp_path, monkeypatch):
    def no_cluster(*args, **kwargs):
        raise AssertionError("a local cluster was started for a tiny sweep")

    monkeypatch.setattr("gradstats.sweeps.executors.DaskExecutor", no_cluster)
    points = tiny_points()
    summary = run_sweep(points, [], tmp_path, workers=2)
    assert summary.computed == len(points) and not summary.failed


def test_outcome_bytes_are_the_file_write_atomic_would_write(tmp_path):
    from gradstats.sweeps.execute import compute_point

    outcome = compute_point(Task(tiny_points(seeds=1, widths=(4,))[0], ()))
    io.write_bytes_atomic(outcome.encoded, tmp_path / "from_bytes.nc")
    io.write_atomic(outcome.dataset, tmp_path / "direct.nc")
    xr.testing.assert_identical(io.load_point(tmp_path / "from_bytes.nc"),
                                io.load_point(tmp_path / "direct.nc"))
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
