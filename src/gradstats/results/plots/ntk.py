"""NTK errors against width (log-log) with the width exponent that `gradstats compare` fits.

`plot_ntk_width` draws one relative-error DataArray (dims: ``width``, ``seed``, others as
lines): the geometric seed mean per width, exp(mean ln y) with error bars exp(mean ln y ±
SE of ln y), and the OLS fit of ln y on ln width over widths and seeds,
`gradstats.results.compare.fit_exponent_part`, the very function compare's exponent rows
use. `plot_ntk` draws the exponent rows of a results dataset, each from
`gradstats.results.compare.exponent_inputs` (compare's selection: last finite step, NaN
outside the validity domain), so the slope printed is compare's ``<row>_mean``.
The markers are geometric means because the fit is of ln y: with the same seeds at each
width the fitted line passes through them on average (arithmetic means of a spread that
spans an order of magnitude lie far above it). The dotted reference is the exponent
compare's row tests: NTK fluctuations at init of order width^(-1/2), the NTK change during
lazy training of order width^(-1).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common, style

WIDTH_DIM = "width"
LINE_DIMS = ("activation", "depth", "sigma_w2", "parameterization")
# compare's exponent rows a figure draws: row -> (variable, panel title)
ROWS = {"ntk_init_exponent": ("theory_ntk_init_rel_err", "empirical vs analytic NTK at init"),
        "ntk_change_exponent": ("ntk_rel_change", "NTK change over training (last step)")}


def fit(values: xr.DataArray):
    """compare's width-exponent fit of ``values`` (width, [seed]): (LineFit | None, widths)."""
    from gradstats.results.compare import fit_exponent_part

    return fit_exponent_part(values)


@style.styled
def plot_ntk_width(err: xr.DataArray, step: int | None = None, col: str | None = None,
                   row: str | None = None, title: str | None = None,
                   outside: xr.DataArray | None = None, fig: Figure | None = None,
                   ax=None, theory_exponent: float = -0.5) -> Figure:
    """Geometric seed mean of ``err`` vs width on log-log axes, one line per config, with
    error bars exp(mean ln ± SE of ln) (values <= 0 have no logarithm and are left out).

    Each line gets compare's fit (`fit`: OLS over widths and seeds; dashed, gid ``fit``,
    slope ± SE in the legend) and a ``theory_exponent`` reference slope (default -1/2: the
    NTK at init; compare's row says which) through the fitted points' centre (dotted, gid
    ``reference``). Measured points have gid ``measured``; ``outside`` (same
    dims: values outside compare's validity domain, NaN elsewhere) are drawn hollow, not
    fitted (gid ``outside``). A ``step`` dim keeps ``step`` (default its first value).
    """
    if WIDTH_DIM not in err.dims:
        raise common.MissingVariables(f"plot 'ntk' needs a {WIDTH_DIM!r} dim; {err.name} has "
                                      f"dims {', '.join(map(str, err.dims))}")
    err = common.first_step(err, step)
    mean, low, high = geometric_seed_mean(err)
    line_dims, col, row = common.split_dims(common.varying(err, exclude=(WIDTH_DIM,)),
                                            LINE_DIMS, col, row, da=mean)
    facets = common.facet_figure(mean, col, row, line_dims, fig=fig, ax=ax)
    legends: dict[int, list] = {}
    for p in facets.panels:
        labels = legends.setdefault(id(p), [])
        for k, sel in enumerate(p.lines):
            full = {**p.facet, **sel}
            m = mean.sel(full)
            widths, y = m[WIDTH_DIM].values.astype(float), m.values
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            bars = np.nan_to_num([low.sel(full).values[ok], high.sel(full).values[ok]])
            color = style.colour(k)
            p.ax.errorbar(widths[ok], y[ok], yerr=bars, fmt="o-", ms=4, color=color, capsize=2,
                          gid="measured")
            if outside is not None:
                o = geometric_seed_mean(outside.sel(full) if full else outside)[0]
                o_ok = np.isfinite(o.values) & (o.values > 0)
                if o_ok.any():
                    p.ax.plot(o[WIDTH_DIM].values[o_ok], o.values[o_ok], "o", mfc="none",
                              color=color, gid="outside")
            result, used = fit(err.sel(full) if full else err)
            name = ", ".join(common._fmt(v) for v in sel.values())  # the dims: legend title
            if result is not None and np.isfinite(result.slope):
                w = np.asarray(used, float)
                line = np.exp(result.intercept) * w ** result.slope
                p.ax.plot(w, line, "--", color=color, lw=1, gid="fit")
                text = f"slope {result.slope:.2f}"
                if np.isfinite(result.slope_se):
                    text += f" ± {result.slope_se:.2f}"
                labels.append(((f"{name}: " if name else "") + text, color))
                centre = np.exp(np.mean(np.log(line)))
                wc = np.exp(np.mean(np.log(w)))
                p.ax.plot(w, centre * (w / wc) ** theory_exponent, ":", color="0.35", lw=1.2,
                          gid="reference")
            elif name:
                labels.append((name, color))
        p.ax.set_xscale("log", base=2)
        p.ax.set_yscale("log")  # the exponent's axes: a power law is a straight line here
        style.log_ticks(p.ax)
        p.ax.set_xlabel(common.label(WIDTH_DIM) + " (width)")
        if p.j == 0:
            p.ax.set_ylabel(style.wrap(common.label(err, units=False), 2.4))
    facets.share_y()
    keys = [("solid: geometric seed mean, × exp(± SE of ln)", style.MEASURED_STYLE)]
    if common.drew(facets.axes, "fit"):  # keys only for what is drawn
        keys += [("dashed: compare's fit", {"ls": "--"}),
                 (f"dotted: slope {_slope_text(theory_exponent)} (theory)", {"ls": ":"})]
    if common.drew(facets.axes, "outside"):
        keys.append(("hollow: outside the validity domain (not fitted)",
                     {"ls": "none", "marker": "o", "mfc": "none"}))
    dims_title = ", ".join(line_dims) if line_dims else None
    if len(facets.panels) == 1:
        style.legend_right(facets.panels[0].ax, legends[id(facets.panels[0])], keys,
                           title=dims_title)
    else:  # the fitted slopes under each panel, the style keys once under the figure
        for p in facets.panels:
            style.legend_below(p.ax, legends[id(p)], title=dims_title)
        style.figure_legend(facets.fig, keys=keys)
    if ax is None:
        sub = not hasattr(facets.fig, "get_size_inches")  # a subfigure: the note is above
        common.suptitle(facets.fig, title or f"{common.label(err, units=False)} vs width",
                        None if sub else err, facets.note)
    return facets.fig


