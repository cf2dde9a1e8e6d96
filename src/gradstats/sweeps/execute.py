"""Run a sweep's points and write each one's file as it finishes (resume by content key).

`run_sweep` skips points whose file exists and loads (`io.is_done`), claims each remaining
point with a per-point lock just before it starts (so runs sharing a directory split the
work and never compute a point twice), computes through an executor (`executors`), writes
each result atomically in the driver as soon as it arrives (a killed run loses only the
points in flight), records a point that raised as failed (the sweep goes on), waits for
points another live run holds, and ends by consolidating every point file into one store
under a lock. Small points are grouped (seeds of one configuration) into one task so that
scheduling stays a small fraction of compute, and the seeds of a group train as one batched
ensemble (`compute_tasks`, `gradstats.simulate.ensemble`); each point keeps its own file.

Before anything is written the directory is checked (`resultsdir`): it must be one, belong
to this sweep, and be writable when there is something to write; a rerun with nothing to
compute writes nothing. A write that fails partway (disk full) stops the run with
`RunStopped`; every point written before is complete, and a rerun resumes.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from gradstats import paths
from gradstats.errors import RunStopped, os_error_line
from gradstats.results import io
from gradstats.simulate.ensemble_key import ensemble_key
from gradstats.spec import Point
from gradstats.sweeps import locks, resultsdir
from gradstats.sweeps.executors import Executor, InProcessExecutor, make_executor

# Environment variable naming a file to which every computed point appends "KEY PID"
# (an audit log: tests use it to prove that no point is computed twice).
COMPUTE_LOG_ENV = "GRADSTATS_COMPUTE_LOG"
# Group seeds of one configuration into tasks of about this many estimated seconds.
TARGET_TASK_SECONDS = 1.0
# Rough single-core speed used to estimate a point's cost (flop/s) and fixed cost per point.
EST_FLOPS = 2e10
EST_SECONDS_PER_POINT = 0.01
EST_SECONDS_PER_STEP_LAYER = 1e-4
WAIT_POLL_SECONDS = 0.2

__all__ = ["Executor", "InProcessExecutor", "Outcome", "RunSummary", "Task", "compute_point",
           "compute_tasks", "consolidate", "ensembles", "group_tasks", "run_sweep"]


@dataclass(frozen=True)
class Task:
    """One unit of work: a point and the estimator groups to measure."""

    point: Point
    measure: tuple[str, ...]


@dataclass
class Outcome:
    """What a task produced: the point's dataset (ok or failure record) and its status.

    ``encoded``: the dataset's netCDF file bytes, made where the task ran (`io.encode`), so
    the driver only writes bytes; empty when not encoded.
    """

    point: Point
    dataset: xr.Dataset
    ok: bool
    error: str = ""
    encoded: bytes = b""


def compute_point(task: Task) -> Outcome:
    """Simulate one point, predict its statistics from what it measured
    (`gradstats.predictions`, stored beside the measurements) and turn both into its
    dataset; an exception becomes a failure record."""
    from gradstats.simulate.training import simulate_point

    try:
        record = simulate_point(task.point, task.measure)
    except Exception as err:  # a point that raises is recorded, the sweep goes on
        return _failed(task, err)
    return _finish_record(task, record)


def _finish_record(task: Task, record) -> Outcome:
    """The outcome of a simulated point: predictions, dataset, encoded file bytes."""
    from gradstats.predictions import predict_record
    from gradstats.results.schema import record_to_dataset

    try:
        predictions = predict_record(record)
        record.values.update(predictions.values)
        dataset = record_to_dataset(record)
        if predictions.notes:
            dataset.attrs["theory_notes"] = "\n".join(predictions.notes)[:4000]
        outcome = Outcome(task.point, dataset, ok=True, encoded=io.encode(dataset))
    except Exception as err:  # a point that raises is recorded, the sweep goes on
        return _failed(task, err)
    _log_computation(task.point)
    return outcome


def _failed(task: Task, err: Exception) -> Outcome:
    from gradstats.results.schema import failure_dataset

    message = f"{type(err).__name__}: {err}"
    detail = traceback.format_exc(limit=5)
    dataset = failure_dataset(task.point, f"{message}\n{detail}")
    outcome = Outcome(task.point, dataset, ok=False, error=message)
    with contextlib.suppress(Exception):  # else the driver tries, then keeps no file
        outcome.encoded = io.encode(dataset)
    _log_computation(task.point)
    return outcome


def compute_tasks(tasks: Sequence[Task], ensemble: bool = True) -> list[Outcome]:
    """The outcomes of a group of tasks (one executor task), in order.

    With ``ensemble``, the seeds of one configuration (same ``measure``) are simulated as
    batched ensembles (`gradstats.simulate.ensemble`) of `ensemble_members` at a time; each
    point still gets its own outcome (and file). A member's numbers do not depend on which
    other members share its ensemble, so a lone pending seed runs as an ensemble of one and
    a resumed sweep reproduces an unbroken one bit for bit. Where an ensemble cannot apply
    (batch norm, ``updates``, networks too large to gain on a CPU) or raises, its points run
    one by one (`compute_point`), so a failing point is recorded alone.
    """
    if not ensemble:
        return [compute_point(task) for task in tasks]
    from gradstats.simulate.ensemble import ensemble_refusal, simulate_ensemble, worth_batching

    done: dict[str, Outcome] = {}
    for members in ensembles(tasks):
        records = None
        first = members[0]
        # a lone seed that could be ensembled runs as an ensemble of one: the same code path
        # whatever else is pending, so a resumed sweep gives the same bits as an unbroken one
        if ensemble_refusal(first.point, first.measure) is None and worth_batching(first.point):
            try:
                records = simulate_ensemble([t.point for t in members], first.measure)
            except Exception:  # run them one by one: each failure recorded on its own point
                records = None
        for i, task in enumerate(members):
            done[task.point.key()] = (compute_point(task) if records is None
                                      else _finish_record(task, records[i]))
    return [done[task.point.key()] for task in tasks]


def ensembles(tasks: Sequence[Task], max_members: int | None = None
              ) -> list[tuple[Task, ...]]:
    """``tasks`` split into ensembles: seeds of one configuration and measure together (and
    configurations that differ only in sigma_w2/sigma_b2 or lr: `ensemble_key`), at most
    ``max_members`` (default `ensemble_members`) each; a task that cannot be ensembled
    (`gradstats.simulate.ensemble.ensemble_refusal`) is alone."""
    from gradstats.simulate.ensemble import ensemble_refusal

    by_config: dict[tuple[str, tuple[str, ...]], list[Task]] = {}
    alone: list[tuple[Task, ...]] = []
    for task in tasks:
        if ensemble_refusal(task.point, task.measure) is not None:
            alone.append((task,))
        else:
            by_config.setdefault((ensemble_key(task.point), task.measure), []).append(task)
    out = []
    for members in by_config.values():
        size = max_members or ensemble_members(members[0].point, len(members))
        out.extend(_chunks(members, size))
    return out + alone


def _chunks(members: Sequence[Task], size: int) -> list[tuple[Task, ...]]:
    """``members`` in the fewest chunks of at most ``size``, as equal as possible (64 seeds
    at most 63 a chunk: 32 + 32, not 63 + 1)."""
    n_chunks = math.ceil(len(members) / size)
    size = math.ceil(len(members) / n_chunks)
    return [tuple(members[i:i + size]) for i in range(0, len(members), size)]


def ensemble_members(point: Point, n_seeds: int) -> int:
    """Members per ensemble (`gradstats.simulate.ensemble.ensemble_size`: what fits in a
    quarter of the free memory, at most 256)."""
    from gradstats.simulate.ensemble import ensemble_size

    return ensemble_size(point, n_seeds)


def failed_tasks(tasks: Sequence[Task], err: BaseException) -> list[Outcome]:
    """Failure records for a group the executor could not run (e.g. it kept killing workers)."""
    from gradstats.results.schema import failure_dataset

    message = f"{type(err).__name__}: {err}"
    return [Outcome(t.point, failure_dataset(t.point, message), ok=False, error=message)
            for t in tasks]


@dataclass
class RunSummary:
    """How a run went: counts, failed points with their errors, the consolidated store.

    ``skipped`` counts points already done, including those another run finished meanwhile.
    ``diverged``: points computed by this run whose network blew up to inf/nan (recorded, not
    failed; variable ``diverged`` of their files).
    """

    total: int
    skipped: int
    computed: int
    failed: list[tuple[Point, str]] = field(default_factory=list)
    diverged: list[Point] = field(default_factory=list)
    store: Path | None = None
    seconds: float = 0.0


def estimated_seconds(point: Point) -> float:
    """A rough single-core cost of ``point``: training steps plus full-data recordings."""
    a, t = point.arch, point.training
    widths = [a.input_dim] + [a.width] * a.depth + [a.output_dim]
    flops_per_example = 2 * sum(m * n for m, n in zip(widths[:-1], widths[1:], strict=True))
    train = 3 * flops_per_example * t.batch_size * (t.steps + 1)
    record = len(t.record) * flops_per_example * (point.data.n_train + 4 * t.batch_size)
    return EST_SECONDS_PER_POINT + _step_overhead(point) + (train + record) / EST_FLOPS


def _step_overhead(point: Point) -> float:
    """The per-step Python cost of a point's training loop (shared by an ensemble)."""
    return EST_SECONDS_PER_STEP_LAYER * (point.training.steps + 1) * point.arch.n_layers


