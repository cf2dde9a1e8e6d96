"""Per-layer statistics beside the prediction that `gradstats compare` tests.

Needs: ``grad_sq_norm`` (or ``var``; dims: sweep axes..., seed, step, layer). Theory: the
stored per-seed prediction ``theory_<var>`` (`gradstats.predictions`; for grad_sq_norm the
analytic per-layer NTK given each seed's measured readout gradient), drawn as its seed mean,
dashed, in the colour of the measurement: exactly the ``<row>_pred`` values of compare's row
(e.g. ``grad_sq_norm_pred``). Results without a stored prediction draw no theory line and
say so in the title (an asymptotic rate anchored at the readout is not what compare tests).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gradstats.results.plots import common, style
from gradstats.spec import LAYER_DIM

REQUIRES = ("grad_sq_norm",)
LINE_DIMS = ("sigma_w2", "activation", "depth", "sigma_b2")


def stored_prediction(ds: xr.Dataset, var: str, step: int | None, sel: dict) -> np.ndarray | None:
    """Seed mean of the stored prediction ``theory_<var>`` at ``step`` for ``sel`` (by layer)."""
    name = f"theory_{var}"
    if name not in ds:
        return None
    da = common.first_step(ds[name], step) if "step" in ds[name].dims else ds[name]
    mean, _ = common.seed_mean(da)
    return mean.sel({k: v for k, v in sel.items() if k in mean.dims}).values


def _step_title(da: xr.DataArray) -> str:
    step = int(da["step"]) if "step" in da.coords and da["step"].ndim == 0 else None
    return "" if step is None else f" at step {step}"


@style.styled
def plot_layer_norms(ds: xr.Dataset, var: str = "grad_sq_norm", step: int | None = None,
                     col: str | None = None, row: str | None = None, theory: bool = True,
                     fig: Figure | None = None, ax=None) -> Figure:
    """Seed mean (± standard error band) of ``var`` vs layer at ``step`` (default: first).

    One solid line per configuration (sigma_w2/activation/depth/... that vary; more than
    `common.MAX_LINES` facet into further panels), the stored prediction dashed beside it in
    the same colour; facets over the other varying dims (``col``, ``row``). Measured lines
    have gid ``measured``, theory lines gid ``theory``. Log y when the values span a decade.
    """
    common.require(ds, "layers", [var], [LAYER_DIM])
    da = common.first_step(ds[var], step)
    mean, se = common.seed_mean(da)
    line_dims, col, row = common.split_dims(common.varying(da), LINE_DIMS, col, row, da=mean)
    facets = common.facet_figure(mean, col, row, line_dims, fig=fig, ax=ax)
    has_theory = theory and f"theory_{var}" in ds
    drew_theory = False
    for p in facets.panels:  # log y per row of panels (rows share an axis where comparable)
        row = [q.facet for q in facets.panels if q.i == p.i]
        log = style.spans_decades(np.concatenate(
            [(mean.sel(f) if f else mean).values.ravel() for f in row]))
        for k, sel in enumerate(p.lines):
            full = {**p.facet, **sel}
            m = mean.sel(full)
            ok = np.isfinite(m.values) & ((m.values > 0) if log else True)
            if not ok.any():
                continue
            layers, y = m[LAYER_DIM].values[ok], m.values[ok]
            color = style.colour(k)
            p.ax.plot(layers, y, "o-", color=color, gid="measured",
                      label=common.describe(sel) or "measured")
            style.band(p.ax, layers, y, se.sel(full).values[ok], color, log)
            predicted = stored_prediction(ds, var, step, full) if has_theory else None
            if predicted is not None and np.isfinite(predicted[ok]).any():
                p.ax.plot(layers, predicted[ok], "--", lw=1.1, color=color, gid="theory",
                          label="theory")
                drew_theory = True
        p.ax.set_yscale("log" if log else "linear")
        if log:
            style.log_ticks(p.ax)
        p.ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        p.ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords else "layer")
        if p.j == 0:  # stacked rows: the symbol (the title names the quantity)
            ylabel = common.label(ds[var]) if facets.axes.shape[0] == 1 else \
                common.short_label(ds[var])
            p.ax.set_ylabel(style.wrap(ylabel, 2.2))
    for group in facets.share_y():
        if len(group) == 1:  # a panel on its own axis: its own scale (a row's log may not fit)
            style.auto_scale(group[0])
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if drew_theory:  # the key only where a theory line is drawn
        keys.append((style.THEORY_KEY, style.THEORY_STYLE))
    facets.legend(keys)
    note = "" if drew_theory or not theory else (
        f"no stored theory_{var}: theory not drawn" if not has_theory
        else f"theory_{var} is NaN here (outside its validity domain): not drawn")
    note = "; ".join(t for t in (note, facets.note) if t)
    if ax is None:
        common.suptitle(facets.fig, f"{common.label(ds[var], units=False)} per layer"
                        + _step_title(da), ds, note)
    return facets.fig


SIGNALS = ("forward_q", "backward_q", "grad_sq_norm")
SIGNAL_COLUMNS = ("depth", "width", "activation", "sigma_w2")
HIDDEN_ONLY = ("forward_q", "backward_q")  # the readout's are the outputs and dL/df themselves
NAMED_DIMS = common.NAMED_DIMS


def _values_label(sel: dict) -> str:
    """The values of a configuration only, e.g. "32, relu, 2, 0" (the dims go in the title)."""
    return ", ".join(common.describe({k: v}).split("=", 1)[-1] for k, v in sel.items())


def network_label(sel: dict) -> str:
    """`common.config_label` (kept for callers of 0.4)."""
    return common.config_label(sel)


@style.styled
def plot_signals(ds: xr.Dataset, step: int | None = None, col: str | None = None,
                 theory: bool = True, fig: Figure | None = None) -> Figure:
    """forward_q, backward_q and grad_sq_norm vs layer (one row each), at ``step`` (default:
    the first recorded step), each beside its stored prediction (dashed, the seed mean of
    ``theory_<var>``: what `gradstats compare` tests; NaN where no prediction holds).

    Columns: ``col`` (default the first of depth, width, activation, sigma_w2 that varies);
    one line per combination of the other varying dims (e.g. residual, residual_scale, norm)
    present in the sweep, the same colour in every panel; more than `common.MAX_LINES` split
    into further columns; more columns than `common.MAX_COLS` wrap into further groups of
    three rows. forward_q and backward_q are drawn over the hidden layers (compare
    tests those; the readout's are the outputs and dL/df themselves). Measured lines have gid
    ``measured``, theory lines gid ``theory``.
    """
    names = [v for v in SIGNALS if v in ds.data_vars]
    common.require(ds, "signals", SIGNALS, [LAYER_DIM])
    first = common.first_step(ds[names[-1]], step)
    dims = common.varying(first)
    if col is None and dims:  # few columns: a preferred dim with <= MAX_COLS values, else
        # the one with the fewest if that fits a page's width, else none (all lines)
        short = [d for d in SIGNAL_COLUMNS if d in dims and first.sizes[d] <= common.MAX_COLS]
        fewest = min(dims, key=lambda d: first.sizes[d])
        col = short[0] if short else fewest if first.sizes[fewest] <= common.MAX_COLS else None
    line_dims = [d for d in dims if d != col]
    cols = common.combos(ds, [col] if col else [])
    lines = [s for s in common.combos(ds, line_dims) if common.present(first, s)] or [{}]
    chunks, left_out = common.line_chunks(lines)
    # a block: one column of the three signals (a facet value and a chunk of lines holding
    # data); more blocks than fit a page's width wrap into further groups of rows
    blocks = [(facet, c) for facet in cols for c in range(len(chunks))
              if any(common.present(first, {**facet, **sel}) for sel in chunks[c])]
    blocks = blocks or [({}, 0)]
    groups, ncols = common.grid_shape(len(blocks))
    nrows = len(names) * groups
    fig, axes = common.panel_grid(nrows, ncols, sharey=False, fig=fig,
                                  legend="right" if ncols == 1 else "below")
    width = common.panel_width(axes)
    row_height = max(fig.get_figheight() / nrows - 0.7, 1.0) if hasattr(fig, "get_figheight") \
        else 1.5
    for extra in axes.ravel()[len(names) * len(blocks):]:
        extra.set_visible(False)
    for b in range(len(blocks), groups * ncols):  # the last group's spare columns
        for i in range(len(names)):
            axes[(b // ncols) * len(names) + i, b % ncols].set_visible(False)
    drew_theory, last_of_chunk = False, {}
    for i, var in enumerate(names):
        mean, se = common.seed_mean(common.first_step(ds[var], step))
        for b, (facet, c) in enumerate(blocks):
            g, j = divmod(b, ncols)
            ax = axes[g * len(names) + i, j]
            chunk = chunks[c]
            for k, sel in enumerate(chunk):
                full = {**facet, **sel}
                m = mean.sel(full)
                ok = np.isfinite(m.values) & (m.values > 0)
                if var in HIDDEN_ONLY and ok.any():
                    ok[np.flatnonzero(ok)[-1]] = False  # the readout
                if not ok.any():
                    continue
                layers, y = m[LAYER_DIM].values[ok], m.values[ok]
                color = style.colour(k)
                ax.plot(layers, y, "o-" if len(layers) <= 8 else "-", ms=2.5, lw=1.2,
                        color=color, gid="measured", label=common.config_label(sel) or "measured")
                style.band(ax, layers, y, se.sel(full).values[ok], color, log=True)
                predicted = stored_prediction(ds, var, step, full) if theory else None
                if predicted is not None and np.isfinite(predicted[ok]).any():
                    ax.plot(layers, predicted[ok], "--", lw=1.0, color=color, gid="theory")
                    drew_theory = True
            style.auto_scale(ax)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            if i == 0:
                title = common.facet_title(facet, width)
                if len(chunks) > 1:
                    title += f"{chr(10) if title else ''}lines {c * common.MAX_LINES + 1}-" \
                             f"{c * common.MAX_LINES + len(chunk)} of {len(lines)}"
                if title:
                    ax.set_title(title)
            if i == len(names) - 1:
                ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords
                              else "layer")
                last_of_chunk[c] = (axes[g * len(names), j], ax)
            if j == 0:  # as long as the row is tall, at most
                ax.set_ylabel(style.wrap(common.label(ds[var], units=False), row_height,
                                         style.FONT))
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if drew_theory:  # the theory key only where a theory line is drawn
        keys.append((style.THEORY_KEY, style.THEORY_STYLE))
    # values per entry, the dims in the title (residual/norm: named)
    compact = len([d for d in line_dims if d not in NAMED_DIMS]) >= 2
    for c, (top, bottom) in sorted(last_of_chunk.items()):
        entries = [(_values_label(sel) if compact else common.config_label(sel),
                    style.colour(k)) for k, sel in enumerate(chunks[c])
                   if common.config_label(sel)]
        title = ", ".join(line_dims) if compact else None
        if ncols == 1 and len(chunks) == 1:
            style.legend_right(top, entries, keys, title=title)
        elif len(chunks) == 1:
            style.figure_legend(fig, entries, keys, title=title)
        else:  # colours repeat between chunks: a legend under each chunk's last column
            style.legend_below(bottom, entries, keys, title=title)
    common.suptitle(fig, "forward signal, backward signal and gradient norm per layer", ds,
                    left_out)
    return fig
