"""lr-transfer figure: final loss vs base lr (log2 axis), one line per width, the optimum of
each width marked, one panel per group (parameterization, optimizer, ...).

Reads ``full_loss`` (..., lr, width, seed, step) and ``diverged`` through
`gradstats.results.lr_transfer.lr_transfer_summary`: lines are the seed mean at the last
recorded step ± one standard error (gid ``measured``), colour by width (viridis, small to
large); the optimum is a star (gid ``optimum``, open when unresolved or on the grid's edge);
diverged lrs are crosses at the top of the panel (gid ``diverged``). The panel title gives the
optimum's shift over the width range and, when they differ, the range of shifts between
plausible lrs of the smallest and the largest width.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib import colormaps
from matplotlib.figure import Figure

from gradstats.results.lr_transfer import LR_DIM, RESOLVED, WIDTH_DIM, lr_transfer_summary
from gradstats.results.plots import common, style

REQUIRES = ("full_loss",)


@style.styled
def plot_lr_transfer(ds: xr.Dataset, loss: str = "full_loss", fig: Figure | None = None) -> Figure:
    """One panel per group: seed-mean final ``loss`` vs lr per width, optima marked."""
    common.require(ds, "lr-transfer", (loss,), (LR_DIM,))
    summary = lr_transfer_summary(ds, loss)
    groups = [d for d in summary["lr_opt"].dims if d != WIDTH_DIM]
    panels = common.combos(summary, groups)
    fig, axes = common.panel_grid(1, len(panels), sharey=True, fig=fig)
    widths = summary[WIDTH_DIM].values
    colors = colormaps["viridis"](np.linspace(0.0, 0.9, len(widths)))
    for ax, sel in zip(axes[0], panels, strict=True):
        part = summary.sel(sel)
        top = np.nanmax(np.where(np.isfinite(part["loss_mean"]), part["loss_mean"], np.nan))
        for color, width in zip(colors, widths, strict=True):
            w = part.sel({WIDTH_DIM: width})
            grid = w["on_grid"].values
            lr = w[LR_DIM].values[grid]
            mean, se = w["loss_mean"].values[grid], w["loss_se"].values[grid]
            ok = np.isfinite(mean)
            x = np.log2(lr)
            ax.plot(x[ok], mean[ok], ".-", color=color, lw=1.2, gid="measured",
                    label=f"width {width}")
            ax.errorbar(x[ok], mean[ok], yerr=np.nan_to_num(se[ok]), fmt="none", ecolor=color,
                        capsize=2, lw=0.8)
            if (~ok).any():
                ax.plot(x[~ok], np.full((~ok).sum(), top), "x", color=color, gid="diverged")
            if np.isfinite(float(w["lr_opt"])):
                filled = str(w["status"].values) == RESOLVED
                ax.plot([np.log2(float(w["lr_opt"]))], [float(w["loss_opt"])], "*", ms=11,
                        color=color, mfc=color if filled else "none", gid="optimum")
        shift = float(part["lr_shift"])
        low, high = float(part["lr_shift_low"]), float(part["lr_shift_high"])
        note = "" if not np.isfinite(shift) else (
            f"optimum shift {widths[0]}→{widths[-1]}: {shift:+.0f} grid steps"
            + ("" if low == high else f" (plausible {low:+.0f}..{high:+.0f})"))
        ax.set_title(style.wrap((common.describe(sel) + "\n" if sel else "") + note,
                                common.panel_width(axes)))
        style.auto_scale(ax)
        ax.set_xlabel("log2 base lr")
    axes[0, 0].set_ylabel(style.wrap(common.label(ds[loss]) + " at the last step", 1.8,
                                      style.FONT))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    style.legend_right(axes[0, -1], handles=handles, labels=labels,
                       title="filled star: resolved optimum")
    fixed = common.scalar_coords(ds)
    setting = ", ".join(f"{k}={fixed[k]}" for k in ("optimizer", "steps", "n_train") if k in fixed)
    common.suptitle(fig, "lr transfer: final loss vs base lr per width (seed mean ± se)"
                    + (f"; {setting}" if setting else ""), ds)
    return fig