def group_tasks(tasks: Sequence[Task], target_seconds: float = TARGET_TASK_SECONDS,
                ensemble: bool = False) -> list[tuple[Task, ...]]:
    """Tasks grouped by configuration (seeds of one config together) into chunks of about
    ``target_seconds`` of estimated work; ``target_seconds <= 0`` gives one task per group.
    With ``ensemble`` a group (by `ensemble_key`: configurations that differ only in
    sigma_w2/sigma_b2, and lr, together) trains as ensembles, sharing the
    per-step cost."""
    by_config: dict[str, list[Task]] = {}
    for task in tasks:
        key = ensemble_key(task.point) if ensemble else task.point.config_key()
        by_config.setdefault(key, []).append(task)
    groups: list[tuple[Task, ...]] = []
    for members in by_config.values():
        cost = estimated_seconds(members[0].point)
        shared = _step_overhead(members[0].point) if ensemble else 0.0
        fits = math.floor(max(target_seconds - shared, 0.0) / (cost - shared))
        size = 1 if target_seconds <= 0 else max(1, min(len(members), fits))
        groups.extend(_chunks(members, size))
    return groups


def pending_tasks(points: Iterable[Point], measure: Sequence[str], out_dir: Path
                  ) -> tuple[list[Task], int]:
    """Tasks for the points not done yet under ``out_dir`` (duplicates dropped), and how
    many were skipped as done. An unreadable point file is recomputed (with a warning)."""
    tasks, skipped, seen = [], 0, set()
    for point in points:
        if point.key() in seen:
            continue
        seen.add(point.key())
        if io.is_done(out_dir, point):
            skipped += 1
        else:
            tasks.append(Task(point, tuple(point.measure) or tuple(measure)))
    return tasks, skipped