def geometric_seed_mean(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """(exp(mean ln da), the error bar below it, above it) over ``seed``: the bars reach
    exp(mean ln ± SE of ln) (NaN with one seed); values <= 0 are left out. No seed dim: da."""
    logs = np.log(da.where(da > 0))
    mean, se = common.seed_mean(logs)
    centre = np.exp(mean)
    return centre, centre - np.exp(mean - se), np.exp(mean + se) - centre


def ntk_rows(ds: xr.Dataset) -> dict[str, tuple[xr.DataArray, xr.DataArray | None]]:
    """The exponent rows ``ds`` can feed: row -> (the values compare fits, NaN outside the
    row's domain; the values outside it, NaN inside). Without point specs
    (attrs['points']): the raw variable (its last step) and None."""
    from gradstats.results.compare import exponent_inputs

    out = {}
    for name, (var, _) in ROWS.items():
        if var not in ds.data_vars or WIDTH_DIM not in ds[var].dims:
            continue
        raw = ds[var].isel(step=-1) if "step" in ds[var].dims else ds[var]
        outside = None
        if ds.attrs.get("points") is not None and len(ds.attrs["points"]):
            values = exponent_inputs(ds, name)
            if values is not None:
                outside = raw.where(values.isnull())
        else:
            values = raw
        if values is not None and bool(values.notnull().any()):
            out[name] = (values.rename(var).assign_attrs(ds[var].attrs), outside)
    return out


def _row_exponent(name: str) -> float:
    """The width exponent compare's row ``name`` tests (`gradstats.comparisons`)."""
    from gradstats.comparisons import by_name

    return float(by_name(name).exponent)


def _slope_text(exponent: float) -> str:
    return {-0.5: "−1/2", -1.0: "−1"}.get(exponent, f"{exponent:g}".replace("-", "−"))


@style.styled
def plot_ntk(ds: xr.Dataset, fig: Figure | None = None) -> Figure:
    """One panel group per exponent row of `ROWS` the dataset feeds (`ntk_rows`)."""
    rows = ntk_rows(ds)
    if not rows:
        raise common.MissingVariables(
            "plot 'ntk' needs " + " or ".join(v for v, _ in ROWS.values()) + " with at least 3 "
            "widths inside the validity domain of compare's exponent rows (lazy training for "
            "the NTK change: SGD, NTK change <= the lazy bound)")
    if len(rows) == 1:
        (name, (values, outside)), = rows.items()
        return plot_ntk_width(values, title=ROWS[name][1], outside=outside, fig=fig,
                              theory_exponent=_row_exponent(name))
    first = next(iter(rows.values()))[0]
    facets = [d for d in common.varying(first, exclude=(WIDTH_DIM,)) if d not in LINE_DIMS]
    # the rows stacked, each as wide as its panels and their legends (at most a page wide)
    if not facets:  # one panel per row
        size = (common.SINGLE_PANEL_SIZE[0] + style.LEGEND_WIDTH + 0.3,
                common.SINGLE_PANEL_SIZE[1] + 0.4)
    else:
        size = (style.MAX_WIDTH, style.PANEL_SIZE[1] + 1.6)
    fig = fig or common.plt.figure(layout="constrained",
                                   figsize=(size[0], len(rows) * size[1] + 0.4))
    subs = fig.subfigures(len(rows), 1, hspace=0.04)
    for sub, (name, (values, outside)) in zip(np.atleast_1d(subs), rows.items(), strict=True):
        plot_ntk_width(values, title=ROWS[name][1], outside=outside, fig=sub,
                       theory_exponent=_row_exponent(name))
    theory = ", ".join(f"{_slope_text(_row_exponent(n))} "
                       f"{'at init' if n == 'ntk_init_exponent' else 'for the change'}"
                       for n in rows)
    common.suptitle(fig, f"NTK error vs width: compare's fitted exponents (theory {theory})", ds)
    return fig
