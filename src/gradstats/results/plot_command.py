"""`gradstats plot RESULTS --kind KIND --out DIR --format png|pdf|svg` (registered by the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

# The names of `gradstats.results.plots.KINDS` (that module imports matplotlib, so the names
# are repeated here for a fast --help; tests/test_cli_guides.py checks that they agree).
KIND_NAMES = ("summary", "layers", "signals", "phase", "ntk", "tails", "spectrum", "directions",
              "batchnorm", "coord", "lr-transfer", "validity")
KindChoice = Literal[(*KIND_NAMES, "all")]
# The names of `gradstats.results.plots.common.FORMATS` (checked in tests/test_cli_guides.py).
FORMAT_NAMES = ("png", "pdf", "svg")
FormatChoice = Literal[FORMAT_NAMES]
CHOICES_HELP = " | ".join((*KIND_NAMES, "all"))


def default_out(results: Path) -> Path:
    """Where figures go by default: RESULTS/plots for a directory, else beside the file."""
    results = Path(results)
    return results / "plots" if results.is_dir() else results.parent / "plots"


def plot_command(
    results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")],
    kind: Annotated[KindChoice, typer.Option(
        "--kind", "-k", help="Figure to draw; all: every kind the results have variables for"
    )] = "summary",
    out: Annotated[Path | None, typer.Option("--out", "-o",
                                             help="Output directory (default RESULTS/plots)")] = None,
    format_: Annotated[FormatChoice, typer.Option(
        "--format", "-f", help="Image format: png (200 dpi), or vector pdf or svg")] = "png",
) -> None:
    """Draw figures of a results dataset into RESULTS/plots (or --out), one file per kind.

    A kind whose variables the results lack is an error (with --kind all it is skipped).
    """
    # Input errors (unreadable RESULTS, missing variables, an --out that cannot be written)
    # raise InputError before anything is drawn: one line, exit 2 (docs/errors.md).
    from gradstats import paths
    from gradstats.errors import InputError
    from gradstats.results import plots
    from gradstats.results.io import load_results
    from gradstats.terminal import status, stdout_console

    if kind not in (*plots.KINDS, "all"):
        raise InputError(f"--kind: unknown kind {kind!r}; choose from {CHOICES_HELP}")
    if format_ not in plots.common.FORMATS:
        raise InputError(f"--format: unknown format {format_!r}; choose "
                         f"{', '.join(plots.common.FORMATS)}")
    out_dir = out or default_out(results)
    paths.check_output_dir(out_dir)
    paths.require_writable(out_dir)
    try:
        with status(f"loading {results}"):
            ds = load_results(results, lazy=False)
    except FileNotFoundError as err:
        raise InputError(f"RESULTS: {err}") from None
    console = stdout_console()
    kinds = plots.kinds_available(ds) if kind == "all" else [kind]
    for name in kinds:
        try:
            with status(f"drawing {name}"):
                fig = plots.render(ds, name)
        except plots.MissingVariables as err:
            if kind != "all":
                raise InputError(f"--kind: {err}") from None
            console.print(f"skipped {name}: {err}")
            continue
        console.print(f"wrote {plots.save(fig, out_dir / f'{name}.{format_}', format_)}")
    skipped = [k for k in plots.KINDS if k not in kinds]
    if kind == "all" and skipped:
        console.print("not drawn (variables absent): " + ", ".join(skipped))
