"""`gradstats compare RESULTS`: theory vs measurement, written to a dataset, printed as a table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer


def compare_command(
    results: Annotated[Path, typer.Argument(help="Results directory (or its sweep.zarr)")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Comparison file (.nc); default RESULTS/comparison.nc")] = None,
    level: Annotated[float, typer.Option(
        "--level", help="Significance level per comparison (Holm-adjusted over its cells)")] = 0.01,
) -> None:
    """Compare measurements with theory: per comparison and cell (configuration x layer x
    step) the test estimate, standard error, p-values, minimum detectable error and verdict
    (agree / disagree / outside the validity domain / undetermined)."""
    from gradstats import paths
    from gradstats.results.io import load_results
    from gradstats.terminal import status, stdout_console

    if not 0 < level < 1:
        raise typer.BadParameter(f"must lie in (0, 1), got {level}", param_hint="--level")
    if out is not None:  # before any work: a directory, another suffix, nowhere to write
        paths.check_output_file(out, "--out", suffix=".nc")
    try:
        with status(f"loading {results}"):
            ds = load_results(results, lazy=False)
    except FileNotFoundError as err:
        raise typer.BadParameter(str(err), param_hint="RESULTS") from None
    if not ds.attrs.get("points"):
        raise typer.BadParameter("results carry no point specs; give a results directory",
                                 param_hint="RESULTS")
    target = out or (Path(results) if Path(results).is_dir() else Path(results).parent) / \
        "comparison.nc"
    if out is None:
        paths.check_output_file(target, "RESULTS (comparison.nc)", suffix=".nc")
    console = stdout_console()
    run_and_print(ds, target, console, level=level, must_write=True)
    console.print(f"wrote {target}", markup=False, highlight=False)


def run_and_print(ds, target: Path, console, level: float = 0.01, must_write: bool = False,
                  quiet: bool = False):
    """Compare (with a spinner on stderr while it runs), write ``target``, print the table;
    ``quiet``: no spinner, no table (the file is still written).

    A target that cannot be written (e.g. a finished sweep read from a read-only directory)
    is a warning after a run, an error (``must_write``) for `gradstats compare`."""
    import warnings

    from gradstats.errors import raise_if_interrupted
    from gradstats.results.compare import compare
    from gradstats.terminal import status

    def progress(name: str) -> None:
        raise_if_interrupted()
        update(f"comparing with theory: {name}")

    with status("comparing with theory", enabled=not quiet) as update:
        cmp = compare(ds, level=level, progress=progress)
    try:
        write_comparison(cmp, target)
    except OSError as err:
        if must_write:
            raise
        warnings.warn(f"{target} not written ({err.strerror or err})", stacklevel=1)
    if not quiet:
        print_comparison(cmp, console)
    return cmp


def write_comparison(cmp, path: Path) -> None:
    """Write the comparison dataset as netCDF (notes joined into one attribute)."""
    clean = cmp.copy()
    clean.attrs = {**cmp.attrs, "notes": "\n".join(cmp.attrs.get("notes", []))}
    for name in clean.data_vars:
        clean[name].attrs = {k: (",".join(map(str, v)) if isinstance(v, list) else v)
                             for k, v in clean[name].attrs.items()}
    from gradstats.results import io

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    io.replace_with(path, lambda tmp: clean.to_netcdf(tmp))  # never half a file


HEADER = ("Each cell (configuration x layer x step) is tested at level {level:g}; p-values are "
          "Holm-adjusted within each row, so a row reports a false disagreement with probability "
          "<= {level:g}. agree: consistent with the prediction within its allowance, and an "
          "error of the row's size (a factor 2 for ratios) would have been flagged with 80% "
          "probability at the row's Holm level ('detects' is the error the cells could see); "
          "undetermined: too few seeds for that; outside: the prediction's validity domain (column "
          "'domain') does not contain the cell. Raw disagreements are shown beside their number "
          "expected if the theory were exactly right (an upper bound where an allowance applies).")
# What each test of the 'test' column is (`gradstats.comparisons`), printed for those shown.
TESTS = {
    "log_ratio": "Student-t interval (n_seeds - 1 dof) on per-seed ln(measured/predicted)",
    "difference": "Student-t on per-seed measured - predicted",
    "quadratic_form": "seed mean of a chi^2-like statistic vs its gamma null distribution",
    "chi2_whitened": "sum of squared whitened outputs per seed vs chi^2",
    "ks": "Kolmogorov-Smirnov of pooled whitened outputs vs N(0, 1)",
    "bound": "the bound must hold on every seed (up to round-off)",
    "log_variance": "variance of ln(measured) over seeds vs the predicted one",
    "log_mean": "Student-t on the seed mean of ln(measured) vs the predicted mean log",
    "exponent": "OLS fit of ln(value) on ln(width), Student-t interval on the slope",
    "width_limit": "Cox ln E[ratio] per width, least squares on 1/width, intercept vs 0",
}


def print_comparison(cmp, console) -> None:
    """One row per comparison: steps, test, verdict counts, the raw disagreements with their
    expected number under the theory, the median detectable error and a typical value."""
    from rich.table import Table

    from gradstats.results.compare import summary_rows

    level = cmp.attrs["level"]
    table = Table("comparison", "steps", "test", "domain", "agree", "disagree", "outside",
                  "undet.", "raw disagree (expected)", "detects", "typical",
                  title="theory vs measurement", caption=HEADER.format(level=level),
                  caption_justify="left")
    table.columns[0].no_wrap = True
    rows = summary_rows(cmp)
    for row in rows:
        tested = row.agree + row.disagree + row.undetermined
        style = ("red" if row.disagree else "green" if row.agree and row.agree == tested
                 else "yellow")
        table.add_row(f"[{style}]{row.name}[/{style}]", row.steps or "-", row.test, row.domain,
                      str(row.agree), str(row.disagree), str(row.outside), str(row.undetermined),
                      f"{row.raw_disagree} ({_fmt(row.expected_false)})", _detects(row),
                      _fmt(row.typical))
    console.print(table)
    by_reason: dict[str, list[str]] = {}
    for row in rows:
        for reason in row.reasons:
            by_reason.setdefault(reason, []).append(row.name)
    for reason, names in by_reason.items():
        console.print(f"[cyan]outside[/cyan] {reason} ({', '.join(names)})", highlight=False)
    few = [row for row in rows if row.undetermined]
    if few:
        console.print("[yellow]warning[/yellow] too few seeds to decide: "
                      + ", ".join(f"{r.name} ({r.undetermined} cells detect only "
                                  f"{_detects(r, r.undetermined_detectable)})" for r in few),
                      highlight=False)
    used = [t for t in dict.fromkeys(row.test for row in rows) if t in TESTS]
    if used:
        console.print("tests: " + "; ".join(f"{t} = {TESTS[t]}" for t in used),
                      markup=False, highlight=False)
    for line in skipped_lines(cmp.attrs.get("notes", [])):
        console.print(f"[dim]skipped[/dim] {line}", highlight=False, markup=True)


def skipped_lines(notes, markup: bool = True) -> list[str]:
    """The notes of skipped comparisons, one line per reason: a comparison noted twice keeps
    its first reason, and comparisons skipped for the same reason share one line
    (``a, b: needs ...``). Notes that name no comparison are kept as they are. With
    ``markup`` the lines are escaped for rich, else plain text."""
    import re

    from rich.markup import escape

    if isinstance(notes, str):
        notes = [notes] if notes else []
    by_reason: dict[str, list[str]] = {}
    seen: set[str] = set()
    for note in notes:
        match = re.fullmatch(r"([A-Za-z0-9_]+(?:, [A-Za-z0-9_]+)*): (.+)", str(note), re.S)
        if match is None:
            by_reason.setdefault(str(note), [])
            continue
        names = [n for n in match.group(1).split(", ") if n not in seen]
        seen.update(names)
        if names:
            by_reason.setdefault(match.group(2), []).extend(names)
    lines = [f"{', '.join(names)}: {reason}" if names else reason
             for reason, names in by_reason.items()]
    return [escape(line) for line in lines] if markup else lines


# tests whose minimum detectable error is a ratio (>= 1); the others' is an absolute
# difference on the statistic's own scale (an exponent, a kurtosis, a CDF distance, a rate)
RATIO_TESTS = ("log_ratio", "quadratic_form", "chi2_whitened", "log_variance", "log_mean",
               "width_limit")


def _detects(row, value: float | None = None) -> str:
    value = row.detectable if value is None else value
    if not math.isfinite(value):
        return "-"
    if row.test not in RATIO_TESTS:
        return f"±{value:.2g}"
    return f"{value:.3g}x"


def _fmt(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"
