"""Order/chaos phase diagram: the measured backward-signal rate per layer over (sigma_w2, sigma_b2).

Needs: ``backward_q`` (dims: sweep axes..., seed, step, layer) with a ``sigma_w2`` dim and at
least 2 hidden layers. The rate is compare's (row ``backward_q_decay``): per seed the OLS
slope of -ln backward_q over the hidden layers 1..depth (= mean ln(q_l / q_{l+1}); the
readout is dL/df itself), then the seed mean. Mean-field theory: the backward signal grows
toward the input like chi_1^(L-l), so the rate is ln chi_1: > 0 chaotic (gradients explode
toward the input), < 0 ordered (they vanish), 0 on the edge of chaos chi_1 = 1.

With ``sigma_b2`` a dim too (a 2-D grid): two colour panels per other configuration, the
measured rate and the predicted one (the same fit of the stored prediction
``theory_backward_q``, what compare tests), and the chi_1 = 1 curve from
`gradstats.theory.critical_sigma_w2` on `CURVE_POINTS` values of sigma_b2. With one
sigma_b2 (a 1-D sweep): the rate vs sigma_w2 as lines (seed mean ± SE), the predicted rate
dashed, theory ln chi_1 dotted and the critical sigma_w2 as a vertical line.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gradstats.results import stats
from gradstats.results.plots import common, style
from gradstats.results.plots.theory_link import critical_curve
from gradstats.spec import LAYER_DIM, SEED_DIM

REQUIRES = ("backward_q",)
REQUIRES_DIMS = ("sigma_w2",)
CURVE_POINTS = 25
RATE_LABEL = r"backward-signal rate per layer $\ln(\tilde q_l/\tilde q_{l+1})$"


def layer_rate(layers: np.ndarray, values: np.ndarray) -> float:
    """-slope of ln(values) vs layer (compare's decay rate; NaN unless >= 2 values, all > 0)."""
    values = np.asarray(values, dtype=float)
    if values.size < 2 or not (np.all(np.isfinite(values)) and np.all(values > 0)):
        return math.nan
    return -stats.fit_line(np.asarray(layers, float), np.log(values)).slope


def backward_rate(da: xr.DataArray, depth: xr.DataArray | int | None = None) -> xr.DataArray:
    """Per seed `layer_rate` of ``da`` over its hidden layers 1..depth: (..., seed) without
    layer. ``depth`` per configuration (default: the last finite layer minus the readout).
    A dask-backed ``da`` (a lazily loaded sweep) is computed first: the fit runs per seed in
    numpy."""
    da = da.compute()
    layers = da[LAYER_DIM].values

    def rate(y: np.ndarray) -> float:
        finite = np.flatnonzero(np.isfinite(y))
        if finite.size < 3:
            return math.nan
        keep = layers <= layers[finite[-1]] - 1  # hidden layers: drop the readout
        return layer_rate(layers[keep], y[keep])

    return xr.apply_ufunc(rate, da, input_core_dims=[[LAYER_DIM]], vectorize=True)


def _first_step(ds: xr.Dataset, name: str, step: int | None) -> xr.DataArray:
    return common.first_step(ds[name], step) if "step" in ds[name].dims else ds[name]


def _is_batch_norm(ds: xr.Dataset) -> bool:
    return "norm" in ds.coords and "batch" in np.atleast_1d(ds["norm"].values).tolist()


@style.styled
def plot_phase(ds: xr.Dataset, var: str = "backward_q", step: int | None = None,
               fig: Figure | None = None, ax=None) -> Figure:
    """The phase diagram (2-D sweep) or the rate vs sigma_w2 (1-D sweep); see the module.

    2-D: one row per combination of the other varying dims, columns measured / predicted;
    the colour meshes have gid ``measured`` and ``predicted`` (their arrays: the seed-mean
    rates, shape (sigma_b2, sigma_w2)), the chi_1 = 1 curve gid ``theory``. 1-D: lines gid
    ``measured`` (rate), ``predicted`` (dashed) and ``theory`` (dotted ln chi_1).
    """
    common.require(ds, "phase", [var], ["sigma_w2", LAYER_DIM])
    if _is_batch_norm(ds):
        raise common.MissingVariables("plot 'phase': batch-normalized networks have no "
                                      "mean-field edge of chaos (see the 'batchnorm' kind)")
    measured = common.seed_mean(backward_rate(_first_step(ds, var, step)))
    predicted = None
    if f"theory_{var}" in ds:
        predicted = common.seed_mean(backward_rate(_first_step(ds, f"theory_{var}", step)))[0]
    if is_grid(measured[0]):
        return _grid(ds, measured[0], predicted, fig)
    return _sweep(ds, measured, predicted, fig, ax)


def is_grid(rate: xr.DataArray) -> bool:
    """Whether some configuration has rates at two or more sigma_b2 (a 2-D diagram); a
    sigma_b2 zipped with another axis (one per activation, say) is a set of 1-D sweeps."""
    if "sigma_b2" not in rate.dims or rate.sizes["sigma_b2"] < 2:
        return False
    per_config = rate.notnull().any("sigma_w2").sum("sigma_b2")
    return int(per_config.max()) >= 2


def _one_sigma_b2(da: xr.DataArray | None) -> xr.DataArray | None:
    """``da`` without its sigma_b2 dim, each configuration at its one sigma_b2 present."""
    if da is None or "sigma_b2" not in da.dims:
        return da
    return da.mean("sigma_b2", skipna=True)


def _grid(ds: xr.Dataset, rate: xr.DataArray, predicted: xr.DataArray | None,
          fig: Figure | None) -> Figure:
    others = common.varying(rate, exclude=("sigma_w2", "sigma_b2"))
    configs = [s for s in common.combos(rate, others) if common.present(rate, s)] or [{}]
    panels = [("measured", rate)] + ([("predicted", predicted)] if predicted is not None else [])
    fig, axes = common.panel_grid(len(configs), len(panels), sharey=True, fig=fig,
                                  panel_size=(3.0, 2.6))
    values = np.concatenate([p.values.ravel() for _, p in panels])
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    norm = TwoSlopeNorm(0.0, -max(bound, 1e-6), max(bound, 1e-6))
    fixed = common.scalar_coords(ds)
    sb_all = ds["sigma_b2"].values.astype(float)
    # quadratic spacing: the critical sigma_w2 rises steeply from sigma_b2 = 0
    curve_b = sb_all.min() + (sb_all.max() - sb_all.min()) * np.linspace(0, 1, CURVE_POINTS) ** 2
    mesh = None
    for i, sel in enumerate(configs):
        activation = str(sel.get("activation", fixed.get("activation", "relu")))
        crit = critical_curve(activation, curve_b)
        for j, (name, da) in enumerate(panels):
            ax = axes[i, j]
            r = (da.sel(sel) if sel else da).transpose("sigma_b2", "sigma_w2")
            mesh = ax.pcolormesh(r["sigma_w2"].values, r["sigma_b2"].values, r.values,
                                 cmap="RdBu_r", norm=norm, shading="nearest", gid=name,
                                 edgecolors="face")
            if np.isfinite(crit).any():
                ax.plot(crit, curve_b, "k-", lw=1.5, gid="theory")
            ax.set_xlim(*_edges(r["sigma_w2"].values))
            ax.set_ylim(*_edges(r["sigma_b2"].values))
            ax.grid(False)
            title = "measured" if name == "measured" else "predicted (what compare tests)"
            head = common.describe(sel)
            ax.set_title(style.wrap(f"{head}\n{title}" if head else title, 2.8))
            if i == len(configs) - 1:
                ax.set_xlabel(common.label("sigma_w2"))
            if j == 0:
                ax.set_ylabel(common.label("sigma_b2"))
    cbar = fig.colorbar(mesh, ax=axes, shrink=0.85, aspect=30)
    cbar.set_label(style.wrap(RATE_LABEL + "; > 0: chaotic (exploding toward the input)", 3.0))
    fig.legend([Line2D([], [], color="k", lw=1.5)], [r"$\chi_1 = 1$ (mean-field theory)"],
               loc="outside lower center")
    common.suptitle(fig, "order/chaos phase diagram: backward-signal rate per layer at init",
                    rate, f"{ds.sizes.get(SEED_DIM, 1)} seeds")
    return fig


def _edges(centres: np.ndarray) -> tuple[float, float]:
    """Outer edges of the 'nearest' cells around sorted ``centres``."""
    c = np.sort(np.asarray(centres, float))
    if c.size == 1:
        return c[0] - 0.5, c[0] + 0.5
    return c[0] - (c[1] - c[0]) / 2, c[-1] + (c[-1] - c[-2]) / 2


def _sweep(ds: xr.Dataset, measured: tuple[xr.DataArray, xr.DataArray],
           predicted: xr.DataArray | None, fig: Figure | None, ax) -> Figure:
    mean, se = measured
    fixed = common.scalar_coords(ds)
    sb_of = None  # sigma_b2 per configuration, where it is a (zipped) dim
    if "sigma_b2" in mean.dims:
        sb_of = mean["sigma_b2"].where(mean.notnull().any("sigma_w2")).max("sigma_b2")
    mean, se, predicted = (_one_sigma_b2(v) for v in (mean, se, predicted))
    others = common.varying(mean, exclude=("sigma_w2", "sigma_b2"))
    lines_dims, col, row = common.split_dims(others, ("activation", "depth", "width"),
                                             da=mean)
    facets = common.facet_figure(mean, col, row, lines_dims, fig=fig, ax=ax)
    ln_chi = None
    if "theory_ln_chi1" in ds:
        ln_chi = ds["theory_ln_chi1"]
        ln_chi = _one_sigma_b2(ln_chi.mean(SEED_DIM) if SEED_DIM in ln_chi.dims else ln_chi)
    drew_critical = False
    for p in facets.panels:
        criticals: dict[str, float] = {}
        for k, sel in enumerate(p.lines):
            full = {**p.facet, **sel}
            m = mean.sel(full)
            ok = np.isfinite(m.values)
            if not ok.any():
                continue
            sw, y = m["sigma_w2"].values[ok].astype(float), m.values[ok]
            color = style.colour(k)
            p.ax.plot(sw, y, "o-", color=color, gid="measured")
            style.band(p.ax, sw, y, se.sel(full).values[ok], color)
            if predicted is not None:
                pr = predicted.sel(full).values[ok]
                p.ax.plot(sw, pr, "--", color=color, gid="predicted")
            if ln_chi is not None:
                lc = ln_chi.sel({d: v for d, v in full.items() if d in ln_chi.dims})
                p.ax.plot(sw, lc.values[ok] if lc.ndim else np.full(sw.size, float(lc)), ":",
                          color=color, lw=1.5, gid="theory")
            activation = str(full.get("activation", fixed.get("activation", "relu")))
            sb = float(fixed.get("sigma_b2", 0.0)) if sb_of is None else float(
                sb_of.sel({d: v for d, v in full.items() if d in sb_of.dims}).max())
            crit = critical_curve(activation, np.array([sb]))[0]
            if np.isfinite(crit) and sw.min() <= crit <= sw.max():
                criticals[activation] = crit
        for activation, crit in criticals.items():  # once per activation, named
            p.ax.axvline(crit, color="0.3", lw=0.8, ls="-.", gid="critical")
            drew_critical = True
            p.ax.text(crit, 0.99, f" {activation}", transform=p.ax.get_xaxis_transform(),
                      rotation=90, va="top", ha="right", fontsize=style.FONT - 1.5, color="0.3")
        p.ax.axhline(0.0, color="0.5", lw=0.6)
        p.ax.set_xlabel(common.label("sigma_w2"))
        if p.j == 0:
            p.ax.set_ylabel(style.wrap(RATE_LABEL, 2.3))
    keys = [(style.MEASURED_KEY, style.MEASURED_STYLE)]
    if common.drew(facets.axes, "predicted"):
        keys.append(("dashed: predicted rate (what compare tests)", {"ls": "--"}))
    if common.drew(facets.axes, "theory"):
        keys.append((r"dotted: $\ln\chi_1$ (fixed point)", {"ls": ":"}))
    if drew_critical:  # a key only for what is drawn (sigmoid: chi_1 < 1 everywhere)
        keys.append((r"dash-dot: $\chi_1 = 1$ (critical $\sigma_w^2$)", {"ls": "-.", "lw": 0.8}))
    facets.share_y()
    facets.legend(keys)
    if ax is None:
        what = ("one sigma_b2 per configuration: 1-D sweeps" if sb_of is not None
                else "one sigma_b2: a 1-D sweep")
        common.suptitle(facets.fig, f"backward-signal rate per layer vs sigma_w2 ({what}, no "
                        "phase diagram)", ds, facets.note)
    return facets.fig
