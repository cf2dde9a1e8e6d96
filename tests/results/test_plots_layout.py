"""Layout defects found in the gallery review, each with a figure that had it: facets follow
the combinations present (no empty panel, titles that name the configuration and do not
collide), y axes shared only where the ranges are comparable, per-panel legends that leave
the plot areas their size, legend keys only for lines drawn, figures at most a page wide.

Expected values are set here from the datasets built here (which panels hold data, how far
apart the rows' values are), never from the plotting code.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from layout_checks import MIN_AREA_SHARE, MIN_AXES, check_layout
from plot_datasets import preset_results

from gradstats.results import plots
from gradstats.results.plots import common, style

LAYERS = np.arange(1, 5)


def _visible(fig) -> list:
    return [ax for ax in fig.axes if ax.get_visible() and ax.axison]


def test_zipped_facets_draw_only_the_combinations_present_named_as_networks():
    # residual = [false, true, true] zipped with residual_scale = [1.0, 1.0, "1/sqrt(depth)"]:
    # of the 2 x 2 (residual, residual_scale) grid only 3 cells hold data
    ds = preset_results("residual")
    fig = plots.plot_layer_norms(ds)
    try:
        titles = sorted(ax.get_title() for ax in _visible(fig))
        assert titles == ["alpha=1", "alpha=1/sqrt(depth)", "plain"]
        check_layout(fig)  # no empty panel, no colliding titles
    finally:
        common.plt.close(fig)


def _two_rows(scale_b: float) -> xr.Dataset:
    """grad_sq_norm over (parameterization: a row each, width: a column each, seed, layer):
    row "a" ~ 1e-4, row "b" ~ ``scale_b`` x 1e-4, each varying a factor 100 over layers."""
    rng = np.random.default_rng(0)
    profile = 10.0 ** (LAYERS - 1.0) * 1e-4 / 10  # 1e-5 .. 1e-2: 3 decades
    base = profile[None, None, None, :] * np.exp(0.05 * rng.standard_normal((2, 3, 2, 4)))
    values = base * np.array([1.0, scale_b])[:, None, None, None]
    coords = {"parameterization": ["a", "b"], "width": [64, 128, 256], "seed": [0, 1],
              "layer": LAYERS}
    return xr.Dataset({"grad_sq_norm": (list(coords), values)}, coords=coords)


def _row_limits(fig) -> list[tuple[float, float]]:
    axes = _visible(fig)
    return [tuple(np.round(np.log10(ax.get_ylim()), 6)) for ax in axes]


def test_rows_orders_of_magnitude_apart_get_their_own_y_axis():
    fig = plots.plot_layer_norms(_two_rows(1e6), col="width", row="parameterization")
    limits = _row_limits(fig)
    assert len(set(limits[:3])) == 1 and len(set(limits[3:])) == 1  # shared within a row
    (lo_a, hi_a), (lo_b, hi_b) = limits[0], limits[3]
    assert hi_a < lo_b  # row b (1e6 x higher) does not flatten row a: disjoint ranges
    assert hi_a - lo_a < 5 and hi_b - lo_b < 5  # each row spans its own ~3 decades
    check_layout(fig)
    common.plt.close(fig)


def test_rows_of_comparable_range_share_one_y_axis():
    fig = plots.plot_layer_norms(_two_rows(2.0), col="width", row="parameterization")
    assert len(set(_row_limits(fig))) == 1  # a factor 2 apart: one axis for all six panels
    common.plt.close(fig)


@pytest.mark.parametrize("extents, log, expected", [
    ([(-5, -2), (-4, -1)], True, True),      # union 4 decades, widest 3: one more at most
    ([(-5, -2), (1, 4)], True, False),       # 9 decades for 3-decade rows
    ([(0, 1), (0.5, 1.5)], False, True),     # linear: union 1.5 <= 2 x 1
    ([(0, 1), (10, 11)], False, False),
])
def test_comparable_ranges(extents, log, expected):
    assert common.comparable(extents, log) is expected


def test_per_panel_legends_leave_the_plot_areas_their_size():
    # batch-noise: five batch sizes, each panel with its own fitted exponents per step
    ds = preset_results("batch-noise")
    fig = plots.plot_spectrum(ds)
    try:
        fig.canvas.draw()
        axes = _visible(fig)
        assert len(axes) == ds.sizes["batch_size"]
        width, height = fig.get_size_inches()
        area = 0.0
        for ax in axes:
            box = ax.get_window_extent()
            w, h = box.width / fig.dpi, box.height / fig.dpi
            assert w >= MIN_AXES[0] and h >= MIN_AXES[1]
            area += w * h
            assert ax.get_legend() is not None  # each panel's exponents, below it
        assert area >= MIN_AREA_SHARE * width * height
        check_layout(fig)
    finally:
        common.plt.close(fig)


def _sweep_1d() -> xr.Dataset:
    """backward_q of a 1-D sigma_w2 sweep (one sigma_b2) with its prediction and ln chi_1."""
    sw2 = np.array([1.0, 2.0, 3.0, 4.0])
    chi = sw2 / 8
    values = chi[:, None, None, None] ** (3 - LAYERS[None, None, None, :]) * np.ones((4, 2, 1, 4))
    coords = {"sigma_w2": sw2, "seed": [0, 1], "step": [0], "layer": LAYERS}
    ds = xr.Dataset({"backward_q": (list(coords), values),
                     "theory_backward_q": (list(coords), values * 1.01),
                     "theory_ln_chi1": (["sigma_w2"], np.log(chi))}, coords=coords)
    return ds.assign_coords(activation="sigmoid", sigma_b2=0.0, depth=3)


def _legend_texts(fig) -> list[str]:
    found = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    found += list(fig.legends)
    return [t.get_text() for legend in found for t in legend.get_texts()]


@pytest.mark.parametrize("critical, keyed", [(np.nan, False), (2.5, True)])
def test_the_critical_line_key_only_when_a_critical_line_is_drawn(monkeypatch, critical, keyed):
    # sigmoid: phi' <= 1/4, chi_1 < 1 everywhere, no critical sigma_w2 (NaN)
    monkeypatch.setattr(plots.phase, "critical_curve",
                        lambda activation, sb: np.full(np.shape(sb), critical))
    fig = plots.plot_phase(_sweep_1d())
    drawn = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "critical"]
    assert bool(drawn) is keyed
    assert any("dash-dot" in t for t in _legend_texts(fig)) is keyed
    assert any("dotted" in t for t in _legend_texts(fig))  # ln chi_1 is drawn in both
    check_layout(fig)
    common.plt.close(fig)


def test_many_facets_wrap_into_rows_within_a_page_width():
    rng = np.random.default_rng(1)
    widths = [16, 32, 64, 128, 256, 512, 1024, 2048]
    values = np.exp(0.1 * rng.standard_normal((8, 2, 4)))
    coords = {"width": widths, "seed": [0, 1], "layer": LAYERS}
    ds = xr.Dataset({"grad_sq_norm": (list(coords), values)}, coords=coords)
    fig = plots.plot_layer_norms(ds, col="width")
    try:
        assert fig.get_size_inches()[0] <= style.MAX_WIDTH
        rows = {round(ax.get_position().y0, 3) for ax in _visible(fig)}
        assert len(_visible(fig)) == 8 and len(rows) == 2  # 2 rows of 4, not 8 columns
        check_layout(fig)
    finally:
        common.plt.close(fig)


def test_a_row_sharing_a_wider_range_is_labelled_for_that_range():
    # widths 16-128: values over 1.2 decades; 256-2048: over 6 decades. Comparable (the union
    # spans under one decade more than the widest), so all share one axis, and the first
    # row's ticks must be those of the shared 6 decades, not of its own one
    rng = np.random.default_rng(2)
    widths = [16, 32, 64, 128, 256, 512, 1024, 2048]
    narrow = 10.0 ** (0.4 * LAYERS)[None, :] * np.ones((4, 1))  # 1.2 decades: log, 1-2-5
    wide = 10.0 ** (2.0 * LAYERS - 6.0)[None, :] * np.ones((4, 1))
    values = np.concatenate([narrow, wide])[:, None, :] * np.exp(
        0.05 * rng.standard_normal((8, 2, 4)))
    coords = {"width": widths, "seed": [0, 1], "layer": LAYERS}
    ds = xr.Dataset({"grad_sq_norm": (list(coords), values)}, coords=coords)
    fig = plots.plot_layer_norms(ds, col="width")
    try:
        assert len(set(_row_limits(fig))) == 1  # one shared axis
        check_layout(fig)  # every row's first panel has tick labels
    finally:
        common.plt.close(fig)
