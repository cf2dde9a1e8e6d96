"""Consoles of the command line (rich only: no torch, jax or xarray here).

- `stdout_console`: tables and lines of a command. On a terminal it is rich's usual console;
  into a file or a pipe it is `PIPE_WIDTH` columns wide, so that tables are drawn at their
  natural width and no number or name is cut with an ellipsis, and lines are not wrapped.
- `status`: a spinner with a line of text on stderr while a phase runs (comparing, combining
  point files, computing theory); nothing at all when stderr is not a terminal.
- `plural`: "1 point", "2 points".
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

# Columns of the console when stdout is not a terminal: wide enough that no table is cut.
PIPE_WIDTH = 10_000


def stdout_console() -> Console:
    """The console for a command's output, created when the command runs (so it sees the
    stdout of that moment: a terminal, a file, a pipe, a test's capture)."""
    stream = sys.stdout
    if _isatty(stream):
        return Console(file=stream)
    return Console(file=stream, width=PIPE_WIDTH, soft_wrap=False)


def stderr_console() -> Console:
    """The console for progress bars and spinners (stderr)."""
    return Console(file=sys.stderr, stderr=True)


@contextmanager
def status(text: str, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Show ``text`` with a spinner on stderr while the block runs; yields ``update(text)``.

    Draws nothing when disabled or when stderr is not a terminal (a pipe or a log file gets
    no spinner frames). The spinner is removed when the block ends.
    """
    console = stderr_console()
    if not enabled or not console.is_terminal:
        yield lambda _text: None
        return
    with console.status(text, spinner="dots") as spinner:
        yield lambda new: spinner.update(new)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun in its number: "1 point", "3 points", "0 points"."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