def run_sweep(points: list[Point], measure: Sequence[str], out_dir: Path, name: str = "sweep",
              executor: Executor | None = None,
              progress: Callable[[int, int], None] | None = None,
              consolidate_store: bool = True, workers: int = 0, scheduler: str | None = None,
              task_seconds: float = TARGET_TASK_SECONDS, command: str = "",
              phase: Callable[[str], None] | None = None, sweep_toml: str = "",
              ensemble: bool = True) -> RunSummary:
    """Compute every pending point of ``points`` into ``out_dir``; see the module docstring.

    ``executor``: where tasks run (the caller closes it); by default one from
    `make_executor(workers, scheduler)`, created only when something is pending and closed
    at the end.
    ``progress(done, total)`` is called after each finished point (skipped ones count as done).
    ``task_seconds``: estimated work per task when grouping seeds for a cluster (0: never).
    ``command``: the command line, recorded in ``sweep.json`` and the consolidated store.
    ``phase(text)`` is called when a phase after the points begins (combining the point files
    into the store), so a caller can show that something is still happening.
    ``sweep_toml``: the sweep file as run (`gradstats.sweeps.sweeptoml.dumps`), written to
    ``DIR/sweep.toml`` when it differs from what is there (the last run's sweep).
    ``ensemble``: train the seeds of a configuration as batched ensembles where they apply
    (`compute_tasks`; the same results as one by one, to float round-off); False runs every
    point on its own.
    Raises `InputError` (nothing written) for a directory that is not one, holds another
    sweep or cannot be written; `RunStopped` when writing fails partway.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    paths.check_output_dir(out_dir)
    manifest = resultsdir.make_manifest(name, points, measure, command)
    resultsdir.check_belongs(out_dir, manifest)
    resultsdir.check_data_unchanged(out_dir, manifest)
    run = _Run(out_dir, progress)
    tasks, skipped = pending_tasks(points, measure, run.out_dir)
    run.summary = RunSummary(total=skipped + len(tasks), skipped=skipped, computed=0)
    stale_store = consolidate_store and not store_is_current(out_dir)
    # a finished sweep in a read-only directory still reads back without its sweep.toml
    toml_due = resultsdir.sweep_toml_changed(out_dir, sweep_toml) and \
        paths.writable(paths.existing_ancestor(out_dir))
    if tasks or stale_store or resultsdir.manifest_changed(out_dir, manifest) or toml_due:
        paths.require_writable(out_dir)
        resultsdir.create_layout(out_dir, (io.POINTS_DIR, locks.LOCKS_DIR))
        with run.stopping_on_write_errors(), locks.locked(locks.lock_path(out_dir, "manifest")):
            resultsdir.check_belongs(out_dir, manifest)  # again, now that no one else can write
            resultsdir.check_data_unchanged(out_dir, manifest)
            resultsdir.write_manifest(out_dir, manifest)
            resultsdir.write_sweep_toml(out_dir, sweep_toml)
            run.live = locks.hold_running(out_dir)  # others now see a live run
    owned = None
    try:
        run.report()
        while tasks:
            if executor is None:
                work = sum(estimated_seconds(t.point) for t in tasks)
                executor = owned = make_executor(
                    workers, scheduler, n_tasks=len(group_tasks(tasks, task_seconds)),
                    work_seconds=work)
            in_process = isinstance(executor, InProcessExecutor)
            if in_process and ensemble:
                groups = ensembles(tasks)  # one executor task per ensemble
            else:
                groups = group_tasks(tasks, 0.0 if in_process else task_seconds, ensemble)
            compute = functools.partial(compute_tasks, ensemble=ensemble)
            with run.stopping_on_write_errors():
                for outcomes in executor.map_unordered(compute, run.claim(groups),
                                                       on_error=failed_tasks):
                    for outcome in outcomes:
                        run.finish(outcome)
            tasks = run.wait_for_others()
    finally:
        run.release_all()
        if owned is not None:
            owned.close()
    if consolidate_store:
        run.summary.store = out_dir / io.CONSOLIDATED
        if run.summary.computed or stale_store:  # consolidate checks again under the lock
            if phase is not None:
                phase(f"combining {run.summary.total} point files into {io.CONSOLIDATED}")
            with run.stopping_on_write_errors(), \
                    locks.locked(locks.lock_path(run.out_dir, "consolidate")):
                run.summary.store = consolidate(run.out_dir, command=command)
    run.summary.seconds = time.perf_counter() - started
    return run.summary


@dataclass
class _Run:
    """The driver's state while a sweep runs: locks held, points deferred, counts."""

    out_dir: Path
    progress: Callable[[int, int], None] | None
    summary: RunSummary = field(default_factory=lambda: RunSummary(0, 0, 0))
    held: dict[str, locks.FileLock] = field(default_factory=dict)
    live: locks.FileLock | None = None  # `locks.hold_running`, from the manifest write on
    deferred: list[Task] = field(default_factory=list)

    def report(self) -> None:
        if self.progress:
            self.progress(self.summary.skipped + self.summary.computed, self.summary.total)

    def claim(self, groups: Iterable[tuple[Task, ...]]) -> Iterator[tuple[Task, ...]]:
        """Each group reduced to the points this run could lock and that are still not done;
        points locked by another run are deferred. Lazy: claims as the executor pulls."""
        for group in groups:
            mine = []
            for task in group:
                lock = locks.try_lock(self._lock_path(task.point))
                if lock is None:
                    self.deferred.append(task)
                elif io.is_done(self.out_dir, task.point):  # another run finished it
                    lock.release()
                    self.summary.skipped += 1
                    self.report()
                else:
                    self.held[task.point.key()] = lock
                    mine.append(task)
            if mine:
                yield tuple(mine)

    def finish(self, outcome: Outcome) -> None:
        """Write a finished point's file, then release its lock. A point whose record cannot
        be encoded at all is reported failed without a file (a rerun retries it)."""
        path = io.point_path(self.out_dir, outcome.point)
        data, error = outcome.encoded, outcome.error
        if not data:
            try:
                data = io.encode(outcome.dataset)
            except Exception as err:  # even the failure record cannot be encoded
                error = f"{error or 'its result'} (not saved: {type(err).__name__}: {err})"
        if data:
            io.write_bytes_atomic(data, path)
        lock = self.held.pop(outcome.point.key(), None)
        if lock is not None:
            lock.release()
        self.summary.computed += 1
        if not outcome.ok or not data:
            self.summary.failed.append((outcome.point, error))
        elif _diverged(outcome.dataset):
            self.summary.diverged.append(outcome.point)
        self.report()

    @contextlib.contextmanager
    def stopping_on_write_errors(self) -> Iterator[None]:
        """An OSError (disk full, directory gone read-only) becomes `RunStopped`."""
        try:
            yield
        except OSError as err:
            saved = self.summary.skipped + self.summary.computed
            raise RunStopped(f"{os_error_line(err)}; the run stopped with {saved} of "
                             f"{self.summary.total} points saved in {self.out_dir}; fix that "
                             "and rerun the same command to resume") from err

    def wait_for_others(self) -> list[Task]:
        """Wait while other runs hold deferred points; those they finished count as skipped.
        Returns the deferred points that became free but are not done (to compute here)."""
        while self.deferred:
            free = [t for t in self.deferred if not locks.is_locked(self._lock_path(t.point))]
            self.deferred = [t for t in self.deferred if t not in free]
            todo = []
            for task in free:
                if io.is_done(self.out_dir, task.point):
                    self.summary.skipped += 1
                    self.report()
                else:
                    todo.append(task)
            if todo:
                return todo + self._take_deferred()
            if self.deferred:
                time.sleep(WAIT_POLL_SECONDS)
        return []

    def release_all(self) -> None:
        """Every point lock, then the live-run lock (all our points are written by then)."""
        for lock in self.held.values():
            lock.release()
        self.held.clear()
        if self.live is not None:
            self.live.release()
            self.live = None

    def _take_deferred(self) -> list[Task]:
        rest, self.deferred = self.deferred, []
        return rest

    def _lock_path(self, point: Point) -> Path:
        return locks.lock_path(self.out_dir, point.key())


