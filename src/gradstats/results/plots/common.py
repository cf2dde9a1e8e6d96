"""Shared plumbing of the plots: Agg backend, labels from attrs, facets, seed means, saving.

Plots only read datasets. Labels come from a variable's ``long_name``/``units`` attrs, else
from the statistics registry, else the variable's name.
"""

from __future__ import annotations

import itertools
import math
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
MAX_COLS = 4  # more panels than this in a row wrap into further rows (style.MAX_WIDTH)
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


def short_label(da: xr.DataArray | str, units: bool = True) -> str:
    """The symbol (with units) of a variable that has one in `SYMBOLS`, else `label`: for
    y axes of small stacked panels, where the figure's title names the quantity."""
    name = da if isinstance(da, str) else str(da.name)
    if name not in SYMBOLS:
        return label(da, units)
    attrs = {} if isinstance(da, str) else dict(da.attrs)
    if "units" not in attrs and name in statistics.REGISTRY:
        attrs = statistics.get(name).attrs()
    unit = attrs.get("units")
    return SYMBOLS[name] + (f" [{unit}]" if units and unit and unit != "1" else "")


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


def _too_long(sel: dict, width_in: float) -> bool:
    chars = max(int(width_in * 72 / (0.64 * (style.FONT + 0.5))), 12)
    return any(len(part) > chars for part in config_label(sel).split(", "))


def facet_title(sel: dict, width_in: float, short: bool | None = None) -> str:
    """`config_label` of a panel's selection wrapped to ``width_in``; when a "dim=value"
    would not fit on a line (or ``short``: some panel's would not, so that all panels of a
    figure read alike), string values (parameterizations, activations, optimizers: names
    that say what they are) are shown without their dim."""
    text = config_label(sel)
    if _too_long(sel, width_in) if short is None else short:
        short = {k: v for k, v in sel.items() if not isinstance(v, str)}
        named = [str(v) for k, v in sel.items() if isinstance(v, str) and k not in NAMED_DIMS]
        rest = config_label({k: v for k, v in sel.items()
                             if k in NAMED_DIMS or k in short})
        text = ", ".join([*named, rest] if rest else named)
    return style.wrap(text, width_in)


def _number(value) -> str:
    """A value as written in a sweep file: "1.0" (a zipped axis of mixed types holds
    strings) as 1, "1/sqrt(depth)" as is."""
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


def config_label(sel: dict) -> str:
    """A short label of a configuration: the residual/norm axes as "plain",
    "alpha=1", "alpha=1/sqrt(depth)" and "layer norm" (a plain MLP's residual_scale is
    meaningless and not shown), then `describe` of the other values."""
    sel = dict(sel)
    parts = []
    if "residual" in sel or "residual_scale" in sel:
        residual, scale = sel.pop("residual", 1), sel.pop("residual_scale", None)
        parts.append("plain" if not int(residual) else
                     f"alpha={_number(scale)}" if scale is not None else "residual")
    norm = sel.pop("norm", None)
    if norm is not None:
        parts.append("no norm" if norm == "none" else f"{norm} norm")
    rest = describe(sel)
    return ", ".join([*parts, rest] if rest else parts)


NAMED_DIMS = ("residual", "residual_scale", "norm")  # `config_label` names their values


