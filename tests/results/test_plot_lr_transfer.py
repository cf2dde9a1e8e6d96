"""The lr-transfer plot: one panel per parameterization, one line per width at the seed-mean
final loss, each width's optimum starred at the lr built into the synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from lr_transfer_helpers import LOG2_LR, WIDTHS, parabola_dataset

from gradstats.results import plots
from gradstats.results.plots import common

BEST = {"sp": [-5, -6, -7, -8], "mup": [-4, -4, -4, -4]}


def test_the_lr_transfer_kind_draws_each_width_and_stars_its_optimum(tmp_path):
    ds = parabola_dataset(BEST)
    assert "lr-transfer" in plots.kinds_available(ds)
    assert "lr-transfer" not in plots.kinds_available(ds.isel(lr=0))
    fig = plots.render(ds, "lr-transfer")
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == 2
    mean = ds["full_loss"].isel(step=-1).mean("seed")
    for ax, pz in zip(panels, BEST, strict=True):
        measured = [ln for ln in ax.get_lines() if ln.get_gid() == "measured"]
        stars = [ln for ln in ax.get_lines() if ln.get_gid() == "optimum"]
        assert len(measured) == len(stars) == len(WIDTHS)
        for line, star, width, best in zip(measured, stars, WIDTHS, BEST[pz], strict=True):
            assert np.array_equal(line.get_xdata(), LOG2_LR)
            assert np.allclose(line.get_ydata(), mean.sel(parameterization=pz, width=width))
            assert list(star.get_xdata()) == [best]
        assert ax.get_xlabel() == "log2 base lr"
    path = common.save(fig, tmp_path / "lr.png", dpi=60)
    assert path.stat().st_size > 5000


def test_diverged_lrs_are_marked_not_drawn_as_losses():
    ds = parabola_dataset(BEST)
    sel = {"parameterization": "sp", "width": 128, "lr": 2.0 ** 0}
    ds["diverged"].loc[sel] = 1.0
    ds["full_loss"].loc[{**sel, "step": 100}] = np.nan
    fig = plots.render(ds, "lr-transfer")
    ax = fig.axes[0]
    first = next(ln for ln in ax.get_lines() if ln.get_gid() == "measured")
    assert 0 not in first.get_xdata()
    assert [list(ln.get_xdata()) for ln in ax.get_lines() if ln.get_gid() == "diverged"] == [[0]]


def test_the_lr_transfer_kind_names_what_it_needs():
    with pytest.raises(plots.MissingVariables, match="full_loss"):
        plots.render(parabola_dataset(BEST).drop_vars("full_loss"), "lr-transfer")
