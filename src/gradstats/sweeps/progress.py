"""A rich progress bar for sweeps: points done / total, points per second, ETA; then a
spinner for the phases after the points (combining the point files)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Points per second over the run so far."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- pt/s" if speed is None else f"{speed:.2f} pt/s", style="cyan")


class SweepProgress:
    """``update(done, total)`` after each point and ``phase(text)`` for a later phase.

    Remembers the last counts (``done``, ``total``: what an interrupted run has saved). On a
    terminal the bar shows points done / total; ``phase`` ends the bar and shows ``text``
    with a spinner until the next phase or the end of `progress_bar`'s block.
    """

    def __init__(self, progress: Progress | None = None, console: Console | None = None) -> None:
        self.done = 0
        self.total = 0
        self._progress = progress
        self._console = console
        self._task_id = None
        self._first_done = 0
        self._status = None

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self._progress is None:
            return
        if self._task_id is None:  # skipped points count as done but not toward the rate
            self._first_done = done
            self._task_id = self._progress.add_task("sweep", total=total - done)
        self._progress.update(self._task_id, completed=done - self._first_done)

    def phase(self, text: str) -> None:
        if self._progress is None:
            return
        if self._status is None:
            self._progress.stop()
            self._status = self._console.status(text, spinner="dots")
            self._status.start()
        else:
            self._status.update(text)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextmanager
def progress_bar(enabled: bool = True, console: Console | None = None
                 ) -> Iterator[SweepProgress]:
    """Yields a `SweepProgress`; draws nothing when disabled or not a terminal."""
    console = console or Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield SweepProgress()
        return
    progress = Progress(TextColumn("points"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                        console=console, transient=False)
    tracker = SweepProgress(progress, console)
    try:
        with progress:
            yield tracker
    finally:
        tracker.close()
