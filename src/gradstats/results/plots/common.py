"""Shared plumbing of the plots: Agg backend, labels from attrs, facets, seed means, saving.

Plots only read datasets. Labels come from a variable's ``long_name``/``units`` attrs, else
from the statistics registry, else the variable's name.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradstats import statistics  # noqa: E402
from gradstats.spec import LAYER_DIM, SEED_DIM, STEP_DIM  # noqa: E402

FORMATS = ("png", "pdf")
PANEL_SIZE = (4.2, 3.2)
MAX_LINES = 12
# Sweep axes worth naming in a figure's "fixed:" note.
NOTE_AXES = ("width", "depth", "activation", "sigma_w2", "sigma_b2", "parameterization", "init",
             "data", "loss", "batch_size", "lr")


class MissingVariables(KeyError):
    """A plot needs variables (or dims) the dataset lacks; the message names them."""

    def __str__(self) -> str:
        return str(self.args[0])


def require(ds: xr.Dataset, kind: str, variables: Iterable[str] = (), dims: Iterable[str] = ()) -> None:
    """Raise `MissingVariables` unless ``ds`` has every variable and dim named."""
    missing = [v for v in variables if v not in ds.data_vars]
    missing_dims = [d for d in dims if d not in ds.dims]
    if missing or missing_dims:
        parts = []
        if missing:
            parts.append("variables " + ", ".join(missing))
        if missing_dims:
            parts.append("dims " + ", ".join(missing_dims))
        raise MissingVariables(f"plot {kind!r} needs {' and '.join(parts)}; the dataset has "
                               f"variables {', '.join(sorted(map(str, ds.data_vars))) or 'none'}")


def label(da: xr.DataArray | str, units: bool = True) -> str:
    """Axis label "long_name [units]" from attrs, else the registry, else the name."""
    name = da if isinstance(da, str) else str(da.name)
    attrs = {} if isinstance(da, str) else dict(da.attrs)
    if "long_name" not in attrs and name in statistics.REGISTRY:
        attrs = statistics.get(name).attrs()
    text = attrs.get("long_name", name)
    unit = attrs.get("units")
    if units and unit and unit != "1":
        text += f" [{unit}]"
    return text


def seed_mean(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean over ``seed`` and its standard error (NaN with one seed); identity without seed."""
    if SEED_DIM not in da.dims:
        return da, xr.full_like(da, np.nan, dtype=float)
    n = da.count(SEED_DIM)
    se = da.std(SEED_DIM, ddof=1) / np.sqrt(n.where(n > 1))
    return da.mean(SEED_DIM), se


def first_step(da: xr.DataArray, step: int | None) -> xr.DataArray:
    """``da`` at ``step`` (default: the first recorded step) when it has a step dim."""
    if STEP_DIM not in da.dims:
        return da
    return da.isel({STEP_DIM: 0}) if step is None else da.sel({STEP_DIM: step})


def varying(da: xr.DataArray, exclude: Iterable[str] = ()) -> list[str]:
    """Dims of ``da`` that are sweep axes (or other non-intrinsic dims), minus ``exclude``."""
    skip = {SEED_DIM, STEP_DIM, LAYER_DIM, *exclude}
    return [d for d in da.dims if d not in skip]


def split_dims(dims: Sequence[str], preferred_lines: Sequence[str], col: str | None = None,
               row: str | None = None) -> tuple[list[str], str | None, str | None]:
    """Assign the varying ``dims`` to lines, facet column and facet row.

    Lines get the dims of ``preferred_lines`` present; the rest facet (column first, then
    row); any dims still left over also become line dims, so nothing is dropped silently.
    """
    rest = [d for d in dims if d not in (col, row)]
    lines = [d for d in preferred_lines if d in rest]
    others = [d for d in rest if d not in lines]
    if col is None and others:
        col = others.pop(0)
    if row is None and others:
        row = others.pop(0)
    return lines + others, col, row


def combos(da: xr.DataArray | xr.Dataset, dims: Sequence[str]) -> list[dict]:
    """Every selection dict over the coordinate values of ``dims`` (one dict if none)."""
    values = [da[d].values.tolist() for d in dims]
    return [dict(zip(dims, c, strict=True)) for c in itertools.product(*values)]


def describe(sel: dict) -> str:
    """"a=1, b=relu" for a selection dict."""
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sel.items())


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def facet_figure(da: xr.DataArray | xr.Dataset, col: str | None, row: str | None,
                 sharey: bool = True, panel_size: tuple[float, float] = PANEL_SIZE
                 ) -> tuple[Figure, np.ndarray, list[tuple[int, int, dict]]]:
    """A figure with one panel per (row, col) value: (figure, axes (nrow, ncol), panels).

    ``panels`` lists (i, j, selection dict) for every panel.
    """
    rows = combos(da, [row] if row else [])
    cols = combos(da, [col] if col else [])
    fig, axes = panel_grid(len(rows), len(cols), sharey, panel_size)
    panels = [(i, j, {**r, **c}) for i, r in enumerate(rows) for j, c in enumerate(cols)]
    for i, j, sel in panels:
        if sel:
            axes[i, j].set_title(describe(sel), fontsize=9)
    return fig, axes, panels


def panel_grid(nrows: int, ncols: int, sharey: bool = False,
               panel_size: tuple[float, float] = PANEL_SIZE) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with an (nrows, ncols) array of axes."""
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, sharey=sharey, layout="constrained",
                             figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    return fig, axes


def scalar_coords(ds: xr.Dataset | xr.DataArray) -> dict:
    """The scalar (fixed) coordinates of ``ds`` as plain Python values."""
    return {str(n): c.item() for n, c in ds.coords.items() if c.ndim == 0}


def fixed_note(ds: xr.Dataset | xr.DataArray, keys: Sequence[str] = NOTE_AXES) -> str:
    """A short "fixed: depth=6, sigma_w2=1.8, ..." line from the scalar sweep-axis coords."""
    fixed = scalar_coords(ds)
    return describe({k: fixed[k] for k in keys if k in fixed})


def suptitle(fig: Figure, head: str, ds: xr.Dataset | xr.DataArray) -> None:
    """Figure title: ``head`` and the wrapped "fixed" note of ``ds``, fitted to the figure width."""
    chars = max(int(fig.get_size_inches()[0] * 15), 40)
    note = textwrap.fill(fixed_note(ds), chars)
    fig.suptitle(f"{head}\n{note}" if note else head, fontsize=9)


def save(fig: Figure, path: Path, fmt: str | None = None, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (format from ``fmt`` or the suffix: png or pdf); closes it."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown {fmt!r}; choose png or pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=fmt, dpi=dpi)
    plt.close(fig)
    return path


def finish_loglog(ax, xlabel: str, ylabel_of: xr.DataArray, first_column: bool) -> None:
    """Log-log axes, the x label, the y label (first column only) and a small legend."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    if first_column:
        ax.set_ylabel(label(ylabel_of))
    ax.legend(fontsize=7)


def loglog_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS of log y on log x over finite positive pairs: (slope, intercept, slope stderr)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log(x[ok]), np.log(y[ok])
    if lx.size < 2:
        return np.nan, np.nan, np.nan
    slope, intercept = np.polyfit(lx, ly, 1)
    if lx.size > 2:
        resid = ly - (slope * lx + intercept)
        se = np.sqrt(resid @ resid / (lx.size - 2) / np.sum((lx - lx.mean()) ** 2))
    else:
        se = np.nan
    return float(slope), float(intercept), float(se)
