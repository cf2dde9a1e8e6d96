"""Concentration of gradient directions over training: vMF kappa and R_bar vs step.

Needs: a kappa and an R_bar variable (default the registry's ``example_dir_*``; dims: sweep
axes..., seed, step[, layer]) and, for the uniform-direction baselines, variables of the same dims (or
fewer) holding the kappa and R_bar of uniformly random directions (R_bar_uniform = 1/sqrt(n)).
A ``layer`` dim keeps its last layer unless ``layer`` is given.
"""

from __future__ import annotations

import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gradstats.results.plots import common, style
from gradstats.spec import LAYER_DIM, STEP_DIM

# Registry prefixes of direction statistics: <prefix>_kappa, _r_bar, _kappa_uniform, _r_bar_uniform.
PREFIXES = ("example_dir", "minibatch_dir")
PREFIX = PREFIXES[0]
KAPPA, R_BAR = f"{PREFIX}_kappa", f"{PREFIX}_r_bar"
KAPPA_UNIFORM, R_BAR_UNIFORM = f"{PREFIX}_kappa_uniform", f"{PREFIX}_r_bar_uniform"
REQUIRES = (KAPPA, R_BAR)


def plot_directions_prefix(ds: xr.Dataset, prefix: str = PREFIX, layer: int | None = None,
                           fig: Figure | None = None) -> Figure:
    """`plot_directions` of the registry variables ``<prefix>_kappa``, ``_r_bar`` and baselines."""
    return plot_directions(ds, f"{prefix}_kappa", f"{prefix}_r_bar", f"{prefix}_kappa_uniform",
                           f"{prefix}_r_bar_uniform", layer=layer, fig=fig)
LINE_DIMS = ("width", "activation", "depth", "sigma_w2", "batch_size")


def _at_layer(da: xr.DataArray, layer: int | None) -> xr.DataArray:
    if LAYER_DIM not in da.dims:
        return da
    if layer is not None:
        return da.sel({LAYER_DIM: layer})
    return da.isel({LAYER_DIM: -1})


@style.styled
def plot_directions(ds: xr.Dataset, kappa: str = KAPPA, r_bar: str = R_BAR,
                    kappa_uniform: str = KAPPA_UNIFORM, r_bar_uniform: str = R_BAR_UNIFORM,
                    layer: int | None = None, fig: Figure | None = None) -> Figure:
    """Two panels (kappa, R_bar) vs step: seed mean ± SE per configuration (gid ``measured``)
    and the uniform baseline dotted in the same colour (gid ``uniform``); log y where the
    values span a decade. More than `common.MAX_LINES` configurations: one row per chunk."""
    common.require(ds, "directions", [kappa, r_bar], [STEP_DIM])
    first, _ = common.seed_mean(_at_layer(ds[kappa], layer))
    line_dims, _, _ = common.split_dims(common.varying(first), LINE_DIMS)
    lines = [s for s in common.combos(first, line_dims) if common.present(first, s)] or [{}]
    chunks, left_out = common.line_chunks(lines)
    fig, axes = common.panel_grid(len(chunks), 2, fig=fig)
    for c, chunk in enumerate(chunks):
        for ax, name, base in zip(axes[c], (kappa, r_bar), (kappa_uniform, r_bar_uniform),
                                  strict=True):
            mean, se = common.seed_mean(_at_layer(ds[name], layer))
            baseline = None
            if base in ds.data_vars:
                baseline, _ = common.seed_mean(_at_layer(ds[base], layer))
            for k, sel in enumerate(chunk):
                m = mean.sel(sel) if sel else mean
                steps, y = m[STEP_DIM].values, m.values
                color = style.colour(k)
                ax.plot(steps, y, "o-", color=color, gid="measured")
                style.band(ax, steps, y, (se.sel(sel) if sel else se).values, color,
                           log=style.spans_decades(mean.values))
                if baseline is not None:
                    b = baseline.sel({d: v for d, v in sel.items() if d in baseline.dims})
                    b = b.broadcast_like(m) if STEP_DIM not in b.dims else b
                    ax.plot(b[STEP_DIM].values, b.values, ":", lw=1.3, color=color, gid="uniform")
            style.auto_scale(ax)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            ax.set_xlabel("training step")
            ax.set_ylabel(common.label(ds[name]))
        entries, title = common.legend_entries(chunk)
        style.legend_right(axes[c, 1], entries, [(style.MEASURED_KEY, style.MEASURED_STYLE),
                                                 ("dotted: uniform directions", {"ls": ":"})],
                           title=title)
    common.suptitle(fig, "gradient directions: vMF concentration vs uniform", ds, left_out)
    return fig
