"""`gradstats run | presets | show | export | theory | compare | plot`.

Heavy imports (torch, jax, xarray, matplotlib) happen inside the commands, so
``gradstats --help`` is fast. Every input error prints one line naming the field and
exits with code 2, before anything is written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gradstats.spec import SpecError

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="Measure how neural-network gradients are distributed and compare "
                       "with infinite-width theory.")
console = Console()
err_console = Console(stderr=True)

EXIT_INPUT_ERROR = 2
EXIT_POINTS_FAILED = 1


class InputError(Exception):
    """A command-line or sweep-file error: printed as one line, exit code 2."""


@app.command()
def run(
    sweep: Annotated[str | None, typer.Argument(
        help="Sweep file (.toml) or preset name; default: the quickstart preset")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Results directory (default: results/<sweep name>)")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override an axis: AXIS=V1[,V2...] (repeatable)")] = None,
    workers: Annotated[str | None, typer.Option(
        "--workers", "-w", metavar="N",
        help="Worker processes of a local Dask cluster (default: number of cores; "
             "0 = run in this process)")] = None,
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", metavar="ADDRESS",
        help="Run on an existing Dask cluster, e.g. tcp://host:8786 (see docs/scaling.md)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table")] = False,
    compare: Annotated[bool, typer.Option(
        "--compare/--no-compare",
        help="After the run, compare with theory (writes DIR/comparison.nc, prints the table)")
    ] = True,
) -> None:
    """Run a sweep: simulate every point, write one file per point, print the measurements
    and the theory-vs-measurement table.

    Rerunning into the same directory skips the points already done (resume); runs sharing
    a directory split the points between them. Ctrl-C or a kill loses only points in flight.
    """
    from gradstats.sweeps import apply_overrides, expand, resolve_sweep

    n_workers = _parse_workers(workers, scheduler)
    sweep_file = resolve_sweep(sweep)
    if set_:
        sweep_file = apply_overrides(sweep_file, set_)
    points = expand(sweep_file)
    _check_devices(points)
    out_dir = out or Path("results") / sweep_file.name
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out: {out_dir} exists and is not a directory")

    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.progress import progress_bar

    executor = _connect(scheduler) if scheduler else None
    try:
        with progress_bar(enabled=not quiet, console=err_console) as progress:
            summary = run_sweep(points, sweep_file.measure, out_dir, name=sweep_file.name,
                                progress=progress, executor=executor, workers=n_workers)
    finally:
        if executor is not None:
            executor.close()
    if not quiet:
        from gradstats.results.io import load_results
        from gradstats.results.summary import print_summary

        results = load_results(out_dir)
        print_summary(results, console)
        if compare and "grad_sq_norm" in results:
            _print_theory_comparison(results, out_dir)
    console.print(f"{summary.total} points: {summary.computed} computed, {summary.skipped} "
                  f"already done, {len(summary.failed)} failed, {summary.seconds:.1f} s -> "
                  f"{out_dir}")
    for point, error in summary.failed:
        err_console.print(f"[red]failed[/red] {point.key()} (seed {point.seed}): {error}",
                          markup=True, highlight=False, soft_wrap=True)
    if summary.failed:
        sys.exit(EXIT_POINTS_FAILED)


def _print_theory_comparison(results, out_dir: Path) -> None:
    """Theory vs measurement for a finished run (see `gradstats compare`)."""
    from gradstats.results.compare_command import run_and_print

    run_and_print(results, out_dir / "comparison.nc", console)


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


@app.command()
def presets() -> None:
    """List the built-in sweep files shipped inside the package."""
    from rich.table import Table

    from gradstats.sweeps.grid import expand
    from gradstats.sweeps.presets import preset_description, preset_names, resolve_sweep

    table = Table("preset", "points", "description")
    for name in preset_names():
        table.add_row(name, str(len(expand(resolve_sweep(name)))), preset_description(name))
    console.print(table)


@app.command()
def show(results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")]) -> None:
    """Summarize a results directory: dims, variables, failed points, a summary table."""
    from gradstats.results.summary import print_overview, print_summary

    ds = _load(results)
    print_overview(ds, console)
    print_summary(ds, console)


@app.command()
def export(
    results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")],
    format_: Annotated[str, typer.Option("--format", "-f",
                                         help="netcdf | zarr | csv | parquet")] = "netcdf",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file")] = None,
) -> None:
    """Export the combined dataset (csv/parquet: a tidy long table)."""
    from gradstats.results.export import FORMATS, SUFFIX
    from gradstats.results.export import export as do_export

    if format_ not in FORMATS:
        raise InputError(f"--format: unknown format {format_!r}; choose from {', '.join(FORMATS)}")
    ds = _load(results)
    target = out or Path(results).with_suffix("") / f"export{SUFFIX[format_]}"
    console.print(f"wrote {do_export(ds, format_, target)}")


def _load(results: Path):
    from gradstats.results.io import load_results

    try:
        return load_results(results)
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
    from gradstats.theory.command import theory_command

    app.command("theory")(theory_command)
    app.command("compare")(compare_command)
    app.command("plot")(plot_command)


_register_subpackage_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for bad input.

    Click's standalone mode handles usage errors (exit 2) and ``typer.Exit``; input errors
    raised inside commands are caught here. Success returns normally.
    """
    from gradstats.sweeps.sweepfile import SweepError

    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise
    except (SweepError, SpecError, InputError) as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT_ERROR)


if __name__ == "__main__":
    main()
