"""`gradstats compare RESULTS`: theory vs measurement, written to a dataset, printed as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def compare_command(
    results: Annotated[Path, typer.Argument(help="Results directory (or its sweep.zarr)")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Comparison file (.nc); default RESULTS/comparison.nc")] = None,
    level: Annotated[float, typer.Option(
        "--level", help="Significance level of each z-test (two-sided)")] = 0.01,
) -> None:
    """Compare measurements with infinite-width theory: per statistic and sweep point the
    seed mean, standard error, prediction, relative error, z-score and verdict."""
    from rich.console import Console

    from gradstats.results.compare import compare
    from gradstats.results.io import load_results

    if not 0 < level < 1:
        raise typer.BadParameter(f"must lie in (0, 1), got {level}", param_hint="--level")
    try:
        ds = load_results(results)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err), param_hint="RESULTS") from None
    if not ds.attrs.get("points"):
        raise typer.BadParameter("results carry no point specs; give a results directory",
                                 param_hint="RESULTS")
    cmp = compare(ds, level=level)
    target = out or (Path(results) if Path(results).is_dir() else Path(results).parent) / \
        "comparison.nc"
    write_comparison(cmp, target)
    console = Console()
    print_comparison(cmp, console)
    console.print(f"wrote {target}")


def write_comparison(cmp, path: Path) -> None:
    """Write the comparison dataset as netCDF (notes joined into one attribute)."""
    clean = cmp.copy()
    clean.attrs = {**cmp.attrs, "notes": "\n".join(cmp.attrs.get("notes", []))}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    clean.to_netcdf(path)


def print_comparison(cmp, console) -> None:
    """One row per comparison: verdict counts, a typical relative error, the worst |z|."""
    from rich.table import Table

    from gradstats.results.compare import summary_rows

    table = Table("comparison", "agree", "disagree", "n/a", "|rel err| median", "max |z|",
                  "detail", title=f"theory vs measurement (level {cmp.attrs['level']:g}, "
                                  f"z_crit {cmp.attrs['z_crit']:.2f}, model floor "
                                  f"{cmp.attrs['model_coef']:g}*depth/width)")
    table.columns[0].no_wrap = True
    for row in summary_rows(cmp):
        style = "green" if row.disagree == 0 and row.agree > 0 else (
            "red" if row.disagree else "yellow")
        table.add_row(f"[{style}]{row.name}[/{style}]", str(row.agree), str(row.disagree),
                      str(row.undetermined), _fmt(row.median_rel_err),
                      _fmt(row.max_abs_z), row.detail)
    console.print(table)
    for note in cmp.attrs.get("notes", []):
        console.print(f"[yellow]skipped[/yellow] {note}", highlight=False)


def _fmt(value: float) -> str:
    import math

    return "-" if not math.isfinite(value) else f"{value:.3g}"
