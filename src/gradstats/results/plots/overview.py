"""A one-page summary figure of any results dataset: one small panel per known variable present.

Uses whatever of `PANELS` exists (at least one is needed): per-layer statistics at the first
recorded step, per-step statistics over training, and the noise spectrum at the first step.
Every configuration (combination of the varying sweep axes present in the sweep) is one line:
the seed mean with a band of ± one standard error; where the dataset stores the prediction
compare tests (``theory_<var>``), its seed mean is dashed in the same colour. More than
`common.MAX_LINES` configurations: the first ones, and the title says how many were left out
(the per-kind figures facet them all).
Log y only where a panel's values span more than a decade.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gradstats.results.plots import common, style
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
# per-layer statistics drawn over the hidden layers (the readout's are the outputs, dL/df)
HIDDEN_ONLY = ("forward_q", "backward_q", "active_fraction")


def available_panels(ds: xr.Dataset) -> list[tuple[str, str, bool]]:
    """The `PANELS` whose variable exists in ``ds`` with its x dim (more than one value) and
    some finite values."""
    out = []
    for name, x, logy in PANELS:
        if (name in ds.data_vars and x in ds[name].dims and ds.sizes[x] > 1
                and bool(np.isfinite(ds[name]).any())):  # one recorded step: no curve
            out.append((name, x, logy))
    return out


def panel_curve(da: xr.DataArray, x: str) -> tuple[xr.DataArray, xr.DataArray]:
    """What a panel draws for ``da``: first step (unless x is step), then the seed mean and
    its standard error."""
    if x != STEP_DIM:
        da = common.first_step(da, None)
    extra = [d for d in da.dims if d not in (x, "seed") and d not in common.varying(da)]
    if LAYER_DIM in extra:  # a per-step statistic with layers: the last layer
        da = da.isel({LAYER_DIM: -1})
    return common.seed_mean(da)


@style.styled
def plot_summary(ds: xr.Dataset, title: str | None = None, fig: Figure | None = None) -> Figure:
    """Grid of up to 9 panels; lines have gid ``measured`` (``theory`` dashed) and one
    legend names the configurations (in a spare cell of the grid, else below the panels)."""
    panels = available_panels(ds)
    if not panels:
        raise common.MissingVariables("plot 'summary' needs at least one of "
                                      + ", ".join(p[0] for p in PANELS))
    first = panel_curve(ds[panels[0][0]], panels[0][1])[0]
    dims = common.varying(first, exclude=(panels[0][1],))
    lines = [s for s in common.combos(first, dims) if common.present(first, s)] or [{}]
    left_out = "" if len(lines) <= common.MAX_LINES else (
        f"first {common.MAX_LINES} of {len(lines)} configurations (the per-kind figures "
        "facet them all)")
    lines = lines[: common.MAX_LINES]
    ncols = 2 if len(panels) == 4 else min(COLUMNS, len(panels))  # 4: a 2 x 2 grid
    fig, axes = common.panel_grid(math.ceil(len(panels) / ncols), ncols, fig=fig,
                                  panel_size=(2.9, 2.3),
                                  legend="right" if len(panels) == 1 else "below")
    width = common.panel_width(axes)
    block = axes.ravel()
    for ax in block[len(panels):]:
        ax.set_visible(False)
    any_theory = False
    for ax, (name, x, _) in zip(block, panels, strict=False):
        mean, se = panel_curve(ds[name], x)
        theory = None
        if f"theory_{name}" in ds and x in ds[f"theory_{name}"].dims:
            theory = panel_curve(ds[f"theory_{name}"], x)[0]
        positive = bool((mean.values[np.isfinite(mean.values)] > 0).all())
        for k, sel in enumerate(lines):
            sel = {d: v for d, v in sel.items() if d in mean.dims}
            m = mean.sel(sel) if sel else mean
            y = m.values
            xs = m[x].values if x != "rank" else np.arange(1, y.size + 1)
            ok = np.isfinite(y) & ((y > 0) if positive else True)
            if name in HIDDEN_ONLY and ok.any():  # the readout's are the outputs, dL/df
                ok[np.flatnonzero(ok)[-1]] = False
            if x == "rank":  # numerically-zero eigenvalues (as in the spectrum kind)
                from gradstats.results.plots.spectrum import above_floor

                ok &= above_floor(y)
            if not ok.any():
                continue
            color = style.colour(k)
            ax.plot(xs[ok], y[ok], "o-" if ok.sum() < 12 else "-", ms=2.5, lw=1.1,
                    color=color, gid="measured")
            style.band(ax, xs[ok], y[ok], (se.sel(sel) if sel else se).values[ok], color,
                       log=positive)
            if theory is not None:
                t = theory.sel({d: v for d, v in sel.items() if d in theory.dims}).values
                if t.shape == y.shape and np.isfinite(t[ok]).any():
                    ax.plot(xs[ok], t[ok], "--", lw=1.0, color=color, gid="theory")
                    any_theory = True
        if x == "rank":
            ax.set_yscale("log")
        else:
            style.auto_scale(ax)  # log only if the values drawn span more than a decade
        if x == "rank":
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        when = f" (step {int(ds[STEP_DIM][0])})" if x != STEP_DIM and STEP_DIM in ds[name].dims \
            else ""
        ax.set_xlabel({"rank": "rank k", STEP_DIM: "training step"}.get(x, x) + when)
        ax.set_ylabel(common.SYMBOLS.get(name)
                      or style.wrap(common.label(ds[name], units=False), 2.1, style.FONT))
        ax.set_title(style.wrap(str(ds[name].attrs.get("long_name", name)), width))
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if any_theory:
        keys.append((style.THEORY_KEY, style.THEORY_STYLE))
    entries, dims_title = common.legend_entries(lines)
    if len(panels) == 1:
        style.legend_right(block[0], entries, keys, title=dims_title)
    elif len(panels) < block.size:  # in the grid's spare cell
        style.legend_in(block[len(panels)], entries, keys, title=dims_title)
    else:  # one legend for all panels, below them: the panels keep the page's width
        style.figure_legend(fig, entries, keys, title=dims_title)
    n_seeds = ds.sizes.get("seed", 1)
    common.suptitle(fig, f"{title or 'results summary'} ({n_seeds} seeds)", ds, left_out)
    return fig
