"""ln grad_sq_norm vs layer of batch-normalized networks, per batch size, with the predicted
slope -ln lambda(B) that `gradstats compare` tests (row ``bn_grad_sq_norm_rate``).

Needs: ``grad_sq_norm`` (sweep axes..., seed, step, layer) and the stored prediction
``theory_bn_ln_growth`` (ln lambda(B) per seed, `gradstats.predictions`). Solid: the seed mean
of ln grad_sq_norm at the first recorded step (± one standard error); dashed: a line of slope
-ln lambda(B) over the layers the row fits (``first_layer..depth - readout_gap`` of the
declared comparison), placed at the measured mean of that window (its level is not
predicted, only its slope). Lines per batch size; facets over the other varying axes.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.comparisons import by_name
from gradstats.results.plots import common, style
from gradstats.spec import LAYER_DIM, SEED_DIM

REQUIRES = ("grad_sq_norm", "theory_bn_ln_growth")
ROW = "bn_grad_sq_norm_rate"


def fit_window(depth: int) -> np.ndarray:
    """The layers the compare row fits at ``depth`` (may be empty)."""
    row = by_name(ROW)
    return np.arange(row.first_layer, depth + 1 - row.readout_gap)


def slope_line(layers: np.ndarray, mean_ln: np.ndarray, rate: float) -> np.ndarray:
    """The line of slope -rate through the mean of (layers, mean_ln): its values at layers."""
    layers = np.asarray(layers, dtype=float)
    level = float(np.mean(np.asarray(mean_ln) + rate * layers))
    return level - rate * layers


def _depth(ds: xr.Dataset, sel: dict, values: np.ndarray) -> int:
    if "depth" in sel:
        return int(sel["depth"])
    if "depth" in ds.coords and ds["depth"].ndim == 0:
        return int(ds["depth"])
    return int(np.isfinite(values).sum()) - 1  # the readout is the last finite layer


@style.styled
def plot_batchnorm(ds: xr.Dataset, step: int | None = None, fig: Figure | None = None,
                   ax=None) -> Figure:
    """Seed mean of ln grad_sq_norm vs layer per batch size, the predicted slope dashed."""
    common.require(ds, "batchnorm", REQUIRES, [LAYER_DIM])
    ln = np.log(common.first_step(ds["grad_sq_norm"], step).where(lambda v: v > 0))
    rate_da = ds["theory_bn_ln_growth"]
    rate_da = rate_da.mean(SEED_DIM) if SEED_DIM in rate_da.dims else rate_da
    line_dims, col, row = common.split_dims(common.varying(ln), ("batch_size",))
    mean, se = common.seed_mean(ln)
    facets = common.facet_figure(mean, col, row, line_dims, sharey=False, fig=fig, ax=ax)
    legends = []
    for p in facets.panels:
        entries = []
        for k, sel in enumerate(p.lines):
            full = {**p.facet, **sel}
            m = mean.sel(full).values
            ok = np.isfinite(m)
            if not ok.any():
                continue
            layers = mean[LAYER_DIM].values
            colour = style.colour(k)
            window = fit_window(_depth(ds, full, m))
            inside = np.isin(layers, window) & ok
            measured = (-np.polyfit(layers[inside], m[inside], 1)[0] if inside.sum() >= 2
                        else np.nan)
            rate = rate_da.sel({d: v for d, v in full.items() if d in rate_da.dims})
            rate = float(rate) if rate.size == 1 else np.nan
            name = ", ".join(common._fmt(v) for v in sel.values()) or "measured"
            p.ax.plot(layers[ok], m[ok], "o-", ms=3, color=colour, gid="measured")
            entries.append((f"{name}: {-measured:.3f} ({-rate:.3f})", colour))
            style.band(p.ax, layers[ok], m[ok], se.sel(full).values[ok], colour)
            if np.isfinite(rate) and inside.sum() >= 2:
                p.ax.plot(layers[inside], slope_line(layers[inside], m[inside], rate), "--",
                          lw=1.3, color="black", gid="theory")
        p.ax.set_xlabel(common.label(ds[LAYER_DIM]) if LAYER_DIM in ds.coords else "layer")
        if p.j == 0:
            p.ax.set_ylabel(style.wrap("ln " + common.label(ds["grad_sq_norm"], units=False),
                                       2.4))
        title = ", ".join(p.lines[0]) + ": slope (theory)" if p.lines and p.lines[0] else None
        legends.append((p, entries, title))
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if common.drew(facets.axes, "theory"):
        keys.append(("dashed: slope −ln λ(B)", {"ls": "--", "color": "k"}))
    if len(facets.panels) == 1:
        p, entries, title = legends[0]
        style.legend_right(p.ax, entries, keys, title=title)
    else:  # the slopes per panel below each panel, the style keys once below the figure
        for p, entries, title in legends:
            style.legend_below(p.ax, entries, title=title)
        style.figure_legend(facets.fig, keys=keys)
    first = by_name(ROW)
    if ax is None:
        common.suptitle(facets.fig, f"batch norm: ln gradient norm per layer (fit: layers "
                        f"{first.first_layer}..depth−{first.readout_gap})", ds, facets.note)
    return facets.fig
