"""The one place that turns a failure into one line on stderr and an exit code.

Exit codes (docs/errors.md):

- 0: done.
- 1: the command ran but some of its work failed: failed points (each listed), a run that
  stopped partway (disk full, I/O error) and resumes when rerun, a results check that found
  problems, an internal error.
- 2: an input error (a sweep file, an option, a data file, a results directory, an output
  path): nothing was computed or written.
- 130: interrupted (Ctrl-C); finished points are kept and a rerun resumes (`Interrupted`:
  a run's line says how many points are saved and the command that resumes).
- 143: terminated (SIGTERM: ``kill PID``, a batch scheduler's time limit); the same as
  130, with "terminated" for "interrupted".

`run_guarded` runs a command and maps whatever it raises through `describe`. Warnings of
gradstats itself (UserWarnings raised from its code) are held back and printed after the
command, one line each, unless it ended in an error (then the error line is the only
output on stderr); warnings of other libraries are not printed. ``GRADSTATS_TRACEBACK=1``
prints the traceback of an internal error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import TextIO

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process ended by it
TRACEBACK_ENV = "GRADSTATS_TRACEBACK"
# Warnings raised from code under this directory are gradstats' own (printed after a command).
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
MAX_LINE = 1000
INTERRUPTED = "interrupted; no file was left half-written"


class Terminated(KeyboardInterrupt):
    """Raised by SIGTERM inside `interrupt_latch`: a KeyboardInterrupt, so every path that
    stops cleanly on Ctrl-C stops the same way, reported as exit 143."""


class InputError(Exception):
    """A command-line, sweep-file, data-file or output-path error: one line, exit code 2."""


class RunStopped(Exception):
    """A run that stopped partway (the disk filled up, a write failed): exit code 1.

    Everything written before is complete and kept; a rerun resumes from there.
    """


def one_line(text: object) -> str:
    """``text`` as a single line: whitespace runs (newlines included) become one space."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def os_error_line(err: OSError) -> str:
    """'PATH: problem' for an OSError (the path it names, its strerror)."""
    problem = err.strerror or str(err) or type(err).__name__
    paths = [p for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(map(str, paths))}: {problem}" if paths else problem


def describe(err: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception that ended a command."""
    import typer

    if isinstance(err, InputError):
        return EXIT_INPUT_ERROR, one_line(err)
    if isinstance(err, RunStopped):
        return EXIT_FAILED, one_line(err)
    if isinstance(err, Interrupted):
        return err.exit_code, one_line(err)
    if isinstance(err, Terminated):
        return EXIT_TERMINATED, INTERRUPTED.replace("interrupted", "terminated", 1)
    if isinstance(err, KeyboardInterrupt | typer.Abort):
        return EXIT_INTERRUPTED, INTERRUPTED
    if isinstance(err, typer.TyperException):  # click usage errors: bad option, missing argument
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        message = message.replace("Value error, ", "")  # pydantic's prefix on a bad choice
        hint = _help_hint(err)
        return getattr(err, "exit_code", EXIT_INPUT_ERROR) or EXIT_INPUT_ERROR, one_line(
            message + hint)
    if isinstance(err, OSError):
        return EXIT_INPUT_ERROR, one_line(os_error_line(err))
    if isinstance(err, MemoryError):
        return EXIT_FAILED, "out of memory; see docs/errors.md on size limits"
    return EXIT_FAILED, one_line(f"internal error: {type(err).__name__}: {err} "
                                 f"(set {TRACEBACK_ENV}=1 to see where)")


_interrupt_pending = threading.Event()
_terminated = threading.Event()


def _on_sigint(signum: int, frame: object) -> None:
    _interrupt_pending.set()
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: object) -> None:
    _interrupt_pending.set()
    _terminated.set()
    raise Terminated


@contextlib.contextmanager
def interrupt_latch() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt as usual and is also remembered: one that
    lands in a callback whose exceptions Python ignores (JAX's garbage-collection callback,
    a ``__del__``: "Exception ignored in ...") is raised again by the next
    `raise_if_interrupted`, so the command stops instead of finishing. SIGTERM does the same
    with `Terminated` (Python's default would end the process without a word). The previous
    handlers are restored afterwards; off the main thread (where signals cannot be handled)
    a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _interrupt_pending.clear()
    _terminated.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
        _interrupt_pending.clear()
        _terminated.clear()


def raise_if_interrupted() -> None:
    """KeyboardInterrupt if Ctrl-C came since `interrupt_latch` began (see there); called
    between units of work (after each point, between comparison rows)."""
    if _interrupt_pending.is_set():
        raise Terminated if _terminated.is_set() else KeyboardInterrupt


def run_guarded(command: Callable[[], object], stderr: TextIO | None = None) -> int:
    """Run ``command``; return its exit code. A failure prints one line ``error: ...``.

    ``command`` may return an exit code (None is 0) or raise ``SystemExit``.
    """
    stream = stderr or sys.stderr
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # recorded once per place, none printed now
        try:
            result = command()
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except BaseException as err:  # the point of this module: nothing escapes unreported
            code, line = describe(err)
            if os.environ.get(TRACEBACK_ENV) and code == EXIT_FAILED:
                traceback.print_exception(err, file=stream)
            stream.write(f"error: {line}\n")
            stream.flush()
            return code
        else:
            code = _exit_code(result)
            if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent Exit(130)
                stream.write(f"error: {INTERRUPTED}\n")
                stream.flush()
                return code
    ours = [w for w in caught if issubclass(w.category, UserWarning)
            and os.path.abspath(w.filename).startswith(PACKAGE_DIR)]
    for message in dict.fromkeys(one_line(w.message) for w in ours):
        stream.write(f"warning: {message}\n")
    stream.flush()
    return code


def _exit_code(value: object) -> int:
    if value is None:
        return EXIT_OK
    if isinstance(value, int):
        return value
    sys.stderr.write(f"error: {one_line(value)}\n")  # sys.exit("text") convention
    return EXIT_FAILED


def _help_hint(err: BaseException) -> str:
    ctx = getattr(err, "ctx", None)
    command = getattr(getattr(ctx, "command", None), "name", None)
    return f" (see gradstats {command} --help)" if command and ctx.parent is not None else (
        " (see gradstats --help)")


class Interrupted(Exception):
    """A run stopped by Ctrl-C (exit 130) or SIGTERM (``exit_code`` 143); its message says
    what is saved and how to resume."""

    def __init__(self, message: str, exit_code: int = EXIT_INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def after(cls, signal_error: BaseException, message: str) -> Interrupted:
        """The Interrupted that reports ``message`` (written with "interrupted") for the
        KeyboardInterrupt or `Terminated` that stopped the command."""
        if isinstance(signal_error, Terminated):
            return cls(message.replace("interrupted", "terminated", 1), EXIT_TERMINATED)
        return cls(message)
