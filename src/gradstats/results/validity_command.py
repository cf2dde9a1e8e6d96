"""`gradstats validity RESULTS [--threshold 0.1] [--out FILE]` (registered by the CLI).

Writes the validity map (`gradstats.results.validity_map`) to RESULTS/validity.nc (or
--out) and prints, per quantity and setting (the axes other than width and depth), the beta
at which the infinite-width and the finite-width-corrected predictions exceed the threshold.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from gradstats.spec import LAYER_DIM

DEFAULT_NAME = "validity.nc"
# the layer each quantity's row reports (README, the figure): the readout for the weight
# gradient (its finite-width correction is exact there), the last hidden layer otherwise
ROW_POSITION = {"forward_q": "last_hidden", "backward_q": "last_hidden",
                "grad_sq_norm": "readout", "preact_kurtosis": "last_hidden"}
POSITION_TEXT = {"last_hidden": "last hidden layer", "readout": "readout layer"}


def default_out(results: Path) -> Path:
    """RESULTS/validity.nc for a directory, else beside the file."""
    results = Path(results)
    return (results if results.is_dir() else results.parent) / DEFAULT_NAME


def validity_command(
    results: Annotated[Path, typer.Argument(help="Results directory, .zarr or .nc")],
    threshold: Annotated[float, typer.Option(
        "--threshold", "-t", help="Relative error that counts as the theory failing, in (0, 1)"
    )] = 0.1,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="netCDF file to write (default RESULTS/validity.nc)")] = None,
) -> None:
    """Map where theory holds: the relative error of each per-layer prediction over the swept
    axes (infinite width and finite-width corrected, with intervals over seeds) and the beta
    = depth/width at which it first exceeds --threshold. Writes RESULTS/validity.nc."""
    from gradstats import paths
    from gradstats.errors import InputError
    from gradstats.terminal import status, stdout_console

    if not (0 < threshold < 1):  # also NaN
        raise InputError(f"--threshold: must lie in (0, 1), got {threshold}")
    target = out or default_out(results)
    paths.check_output_file(target, "--out", suffix=".nc")
    from gradstats.results.io import load_results
    from gradstats.results.validity_map import validity_map, write_map

    try:
        with status(f"loading {results}"):
            ds = load_results(results)
    except FileNotFoundError as err:
        raise InputError(f"RESULTS: {err}") from None
    if LAYER_DIM not in ds.dims:
        raise InputError(f"RESULTS: {results} holds no per-layer measurements (did every point "
                         "fail? gradstats show lists them)")
    try:
        with status("computing the validity map"):
            vmap = validity_map(ds, threshold=threshold)
    except ValueError as err:
        raise InputError(f"RESULTS: {err}") from None
    write_map(vmap, target)
    console = stdout_console()
    console.print(boundary_table(vmap))
    console.print(f"wrote {target}")


def _format_beta(value: float, betas: tuple[float, float]) -> str:
    """A boundary as text; one past the sweep's ends as ``> largest`` / ``< smallest`` beta
    measured (``betas``: the setting's (smallest, largest))."""
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return f"> {betas[1]:.2g}"
    if value == 0:
        return f"< {betas[0]:.2g}"
    return f"{value:.3g}"


def _interval(vmap, name: str, sel: dict) -> str:
    mid = float(vmap[name].sel(sel))
    if math.isnan(mid):
        return "-"
    beta = vmap["beta"].sel({k: v for k, v in sel.items() if k in vmap["beta"].dims})
    betas = (float(beta.min()), float(beta.max()))
    lo, hi = float(vmap[f"{name}_lo"].sel(sel)), float(vmap[f"{name}_hi"].sel(sel))
    text = _format_beta(mid, betas)
    if (lo, hi) != (mid, mid):
        text += f" [{_format_beta(lo, betas)}, {_format_beta(hi, betas)}]"
    return text


def setting_label(vmap, combo: dict) -> str:
    """"relu sigma_w2=2" style label of a combination of the non-(width, depth) axes."""
    return " ".join(f"{k}={v}" if k != "activation" else str(v) for k, v in combo.items()) \
        or "all"


def settings(vmap) -> list[dict]:
    """The combinations of the boundary's other axes that hold data."""
    import itertools

    bound = vmap["beta_boundary_at"]
    others = [d for d in bound.dims if d not in ("quantity", "position", "step")]
    combos = []
    for values in itertools.product(*(bound[d].values.tolist() for d in others)):
        combo = dict(zip(others, values, strict=True))
        if bool(bound.sel(combo).notnull().any()):
            combos.append(combo)
    return combos


def boundary_table(vmap):
    """A rich table: per quantity (at its ROW_POSITION layer) and setting, the beta boundary
    without and with the finite-width correction, with the interval from the error's ends."""
    from rich.table import Table

    threshold = vmap.attrs.get("threshold", 0.1)
    table = Table(title=f"beta = depth/width at which the error first exceeds {threshold:g} "
                        "(interval from the error's confidence ends; > or <: beyond the "
                        "largest or below the smallest beta of the setting)")
    table.add_column("quantity")
    table.add_column("layer")
    table.add_column("setting")
    multi_step = vmap.sizes.get("step", 1) > 1
    if multi_step:
        table.add_column("step", justify="right")
    table.add_column("infinite width", justify="right")
    table.add_column("finite-width corrected", justify="right")
    for q in vmap["quantity"].values.tolist():
        pos = ROW_POSITION.get(q, "last_hidden")
        for combo in settings(vmap):
            for step in vmap["step"].values.tolist():
                sel = {"quantity": q, "position": pos, "step": step, **combo}
                inf = _interval(vmap, "beta_boundary_at", sel)
                corr = _interval(vmap, "beta_boundary_at_corrected", sel)
                if inf == "-" and corr == "-":
                    continue
                row = [q, POSITION_TEXT[pos], setting_label(vmap, combo)]
                row += [str(step)] if multi_step else []
                table.add_row(*row, inf, corr)
    return table