def legend_entries(lines: list[dict]) -> tuple[list[tuple[str, str]], str | None]:
    """Compact legend of line selections: entries ("128, relu", colour k) and the title
    naming the dims ("width, activation"); with residual/norm dims, `config_label`s
    ("plain, layer norm, depth=4") and no title; no entries for a single unnamed line."""
    dims = list(lines[0]) if lines and lines[0] else []
    if not dims:
        return [], None
    if any(d in NAMED_DIMS for d in dims):
        return [(config_label(sel), style.colour(k)) for k, sel in enumerate(lines)], None
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
    sharey: bool = True

    def legend(self, keys=(), title: str | None = None) -> None:
        """The legend of the lines (`legend_entries`; ``keys`` adds style keys): right of a
        one-panel figure; below the panels, once for the figure, when there are several; one
        per chunk of lines, below the chunk's last panel, when the lines come in chunks."""
        if len(self.panels) == 1:
            entries, dims = legend_entries(self.chunks[self.panels[0].chunk])
            style.legend_right(self.panels[0].ax, entries, keys, title=title or dims)
            return
        if len(self.chunks) == 1:
            entries, dims = legend_entries(self.chunks[0])
            style.figure_legend(self.fig, entries, keys, title=title or dims)
            return
        for c, lines in enumerate(self.chunks):
            mine = [p for p in self.panels if p.chunk == c]
            if not mine:
                continue
            ax = max(mine, key=lambda p: (p.i, p.j)).ax  # the chunk's last panel
            entries, dims = legend_entries(lines)
            style.legend_below(ax, entries, keys, title=title or dims)

    def share_y(self) -> list[list]:
        """`share_y` over the panels (when the figure was made with ``sharey``); returns
        the groups (every panel alone without ``sharey``)."""
        if self.sharey:
            return share_y(self.axes)
        return [[p.ax] for p in self.panels]


def _y_extent(ax) -> tuple[float, float] | None:
    """(low, high) of ``ax``'s autoscaled y limits, in decades on a log axis."""
    if not ax.get_visible() or not ax.has_data():
        return None
    ax.autoscale_view(scalex=False)
    lo, hi = sorted(ax.get_ylim())
    if ax.get_yscale() == "log":
        if lo <= 0:
            return None
        return float(np.log10(lo)), float(np.log10(hi))
    return float(lo), float(hi)


def comparable(extents: Sequence[tuple[float, float]], log: bool) -> bool:
    """Whether y ranges are close enough to share one axis without flattening any: on log
    axes the union spans at most one decade more than the widest range; on linear axes it
    is at most twice as wide (and any range of width 0 shares only with its equals)."""
    lo, hi = min(e[0] for e in extents), max(e[1] for e in extents)
    widest = max(e[1] - e[0] for e in extents)
    if log:
        return hi - lo <= widest + 1.0
    return hi - lo <= 2.0 * widest if widest > 0 else hi == lo


def share_y(axes: np.ndarray) -> list[list]:
    """Share y limits among ``axes`` (nrows, ncols) only where the ranges are comparable:
    within a row when its panels' ranges are `comparable` (same scale), then across rows
    when the rows' ranges are. A shared group gets the union of its limits, and its panels
    right of a row's first keep their ticks but drop the tick labels. Returns the groups."""
    rows = []
    for i in range(axes.shape[0]):
        row = [(ax, _y_extent(ax)) for ax in axes[i] if _y_extent(ax) is not None]
        if not row:
            continue
        scales = {ax.get_yscale() for ax, _ in row}
        if len(scales) == 1 and comparable([e for _, e in row], scales.pop() == "log"):
            rows.append(row)
        else:
            rows.extend([[pair] for pair in row])  # each panel its own axis
    scales = {ax.get_yscale() for r in rows for ax, _ in r}
    if len(rows) > 1 and len(scales) == 1 and comparable(
            [(min(e[0] for _, e in r), max(e[1] for _, e in r)) for r in rows],
            scales.pop() == "log"):
        rows = [[pair for r in rows for pair in r]]
    groups = []
    for group in rows:
        lo, hi = min(e[0] for _, e in group), max(e[1] for _, e in group)
        for ax, _ in group:
            log = ax.get_yscale() == "log"
            ax.set_ylim(10 ** lo if log else lo, 10 ** hi if log else hi)
            if log:  # ticks for the shared range, not the panel's own
                style.log_ticks(ax, "y", [10 ** lo, 10 ** hi])
        if len(group) > 1:
            members = {id(ax) for ax, _ in group}
            for i in range(axes.shape[0]):
                shown = [ax for ax in axes[i] if id(ax) in members]
                for ax in shown[1:]:
                    ax.tick_params(labelleft=False)
                    ax.yaxis.offsetText.set_visible(False)
        groups.append([ax for ax, _ in group])
    return groups


