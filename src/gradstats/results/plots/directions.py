"""Concentration of gradient directions over training: vMF kappa and R_bar vs step.

Needs: a kappa and an R_bar variable (default the registry's ``example_dir_*``; dims: sweep
axes..., seed, step[, layer]) and, for the uniform-direction baselines, variables of the same dims (or
fewer) holding the kappa and R_bar of uniformly random directions (R_bar_uniform = 1/sqrt(n)).
A ``layer`` dim keeps its last layer unless ``layer`` is given.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common
from gradstats.spec import LAYER_DIM, STEP_DIM

# Registry prefixes of direction statistics: <prefix>_kappa, _r_bar, _kappa_uniform, _r_bar_uniform.
PREFIXES = ("example_dir", "minibatch_dir")
PREFIX = PREFIXES[0]
KAPPA, R_BAR = f"{PREFIX}_kappa", f"{PREFIX}_r_bar"
KAPPA_UNIFORM, R_BAR_UNIFORM = f"{PREFIX}_kappa_uniform", f"{PREFIX}_r_bar_uniform"
REQUIRES = (KAPPA, R_BAR)


def plot_directions_prefix(ds: xr.Dataset, prefix: str = PREFIX, layer: int | None = None) -> Figure:
    """`plot_directions` of the registry variables ``<prefix>_kappa``, ``_r_bar`` and baselines."""
    return plot_directions(ds, f"{prefix}_kappa", f"{prefix}_r_bar", f"{prefix}_kappa_uniform",
                           f"{prefix}_r_bar_uniform", layer=layer)
LINE_DIMS = ("width", "activation", "depth", "sigma_w2", "batch_size")


def _at_layer(da: xr.DataArray, layer: int | None) -> xr.DataArray:
    if LAYER_DIM not in da.dims:
        return da
    if layer is not None:
        return da.sel({LAYER_DIM: layer})
    return da.isel({LAYER_DIM: -1})


def plot_directions(ds: xr.Dataset, kappa: str = KAPPA, r_bar: str = R_BAR,
                    kappa_uniform: str = KAPPA_UNIFORM, r_bar_uniform: str = R_BAR_UNIFORM,
                    layer: int | None = None) -> Figure:
    """Two panels (kappa, R_bar) vs step: seed mean per configuration (gid ``measured``) and the
    uniform baseline dotted in the same colour (gid ``uniform``); kappa on a log axis."""
    common.require(ds, "directions", [kappa, r_bar], [STEP_DIM])
    fig, axes = common.panel_grid(1, 2)
    for ax, name, base in zip(axes[0], (kappa, r_bar), (kappa_uniform, r_bar_uniform), strict=True):
        da = _at_layer(ds[name], layer)
        mean, se = common.seed_mean(da)
        line_dims, _, _ = common.split_dims(common.varying(mean), LINE_DIMS)
        baseline = None
        if base in ds.data_vars:
            baseline, _ = common.seed_mean(_at_layer(ds[base], layer))
        for k, sel in enumerate(common.combos(mean, line_dims)[: common.MAX_LINES]):
            m = mean.sel(sel)
            steps, y = m[STEP_DIM].values, m.values
            color = f"C{k % 10}"
            ax.plot(steps, y, "o-", ms=3, lw=1.3, color=color, gid="measured",
                    label=common.describe(sel) or "measured")
            s = se.sel(sel).values
            if np.isfinite(s).any():
                ax.fill_between(steps, y - s, y + s, color=color, alpha=0.2, lw=0)
            if baseline is not None:
                b = baseline.sel({d: v for d, v in sel.items() if d in baseline.dims})
                b = b.broadcast_like(m) if STEP_DIM not in b.dims else b
                ax.plot(b[STEP_DIM].values, b.values, ":", lw=1.3, color=color, gid="uniform",
                        label="uniform directions" if k == 0 else None)
        if name == kappa:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(common.label(ds[name]))
        ax.legend(fontsize=7)
    common.suptitle(fig, "gradient directions: vMF concentration vs uniform", ds)
    return fig