def _diverged(dataset: xr.Dataset) -> bool:
    """Whether a point's dataset records that its network diverged."""
    if "diverged" not in dataset:
        return False
    try:
        return bool(float(dataset["diverged"].max()) > 0)
    except (TypeError, ValueError):
        return False


FINGERPRINT_FILE = io.STORE_META_PREFIX + "points"
CONTENT_FINGERPRINT_FILE = io.STORE_META_PREFIX + "points-content"


def store_is_current(out_dir: Path) -> bool:
    """Whether ``DIR/sweep.zarr`` was built from exactly the current point files and is
    intact: its files as written, byte for byte (a removed variable or a changed chunk makes
    it stale; hashing a store costs about 2 ms per MB). The point files are matched by
    name, size and modification time, and where those differ (a copy that did not keep the
    times, ``cp -r``; a ``touch``) by their content."""
    target = Path(out_dir) / io.CONSOLIDATED
    if not target.is_dir():
        return False
    files = io.point_files(out_dir)
    same = _stored_fingerprint(target) == _files_fingerprint(files) or (
        _stored_fingerprint(target, CONTENT_FINGERPRINT_FILE) == _content_fingerprint(files))
    return same and not io.verify_store(target, content=True)


def consolidate(out_dir: Path, command: str = "") -> Path | None:
    """Combine every good point file into ``DIR/sweep.zarr`` (replaced by renames).

    Call it under the ``consolidate`` lock (`run_sweep` does) when runs may finish together.
    Skipped when the store is current (`store_is_current`: a rerun that computed nothing
    rewrites nothing); a damaged store is rebuilt.
    """
    target = out_dir / io.CONSOLIDATED
    _remove_stale_temporaries(target)
    if store_is_current(out_dir):
        return target
    files = io.point_files(out_dir)
    fingerprint, content = _files_fingerprint(files), _content_fingerprint(files)
    datasets = io.load_point_files(out_dir)
    if not datasets:
        return None
    combined = io.combine(datasets, command=command or None)

    def write(tmp: Path) -> None:
        io.to_zarr(combined, tmp)
        (tmp / FINGERPRINT_FILE).write_text(fingerprint)
        (tmp / CONTENT_FINGERPRINT_FILE).write_text(content)

    io.replace_dir_atomically(target, write)
    return target


def _files_fingerprint(files: list[Path]) -> str:
    """Digest of the point files' names, sizes and modification times."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _content_fingerprint(files: list[Path]) -> str:
    """Digest of the point files' names and contents (read whole: about 1 ms per MB)."""
    import hashlib

    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}|{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _remove_stale_temporaries(target: Path) -> None:
    """Remove what a consolidation killed mid-write left beside ``target``
    (`io.replace_dir_atomically`'s ``.sweep.zarr.*.tmp`` and ``*.tmp.old``). Call it under
    the consolidate lock: no live writer owns one then."""
    import shutil

    for stale in target.parent.glob(f".{target.name}.*.tmp*"):
        if stale.is_dir() and (stale.name.endswith(".tmp") or stale.name.endswith(".tmp.old")):
            shutil.rmtree(stale, ignore_errors=True)


def _stored_fingerprint(store: Path, name: str = FINGERPRINT_FILE) -> str | None:
    """A fingerprint of the point files a store was built from (a file inside the store)."""
    try:
        return (store / name).read_text()
    except OSError:
        return None


def _log_computation(point: Point) -> None:
    path = os.environ.get(COMPUTE_LOG_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{point.key()} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
