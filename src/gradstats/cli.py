"""`gradstats run | presets | show | export | theory | compare | plot | report | validity`.

Heavy imports (torch, jax, xarray, matplotlib) happen inside the commands, so
``gradstats --help`` is fast. Every failure, in every command, ends as one line on stderr
with an exit code (`gradstats.errors`; docs/errors.md): 2 for an input error, before
anything is written; 1 for failed points or a run that stopped partway.
"""

from __future__ import annotations

import inspect
import shlex
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from typer.core import TyperCommand, TyperGroup

from gradstats.errors import (
    EXIT_FAILED,
    EXIT_INPUT_ERROR,
    InputError,
    Interrupted,
    interrupt_latch,
    raise_if_interrupted,
    run_guarded,
)
from gradstats.terminal import plural, status, stderr_console, stdout_console


class _FlagHelp:
    """On/off options (``--quiet``, ``--help``, ...) listed in ``--help`` without a metavar:
    typer 0.29 prints ``<bool>`` beside each, as if it took a value."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201 (click's signature)
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class _Command(_FlagHelp, TyperCommand):
    pass


class _Group(_FlagHelp, TyperGroup):
    pass


app = typer.Typer(cls=_Group, add_completion=True, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Measure how neural-network gradients are distributed and compare "
                       "with infinite-width theory.")
# The export formats (`gradstats.results.export.FORMATS`, which imports xarray).
ExportFormat = Literal["netcdf", "zarr", "csv", "parquet"]
# Points named in the run summary (diverged, failed) before "and N more".
NAMED_POINTS = 3

EXIT_POINTS_FAILED = EXIT_FAILED
__all__ = ["EXIT_INPUT_ERROR", "EXIT_POINTS_FAILED", "InputError", "app", "main"]
# The command line being run (set by `main`; recorded in sweep.json and sweep.zarr).
_invocation: list[str] = []


def _print_version(value: bool) -> None:
    if value:
        from gradstats import __version__

        typer.echo(f"gradstats {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version of gradstats and exit")] = False,
) -> None:
    """Measure how neural-network gradients are distributed and compare with infinite-width
    theory."""


@app.command(cls=_Command)
def run(
    sweep: Annotated[str | None, typer.Argument(
        help="Sweep file (.toml) or preset name; default: the quickstart preset")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Results directory (default: results/<sweep name>)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="AXIS=V", help="Override an axis: AXIS=V1[,V2...] (repeatable)")] = None,
    workers: Annotated[str | None, typer.Option(
        "--workers", "-w", metavar="N",
        help="Worker processes of a local Dask cluster (default: number of cores; "
             "0 = run in this process)")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="ADDRESS",
        help="Run on an existing Dask cluster, e.g. tcp://host:8786 (see docs/scaling.md)")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q",
        help="No progress bar or tables (the comparison file is still written)")
    ] = False,
    compare: Annotated[bool, typer.Option(
        "--compare/--no-compare",
        help="After the run, compare with theory (writes DIR/comparison.nc, prints the table)")
    ] = True,
    no_limits: Annotated[bool, typer.Option(
        "--no-limits", help="Run a sweep larger than the size limits (see docs/errors.md)")
    ] = False,
    ensemble: Annotated[bool, typer.Option(
        "--ensemble/--no-ensemble",
        help="Train the seeds of a configuration as one batched network where possible "
             "(same results; --no-ensemble trains every point on its own)")] = True,
) -> None:
    """Run a sweep: simulate every point, write one file per point, print the measurements
    and the theory-vs-measurement table.

    Rerunning into the same directory skips the points already done (resume); runs sharing
    a directory split the points between them. Ctrl-C or a kill loses only points in flight.
    A directory holds one sweep: a run whose points do not include those already there is
    refused.
    """
    from gradstats import paths
    from gradstats.sweeps import apply_overrides, expand, resolve_sweep
    from gradstats.sweeps.limits import DEFAULT_LIMITS

    if sweep is not None and not sweep.strip():
        raise InputError("SWEEP: empty; give a sweep file or a preset name (gradstats presets)")
    if scheduler is not None and not scheduler.strip():
        raise InputError("--scheduler: empty; give the cluster's address, e.g. tcp://host:8786")
    n_workers = _parse_workers(workers, scheduler)
    sweep_file = resolve_sweep(sweep)
    if set_:
        sweep_file = apply_overrides(sweep_file, set_)
    points = expand(sweep_file, limits=None if no_limits else DEFAULT_LIMITS)
    _check_devices(points)
    out_dir = out or Path("results") / sweep_file.name
    paths.check_output_dir(out_dir)

    from gradstats.sweeps import sweeptoml
    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.progress import progress_bar

    console = stdout_console()
    executor = _connect(scheduler) if scheduler else None
    try:
        with progress_bar(enabled=not quiet, console=stderr_console()) as progress:
            def point_done(done: int, total: int) -> None:
                progress(done, total)
                raise_if_interrupted()

            def phase(text: str) -> None:
                raise_if_interrupted()
                progress.phase(text)

            summary = run_sweep(points, sweep_file.measure, out_dir, name=sweep_file.name,
                                progress=point_done, phase=phase, executor=executor,
                                workers=n_workers, command=command_line(),
                                sweep_toml=sweeptoml.dumps(sweep_file), ensemble=ensemble)
    except KeyboardInterrupt as stop:
        raise Interrupted.after(stop, _interrupted_line(points, out_dir)) from None
    finally:
        if executor is not None:
            executor.close()
    wrote_comparison = False
    if not quiet or compare:
        try:
            wrote_comparison = _print_results(out_dir, compare, console, quiet)
        except KeyboardInterrupt as stop:  # the run is complete; only the tables were cut short
            raise Interrupted.after(stop, f"interrupted after the run; all "
                                    f"{plural(summary.total, 'point')} are saved in {out_dir}; "
                                    f"compare with: gradstats compare "
                                    f"{shlex.quote(str(out_dir))}") from None
    _print_run_summary(summary, points, out_dir, console, wrote_comparison, quiet)
    for point, error in summary.failed:
        sys.stderr.write(f"failed {point.key()} (seed {point.seed}): "
                         f"{' '.join(error.split())}\n")
    if summary.failed:
        sys.exit(EXIT_POINTS_FAILED)


def _interrupted_line(points, out_dir: Path) -> str:
    """The one line of an interrupted run: how many point files are saved, how to resume."""
    from gradstats.results import io

    keys = {p.key(): p for p in points}
    saved = sum(io.point_path(out_dir, p).exists() for p in keys.values())
    return (f"interrupted; {saved} of {plural(len(keys), 'point')} saved in {out_dir}; "
            f"resume with: {resume_command(out_dir)}")


def resume_command(out_dir: Path) -> str:
    """The command line that resumes this run: the same one, with ``--out`` made explicit."""
    args = list(_invocation or sys.argv[1:])
    if not any(a in ("--out", "-o") or a.startswith("--out=") or (a.startswith("-o") and
               len(a) > 2) for a in args):
        args += ["--out", str(out_dir)]
    return "gradstats " + shlex.join(args)


def point_labels(points, among) -> list[str]:
    """Each point named by the axes that vary among ``among`` and its seed, e.g.
    ``width=8, lr=10 (seed 1)``."""
    values = [p.axis_values() for p in among]
    varying = [a for a in values[0] if len({repr(v[a]) for v in values}) > 1] if values else []
    labels = []
    for point in points:
        own = point.axis_values()
        named = ", ".join(f"{a}={own[a]:g}" if isinstance(own[a], float) else f"{a}={own[a]}"
                          for a in varying)
        labels.append(f"{named} (seed {point.seed})" if named else f"seed {point.seed}")
    return labels


def _named(points, among) -> str:
    """A few points by their labels, then "and N more"."""
    labels = point_labels(points[:NAMED_POINTS], among)
    more = len(points) - len(labels)
    return "; ".join(labels) + (f"; and {more} more" if more > 0 else "")


def _print_run_summary(summary, points, out_dir: Path, console, wrote_comparison: bool,
                       quiet: bool = False) -> None:
    """Counts, the diverged and failed points by name, what was written, what to try next."""
    counts = (f"{plural(summary.total, 'point')}: {summary.computed} computed, "
              f"{summary.skipped} already done, {len(summary.diverged)} diverged, "
              f"{len(summary.failed)} failed, {summary.seconds:.1f} s")
    console.print(counts, markup=False, highlight=False)
    if summary.diverged:
        console.print(f"diverged (recorded; inf/nan during training): "
                      f"{_named(summary.diverged, points)}", markup=False, highlight=False)
    if summary.failed:
        console.print(f"failed (rerun to retry; errors on stderr): "
                      f"{_named([p for p, _ in summary.failed], points)}",
                      markup=False, highlight=False)
    written = ["points/"]
    if summary.store is not None and Path(summary.store).exists():
        written.append(Path(summary.store).name)
    if wrote_comparison:
        written.append("comparison.nc")
    console.print(f"results: {out_dir} ({', '.join(written)})", markup=False, highlight=False)
    target = shlex.quote(str(out_dir))
    if quiet:
        return
    console.print(f"next: gradstats compare {target}  |  gradstats plot {target} --kind summary"
                  f"  |  gradstats report {target}  |  gradstats show {target}",
                  markup=False, highlight=False)


def _print_results(out_dir: Path, compare: bool, console, quiet: bool = False) -> bool:
    """The measurements table and, with ``compare``, theory vs measurement of a run;
    whether ``DIR/comparison.nc`` is there. ``quiet``: only the file, which is kept when it
    is newer than every point file and skipped (one warning) where it cannot be written."""
    import warnings

    from gradstats import paths
    from gradstats.results.io import load_results, newer_than_points
    from gradstats.results.summary import print_summary

    target = out_dir / "comparison.nc"
    if quiet and newer_than_points(target, out_dir):
        return True  # nothing new to compare (and the directory may be read-only)
    if quiet and not paths.writable(out_dir):  # nothing to print, nowhere to write
        warnings.warn(f"{target} not written (the directory is not writable); gradstats "
                      "compare prints the comparison", stacklevel=1)
        return False
    try:
        with status(f"loading the results in {out_dir}", enabled=not quiet):
            results = load_results(out_dir, lazy=False)
    except FileNotFoundError:  # no point could be saved: the failures are listed below
        return False
    if not quiet:
        print_summary(results, console)
    if compare and "grad_sq_norm" in results:
        try:
            return _print_theory_comparison(results, out_dir, console, quiet)
        except Exception as err:  # the run's results are saved; the comparison is extra
            warnings.warn(f"theory comparison skipped ({type(err).__name__}: {err}); "
                          f"try gradstats compare {out_dir}", stacklevel=1)
    return False


def _print_theory_comparison(results, out_dir: Path, console, quiet: bool = False) -> bool:
    """Theory vs measurement for a finished run (see `gradstats compare`); whether the
    comparison file was written."""
    from gradstats.results.compare_command import run_and_print

    target = out_dir / "comparison.nc"
    run_and_print(results, target, console, quiet=quiet)
    return target.exists()


def _parse_workers(text: str | None, scheduler: str | None) -> int:
    """``--workers``: a non-negative integer; default the number of cores."""
    import os

    if text is None:
        return os.cpu_count() or 1
    if scheduler is not None:
        raise InputError("--workers: cannot be combined with --scheduler (the cluster has its "
                         "own workers)")
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"--workers: must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise InputError(f"--workers: must be >= 0 (0 = in this process), got {value}")
    return value


def _connect(address: str):
    """A `DaskExecutor` on the cluster at ``address``; exit 2 when it cannot be reached."""
    from gradstats.sweeps.executors import DaskExecutor

    try:
        return DaskExecutor(address=address)
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"--scheduler: cannot connect to {address!r} "
                         f"({type(err).__name__}: {err})".replace("\n", " ")) from None


@app.command(cls=_Command)
def presets() -> None:
    """List the built-in sweep files shipped inside the package."""
    from rich.table import Table

    from gradstats.sweeps.grid import count_points
    from gradstats.sweeps.presets import preset_description, preset_names, resolve_sweep

    console = stdout_console()
    table = Table("preset", "points", "description")
    for name in preset_names():
        table.add_row(name, str(count_points(resolve_sweep(name))), preset_description(name))
    console.print(table)


@app.command(cls=_Command)
def show(
    results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")],
    check: Annotated[bool, typer.Option(
        "--check", help="Verify a results directory instead: every point file present, "
                        "intact and its own, sweep.zarr current (exit 1 if not)")] = False,
) -> None:
    """Summarize a results directory: dims, variables, failed points, a summary table."""
    if check:
        raise typer.Exit(_check_results(results))
    from gradstats.results.summary import print_overview, print_summary

    console = stdout_console()
    ds = _load(results)
    print_overview(ds, console)
    print_summary(ds, console)


def _check_results(results: Path) -> int:
    """Print `check_results_dir`'s findings; the exit code (1 when there are problems)."""
    import warnings

    from gradstats.sweeps.verify import check_results_dir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each problem is reported below, once
        report = check_results_dir(results)
    console = stdout_console()
    for problem in report.problems:
        console.print(f"problem: {problem}", markup=False, highlight=False, soft_wrap=True)
    verdict = "ok" if not report.problems else f"{len(report.problems)} problems"
    console.print(f"{results}: {report.ok} of {report.points} points ok; {verdict}",
                  markup=False, highlight=False, soft_wrap=True)
    return EXIT_FAILED if report.problems else 0


