"""`gradstats.errors`: every exception maps to one line and an exit code; warnings of
gradstats are printed after a command that did not fail, others never."""

from __future__ import annotations

import errno
import io
import sys
import warnings

import pytest

from gradstats import errors
from gradstats.spec import SpecError
from gradstats.sweeps.sweepfile import SweepError


def guarded(command) -> tuple[int, list[str]]:
    stream = io.StringIO()
    code = errors.run_guarded(command, stderr=stream)
    return code, stream.getvalue().splitlines()


def raising(err: BaseException):
    def command():
        raise err
    return command


@pytest.mark.parametrize(("err", "code", "line"), [
    (errors.InputError("--out: x is a file"), 2, "error: --out: x is a file"),
    (SweepError("grid.width[0]: bad"), 2, "error: grid.width[0]: bad"),
    (SpecError("width", "must be >= 1"), 2, "error: width: must be >= 1"),
    (errors.RunStopped("disk full; rerun"), 1, "error: disk full; rerun"),
    (OSError(errno.EROFS, "Read-only file system", "/r/x.nc"), 2,
     "error: /r/x.nc: Read-only file system"),
    (OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b"), 2,
     "error: /a -> /b: Invalid cross-device link"),
    (KeyboardInterrupt(), 130, "error: interrupted; no file was left half-written"),
    (errors.Terminated(), 143, "error: terminated; no file was left half-written"),
    (errors.Interrupted.after(errors.Terminated(), "interrupted; 3 of 8 points saved"), 143,
     "error: terminated; 3 of 8 points saved"),
    (errors.Interrupted.after(KeyboardInterrupt(), "interrupted; 3 of 8 points saved"), 130,
     "error: interrupted; 3 of 8 points saved"),
    (MemoryError(), 1, "error: out of memory; see docs/errors.md on size limits"),
    (RuntimeError("line one\nline two"), 1,
     "error: internal error: RuntimeError: line one line two (set GRADSTATS_TRACEBACK=1 to see "
     "where)"),
])
def test_each_exception_becomes_one_line_and_its_exit_code(err, code, line):
    assert guarded(raising(err)) == (code, [line])


def test_input_errors_are_one_class():
    assert issubclass(SweepError, errors.InputError) and issubclass(SpecError, errors.InputError)
    assert issubclass(SweepError, ValueError) and issubclass(SpecError, ValueError)


def test_a_long_message_is_cut_to_one_bounded_line():
    code, lines = guarded(raising(errors.InputError("x" * 5000)))
    assert code == 2 and len(lines) == 1 and len(lines[0]) == len("error: ") + errors.MAX_LINE


def test_system_exit_codes_and_return_values_pass_through():
    assert guarded(lambda: sys.exit(1)) == (1, [])
    assert guarded(lambda: None) == (0, [])
    assert guarded(lambda: 0) == (0, [])


def test_own_warnings_are_printed_after_success_once_each_and_others_never():
    def command():
        for _ in range(3):
            warnings.warn("point file k.nc is unreadable (OSError); it will be recomputed",
                          UserWarning, stacklevel=1)
        warnings.warn("numpy says something", RuntimeWarning, stacklevel=1)
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)

    # This test file is not gradstats' code: pretend it is, as a warning's origin decides.
    saved = errors.PACKAGE_DIR
    errors.PACKAGE_DIR = __file__.rsplit("/", 1)[0]
    try:
        assert guarded(command) == (0, [
            "warning: point file k.nc is unreadable (OSError); it will be recomputed"])
    finally:
        errors.PACKAGE_DIR = saved


def test_a_warning_from_outside_gradstats_is_not_printed():
    def command():
        warnings.warn("from a test module", UserWarning, stacklevel=1)

    assert guarded(command) == (0, [])


def test_warnings_are_dropped_when_the_command_fails():
    def command():
        from gradstats.results import io as results_io

        results_io.load_point("/nonexistent/dir/x.nc")  # absent: no warning
        warnings.warn_explicit("held back", UserWarning, errors.__file__, 1)
        raise errors.InputError("the only line")

    assert guarded(command) == (2, ["error: the only line"])


def test_traceback_on_request_for_internal_errors(monkeypatch):
    monkeypatch.setenv(errors.TRACEBACK_ENV, "1")
    code, lines = guarded(raising(ZeroDivisionError("bug")))
    assert code == 1 and lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("error: internal error: ZeroDivisionError: bug")
    code, lines = guarded(raising(errors.InputError("bad")))  # input errors: never a traceback
    assert (code, lines) == (2, ["error: bad"])


def test_ctrl_c_in_a_command_is_one_line_with_exit_130(tmp_path, monkeypatch, capsys):
    from gradstats.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("gradstats.results.io.load_results", interrupted)
    with pytest.raises(SystemExit) as exit_:
        main(["show", str(tmp_path)])
    assert exit_.value.code == 130
    assert capsys.readouterr().err.splitlines() == [f"error: {errors.INTERRUPTED}"]


def test_sigterm_inside_the_latch_raises_terminated_and_is_remembered():
    import os
    import signal
    import time

    with errors.interrupt_latch():
        with pytest.raises(errors.Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        with pytest.raises(errors.Terminated):  # swallowed above? raised again between units
            errors.raise_if_interrupted()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_dask_loop_defers_sigterm_like_ctrl_c():
    import os
    import signal

    from gradstats.sweeps.executors import sigint_deferred

    with sigint_deferred() as interrupted:
        assert not interrupted()
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupted() and isinstance(interrupted.error(), errors.Terminated)
    with sigint_deferred() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupted() and type(interrupted.error()) is KeyboardInterrupt
