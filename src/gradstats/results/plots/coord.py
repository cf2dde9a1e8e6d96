"""Coord-check figure: the change of each layer group since init against width (log-log),
one panel per (optimizer, parameterization), with the slopes `gradstats.theory.coord` derives.

Reads ``preact_change_rms`` (dims ..., seed, step, layer) and ``output_change_rms``; other
axes that vary (lr zipped with optimizer, ...) are reduced to their present combinations.
Step 1 is drawn solid with the theory slope (dashed, gid ``theory``, through the measured
geometric centre); later steps faded (the derivation covers step 1 only).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import common

GROUP_COLORS = {"input": "tab:green", "hidden": "tab:blue", "output": "tab:red"}


def _groups(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    pre = ds["preact_change_rms"]
    depth = ds["depth"] if "depth" in ds.dims else int(ds["depth"].values) if "depth" in ds else 2
    hidden = (pre["layer"] >= 2) & (pre["layer"] <= depth)
    return {"input": pre.sel(layer=1, drop=True),
            "hidden": np.exp(np.log(pre.where(hidden & (pre > 0))).mean("layer")),
            "output": ds["output_change_rms"]}


def plot_coord_check(ds: xr.Dataset) -> Figure:
    from gradstats.theory import coord

    common.require(ds, "coord", ("preact_change_rms", "output_change_rms"), ("width",))
    groups = _groups(ds)
    pzs = [str(v) for v in ds["parameterization"].values.ravel()] if "parameterization" in ds.dims \
        else [str(ds["parameterization"].values)]
    opts = [str(v) for v in ds["optimizer"].values.ravel()] if "optimizer" in ds.dims \
        else [str(ds["optimizer"].values)]
    fig, axes = common.panel_grid(len(opts), len(pzs))
    axes = np.asarray(axes).reshape(len(opts), len(pzs))
    for i, opt in enumerate(opts):
        for j, pz in enumerate(pzs):
            ax = axes[i, j]
            expected = coord.change_exponents(pz, opt)
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
                for step in gm["step"].values:
                    if step == 0:
                        continue
                    y = gm.sel(step=step).values
                    first = step == 1
                    ax.plot(widths, y, "o-" if first else ".--", color=GROUP_COLORS[name],
                            alpha=1.0 if first else 0.35, gid="measured",
                            label=f"{name} (step 1)" if first else None)
                    if first and np.isfinite(y).sum() >= 2:
                        ok = np.isfinite(y) & (y > 0)
                        cx, cy = np.exp(np.log(widths[ok]).mean()), np.exp(np.log(y[ok]).mean())
                        slope = expected[name]
                        ax.plot(widths, cy * (widths / cx) ** slope, ":", color="black",
                                lw=1.2, gid="theory")
                        ax.annotate(f"{slope:+g}", (widths[-1], cy * (widths[-1] / cx) ** slope),
                                    fontsize=7, color=GROUP_COLORS[name])
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{pz}, {opt}", fontsize=9)
            if i == len(opts) - 1:
                ax.set_xlabel("width")
            if j == 0:
                ax.set_ylabel("rms change since init")
    axes[0, 0].legend(fontsize=7, title="dotted: theory slope", title_fontsize=7)
    fig.suptitle("coord check: change after each step vs width (solid step 1, faded later)")
    return fig
