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
    for p in facets.panels:
        log = style.spans_decades(mean.sel(p.facet).values if p.facet else mean.values)
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
        p.ax.set_yscale("log" if log else "linear")
        p.ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        p.ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords else "layer")
        if p.j == 0:
            p.ax.set_ylabel(common.label(ds[var]))
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if has_theory:
        keys.append((style.THEORY_KEY, style.THEORY_STYLE))
    facets.legend(keys)
    note = "" if has_theory or not theory else f"no stored theory_{var}: theory not drawn"
    note = "; ".join(t for t in (note, facets.note) if t)
    if ax is None:
        common.suptitle(facets.fig, f"{common.label(ds[var], units=False)} per layer"
                        + _step_title(da), ds, note)
    return facets.fig


SIGNALS = ("forward_q", "backward_q", "grad_sq_norm")
SIGNAL_COLUMNS = ("depth", "width", "activation", "sigma_w2")
HIDDEN_ONLY = ("forward_q", "backward_q")  # the readout's are the outputs and dL/df themselves


def _values_label(sel: dict) -> str:
    """The values of a configuration only, e.g. "32, relu, 2, 0" (the dims go in the title)."""
    return ", ".join(common.describe({k: v}).split("=", 1)[-1] for k, v in sel.items())


def network_label(sel: dict) -> str:
    """A short label of a configuration: "plain", "alpha=1", "alpha=1/sqrt(depth)" with
    ", layer norm" for the residual/norm axes, then the other values."""
    sel = dict(sel)
    parts = []
    if "residual" in sel or "residual_scale" in sel:
        residual, scale = sel.pop("residual", 1), sel.pop("residual_scale", None)
        parts.append("plain" if not int(residual) else f"alpha={scale}" if scale else "residual")
    norm = sel.pop("norm", None)
    if norm is not None:
        parts.append("no norm" if norm == "none" else f"{norm} norm")
    rest = common.describe(sel)
    return ", ".join([*parts, rest] if rest else parts)


@style.styled
def plot_signals(ds: xr.Dataset, step: int | None = None, col: str | None = None,
                 theory: bool = True, fig: Figure | None = None) -> Figure:
    """forward_q, backward_q and grad_sq_norm vs layer (one row each), at ``step`` (default:
    the first recorded step), each beside its stored prediction (dashed, the seed mean of
    ``theory_<var>``: what `gradstats compare` tests; NaN where no prediction holds).

    Columns: ``col`` (default the first of depth, width, activation, sigma_w2 that varies);
    one line per combination of the other varying dims (e.g. residual, residual_scale, norm)
    present in the sweep, the same colour in every panel; more than `common.MAX_LINES` split
    into further columns. forward_q and backward_q are drawn over the hidden layers (compare
    tests those; the readout's are the outputs and dL/df themselves). Measured lines have gid
    ``measured``, theory lines gid ``theory``.
    """
    names = [v for v in SIGNALS if v in ds.data_vars]
    common.require(ds, "signals", SIGNALS, [LAYER_DIM])
    first = common.first_step(ds[names[-1]], step)
    dims = common.varying(first)
    if col is None and dims:  # few columns: a preferred dim with <= 4 values, else the fewest
        short = [d for d in SIGNAL_COLUMNS if d in dims and first.sizes[d] <= 4]
        col = short[0] if short else min(dims, key=lambda d: first.sizes[d])
    line_dims = [d for d in dims if d != col]
    cols = common.combos(ds, [col] if col else [])
    lines = [s for s in common.combos(ds, line_dims) if common.present(first, s)] or [{}]
    chunks, left_out = common.line_chunks(lines)
    ncols = len(cols) * len(chunks)
    size = style.PANEL_SIZE if ncols <= 3 else (2.6, 2.2)
    fig, axes = common.panel_grid(len(names), ncols, sharey=False, fig=fig, panel_size=size)
    drew_theory, legend_at = False, []
    for i, var in enumerate(names):
        mean, se = common.seed_mean(common.first_step(ds[var], step))
        for jc, facet in enumerate(cols):
            for c, chunk in enumerate(chunks):
                j = jc * len(chunks) + c
                ax = axes[i, j]
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
                            color=color, gid="measured", label=network_label(sel) or "measured")
                    style.band(ax, layers, y, se.sel(full).values[ok], color, log=True)
                    predicted = stored_prediction(ds, var, step, full) if theory else None
                    if predicted is not None and np.isfinite(predicted[ok]).any():
                        ax.plot(layers, predicted[ok], "--", lw=1.0, color=color, gid="theory")
                        drew_theory = True
                style.auto_scale(ax)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if i == 0:
                    title = common.describe(facet)
                    if len(chunks) > 1:
                        title += f"{'; ' if title else ''}lines {c * common.MAX_LINES + 1}-" \
                                 f"{c * common.MAX_LINES + len(chunk)} of {len(lines)}"
                    if title:
                        ax.set_title(style.wrap(title, style.PANEL_SIZE[0]))
                if i == len(names) - 1:
                    ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords
                                  else "layer")
                if j == 0:
                    ax.set_ylabel(style.wrap(common.label(ds[var], units=False), 2.3))
                if i == 0 and jc == len(cols) - 1:
                    compact = len(line_dims) > 2  # values per entry, the dims in the title
                    entries = [(_values_label(sel) if compact else
                                style.wrap(network_label(sel), 1.6, style.FONT - 1),
                                style.colour(k)) for k, sel in enumerate(chunk)
                               if network_label(sel)]
                    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
                    legend_at.append((ax, entries, keys, ", ".join(line_dims) if compact
                                      else None))
    for ax, entries, keys, title in legend_at:  # the theory key only where a line is drawn
        if drew_theory:
            keys = [*keys, (style.THEORY_KEY, style.THEORY_STYLE)]
        style.legend_right(ax, entries, keys, title=title)
    common.suptitle(fig, "forward signal, backward signal and gradient norm per layer", ds,
                    left_out)
    return fig