@app.command(cls=_Command)
def export(
    results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")],
    format_: Annotated[ExportFormat, typer.Option("--format", "-f", help="File format")
                       ] = "netcdf",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output file")
                     ] = False,
) -> None:
    """Export the combined dataset (csv/parquet: a tidy long table). An existing output is
    replaced only with --force."""
    from gradstats.results.export import FORMATS, SUFFIX, check_has_values, check_target
    from gradstats.results.export import export as do_export

    if format_ not in FORMATS:
        raise InputError(f"--format: unknown format {format_!r}; choose from {', '.join(FORMATS)}")
    target = out or Path(results).with_suffix("") / f"export{SUFFIX[format_]}"
    check_target(target, format_, overwrite=force)
    ds = _load(results)
    check_has_values(ds, results)
    with status(f"writing {target}"):
        written = do_export(ds, format_, target)
    stdout_console().print(f"wrote {written}", markup=False, highlight=False)


def _load(results: Path):
    from gradstats.results.io import load_results

    try:
        with status(f"loading {results}"):
            return load_results(results, lazy=False)
    except FileNotFoundError as err:
        raise InputError(f"RESULTS: {err}") from None


def _check_devices(points) -> None:
    """Fail early (exit 2) when a point asks for a device this machine lacks."""
    if any(p.device == "cuda" for p in points):
        from gradstats.simulate.model import resolve_device

        resolve_device("cuda")


