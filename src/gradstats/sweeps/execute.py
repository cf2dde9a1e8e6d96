"""Run a sweep's points and write each one's file as it finishes (resume by content key).

`run_sweep` skips points whose file exists and loads, computes the rest through an
executor, writes each result atomically as soon as it arrives, records a point that raised
as failed (the sweep goes on), and ends by consolidating every point file into one store.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from gradstats.results import io
from gradstats.spec import Point


@dataclass(frozen=True)
class Task:
    """One unit of work: a point and the estimator groups to measure."""

    point: Point
    measure: tuple[str, ...]


@dataclass
class Outcome:
    """What a task produced: the point's dataset (ok or failure record) and its status."""

    point: Point
    dataset: xr.Dataset
    ok: bool
    error: str = ""


def compute_point(task: Task) -> Outcome:
    """Simulate one point and turn it into its dataset; an exception becomes a failure record."""
    from gradstats.results.schema import failure_dataset, record_to_dataset
    from gradstats.simulate.training import simulate_point

    try:
        record = simulate_point(task.point, task.measure)
        return Outcome(task.point, record_to_dataset(record), ok=True)
    except Exception as err:  # a point that raises is recorded, the sweep goes on
        message = f"{type(err).__name__}: {err}"
        detail = traceback.format_exc(limit=5)
        return Outcome(task.point, failure_dataset(task.point, f"{message}\n{detail}"),
                       ok=False, error=message)


class InProcessExecutor:
    """Runs tasks one after another in this process (``--workers 0``; for debugging)."""

    def map_unordered(self, fn: Callable[[Task], Outcome], tasks: Sequence[Task]
                      ) -> Iterator[Outcome]:
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class RunSummary:
    """How a run went: counts, failed points with their errors, the consolidated store."""

    total: int
    skipped: int
    computed: int
    failed: list[tuple[Point, str]] = field(default_factory=list)
    store: Path | None = None
    seconds: float = 0.0


def pending_tasks(points: Iterable[Point], measure: Sequence[str], out_dir: Path
                  ) -> tuple[list[Task], int]:
    """Tasks for the points not done yet under ``out_dir``, and how many were skipped."""
    tasks, skipped = [], 0
    for point in points:
        if io.is_done(out_dir, point):
            skipped += 1
        else:
            tasks.append(Task(point, tuple(measure)))
    return tasks, skipped


def run_sweep(points: list[Point], measure: Sequence[str], out_dir: Path, name: str = "sweep",
              executor=None, progress: Callable[[int, int], None] | None = None,
              consolidate_store: bool = True) -> RunSummary:
    """Compute every pending point of ``points`` into ``out_dir``; see the module docstring.

    ``progress(done, total)`` is called after each finished point (skipped ones count as done).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    tasks, skipped = pending_tasks(points, measure, out_dir)
    write_manifest(out_dir, name, points, measure)
    executor = executor or InProcessExecutor()
    summary = RunSummary(total=len(points), skipped=skipped, computed=0)
    if progress:
        progress(skipped, len(points))
    try:
        for outcome in executor.map_unordered(compute_point, tasks):
            io.write_atomic(outcome.dataset, io.point_path(out_dir, outcome.point))
            summary.computed += 1
            if not outcome.ok:
                summary.failed.append((outcome.point, outcome.error))
            if progress:
                progress(skipped + summary.computed, len(points))
    finally:
        executor.close()
    if consolidate_store:
        summary.store = consolidate(out_dir)
    summary.seconds = time.perf_counter() - started
    return summary


def write_manifest(out_dir: Path, name: str, points: list[Point], measure: Sequence[str]) -> None:
    """``sweep.json``: the sweep's name, measure list and every point (rewritten atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "measure": list(measure),
                "points": [{"key": p.key(), "point": p.to_dict()} for p in points]}
    tmp = out_dir / ".sweep.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out_dir / "sweep.json")


def consolidate(out_dir: Path) -> Path | None:
    """Combine every readable point file into ``DIR/sweep.zarr`` (replaced atomically)."""
    datasets = [ds for ds in map(io.load_point, io.point_files(out_dir)) if ds is not None]
    if not datasets:
        return None
    combined = io.combine(datasets)
    target = out_dir / io.CONSOLIDATED
    tmp = out_dir / f".{io.CONSOLIDATED}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    io.to_zarr(combined, tmp)
    old = out_dir / f".{io.CONSOLIDATED}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
