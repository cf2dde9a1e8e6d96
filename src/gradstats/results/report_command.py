"""`gradstats report RESULTS [--out FILE]`: one self-contained HTML page of a sweep (registered
by the CLI; the work is in `gradstats.results.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

REPORT_SUFFIX = ".html"


def default_out(results: Path) -> Path:
    """RESULTS/report.html for a directory, else report.html beside the file or store."""
    results = Path(results)
    folder = results if results.is_dir() and results.suffix != ".zarr" else results.parent
    return folder / "report.html"


def report_command(
    results: Annotated[Path, typer.Argument(help="Results directory (or its sweep.zarr, a .nc)")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Report file (.html); default RESULTS/report.html")] = None,
    level: Annotated[float | None, typer.Option(
        "--level", help="Significance level when the comparison is computed for the report "
                        "(default: the stored comparison's, else 0.01)")] = None,
) -> None:
    """Write one HTML page of a sweep that opens offline: every figure the results allow,
    the theory-vs-measurement table with verdicts and validity notes, each comparison's
    cells, failed and diverged points, the sweep file and provenance (versions, devices,
    dates, command).

    Uses RESULTS/comparison.nc when it is newer than the point files, else compares here
    (nothing but the report is written). An existing report is replaced.
    """
    # Input errors (a RESULTS that is not there or not results, an --out that cannot be
    # written, a bad --level) are one line, exit 2, before anything is written; the page is
    # written to a temp file and renamed, so a failure leaves no half-written report.
    from gradstats import paths
    from gradstats.errors import InputError
    from gradstats.results import io
    from gradstats.results.report import build_report
    from gradstats.terminal import status, stdout_console

    if level is not None and not 0 < level < 1:
        raise InputError(f"--level: must lie in (0, 1), got {level:g}")
    if not Path(results).exists():
        raise InputError(f"RESULTS: {results} does not exist")
    target = out or default_out(results)
    paths.check_output_file(target, "--out", suffix=REPORT_SUFFIX)
    try:
        with status(f"loading {results}"):
            ds = io.load_results(results, lazy=False)
    except FileNotFoundError as err:
        raise InputError(f"RESULTS: {err}") from None
    with status("making the report") as update:
        page = build_report(results, ds, level=level, update=update)
    io.write_text_atomic(page, target)
    stdout_console().print(f"wrote {target}", markup=False, highlight=False)
