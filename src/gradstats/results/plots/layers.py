"""Per-layer statistics (log scale) beside the prediction that `gradstats compare` tests.

Needs: ``grad_sq_norm`` (or ``var``; dims: sweep axes..., seed, step, layer). Theory: the
stored per-seed prediction ``theory_<var>`` (`gradstats.predictions`; for grad_sq_norm the
analytic per-layer NTK given each seed's measured readout gradient), drawn as its seed mean,
dashed, in the colour of the measurement. Older datasets without stored predictions fall back
to the asymptotic rate chi_1^(L-l) anchored at the readout (labelled as such: compare does
not test that line).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gradstats.results.plots import common
from gradstats.results.plots.theory_link import chi_1_at
from gradstats.spec import LAYER_DIM

REQUIRES = ("grad_sq_norm",)
LINE_DIMS = ("sigma_w2", "activation", "depth", "sigma_b2")


def theory_line(layers: np.ndarray, readout_value: float, chi_1: float) -> np.ndarray:
    """chi_1^(L-l) anchored at the readout: readout_value * chi_1**(L - l), L = max(layers)."""
    layers = np.asarray(layers, dtype=float)
    return readout_value * chi_1 ** (layers.max() - layers)


def stored_prediction(ds: xr.Dataset, var: str, step: int | None, sel: dict) -> np.ndarray | None:
    """Seed mean of the stored prediction ``theory_<var>`` at ``step`` for ``sel`` (by layer)."""
    name = f"theory_{var}"
    if name not in ds:
        return None
    da = common.first_step(ds[name], step) if "step" in ds[name].dims else ds[name]
    mean, _ = common.seed_mean(da)
    return mean.sel({k: v for k, v in sel.items() if k in mean.dims}).values


def plot_layer_norms(ds: xr.Dataset, var: str = "grad_sq_norm", step: int | None = None,
                     col: str | None = None, row: str | None = None,
                     theory: bool = True) -> Figure:
    """Seed mean (± standard error band) of ``var`` vs layer at ``step`` (default: first).

    One solid line per configuration (sigma_w2/activation/depth/... that vary), the dashed
    chi_1^(L-l) theory line beside it in the same colour; facets over the other varying dims
    (``col``, ``row``). Measured lines have gid ``measured``, theory lines gid ``theory``.
    """
    common.require(ds, "layers", [var], [LAYER_DIM])
    da = common.first_step(ds[var], step)
    line_dims, col, row = common.split_dims(common.varying(da), LINE_DIMS, col, row)
    mean, se = common.seed_mean(da)
    fig, axes, panels = common.facet_figure(mean, col, row)
    for i, j, facet in panels:
        ax = axes[i, j]
        lines = common.combos(mean, line_dims)
        for k, sel in enumerate(lines[: common.MAX_LINES]):
            full = {**facet, **sel}
            m = mean.sel(full)
            ok = np.isfinite(m.values)
            if not ok.any():
                continue
            layers = m[LAYER_DIM].values[ok]
            y = m.values[ok]
            (line,) = ax.plot(layers, y, "o-", ms=3.5, lw=1.4, color=f"C{k % 10}", gid="measured",
                              label=common.describe(sel) or "measured")
            s = se.sel(full).values[ok]
            if np.isfinite(s).any():
                ax.fill_between(layers, np.clip(y - s, y * 1e-3, None), y + s,
                                color=line.get_color(), alpha=0.2, lw=0)
            predicted = stored_prediction(ds, var, step, full) if theory else None
            if predicted is not None and np.isfinite(predicted[ok]).any():
                ax.plot(layers, predicted[ok], "--", lw=1.1, color=line.get_color(),
                        gid="theory", label="theory (as compare tests it)")
                continue
            chi = chi_1_at(ds, full) if theory else np.nan
            if np.isfinite(chi):
                ax.plot(layers, theory_line(layers, y[-1], chi), "--", lw=1.1,
                        color=line.get_color(), gid="theory",
                        label=f"χ₁^(L−l), χ₁={chi:.3g} (asymptotic rate, untested)")
        ax.set_yscale("log")
        ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords else "layer")
        if j == 0:
            ax.set_ylabel(common.label(ds[var]))
        if ax.get_legend_handles_labels()[0]:  # a panel of an absent combination is empty
            ax.legend(fontsize=6.5, loc="best")
    step_value = int(da["step"]) if "step" in da.coords and da["step"].ndim == 0 else None
    title = f"{common.label(ds[var], units=False)} per layer"
    if step_value is not None:
        title += f" at step {step_value}"
    common.suptitle(fig, title, ds)
    return fig


SIGNALS = ("forward_q", "backward_q", "grad_sq_norm")
SIGNAL_COLUMNS = ("depth", "width", "activation", "sigma_w2")
HIDDEN_ONLY = ("forward_q", "backward_q")  # the readout's are the outputs and dL/df themselves


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


def plot_signals(ds: xr.Dataset, step: int | None = None, col: str | None = None,
                 theory: bool = True) -> Figure:
    """forward_q, backward_q and grad_sq_norm vs layer (one row each), at ``step`` (default:
    the first recorded step), each beside its stored prediction (dashed, the seed mean of
    ``theory_<var>``: what `gradstats compare` tests; NaN where no prediction holds).

    Columns: ``col`` (default the first of depth, width, activation, sigma_w2 that varies);
    one line per combination of the other varying dims (e.g. residual, residual_scale, norm),
    the same colour in every panel; combinations absent from the sweep are not drawn.
    forward_q and backward_q are drawn over the hidden layers (compare tests those; the
    readout's are the outputs and dL/df themselves). Measured lines have gid ``measured``,
    theory lines gid ``theory``.
    """
    names = [v for v in SIGNALS if v in ds.data_vars]
    common.require(ds, "signals", SIGNALS, [LAYER_DIM])
    dims = common.varying(common.first_step(ds[names[-1]], step))
    if col is None:
        col = next((d for d in SIGNAL_COLUMNS if d in dims), dims[0] if dims else None)
    line_dims = [d for d in dims if d != col]
    cols = common.combos(ds, [col] if col else [])
    lines = common.combos(ds, line_dims)
    fig, axes = common.panel_grid(len(names), len(cols), sharey=False, panel_size=(3.4, 2.6))
    for i, var in enumerate(names):
        mean, se = common.seed_mean(common.first_step(ds[var], step))
        for j, facet in enumerate(cols):
            ax = axes[i, j]
            for k, sel in enumerate(lines[: common.MAX_LINES]):
                full = {**facet, **sel}
                m = mean.sel(full)
                ok = np.isfinite(m.values) & (m.values > 0)
                if var in HIDDEN_ONLY and ok.any():
                    ok[np.flatnonzero(ok)[-1]] = False  # the readout
                if not ok.any():
                    continue
                layers, y = m[LAYER_DIM].values[ok], m.values[ok]
                color = f"C{k % 10}"
                ax.plot(layers, y, "o-" if len(layers) <= 8 else "-", ms=2.5, lw=1.2,
                        color=color, gid="measured", label=network_label(sel) or "measured")
                s = se.sel(full).values[ok]
                if np.isfinite(s).any() and len(layers) <= 20:  # deeper: thinner than the line
                    ax.fill_between(layers, np.clip(y - s, y * 1e-3, None), y + s,
                                    color=color, alpha=0.2, lw=0)
                predicted = stored_prediction(ds, var, step, full) if theory else None
                if predicted is not None and np.isfinite(predicted[ok]).any():
                    ax.plot(layers, predicted[ok], "--", lw=1.0, color=color, gid="theory")
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == 0 and facet:
                ax.set_title(common.describe(facet), fontsize=9)
            if i == len(names) - 1:
                ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords else "layer")
            if j == 0:
                ax.set_ylabel(common.label(ds[var], units=False), fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 0].legend(handles, labels, fontsize=6, loc="best",
                          title="solid: measured, dashed: theory", title_fontsize=6)
    common.suptitle(fig, "forward signal, backward signal and gradient norm per layer", ds)
    return fig