def drew(axes, gid: str) -> bool:
    """Whether any line of gid ``gid`` with a finite point is drawn in ``axes`` (an array or
    a list of axes): a legend keys only what it can point to."""
    for ax in np.ravel(axes):
        for line in ax.get_lines():
            if line.get_gid() == gid and np.isfinite(
                    np.asarray(line.get_ydata(), float)).any():
                return True
    return False


def grid_shape(n: int, max_cols: int = MAX_COLS) -> tuple[int, int]:
    """(nrows, ncols) of ``n`` panels in rows of at most ``max_cols``, balanced (5 -> 2 x 3)."""
    nrows = -(-n // max_cols)
    return nrows, -(-n // nrows)


def facet_figure(da: xr.DataArray | xr.Dataset, col: str | None, row: str | None,
                 line_dims: Sequence[str] = (), sharey: bool = True,
                 panel_size: tuple[float, float] = PANEL_SIZE, fig: Figure | None = None,
                 ax=None) -> Facets:
    """A figure with one panel per (row, col) value and line chunk that holds data.

    Lines are the combinations of ``line_dims`` present in ``da`` (some finite value); more
    than `MAX_LINES` that each facet holds at most `MAX_LINES` of draw each facet's own (the
    facets holding the same lines share colours and a legend: `_line_groups`); otherwise
    they split into chunks of at most `MAX_LINES`, each drawn in its own column
    of panels (titled "lines a-b of n"); past `MAX_CHUNKS` chunks the rest are left out and
    ``Facets.note`` says so (figures put it in their title): nothing is dropped silently.
    Panels follow the combinations present: a full (row x col) grid of at most `MAX_COLS`
    columns keeps its rows and columns; otherwise (zipped axes leave combinations empty, or
    too many columns) the panels that hold data fill rows of at most `MAX_COLS`, titled by
    their values (`config_label`). ``sharey``: the plot function calls `Facets.share_y`
    after drawing (comparable ranges only). ``fig``: draw into this figure (or subfigure);
    ``ax``: into this one axes (only for a one-panel figure).
    """
    rows = combos(da, [row] if row else [])
    cols = combos(da, [col] if col else [])
    lines = [s for s in combos(da, list(line_dims))
             if not isinstance(da, xr.DataArray) or present(da, s)] or [{}]
    chunks, note = line_chunks(lines)
    grouped = _line_groups(da, rows, cols, lines) if len(chunks) > 1 else None
    if grouped is not None:  # each facet's own lines fit a panel: no chunks of lines
        chunks, cells = grouped
        note = ""
    else:
        def holds_data(facet: dict, k: int) -> bool:  # zipped axes leave cells empty
            return not isinstance(da, xr.DataArray) or any(
                present(da, {**facet, **sel}) for sel in chunks[k])

        cells = [({**r, **c}, k) for r in rows for c in cols for k in range(len(chunks))
                 if holds_data({**r, **c}, k)]
    cells = cells or [({}, 0)]
    ncols = len(cols) * len(chunks)
    nrows = len(rows)
    if len(cells) < nrows * ncols or ncols > MAX_COLS:  # follow the panels that hold data
        nrows, ncols = grid_shape(len(cells))
    if nrows == ncols == 1 and panel_size == PANEL_SIZE:
        panel_size = SINGLE_PANEL_SIZE  # one panel: a bigger plot area beside its legend
    fig, axes = panel_grid(nrows, ncols, False, panel_size, fig=fig, ax=ax,
                           legend="right" if nrows == ncols == 1 else "below")
    for extra in axes.ravel()[len(cells):]:
        extra.set_visible(False)
    width = panel_width(axes)
    short = any(_too_long(facet, width) for facet, _ in cells)  # all titles alike
    panels = []
    for n, (facet, k) in enumerate(cells):
        i, j = divmod(n, ncols)
        chunk = chunks[k]
        panels.append(Panel(axes[i, j], i, j, facet, chunk, k))
        title = facet_title(facet, width, short)
        if len(chunks) > 1 and grouped is None:
            first = k * MAX_LINES + 1
            title += f"{chr(10) if title else ''}lines {first}-{first + len(chunk) - 1}" \
                     f" of {len(lines)}"
        if title:
            axes[i, j].set_title(title)
    return Facets(fig, axes, panels, chunks, note, sharey)


def _line_groups(da, rows: list[dict], cols: list[dict], lines: list[dict]
                 ) -> tuple[list[list[dict]], list[tuple[dict, int]]] | None:
    """When more lines than a panel holds are present overall but each facet holds at most
    `MAX_LINES` of them (a line axis zipped with a facet axis: each parameterization its own
    lrs), the facets grouped by the lines they hold: (the line lists, one per group; the
    cells (facet, group)). None when some facet holds more (then lines are chunked)."""
    if not isinstance(da, xr.DataArray):
        return None
    groups: list[list[dict]] = []
    cells = []
    for r in rows:
        for c in cols:
            facet = {**r, **c}
            mine = [s for s in lines if present(da, {**facet, **s})]
            if not mine:
                continue
            if len(mine) > MAX_LINES:
                return None
            if mine not in groups:
                groups.append(mine)
            cells.append((facet, groups.index(mine)))
    return (groups, cells) if cells else None


def panel_width(axes: np.ndarray) -> float:
    """The width in inches of one column of ``axes``' figure (for wrapping titles)."""
    fig = axes.ravel()[0].figure
    total = fig.get_figwidth() if hasattr(fig, "get_figwidth") else fig.bbox.width / fig.figure.dpi
    return max(total / axes.shape[1] - 0.45, 1.0)  # less the tick labels left of a panel


def panel_grid(nrows: int, ncols: int, sharey: bool | str = False,
               panel_size: tuple[float, float] = PANEL_SIZE, fig: Figure | None = None,
               ax=None, legend: str = "right") -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with an (nrows, ncols) array of axes; in ``fig`` (a
    Figure or SubFigure) when given, or the single axes ``ax`` for a 1 x 1 grid.

    A new figure is at most `style.MAX_WIDTH` wide: panels narrow (keeping their aspect,
    down to `style.MIN_PANEL`) to fit; ``legend="right"`` keeps `style.LEGEND_WIDTH` for a
    legend right of the panels, ``"below"`` none (the legend goes under them).
    """
    if ax is not None:
        if nrows * ncols != 1:
            raise ValueError(f"ax: this figure has {nrows} x {ncols} panels; pass fig= instead")
        return ax.figure, np.array([[ax]])
    if fig is None:
        fig = plt.figure(layout="constrained",
                         figsize=figure_size(nrows, ncols, panel_size, legend))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, axes


def figure_size(nrows: int, ncols: int, panel_size: tuple[float, float] = PANEL_SIZE,
                legend: str = "right") -> tuple[float, float]:
    """(width, height) inches of an (nrows, ncols) grid of ``panel_size`` panels, the width
    capped at `style.MAX_WIDTH` (panels shrink in proportion, not below `style.MIN_PANEL`),
    with room for a title and a right legend (``legend="right"``); a legend below grows the
    figure when it is placed (`style.figure_legend`, `style.legend_below`)."""
    reserve = style.LEGEND_WIDTH + 0.3 if legend == "right" else 0.3
    w, h = panel_size
    room = (style.MAX_WIDTH - reserve) / ncols
    if w > room:
        h = max(h * room / w, style.MIN_PANEL[1])
        w = max(room, style.MIN_PANEL[0])
    width = min(math.ceil((w * ncols + reserve) * 10) / 10, style.MAX_WIDTH)
    return width, math.ceil((h * nrows + 0.8) * 10) / 10  # whole pixels at 80/150/200 dpi


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
    ``dpi``; by a temporary file and a rename); closes it."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown {fmt!r}; choose {', '.join(FORMATS)}")
    from gradstats.results import io

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(style.STYLE):  # atomically: a Ctrl-C leaves no half a figure
        io.replace_with(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    plt.close(fig)
    return path
