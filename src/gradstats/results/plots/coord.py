"""Coord-check figure: the change of each layer group since init against width (log-log),
one panel per (optimizer, parameterization), with the slopes `gradstats.theory.coord` derives.

Reads ``preact_change_rms`` (dims ..., seed, step, layer), ``output_change_rms`` and, when
present, its two parts (``output_change_feature_rms``, ``output_change_readout_rms``; thin
lines, step 1 only); other
axes that vary (lr zipped with optimizer, ...) are reduced to their present combinations.
Step 1 is drawn solid with the theory slope (dashed, gid ``theory``, through the measured
geometric centre); later steps faded (the derivation covers step 1 only).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common, style

GROUP_COLORS = {"input": "tab:green", "hidden": "tab:blue", "output": "tab:red",
                "output_feature": "tab:orange", "output_readout": "tab:purple"}
GROUP_LABELS = {"output_feature": "output: features", "output_readout": "output: readout"}
PARTS = ("output_feature", "output_readout")  # drawn thin, step 1 only


def _groups(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    pre = ds["preact_change_rms"]
    depth = ds["depth"] if "depth" in ds.dims else int(ds["depth"].values) if "depth" in ds else 2
    hidden = (pre["layer"] >= 2) & (pre["layer"] <= depth)
    groups = {"input": pre.sel(layer=1, drop=True),
              "hidden": np.exp(np.log(pre.where(hidden & (pre > 0))).mean("layer")),
              "output": ds["output_change_rms"]}
    for part, name in zip(PARTS, ("output_change_feature_rms", "output_change_readout_rms"),
                          strict=True):
        if name in ds:  # results of 0.3.0 lack the split
            groups[part] = ds[name]
    return groups


def in_table_order(values, dim: str) -> list[str]:
    """Parameterizations (``dim = "parameterization"``) in the abc table's order, optimizers in
    `gradstats.spec.OPTIMIZERS` order; ``values``: an array or a scalar."""
    from gradstats.parameterization import NAMES
    from gradstats.spec import OPTIMIZERS

    order = NAMES if dim == "parameterization" else OPTIMIZERS
    names = [str(v) for v in np.atleast_1d(values).ravel()]
    return sorted(names, key=lambda v: order.index(v) if v in order else len(order))


LABEL_GAP = 0.085  # axes fraction between stacked slope labels (a 7 pt line in a ~1.2 in axes)


def slope_labels(ax, widths: np.ndarray, labels: list[tuple[float, str, str]]) -> None:
    """The derived slopes as text right of the lines' ends, inside the axes: the x range is
    widened (a right margin of about a quarter of the axes) and labels
    closer than `LABEL_GAP` are spread apart, so that none runs into a neighbour panel or
    over another label. ``labels``: (y at the last width, text, colour)."""
    if not labels:
        return
    lo, hi = float(np.min(widths)), float(np.max(widths))
    ax.set_xlim(lo / 2 ** 0.25, hi * (hi / lo) ** 0.4)  # room right of the last width
    ax.autoscale_view(scalex=False)
    to_axes = ax.transScale + ax.transLimits
    placed = sorted((float(to_axes.transform((hi, y))[1]), text, colour)
                    for y, text, colour in labels if np.isfinite(y) and y > 0)
    for k in range(1, len(placed)):  # spread upward
        if placed[k][0] - placed[k - 1][0] < LABEL_GAP:
            placed[k] = (placed[k - 1][0] + LABEL_GAP, *placed[k][1:])
    shift = max(0.0, placed[-1][0] - 0.97) if placed else 0.0
    x = float(to_axes.transform((hi, 1.0))[0]) + 0.03
    for y, text, colour in placed:
        ax.text(x, y - shift, text, transform=ax.transAxes, fontsize=style.FONT - 1,
                color=colour, va="center", ha="left", gid="slope")


@style.styled
def plot_coord_check(ds: xr.Dataset, fig: Figure | None = None) -> Figure:
    """One panel per (optimizer, parameterization): each group's seed geometric-mean change
    vs width, the derived slope dotted through the step-1 points (gid ``theory``)."""
    from gradstats.theory import coord

    common.require(ds, "coord", ("preact_change_rms", "output_change_rms"), ("width",))
    groups = _groups(ds)
    pzs = in_table_order(ds["parameterization"].values, "parameterization")
    opts = in_table_order(ds["optimizer"].values, "optimizer")
    fig, axes = common.panel_grid(len(opts), len(pzs), fig=fig, legend="below")
    axes = np.asarray(axes).reshape(len(opts), len(pzs))
    for i, opt in enumerate(opts):
        for j, pz in enumerate(pzs):
            ax = axes[i, j]
            expected = coord.change_exponents(pz, opt)
            labels: list[tuple[float, str, str]] = []
            for name, da in groups.items():
                sel = {k: v for k, v in (("parameterization", pz), ("optimizer", opt))
                       if k in da.dims}
                part = da.sel(sel)
                # other axes (e.g. lr zipped with the optimizer): the combination measured
                extra = [d for d in part.dims if d not in ("width", "seed", "step")]
                if extra:
                    part = part.stack(_c=extra).dropna("_c", how="all").isel(_c=0, drop=True)
                gm = np.exp(np.log(part.where(part > 0)).mean("seed"))
                widths = gm["width"].values.astype(float)
                part_line = name in PARTS
                for step in gm["step"].values:
                    if step == 0 or (part_line and step != 1):
                        continue
                    y = gm.sel(step=step).values
                    first = step == 1
                    ax.plot(widths, y, ("x-" if part_line else "o-") if first else ".--",
                            color=GROUP_COLORS[name], alpha=1.0 if first else 0.35,
                            lw=0.8 if part_line else 1.5, ms=4 if part_line else 6,
                            gid="measured",
                            label=f"{GROUP_LABELS.get(name, name)} (step 1)" if first else None)
                    if first and np.isfinite(y).sum() >= 2:
                        ok = np.isfinite(y) & (y > 0)
                        cx, cy = np.exp(np.log(widths[ok]).mean()), np.exp(np.log(y[ok]).mean())
                        slope = expected[name]
                        ax.plot(widths, cy * (widths / cx) ** slope, ":", color="black",
                                lw=1.2, gid="theory")
                        labels.append((cy * (widths[-1] / cx) ** slope, f"{slope:+g}",
                                       GROUP_COLORS[name]))
            ax.set_xscale("log", base=2)
            style.auto_scale(ax)
            slope_labels(ax, widths, labels)
            ax.set_title(f"{pz}, {opt}")
            if i == len(opts) - 1:
                ax.set_xlabel("width")
            if j == 0:
                ax.set_ylabel("rms change since init")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3),
               title="dotted: the derived slope through the measured step-1 points",
               frameon=False)
    common.suptitle(fig, "coord check: change after each step vs width (solid step 1, faded "
                    "later; seed geometric mean)", ds)
    return fig
