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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table")] = False,
) -> None:
    """Run a sweep: simulate every point, write one file per point, print a summary table.

    Rerunning into the same directory skips the points already done (resume).
    """
    from gradstats.sweeps import apply_overrides, expand, resolve_sweep

    sweep_file = resolve_sweep(sweep)
    if set_:
        sweep_file = apply_overrides(sweep_file, set_)
    points = expand(sweep_file)
    _check_devices(points)
    out_dir = out or Path("results") / sweep_file.name

    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.progress import progress_bar

    with progress_bar(enabled=not quiet, console=err_console) as progress:
        summary = run_sweep(points, sweep_file.measure, out_dir, name=sweep_file.name,
                            progress=progress)
    if not quiet:
        from gradstats.results.io import load_results
        from gradstats.results.summary import print_summary

        print_summary(load_results(out_dir), console)
    console.print(f"{summary.total} points: {summary.computed} computed, {summary.skipped} "
                  f"already done, {len(summary.failed)} failed, {summary.seconds:.1f} s -> "
                  f"{out_dir}")
    for point, error in summary.failed:
        err_console.print(f"[red]failed[/red] {point.key()} (seed {point.seed}): {error}")
    if summary.failed:
        raise typer.Exit(EXIT_POINTS_FAILED)


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


def _register_optional_commands() -> None:
    """Commands provided by the subpackages (kept out of this file to keep it small)."""
    import importlib

    for module, attr, name in OPTIONAL_COMMANDS:
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        app.command(name)(fn)


OPTIONAL_COMMANDS = [
    ("gradstats.theory.command", "theory_command", "theory"),
    ("gradstats.results.compare_command", "compare_command", "compare"),
    ("gradstats.results.plot_command", "plot_command", "plot"),
]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit code 2 for bad input."""
    from gradstats.sweeps.sweepfile import SweepError

    _register_optional_commands()
    try:
        app(args=argv, standalone_mode=False)
    except (SweepError, SpecError, InputError) as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT_ERROR)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as err:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            sys.exit(EXIT_INPUT_ERROR)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
