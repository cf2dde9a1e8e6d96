"""A rich progress bar for sweeps: points done / total, points per second, ETA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@contextmanager
def progress_bar(enabled: bool = True, console: Console | None = None
                 ) -> Iterator[Callable[[int, int], None]]:
    """Yields ``update(done, total)``; draws nothing when disabled or not a terminal."""
    if not enabled or not (console or Console()).is_terminal:
        yield lambda done, total: None
        return
    progress = Progress(TextColumn("points"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                        console=console, transient=False)
    task_id = None
    first_done = None

    def update(done: int, total: int) -> None:
        nonlocal task_id, first_done
        if task_id is None:  # skipped points count as done but not toward the rate
            first_done = done
            task_id = progress.add_task("sweep", total=total - first_done)
        progress.update(task_id, completed=done - first_done)

    with progress:
        yield update
