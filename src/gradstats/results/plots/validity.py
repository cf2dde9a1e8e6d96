"""The validity map as a figure: where each per-layer prediction holds over (width, depth).

Rows 1..S (one per setting: the combinations of the axes other than width and depth):
heatmaps of the infinite-width prediction's relative error over (width, depth), one column
per quantity at the layer `ROW_POSITION` names (readout for grad_sq_norm, the last hidden
layer otherwise), with the threshold contour: the line depth = beta_b x width at the map's
beta boundary, infinite width (solid) and finite-width corrected (dashed, where a correction
exists), and a red outline on cells whose error interval lies above the threshold. Last row: the relative
error against beta (log-log) for every configuration, infinite width (filled) and corrected
(open) side by side, with the error the correction predicts for the infinite-width
prediction (correction - 1, grey): where the theory says the error is a function of beta,
the points collapse onto that curve. Reads a validity map (`gradstats.results.validity_map`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib import patheffects
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from gradstats.results.plots import common, style

REQUIRES = ("forward_q", "theory_forward_q")
ERROR_RANGE = (1e-3, 1.0)
SETTING_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
SETTING_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                   "#F0E442", "#000000")  # Okabe-Ito
DPI = 150


def plot_validity_results(ds: xr.Dataset) -> Figure:
    """The figure of a results dataset: its validity map at the default threshold."""
    from gradstats.results.validity_map import validity_map

    common.require(ds, "validity", REQUIRES, dims=("seed", "width", "depth"))
    try:
        vmap = validity_map(ds)
    except ValueError as err:
        raise common.MissingVariables(f"plot 'validity': {err}") from None
    return plot_validity(vmap)


@style.styled
def plot_validity(vmap: xr.Dataset) -> Figure:
    """Heatmaps of rel_error over (width, depth) per setting and quantity with the threshold
    contours, and rel_error vs beta (module docstring). ``vmap``: a validity map."""
    from gradstats.results.validity_command import POSITION_TEXT, ROW_POSITION, settings

    threshold = float(vmap.attrs.get("threshold", 0.1))
    quantities = [q for q in vmap["quantity"].values.tolist()
                  if bool(vmap["rel_error_at"].sel(quantity=q).notnull().any())]
    combos = settings(vmap)
    step = vmap["step"].values[0]
    nrows, ncols = len(combos) + 1, max(len(quantities), 1)
    fig, axes = common.panel_grid(nrows, ncols, panel_size=(3.3, 2.7), legend="below")
    fig.set_dpi(DPI)
    width = common.panel_width(axes)
    norm = LogNorm(*ERROR_RANGE)
    mesh = None
    for r, combo in enumerate(combos):
        for c, q in enumerate(quantities):
            pos = ROW_POSITION.get(q, "last_hidden")
            sel = {"quantity": q, "position": pos, "step": step, **combo}
            mesh = _heatmap(axes[r, c], vmap, sel, threshold, norm)
            # a facet grid: the quantity over its column, the setting left of its row
            if r == 0:
                axes[r, c].set_title(style.wrap(f"{q} ({POSITION_TEXT[pos]})", width, 8),
                                     fontsize=8)
            if c == 0 and combo:  # one setting only (no combo): "depth" alone
                axes[r, c].set_ylabel(style.wrap(_label(combo), 1.7, 8) + "\ndepth",
                                      fontsize=8)
    for c, q in enumerate(quantities):
        _collapse(axes[-1, c], vmap, q, combos, step, threshold, width)
    for ax in axes[-1, len(quantities):]:
        ax.set_visible(False)
    if mesh is not None:
        # the colours clip to ERROR_RANGE (arrows at both ends); each cell prints its value
        fig.colorbar(mesh, ax=axes[:-1, :].ravel().tolist(), shrink=0.6 if nrows > 2 else 0.9,
                     extend="both", label="relative error, infinite width")
    drawn = {gid: common.drew(axes, gid) for gid in ("boundary", "boundary_corrected",
                                                      "correction")}
    handles = [h for gid, h in (
        ("boundary", Line2D([], [], color="k", lw=1.4,
                            label=f"beta boundary (error {threshold:g}), infinite width")),
        ("boundary_corrected", Line2D([], [], color="k", lw=1.4, ls="--",
                                      label=f"beta boundary (error {threshold:g}), "
                                            "finite-width corrected")),
        ("", Rectangle((0, 0), 1, 1, fill=False, ec="r",
                       label=f"error > {threshold:g} at 95% (interval above)")),
        ("correction", Line2D([], [], color="0.5", lw=1.5,
                              label="predicted infinite-width error (correction - 1)")))
        if not gid or drawn[gid]]  # keys only for the lines drawn
    handles += [Line2D([], [], ls="none", marker=SETTING_MARKERS[i % 8],
                       color=SETTING_COLOURS[i % 8], label=_label(combo))
                for i, combo in enumerate(combos)]
    handles += [Line2D([], [], ls="none", marker="o", color="k", label="infinite width"),
                Line2D([], [], ls="none", marker="o", mfc="none", color="k",
                       label="finite-width corrected")]
    style.figure_legend(fig, handles=handles, labels=[h.get_label() for h in handles])
    common.suptitle(fig, f"validity map: relative error of the seed mean vs theory (threshold "
                         f"{threshold:g}, step {step})", vmap)
    return fig


def _label(combo: dict) -> str:
    return ", ".join(str(v) if k == "activation" else f"{k}={v:g}" if isinstance(v, float)
                     else f"{k}={v}" for k, v in combo.items()) or "all"


def _heatmap(ax, vmap: xr.Dataset, sel: dict, threshold: float, norm):
    err = vmap["rel_error_at"].sel(sel)
    corr = vmap["rel_error_corrected_at"].sel(sel)
    if "width" not in err.dims or "depth" not in err.dims:
        ax.set_visible(False)
        return None
    err = err.transpose("depth", "width")
    corr = corr.transpose("depth", "width")
    widths, depths = err["width"].values, err["depth"].values
    z = np.clip(err.values, *ERROR_RANGE)
    mesh = ax.pcolormesh(np.arange(len(widths) + 1) - 0.5, np.arange(len(depths) + 1) - 0.5,
                         np.ma.masked_invalid(z), norm=norm, cmap="viridis", shading="flat",
                         gid="measured")
    for i in range(len(depths)):
        for j in range(len(widths)):
            v = err.values[i, j]
            if np.isfinite(v):
                light = v < 0.1  # a halo of the cell's contrast colour keeps the number
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5, zorder=5,
                        color="w" if light else "k", path_effects=[patheffects.withStroke(
                            linewidth=1.5, foreground="k" if light else "w")])
    lo = vmap["rel_error_lo_at"].sel(sel).transpose("depth", "width").values
    for i, j in zip(*np.nonzero(np.nan_to_num(lo) > threshold), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="r", lw=1.0))
    for corr, ls in (("", "-"), ("_corrected", "--")):
        bound = float(vmap[f"beta_boundary_at{corr}"].sel(sel))
        _boundary_line(ax, bound, widths, depths, ls)
    ax.set_xticks(range(len(widths)), [str(w) for w in widths], fontsize=7)
    ax.set_yticks(range(len(depths)), [str(d) for d in depths], fontsize=7)
    ax.set_xlabel("width", fontsize=8)
    ax.set_ylabel("depth", fontsize=8)
    return mesh


def _boundary_line(ax, bound: float, widths: np.ndarray, depths: np.ndarray,
                   ls: str) -> None:
    """The line depth = bound x width (beta at the boundary) in the heatmap's cell indices
    (log-interpolated between the cells' widths and depths)."""
    if not (np.isfinite(bound) and bound > 0) or len(widths) < 2 or len(depths) < 2:
        return
    lw, ld = np.log(widths.astype(float)), np.log(depths.astype(float))
    w = np.exp(np.linspace(lw[0], lw[-1], 200))
    d = bound * w
    inside = (np.log(d) >= ld[0]) & (np.log(d) <= ld[-1])
    if not inside.any():
        return
    x = np.interp(np.log(w[inside]), lw, np.arange(len(widths)))
    y = np.interp(np.log(d[inside]), ld, np.arange(len(depths)))
    ax.plot(x, y, color="k", ls=ls, lw=1.4,
            gid="boundary" if ls == "-" else "boundary_corrected")


def _collapse(ax, vmap: xr.Dataset, q: str, combos: list[dict], step, threshold: float,
              width: float = 3.0) -> None:
    from gradstats.results.validity_command import POSITION_TEXT, ROW_POSITION

    pos = ROW_POSITION.get(q, "last_hidden")
    for i, combo in enumerate(combos):
        sel = {"quantity": q, "position": pos, "step": step, **combo}
        beta = vmap["beta"].sel(combo).values.ravel()
        colour, marker = SETTING_COLOURS[i % 8], SETTING_MARKERS[i % 8]
        like = vmap["beta"].sel(combo)
        for name, filled in (("rel_error", True), ("rel_error_corrected", False)):
            y, lo, hi = (vmap[f"{name}{end}_at"].sel(sel).broadcast_like(like).values.ravel()
                         for end in ("", "_lo", "_hi"))
            ok = np.isfinite(beta) & np.isfinite(y)
            if not ok.any():
                continue
            yy = np.clip(y[ok], ERROR_RANGE[0], None)
            err = np.array([yy - np.clip(lo[ok], ERROR_RANGE[0], None),
                            np.clip(hi[ok], ERROR_RANGE[0], None) - yy]).clip(0)
            ax.errorbar(beta[ok], yy, yerr=err, ls="none", marker=marker, ms=3.5, color=colour,
                        mfc=colour if filled else "none", elinewidth=0.6, capsize=0, alpha=0.85,
                        gid="measured")
        pred = (vmap["correction_at"].sel(sel) - 1).broadcast_like(vmap["beta"].sel(combo))
        pv = np.abs(pred.values.ravel())
        ok = np.isfinite(beta) & np.isfinite(pv) & (pv > 0)
        if ok.any():
            order = np.argsort(beta[ok])
            ax.plot(beta[ok][order], pv[ok][order], color="0.5", lw=1.2, zorder=0,
                    gid="correction")
    ax.axhline(threshold, color="k", lw=0.8, ls=":")
    ax.set_xscale("log")
    style.log_ticks(ax, "x", vmap["beta"].values)  # beta spans about a decade: 1-2-5 labels
    ax.set_yscale("log")
    ax.set_ylim(ERROR_RANGE[0], None)
    ax.set_xlabel("beta = depth / width", fontsize=8)
    ax.set_ylabel("relative error", fontsize=8)
    ax.set_title(style.wrap(f"{q} ({POSITION_TEXT[pos]}) vs beta", width, 8), fontsize=8)
    ax.tick_params(labelsize=7)
