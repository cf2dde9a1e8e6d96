"""Shared plumbing of the plots: Agg backend, labels from attrs, facets, seed means, saving.

Plots only read datasets. Labels come from a variable's ``long_name``/``units`` attrs, else
from the statistics registry, else the variable's name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradstats import statistics  # noqa: E402
from gradstats.results.plots import style  # noqa: E402
from gradstats.spec import LAYER_DIM, SEED_DIM, STEP_DIM  # noqa: E402

FORMATS = ("png", "pdf", "svg")
PANEL_SIZE = style.PANEL_SIZE
SINGLE_PANEL_SIZE = (4.0, 3.0)
MAX_LINES = style.MAX_LINES  # lines per panel; more facet into further panels, never dropped
MAX_COLS = 3  # a single row of more panels wraps into rows of MAX_COLS
MAX_CHUNKS = 4  # beyond MAX_CHUNKS x MAX_LINES configurations a figure draws the first ones
                # and says so in its title (select with ds.sel to see the others)
# Sweep axes worth naming in a figure's "fixed:" note.
NOTE_AXES = ("width", "depth", "activation", "sigma_w2", "sigma_b2", "parameterization", "init",
             "data", "loss", "batch_size", "lr")


# Math-text symbols appended to the registry's long_name on axis labels.
SYMBOLS = {
    "grad_sq_norm": r"$\|\partial L/\partial W_l\|_F^2$",
    "bias_grad_sq_norm": r"$\|\partial L/\partial b_l\|^2$",
    "backward_q": r"$\tilde q_l$",
    "forward_q": r"$q_l$",
    "weight_sq_norm": r"$\|W_l\|_F^2$",
    "active_fraction": r"$P(|\phi'(h_l)| > 0)$",
    "full_loss": r"$L$",
    "batch_loss": r"$L_B$",
    "ntk_rel_change": r"$\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F$",
    "theory_ntk_init_rel_err": r"$\|\hat\Theta - \Theta\|_F / \|\Theta\|_F$",
    "grad_noise_scale": r"$B_{\rm simple}$",
    "example_dir_kappa": r"$\kappa$",
    "example_dir_r_bar": r"$\bar R$",
    "minibatch_dir_kappa": r"$\kappa$",
    "minibatch_dir_r_bar": r"$\bar R$",
    "noise_eigenvalues": r"$\lambda_k$",
    "per_example_grad_sq_norm": r"$\|g_i\|^2$",
    "sigma_w2": r"$\sigma_w^2$",
    "sigma_b2": r"$\sigma_b^2$",
    "layer": r"$l$",
    "width": r"$n$",
}


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
    symbol = SYMBOLS.get(name)
    text = attrs.get("long_name")
    text = (symbol or name) if text is None else f"{text} {symbol}" if symbol else text
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
               row: str | None = None, da: xr.DataArray | None = None
               ) -> tuple[list[str], str | None, str | None]:
    """Assign the varying ``dims`` to lines, facet column and facet row.

    Lines get the dims of ``preferred_lines`` present, in order; with ``da``, a further
    preferred dim joins the lines only while the combinations present in ``da`` stay within
    `MAX_LINES` (e.g. depth becomes a facet instead of doubling the lines). The rest facet
    (column first, then row); any dims still left over also become line dims (chunked into
    further panels by `facet_figure`), so nothing is dropped silently.
    """
    rest = [d for d in dims if d not in (col, row)]
    lines: list[str] = []
    for d in (d for d in preferred_lines if d in rest):
        if lines and da is not None and (col is None or row is None):
            n = sum(present(da, s) for s in combos(da, [*lines, d]))
            if n > MAX_LINES:
                continue
        lines.append(d)
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
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def legend_entries(lines: list[dict]) -> tuple[list[tuple[str, str]], str | None]:
    """Compact legend of line selections: entries ("128, relu", colour k) and the title
    naming the dims ("width, activation"); no entries for a single unnamed line."""
    dims = list(lines[0]) if lines and lines[0] else []
    if not dims:
        return [], None
    entries = [(", ".join(_fmt(sel[d]) for d in dims), style.colour(k))
               for k, sel in enumerate(lines)]
    return entries, ", ".join(dims)


def line_chunks(lines: list[dict]) -> tuple[list[list[dict]], str]:
    """``lines`` in chunks of at most `MAX_LINES` (one panel column or row each), at most
    `MAX_CHUNKS` of them, and a note naming how many were left out ("" when none)."""
    kept = lines[: MAX_LINES * MAX_CHUNKS]
    chunks = [kept[k:k + MAX_LINES] for k in range(0, len(kept), MAX_LINES)] or [[{}]]
    note = "" if len(kept) == len(lines) else (
        f"first {len(kept)} of {len(lines)} configurations drawn: select fewer with ds.sel")
    return chunks, note


def present(da: xr.DataArray, sel: dict) -> bool:
    """Whether ``da`` has a finite value at selection ``sel`` (absent zip combinations don't)."""
    sub = da.sel({k: v for k, v in sel.items() if k in da.dims})
    return bool(np.isfinite(np.asarray(sub.values, dtype=float)).any())


@dataclass
class Panel:
    """One axes of a faceted figure: its facet selection, the line selections it draws (at
    most `MAX_LINES`, colour k for the k-th) and which chunk of the lines they are."""

    ax: object
    i: int
    j: int
    facet: dict
    lines: list[dict]
    chunk: int


@dataclass
class Facets:
    """A faceted figure: ``axes`` (nrows, ncols), ``panels`` and the line chunks."""

    fig: Figure
    axes: np.ndarray
    panels: list[Panel]
    chunks: list[list[dict]]
    note: str = ""  # configurations left out (see `line_chunks`)

    def legend(self, keys=(), title: str | None = None) -> None:
        """One legend per chunk of lines, right of the top panel of the chunk's last column
        (`legend_entries`; ``keys`` adds style keys)."""
        for c, lines in enumerate(self.chunks):
            mine = [p for p in self.panels if p.chunk == c]
            if not mine:
                continue
            ax = min(mine, key=lambda p: (p.i, -p.j)).ax  # the chunk's top-right panel
            entries, dims = legend_entries(lines)
            style.legend_right(ax, entries, keys, title=title or dims)


def facet_figure(da: xr.DataArray | xr.Dataset, col: str | None, row: str | None,
                 line_dims: Sequence[str] = (), sharey: bool = True,
                 panel_size: tuple[float, float] = PANEL_SIZE, fig: Figure | None = None,
                 ax=None) -> Facets:
    """A figure with one panel per (row, col) value and line chunk.

    Lines are the combinations of ``line_dims`` present in ``da`` (some finite value); more
    than `MAX_LINES` split into chunks of at most `MAX_LINES`, each drawn in its own column
    of panels (titled "lines a-b of n"); past `MAX_CHUNKS` chunks the rest are left out and
    ``Facets.note`` says so (figures put it in their title): nothing is dropped silently.
    ``fig``: draw into this figure (or subfigure); ``ax``: into this one axes (only for a
    one-panel figure).
    """
    rows = combos(da, [row] if row else [])
    cols = combos(da, [col] if col else [])
    lines = [s for s in combos(da, list(line_dims))
             if not isinstance(da, xr.DataArray) or present(da, s)] or [{}]
    chunks, note = line_chunks(lines)
    cells = [({**r, **c}, k) for r in rows for c in cols for k in range(len(chunks))
             if not isinstance(da, xr.DataArray) or present(da, {**r, **c})]  # zipped axes
    cells = cells or [({}, 0)]
    ncols = len(cols) * len(chunks)
    nrows = len(rows)
    if nrows == 1 and ncols > MAX_COLS:  # wrap one long row of panels
        ncols, nrows = MAX_COLS, -(-len(cells) // MAX_COLS)
    if nrows == ncols == 1 and panel_size == PANEL_SIZE:
        panel_size = SINGLE_PANEL_SIZE  # one panel: a bigger plot area beside its legend
    fig, axes = panel_grid(nrows, ncols, sharey, panel_size, fig=fig, ax=ax)
    for extra in axes.ravel()[len(cells):]:
        extra.set_visible(False)
    panels = []
    for n, (facet, k) in enumerate(cells):
        i, j = divmod(n, ncols)
        chunk = chunks[k]
        panels.append(Panel(axes[i, j], i, j, facet, chunk, k))
        title = describe(facet)
        if len(chunks) > 1:
            first = k * MAX_LINES + 1
            title += f"{'; ' if title else ''}lines {first}-{first + len(chunk) - 1}" \
                     f" of {len(lines)}"
        if title:
            axes[i, j].set_title(style.wrap(title, panel_size[0]))
    return Facets(fig, axes, panels, chunks, note)


def panel_grid(nrows: int, ncols: int, sharey: bool = False,
               panel_size: tuple[float, float] = PANEL_SIZE, fig: Figure | None = None,
               ax=None) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with an (nrows, ncols) array of axes; in ``fig`` (a
    Figure or SubFigure) when given, or the single axes ``ax`` for a 1 x 1 grid."""
    if ax is not None:
        if nrows * ncols != 1:
            raise ValueError(f"ax: this figure has {nrows} x {ncols} panels; pass fig= instead")
        return ax.figure, np.array([[ax]])
    if fig is None:
        fig = plt.figure(layout="constrained", figsize=(panel_size[0] * ncols + 1.6,
                                                        panel_size[1] * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes


def scalar_coords(ds: xr.Dataset | xr.DataArray) -> dict:
    """The scalar (fixed) coordinates of ``ds`` as plain Python values."""
    return {str(n): c.item() for n, c in ds.coords.items() if c.ndim == 0}


def fixed_note(ds: xr.Dataset | xr.DataArray, keys: Sequence[str] = NOTE_AXES) -> str:
    """A short "fixed: depth=6, sigma_w2=1.8, ..." line from the scalar sweep-axis coords."""
    fixed = scalar_coords(ds)
    return describe({k: fixed[k] for k in keys if k in fixed})


def suptitle(fig: Figure, head: str, ds: xr.Dataset | xr.DataArray | None = None,
             extra: str = "") -> None:
    """Figure title: ``head``, then the "fixed" note of ``ds`` and ``extra``, wrapped to the
    figure width (a subfigure's own width)."""
    width = fig.get_size_inches()[0] if hasattr(fig, "get_size_inches") else \
        fig.bbox.width / fig.figure.dpi  # a subfigure
    note = "; ".join(t for t in (fixed_note(ds) if ds is not None else "", extra) if t)
    text = style.wrap(head, width - 0.3, style.FONT + 1)
    if note:
        text += "\n" + style.wrap(note, width - 0.3, style.FONT)
    fig.suptitle(text)


def save(fig: Figure, path: Path, fmt: str | None = None, dpi: int = style.DPI) -> Path:
    """Write ``fig`` to ``path`` (format from ``fmt`` or the suffix: png, pdf or svg; PNG at
    ``dpi``); closes it."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown {fmt!r}; choose {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(style.STYLE):
        fig.savefig(path, format=fmt, dpi=dpi)
    plt.close(fig)
    return path
