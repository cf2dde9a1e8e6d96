"""The command line guides its user (issue 17, terminal part): --version, choices, one line
per error, full-width output when piped, a run summary that names diverged points and says
what to do next, one line and exit 130 on Ctrl-C with the command that resumes."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gradstats
from gradstats import errors
from gradstats.cli import main

SRC = str(Path(gradstats.__file__).resolve().parents[1])

# sigma_w2 = 50 at depth 10 with lr 10 blows up within 20 steps; sigma_w2 = 1 does not
# (as in tests/sweeps/test_faults.py).
DIVERGING = """
name = "boom"
[grid]
sigma_w2 = [50.0, 1.0]
[fixed]
depth = 10
width = 32
lr = 10.0
steps = 20
record = [0, 20]
input_dim = 8
n_train = 32
batch_size = 8
"""


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory):
    """A finished 2-point run whose sigma_w2 = 50 point diverged: (dir, code, stdout, err)."""
    root = tmp_path_factory.mktemp("boom")
    sweep = root / "boom.toml"
    sweep.write_text(DIVERGING)
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()  # capsys is function-scoped
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(["run", str(sweep), "--out", str(out), "-w", "0", "--no-compare"])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return out, code, stdout.getvalue(), stderr.getvalue()


# --- version, choices, help ----------------------------------------------------------------

def test_version_prints_the_package_version(capsys):
    code, out, err = _run(["--version"], capsys)
    assert (code, out, err) == (0, f"gradstats {gradstats.__version__}\n", "")


@pytest.mark.parametrize("argv0", ["gradstats", ""])  # "" : how some runners start python
def test_shell_completion_script_is_offered(capsys, monkeypatch, argv0):
    monkeypatch.setattr("sys.argv", [argv0])
    # typer detects the shell from the parent processes (shellingham), which depends on how
    # the tests were started: fix it, the test is about gradstats offering completion
    monkeypatch.setattr("typer.completion._get_shell_name", lambda: "bash")
    code, out, err = _run(["--show-completion"], capsys)
    assert code == 0 and "COMPREPLY" in out and "complete " in out, err


@pytest.mark.parametrize("argv, option, bad", [
    (["plot", "results", "--kind", "bogus"], "--kind", "bogus"),
    (["plot", "results", "--format", "tiff"], "--format", "tiff"),
    (["export", "results", "--format", "xlsx"], "--format", "xlsx"),
    (["theory", "--activation", "swish"], "--activation", "swish"),
    (["theory", "--parameterization", "mu"], "--parameterization", "mu"),
])
def test_a_bad_choice_exits_2_with_one_line_listing_the_choices(capsys, tmp_path, monkeypatch,
                                                                argv, option, bad):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: Invalid value for '{option}'")
    assert f"'{bad}' is not one of" in lines[0] and "Value error" not in lines[0]
    assert f"(see gradstats {argv[0]} --help)" in lines[0]
    assert not list(tmp_path.iterdir())  # nothing written


def test_plot_kind_choices_are_the_plot_kinds():
    from gradstats.results import plots
    from gradstats.results.plot_command import KIND_NAMES

    assert KIND_NAMES == tuple(plots.KINDS)


def test_plot_format_choices_are_the_plot_formats():
    from gradstats.results import plots
    from gradstats.results.plot_command import FORMAT_NAMES

    assert FORMAT_NAMES == plots.common.FORMATS


@pytest.mark.parametrize("command", ["run", "presets", "show", "export", "theory", "compare",
                                     "plot", "report", "validity"])
def test_help_is_written_for_users(capsys, command):
    code, out, _ = _run([command, "--help"], capsys)
    assert code == 0 and "Usage" in out
    assert "``" not in out and "InputError" not in out and "raise" not in out


# --- --set ---------------------------------------------------------------------------------

def test_an_axis_set_twice_with_different_values_exits_2_naming_it(tmp_path, capsys):
    code, out, err = _run(["run", "quickstart", "--set", "width=8", "--set", "width=16",
                           "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.splitlines() == ["error: --set width: given twice with different values (8 and "
                                "16); give it once (several values: AXIS=V1,V2)"]
    assert not (tmp_path / "o").exists()


def test_an_axis_set_twice_with_the_same_values_is_accepted():
    from gradstats.sweeps import apply_overrides, resolve_sweep

    sweep = resolve_sweep("quickstart")
    twice = apply_overrides(sweep, ["width=8,16", "depth=2", "width=8, 16"])
    assert twice == apply_overrides(sweep, ["width=8,16", "depth=2"])


# --- output into a pipe or a file ------------------------------------------------------------

def test_a_table_into_a_pipe_is_drawn_whole(tmp_path):
    number = "10^(-0.912345678901234567890 ± 0.4987654321)"
    code = ("from rich.table import Table; from gradstats.terminal import stdout_console; "
            "t = Table('configuration', 'ratio', 'another long header of a column', 'x' * 60); "
            f"t.add_row('width=8, depth=2, sigma_w2=1.5', {number!r}, 'y' * 50, 'z' * 70); "
            "stdout_console().print(t)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC, "COLUMNS": "80"}, check=True)
    assert number in run.stdout and "z" * 70 in run.stdout
    assert "…" not in run.stdout
    assert max(len(line) for line in run.stdout.splitlines()) > 80


def test_run_and_compare_output_into_a_pipe_cuts_nothing(diverged_run, capsys):
    out_dir, _, stdout, _ = diverged_run
    assert "…" not in stdout and "10^(" in stdout
    code, out, _ = _run(["compare", str(out_dir)], capsys)
    assert code == 0 and "theory vs measurement" in out and "…" not in out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert rows and all(line.rstrip().endswith("│") for line in rows)  # one line per row
    skipped = [line for line in out.splitlines() if line.startswith("skipped ")]
    names = [n for line in skipped for n in line.removeprefix("skipped ").split(": ")[0]
             .split(", ")]
    assert len(names) == len(set(names))  # each skipped comparison named once
    tests = [line for line in out.splitlines() if line.startswith("tests: ")]
    assert len(tests) == 1 and "log_ratio = Student-t" in tests[0] and "z_crit" not in out


def test_skipped_notes_are_one_line_per_reason_each_comparison_once():
    from gradstats.results.compare_command import skipped_lines

    notes = ["a: needs x", "b: needs x", "a: y is not in the results", "c, d: needs [z]",
             "no stored predictions: rerun"]
    assert skipped_lines(notes) == ["a, b: needs x", r"c, d: needs \[z]",
                                    "no stored predictions: rerun"]


# --- the run summary -------------------------------------------------------------------------

def test_the_run_summary_names_diverged_points_and_what_to_do_next(diverged_run):
    out_dir, code, stdout, err = diverged_run
    assert code == 0 and err == ""
    assert "2 points: 2 computed, 0 already done, 1 diverged, 0 failed" in stdout
    assert "diverged (recorded; inf/nan during training): sigma_w2=50 (seed 0)\n" in stdout
    assert f"results: {out_dir} (points/, sweep.zarr)" in stdout
    assert f"next: gradstats compare {out_dir}" in stdout
    assert f"gradstats plot {out_dir} --kind summary" in stdout


def test_counts_are_singular_for_one(capsys):
    from gradstats.terminal import plural

    assert (plural(1, "point"), plural(0, "point"), plural(3, "point")) == (
        "1 point", "0 points", "3 points")


def test_named_points_stop_after_a_few_and_say_how_many_more():
    from gradstats.cli import _named
    from gradstats.sweeps import expand, parse_sweep

    points = expand(parse_sweep({"name": "w", "seeds": 2, "grid": {"width": [4, 8, 16]},
                                 "fixed": {"depth": 1, "input_dim": 4, "n_train": 8,
                                           "batch_size": 4, "steps": 1}}))
    assert len(points) == 6
    text = _named(points, points)
    assert text.count("(seed ") == 3 and text.endswith("; and 3 more")
    assert text.startswith("width=4 (seed 0); ")


# --- theory at criticality -----------------------------------------------------------------

def test_theory_prints_depth_scales_at_criticality_without_round_off_noise(capsys):
    # relu: chi_1 = sigma_w2 / 2 = 1.00005, inside the critical tolerance; -1/ln chi_1 = -20000
    code, out, _ = _run(["theory", "--sigma-w2", "2.0001"], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if "xi_grad" in line)
    assert "> 1000 (critical)" in row and "-2" not in row
    assert "critical" in next(line for line in out.splitlines() if "phase" in line)


def test_depth_scale_formatting():
    from gradstats.theory.command import _depth_scale

    assert _depth_scale(-103413.0, "critical") == "> 1000 (critical)"
    assert _depth_scale(float("inf"), "critical") == "inf (critical)"
    assert _depth_scale(-12.5, "chaotic") == "-12.5"
    assert _depth_scale(3.0, "critical") == "3"


# --- Ctrl-C ----------------------------------------------------------------------------------

def _sweep_file(tmp_path: Path, seeds: int, widths: tuple[int, ...] = (16,),
                steps: int = 30) -> Path:
    """A sweep of small relu MLPs: ``seeds`` seeds at each of ``widths``. The seeds of one
    width train as one ensemble, so their point files appear together."""
    path = tmp_path / "many.toml"
    path.write_text(f'name = "many"\nseeds = {seeds}\n[grid]\nwidth = {list(widths)}\n'
                    "[fixed]\ndepth = 2\ninput_dim = 8\nn_train = 32\nbatch_size = 8\n"
                    f"steps = {steps}\nrecord = [0, {steps}]\n")
    return path


def _interrupt_after_first_point(argv: list[str], out: Path, prelude: str = "",
                                 timeout: float = 120, sig: int = signal.SIGINT
                                 ) -> subprocess.CompletedProcess:
    """Run ``gradstats ARGV`` in a process group of its own, send SIGINT to the group (as a
    terminal's Ctrl-C does) once a point file exists, and wait for it to end. Another
    ``sig`` (SIGTERM, as ``kill PID`` sends) goes to the process alone."""
    code = f"{prelude}from gradstats.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.monotonic() + timeout
    try:
        while not list((out / "points").glob("*.nc")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no point file appeared"
            time.sleep(0.02)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _assert_one_interrupted_line(done: subprocess.CompletedProcess, out: Path, total: int,
                                 code: int = 130, word: str = "interrupted") -> tuple[int, str]:
    """Exit ``code``, exactly one non-empty line on stderr, no traceback; (saved, resume
    command)."""
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    line = lines[0]
    assert line.startswith(f"error: {word}; ") and f" of {total} points saved in {out}; " in line
    saved = int(line.removeprefix(f"error: {word}; ").split(" of ")[0])
    assert 1 <= saved < total and len(list((out / "points").glob("*.nc"))) == saved
    command = line.split("; resume with: ")[1]
    assert command.startswith("gradstats run ") and str(out) in command
    return saved, command


def test_ctrl_c_ends_with_one_line_exit_130_and_the_resume_command(tmp_path, capsys):
    out = tmp_path / "out"
    # three ensembles of 4 seeds, each long enough that Ctrl-C lands before the last is saved
    sweep = _sweep_file(tmp_path, seeds=4, widths=(16, 24, 32), steps=300)
    done = _interrupt_after_first_point(["run", str(sweep), "-o", str(out), "-w", "0",
                                         "--no-compare"], out)
    saved, command = _assert_one_interrupted_line(done, out, total=12)
    assert shlex.split(command) == ["gradstats", "run", str(sweep), "-o", str(out), "-w", "0",
                                    "--no-compare"]
    code, stdout, err = _run([*shlex.split(command)[1:], "-q"], capsys)  # resume
    assert (code, err) == (0, "")
    assert f"12 points: {12 - saved} computed, {saved} already done" in stdout
    assert len(list((out / "points").glob("*.nc"))) == 12


def test_sigterm_ends_with_one_line_exit_143_and_a_rerun_resumes(tmp_path, capsys):
    """``kill PID`` (or a batch scheduler's time limit) stops the run like Ctrl-C does: the
    saved points are kept, one line says so, exit 143 (Python's default: silence)."""
    out = tmp_path / "out"
    sweep = _sweep_file(tmp_path, seeds=4, widths=(16, 24, 32), steps=300)
    done = _interrupt_after_first_point(["run", str(sweep), "-o", str(out), "-w", "0",
                                         "--no-compare"], out, sig=signal.SIGTERM)
    saved, command = _assert_one_interrupted_line(done, out, total=12, code=143,
                                                  word="terminated")
    code, stdout, err = _run([*shlex.split(command)[1:], "-q"], capsys)
    assert (code, err) == (0, "")
    assert f"12 points: {12 - saved} computed, {saved} already done" in stdout


def test_a_ctrl_c_that_a_callback_swallows_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """SIGINT landing where Python ignores exceptions (JAX's gc callback: "Exception ignored
    in ...") is remembered and raised after the point: exit 130, not a finished run."""
    import gradstats.simulate.training as training

    real = training.simulate_point

    def swallowing(point, measure=(), on_step=None):
        if point.seed == 0:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.5)  # the handler runs here and its KeyboardInterrupt is lost
            except KeyboardInterrupt:
                pass
        return real(point, measure, on_step)

    monkeypatch.setattr(training, "simulate_point", swallowing)
    sweep = _sweep_file(tmp_path, seeds=4, steps=2)
    out = tmp_path / "out"
    code, _, err = _run(["run", str(sweep), "-o", str(out), "-w", "0", "--no-ensemble",
                         "--no-compare"], capsys)
    assert code == errors.EXIT_INTERRUPTED, err
    assert err.startswith("error: interrupted; 1 of 4 points saved"), err
    assert len(list((out / "points").glob("*.nc"))) == 1


def test_the_resume_command_names_the_default_out_directory(monkeypatch):
    from gradstats import cli

    monkeypatch.setattr(cli, "_invocation", ["run", "quickstart", "-w", "0"])
    assert cli.resume_command(Path("results/quickstart")) == (
        "gradstats run quickstart -w 0 --out results/quickstart")
    monkeypatch.setattr(cli, "_invocation", ["run", "quickstart", "-o", "my dir"])
    assert cli.resume_command(Path("my dir")) == "gradstats run quickstart -o 'my dir'"


def test_interrupted_is_exit_130_with_its_own_line():
    stream = io.StringIO()

    def command():
        raise errors.Interrupted("interrupted; 3 of 8 points saved in d; resume with: x")

    assert errors.run_guarded(command, stderr=stream) == 130
    assert stream.getvalue() == "error: interrupted; 3 of 8 points saved in d; resume with: x\n"


@pytest.mark.slow  # starts and stops a local Dask cluster (~20 s on a busy 2-core machine)
def test_ctrl_c_with_dask_workers_prints_no_worker_tracebacks(tmp_path):
    out = tmp_path / "out"
    sweep = _sweep_file(tmp_path, seeds=40)
    # one point per task and enough estimated work that a local cluster is started
    prelude = ("import gradstats.sweeps.executors as e, gradstats.sweeps.execute as x; "
               "e.LOCAL_CLUSTER_MIN_SECONDS = 0; x.estimated_seconds = lambda p: 2.0; ")
    done = _interrupt_after_first_point(["run", str(sweep), "-o", str(out), "-w", "2",
                                         "--no-compare"], out, prelude=prelude)
    _assert_one_interrupted_line(done, out, total=40)


def test_ctrl_c_after_the_run_says_everything_is_saved(tmp_path, monkeypatch, capsys):
    from gradstats import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    sweep = tmp_path / "two.toml"
    sweep.write_text('name = "two"\n[grid]\nwidth = [4, 8]\n[fixed]\ndepth = 1\ninput_dim = 4\n'
                     "n_train = 8\nbatch_size = 4\nsteps = 1\n")
    monkeypatch.setattr(cli, "_print_results", interrupted)
    code, _, err = _run(["run", str(sweep), "-o", str(tmp_path / "o"), "-w", "0"], capsys)
    assert code == 130
    assert err.splitlines() == [f"error: interrupted after the run; all 2 points are saved in "
                                f"{tmp_path / 'o'}; compare with: gradstats compare "
                                f"{tmp_path / 'o'}"]
