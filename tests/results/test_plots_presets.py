"""Every plot kind renders for every preset that records its variables, on synthetic
datasets shaped like the preset's sweep (`plot_datasets.preset_results`), with no text
outside the figure and every legend outside the data area; more than `MAX_LINES` series
facet into further panels instead of being dropped; the theory a figure draws is compare's.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import xarray as xr
from layout_checks import check_layout
from plot_datasets import preset_results

from gradstats.results import plots
from gradstats.results.compare import compare
from gradstats.results.plots import common
from gradstats.sweeps.presets import preset_names

# kinds each preset's recorded variables must allow (summary, layers, signals: every preset)
EXPECTED = {"phase": {"phase"}, "depth-phase": {"phase"}, "sigmoid-vanishing": {"phase"},
            "ntk-width": {"ntk", "tails", "spectrum"}, "batch-noise": {"tails", "spectrum"},
            "vmf-directions": {"directions"}, "batchnorm": {"batchnorm"},
            "coord-check": {"coord"}, "lr-transfer": {"lr-transfer"}, "cnn-width": {"ntk"}}
ALWAYS = {"summary", "layers", "signals"}


@functools.cache
def dataset(preset: str) -> xr.Dataset:
    return preset_results(preset)


@functools.cache
def available(preset: str) -> tuple[str, ...]:
    return tuple(plots.kinds_available(dataset(preset)))


# presets of many configurations draw big figures (seconds each on a busy 2-core machine)
BIG = {"lr-transfer", "coord-check", "phase", "residual"}
PRESETS = [pytest.param(p, marks=pytest.mark.slow) if p in BIG else p for p in preset_names()]


@pytest.fixture(autouse=True)
def fast_critical_curve(monkeypatch):
    """The chi_1 = 1 curve from theory takes seconds per activation: a stand-in here."""
    monkeypatch.setattr(plots.phase, "critical_curve",
                        lambda activation, sb: 1.0 + 3.0 * np.sqrt(np.asarray(sb, float)))


def _drawn(fig) -> int:
    """Artists carrying data (gid measured) in the figure."""
    found = [a for ax in fig.axes for a in (*ax.get_lines(), *ax.collections)
             if a.get_gid() == "measured"]
    found += [c for ax in fig.axes for c in ax.containers
              if c.lines[0] is not None and c.lines[0].get_gid() == "measured"]
    return len(found)


@pytest.mark.parametrize("preset", preset_names())
def test_each_preset_allows_the_kinds_its_variables_support(preset):
    kinds = set(available(preset))
    assert ALWAYS | EXPECTED.get(preset, set()) <= kinds
    if preset == "batchnorm":
        assert "phase" not in kinds  # no mean-field edge of chaos with batch norm
    if preset == "coord-check":
        assert "lr-transfer" not in kinds  # one lr per optimizer is no lr scan


@pytest.mark.parametrize("kind", list(plots.KINDS))
@pytest.mark.parametrize("preset", PRESETS)
def test_every_kind_renders_for_every_preset_that_records_its_variables(preset, kind):
    ds = dataset(preset)
    if kind not in available(preset):
        pytest.skip(f"{preset} records no variables for {kind}")
    try:
        fig = plots.render(ds, kind)
    except plots.MissingVariables as err:
        # the cheap availability check cannot see validity domains: Adam is outside the
        # lazy domain of the NTK change exponent, and the figure says why it is not drawn
        # (the validity preset: too few widths inside the infinite-width domain, untrained)
        assert (preset, kind) in (("lr-transfer", "ntk"), ("validity", "ntk")) \
            and "validity domain" in str(err)
        return
    try:
        assert _drawn(fig) > 0
        check_layout(fig)
    finally:
        common.plt.close(fig)


def many_lines_dataset(n: int = 15) -> xr.Dataset:
    """grad_sq_norm over n values of sigma_w2 (a line each), 2 seeds, 2 steps, 4 layers."""
    rng = np.random.default_rng(0)
    sw2 = np.linspace(1.0, 3.0, n)
    layers = np.arange(1, 5)
    values = sw2[:, None, None, None] ** (layers - 4.0) * np.exp(
        0.05 * rng.standard_normal((n, 2, 2, 4)))
    coords = {"sigma_w2": sw2, "seed": [0, 1], "step": [0, 1], "layer": layers}
    return xr.Dataset({"grad_sq_norm": (list(coords), values),
                       "full_loss": (["sigma_w2", "seed", "step"], values[..., 0])},
                      coords=coords)


@pytest.mark.parametrize("kind", ["layers", "summary"])
def test_more_than_max_lines_series_facet_or_say_what_is_left_out(kind):
    ds = many_lines_dataset(15)
    fig = plots.render(ds, kind)
    per_panel = [[ln for ln in ax.get_lines() if ln.get_gid() == "measured"]
                 for ax in fig.axes if ax.get_visible()]
    per_panel = [p for p in per_panel if p]
    if kind == "layers":
        assert [len(p) for p in per_panel] == [common.MAX_LINES, 15 - common.MAX_LINES]
        drawn = np.concatenate([ln.get_ydata() for p in per_panel for ln in p])
        expect = ds["grad_sq_norm"].isel(step=0).mean("seed").values.ravel()
        np.testing.assert_allclose(np.sort(drawn), np.sort(expect))  # every line, once
    else:  # one page: the first MAX_LINES, and the title says how many were left out
        assert [len(p) for p in per_panel] == [common.MAX_LINES, common.MAX_LINES]
        assert f"first {common.MAX_LINES} of 15 configurations" in \
            fig.get_suptitle().replace("\n", " ")
    for lines in per_panel:
        assert len({ln.get_color() for ln in lines}) == len(lines)  # no colour repeats
    check_layout(fig)


def test_the_layers_theory_line_is_compares_prediction():
    ds = dataset("quickstart")
    cmp = compare(ds)
    fig = plots.plot_layer_norms(ds)
    theory = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "theory"]
    pred = cmp["grad_sq_norm_pred"].sel(step=0)
    expected = [pred.sel(width=w, activation=a).values for w in ds.width.values
                for a in ds.activation.values]
    assert len(theory) == len(expected) == 4
    for line, values in zip(theory, expected, strict=True):
        np.testing.assert_allclose(line.get_ydata(), values, rtol=1e-12)


def ntk_dataset() -> xr.Dataset:
    """ntk-width shaped results with NTK errors ~ width^-0.4 and ^-0.55 (seed noise)."""
    ds = dataset("ntk-width").copy()
    rng = np.random.default_rng(5)
    widths = ds.width.values.astype(float)
    noise = np.exp(0.1 * rng.standard_normal((len(widths), ds.sizes["seed"])))
    change = 0.05 * (widths / 64) ** -0.4
    ds["ntk_rel_change"] = ds["ntk_rel_change"].copy(
        data=np.stack([np.zeros_like(noise), change[:, None] * noise], axis=-1))
    ds["theory_ntk_init_rel_err"] = ds["theory_ntk_init_rel_err"].copy(
        data=0.3 * (widths[:, None] / 64) ** -0.55 * noise[:, ::-1])
    return ds


def test_the_ntk_figure_slopes_are_compares_exponents():
    ds = ntk_dataset()
    cmp = compare(ds)
    fig = plots.render(ds, "ntk")
    fits = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "fit"]
    slopes = [np.polyfit(np.log(f.get_xdata()), np.log(f.get_ydata()), 1)[0] for f in fits]
    expected = [float(cmp["ntk_init_exponent_mean"]), float(cmp["ntk_change_exponent_mean"])]
    # relu at widths 64-1024: one width inside the NTK change's domain (>= 1024), so compare
    # fits no change exponent and the figure draws none
    assert np.isnan(expected[1])
    expected = expected[:1]
    np.testing.assert_allclose(slopes, expected, atol=1e-10)
    legends = [t.get_text() for ax in fig.axes if ax.get_legend()
               for t in ax.get_legend().get_texts()]
    for value in expected:
        assert any(f"{value:.2f}" in t for t in legends)
    assert expected[0] == pytest.approx(-0.55, abs=0.1)  # the values the data were made with


LAZY_PRESETS = ("quickstart", "depth-phase", "ntk-width", "vmf-directions", "batchnorm")


@pytest.mark.parametrize("preset", LAZY_PRESETS)
def test_every_kind_renders_from_a_lazily_loaded_dataset(preset):
    """`load_results` is lazy by default: a dask-backed dataset draws every kind, without
    the warnings an eager one does not give (dask's 0 / 0 in all-NaN seed means)."""
    ds = dataset(preset).chunk()
    for kind in available(preset):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            fig = plots.render(ds, kind)
        assert _drawn(fig) > 0, kind
        common.plt.close(fig)
