"""A one-page summary figure of any results dataset: one small panel per known variable present.

Uses whatever of `PANELS` exists (at least one is needed): per-layer statistics at the first
recorded step, per-step statistics over training, and the noise spectrum at the first step.
Every configuration (combination of the varying sweep axes) is one line, seed-averaged; the
legend sits on the first panel.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common
from gradstats.spec import LAYER_DIM, STEP_DIM

# (variable, x dim, log y)
PANELS: tuple[tuple[str, str, bool], ...] = (
    ("grad_sq_norm", LAYER_DIM, True),
    ("backward_q", LAYER_DIM, True),
    ("forward_q", LAYER_DIM, True),
    ("active_fraction", LAYER_DIM, False),
    ("full_loss", STEP_DIM, True),
    ("ntk_rel_change", STEP_DIM, True),
    ("grad_noise_scale", STEP_DIM, True),
    ("example_dir_kappa", STEP_DIM, True),
    ("noise_eigenvalues", "rank", True),
)
COLUMNS = 3


def available_panels(ds: xr.Dataset) -> list[tuple[str, str, bool]]:
    """The `PANELS` whose variable exists in ``ds`` with its x dim and some finite values."""
    out = []
    for name, x, logy in PANELS:
        if name in ds.data_vars and x in ds[name].dims and bool(np.isfinite(ds[name]).any()):
            out.append((name, x, logy))
    return out


def panel_curve(da: xr.DataArray, x: str) -> xr.DataArray:
    """What a panel draws for ``da``: first step (unless x is step), then the seed mean."""
    if x != STEP_DIM:
        da = common.first_step(da, None)
    extra = [d for d in da.dims if d not in (x, "seed") and d not in common.varying(da)]
    if LAYER_DIM in extra:  # a per-step statistic with layers: the last layer
        da = da.isel({LAYER_DIM: -1})
    return common.seed_mean(da)[0]


def plot_summary(ds: xr.Dataset, title: str | None = None) -> Figure:
    """Grid of up to 9 panels; lines have gid ``measured`` and label the configuration."""
    panels = available_panels(ds)
    if not panels:
        raise common.MissingVariables("plot 'summary' needs at least one of "
                                      + ", ".join(p[0] for p in PANELS))
    ncols = min(COLUMNS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = common.panel_grid(nrows, ncols, panel_size=(3.6, 2.7))
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (name, x, logy) in zip(axes.ravel(), panels, strict=False):
        curve = panel_curve(ds[name], x)
        lines = common.combos(curve, common.varying(curve, exclude=(x,)))
        for k, sel in enumerate(lines[: common.MAX_LINES]):
            c = curve.sel(sel)
            y = c.values
            xs = c[x].values if x != "rank" else np.arange(1, y.size + 1)
            ok = np.isfinite(y) & ((y > 0) if logy else True)
            ax.plot(xs[ok], y[ok], "o-" if ok.sum() < 12 else "-", ms=2.5, lw=1.1,
                    color=f"C{k % 10}", gid="measured", label=common.describe(sel) or None)
        if logy:
            ax.set_yscale("log")
        if x == "rank":
            ax.set_xscale("log")
        ax.set_xlabel("rank k" if x == "rank" else x)
        when = f" (step {int(ds[STEP_DIM][0])})" if x != STEP_DIM and STEP_DIM in ds[name].dims else ""
        ax.set_title(common.label(ds[name]) + when, fontsize=8)
    first = axes.ravel()[0]
    if first.get_legend_handles_labels()[0]:
        first.legend(fontsize=6)
    n_seeds = ds.sizes.get("seed", 1)
    common.suptitle(fig, f"{title or 'results summary'} ({n_seeds} seeds; means)", ds)
    return fig