def _register_subpackage_commands() -> None:
    """Commands that live in their subpackages (each module imports its heavy deps lazily)."""
    from gradstats.results.compare_command import compare_command
    from gradstats.results.plot_command import plot_command
    from gradstats.results.report_command import report_command
    from gradstats.results.validity_command import validity_command
    from gradstats.theory.command import theory_command

    app.command("theory", cls=_Command)(theory_command)
    app.command("compare", cls=_Command)(compare_command)
    app.command("plot", cls=_Command)(plot_command)
    app.command("report", cls=_Command)(report_command)
    app.command("validity", cls=_Command)(validity_command)


_register_subpackage_commands()


def reflow(doc: str) -> str:
    """``doc`` with each paragraph on one line: typer's rich help keeps the single line
    breaks of a docstring after its first paragraph (and in the command list), so a
    terminal narrower than the source lines shows them as ragged breaks. Paragraphs stay
    separated by a blank line."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _reflow_command_help() -> None:
    for info in app.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = reflow(info.callback.__doc__)


_reflow_command_help()


def command_line() -> str:
    """The command being run, as one shell-quoted line."""
    return "gradstats " + shlex.join(_invocation or sys.argv[1:])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: returns on success, else exits with the code of `run_guarded`
    (which prints the one line). Usage errors of every command (``compare`` and ``theory``
    included) come here too: click runs without its standalone mode."""
    args = list(sys.argv[1:] if argv is None else argv)
    _invocation[:] = args
    with interrupt_latch():
        code = run_guarded(lambda: app(args=args, standalone_mode=False, prog_name="gradstats"))
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
