"""Plots render from small synthetic datasets and draw exactly the dataset's numbers.

Expected values are computed here with numpy from the arrays the datasets are built from
(seed means, stored predictions, ln chi, survival (n-i)/n), never from the plotting code.
"""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import numpy as np
import pytest
import xarray as xr

from gradstats.results import plots
from gradstats.results.plot_command import plot_command
from gradstats.results.plots import common

DPI = 80
LAYERS = np.arange(1, 6)  # depth 4 + readout
SEEDS = np.arange(3)


def _lines(fig, gid: str) -> list:
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == gid]


def _save_and_check(fig, tmp_path, name: str = "fig.png") -> np.ndarray:
    """Save as PNG; the file is non-empty and has the figure's pixel size. Returns the image."""
    width, height = fig.get_size_inches() * DPI
    path = common.save(fig, tmp_path / name, dpi=DPI)
    assert path.stat().st_size > 5000
    image = mpimg.imread(path)
    assert image.shape[:2] == (round(height), round(width))
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image


def layer_dataset(chi: dict[tuple[float, str], float], widths=(64, 256)) -> xr.Dataset:
    """grad_sq_norm = 0.7 chi^(L-l) (1 + seed noise) over (width, sigma_w2, activation, seed,
    step, layer), its stored prediction theory_grad_sq_norm = 0.9 x that per seed, plus the
    exact ``chi_1`` per (sigma_w2, activation)."""
    sw2 = sorted({k[0] for k in chi})
    acts = sorted({k[1] for k in chi})
    rng = np.random.default_rng(0)
    shape = (len(widths), len(sw2), len(acts), len(SEEDS), 2, len(LAYERS))
    chi_arr = np.array([[chi[(s, a)] for a in acts] for s in sw2])
    clean = 0.7 * chi_arr[None, :, :, None, None, None] ** (LAYERS.max() - LAYERS)
    values = clean * (1 + 0.1 * rng.standard_normal(shape))
    coords = {"width": list(widths), "sigma_w2": sw2, "activation": acts, "seed": SEEDS,
              "step": [0, 10], "layer": LAYERS}
    ds = xr.Dataset({"grad_sq_norm": (list(coords), values, {"long_name": "squared norm of "
                                      "weight gradient", "units": "1"}),
                     "theory_grad_sq_norm": (list(coords), 0.9 * values),
                     "chi_1": (["sigma_w2", "activation"], chi_arr)}, coords=coords)
    return ds.assign_coords(depth=4, sigma_b2=0.0, parameterization="ntk")


CHI = {(1.5, "relu"): 0.75, (2.0, "relu"): 1.0, (2.5, "relu"): 1.25,
       (1.5, "tanh"): 0.9, (2.0, "tanh"): 1.1, (2.5, "tanh"): 1.3}


def test_layer_norms_draw_seed_means_and_the_stored_prediction(tmp_path):
    ds = layer_dataset(CHI)
    fig = plots.plot_layer_norms(ds)
    measured, theory = _lines(fig, "measured"), _lines(fig, "theory")
    assert len(fig.axes) == 2  # one facet per width
    assert len(measured) == len(theory) == 2 * 6
    raw = ds["grad_sq_norm"].values  # (width, sw2, act, seed, step, layer)
    # one row of panels: one y scale, log when the row's values span more than a decade
    row = raw[:, :, :, :, 0, :].mean(axis=3)
    row_span = np.log10(row.max() / row.min())
    for ax, wi in zip(fig.axes, range(2), strict=True):
        lines = [ln for ln in ax.get_lines() if ln.get_gid() == "measured"]
        th = [ln for ln in ax.get_lines() if ln.get_gid() == "theory"]
        for k, (si, ai) in enumerate([(s, a) for s in range(3) for a in range(2)]):
            expect = raw[wi, si, ai, :, 0, :].mean(axis=0)
            np.testing.assert_allclose(lines[k].get_ydata(), expect, rtol=1e-12)
            np.testing.assert_allclose(th[k].get_ydata(), 0.9 * expect, rtol=1e-12)
            assert lines[k].get_color() == th[k].get_color()
        assert len({ln.get_color() for ln in lines}) == 6  # no colour repeats in a panel
        assert ax.get_yscale() == ("log" if row_span > 1 else "linear")  # (1.3/0.75)^4 ~ 9
    assert "squared norm of weight gradient" in fig.axes[0].get_ylabel().replace("\n", " ")
    _save_and_check(fig, tmp_path)


def test_layer_norms_without_a_stored_prediction_draw_no_theory_and_say_so():
    ds = layer_dataset(CHI, widths=(64,)).drop_vars("theory_grad_sq_norm")
    fig = plots.plot_layer_norms(ds)
    assert _lines(fig, "theory") == [] and len(_lines(fig, "measured")) == 6
    assert "no stored theory_grad_sq_norm" in fig.get_suptitle().replace("\n", " ")


def test_a_log_axis_only_when_the_values_span_more_than_a_decade():
    flat = plots.plot_layer_norms(layer_dataset({(2.0, "relu"): 1.0}, widths=(64,)))
    assert flat.axes[0].get_yscale() == "linear"
    steep = plots.plot_layer_norms(layer_dataset({(2.0, "relu"): 0.5}, widths=(64,)))
    assert steep.axes[0].get_yscale() == "log"  # 0.5^4 = 1/16: more than a decade


def test_layer_norms_skip_nan_padded_layers():
    ds = layer_dataset(CHI, widths=(64,))
    ds["grad_sq_norm"][..., -1] = np.nan  # a shallower configuration: layer 5 absent
    fig = plots.plot_layer_norms(ds)
    line = _lines(fig, "measured")[0]
    np.testing.assert_array_equal(line.get_xdata(), LAYERS[:-1])


def phase_dataset(sb2=(0.0, 0.5, 1.0)) -> xr.Dataset:
    """backward_q_l = chi^(L-l) over the hidden layers (depth 4; the readout's value is
    arbitrary) with chi = sigma_w2 / (2 + sigma_b2), seed-independent; its stored
    prediction has chi_p = chi * 1.1."""
    sw2 = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
    sb2 = np.asarray(sb2, float)
    chi = sw2[None, :] / (2 + sb2[:, None])  # (sb2, sw2)
    hidden = LAYERS.max() - 1

    def profile(c):
        values = c[:, :, None, None, None] ** (hidden - LAYERS)
        values = np.broadcast_to(values, (len(sb2), 5, 2, 1, len(LAYERS))).copy()
        values[..., -1] = 123.0  # the readout: dL/df itself, not part of the rate
        return values

    coords = {"sigma_b2": sb2, "sigma_w2": sw2, "seed": [0, 1], "step": [0], "layer": LAYERS}
    ds = xr.Dataset({"backward_q": (list(coords), profile(chi)),
                     "theory_backward_q": (list(coords), profile(1.1 * chi))}, coords=coords)
    return ds.assign_coords(activation="tanh", depth=4)


def _fake_critical(activation, sb):
    return 2.0 + np.asarray(sb, float)  # chi = 1 on sigma_w2 = 2 + sigma_b2


def test_phase_colours_are_the_measured_and_predicted_backward_rates(tmp_path, monkeypatch):
    monkeypatch.setattr(plots.phase, "critical_curve", _fake_critical)
    ds = phase_dataset()
    fig = plots.plot_phase(ds)
    meshes = {c.get_gid(): c for ax in fig.axes for c in ax.collections}
    sw2, sb2 = ds.sigma_w2.values, ds.sigma_b2.values
    expect = np.log(sw2[None, :] / (2 + sb2[:, None]))  # (sb2, sw2): the rate is ln chi
    np.testing.assert_allclose(np.asarray(meshes["measured"].get_array()).reshape(3, 5), expect,
                               atol=1e-10)
    np.testing.assert_allclose(np.asarray(meshes["predicted"].get_array()).reshape(3, 5),
                               expect + np.log(1.1), atol=1e-10)
    curves = _lines(fig, "theory")
    assert len(curves) == 2  # on both panels
    np.testing.assert_allclose(curves[0].get_xdata(), 2 + curves[0].get_ydata())
    assert len(curves[0].get_xdata()) == plots.phase.CURVE_POINTS  # smooth, not the 3 rows
    _save_and_check(fig, tmp_path)


def test_phase_rate_is_compares_backward_decay_rate():
    from gradstats.results import compare as compare_module

    ds = phase_dataset().isel(sigma_b2=0)
    rate = plots.phase.backward_rate(ds["backward_q"].isel(step=0))
    layers = np.arange(1, 5)
    for si, sw in enumerate(ds.sigma_w2.values):
        values = ds["backward_q"].isel(step=0, sigma_w2=si, seed=0).values[:4]
        assert float(rate.isel(sigma_w2=si, seed=0)) == pytest.approx(
            compare_module._rate(layers, values), abs=1e-12)
        assert float(rate.isel(sigma_w2=si, seed=0)) == pytest.approx(np.log(sw / 2), abs=1e-12)


def test_a_one_dimensional_sweep_draws_rate_lines_not_an_empty_diagram(monkeypatch):
    monkeypatch.setattr(plots.phase, "critical_curve", _fake_critical)
    ds = phase_dataset(sb2=(0.0,)).isel(sigma_b2=0)
    fig = plots.plot_phase(ds)
    assert not [c for ax in fig.axes for c in ax.collections if c.get_gid() == "measured"]
    (line,) = _lines(fig, "measured")
    np.testing.assert_allclose(line.get_xdata(), ds.sigma_w2.values)
    np.testing.assert_allclose(line.get_ydata(), np.log(ds.sigma_w2.values / 2), atol=1e-10)
    (pred,) = _lines(fig, "predicted")
    np.testing.assert_allclose(pred.get_ydata(), np.log(1.1 * ds.sigma_w2.values / 2), atol=1e-10)
    (crit,) = _lines(fig, "critical")
    np.testing.assert_allclose(crit.get_xdata(), 2.0)
    assert "1-D sweep" in fig.get_suptitle().replace("\n", " ")


def test_ntk_width_fit_slope_and_reference(tmp_path):
    widths = np.array([32, 64, 128, 256, 512])
    rng = np.random.default_rng(1)
    values = 3.0 * widths[None, :, None] ** -0.5 * (1 + 0.02 * rng.standard_normal((2, 5, 4)))
    err = xr.DataArray(values, dims=["activation", "width", "seed"],
                       coords={"activation": ["relu", "tanh"], "width": widths, "seed": range(4)},
                       name="ntk_rel_change", attrs={"long_name": "relative change", "units": "1"})
    fig = plots.plot_ntk_width(err)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    measured = [c for c in ax.containers if c.lines[0].get_gid() == "measured"]
    # geometric seed means: the fit is of ln y
    np.testing.assert_allclose(measured[0].lines[0].get_ydata(), np.exp(np.log(values[0]).mean(axis=1)))
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    for fit, k in zip(_lines(fig, "fit"), range(2), strict=True):
        slope = np.polyfit(np.log(fit.get_xdata()), np.log(fit.get_ydata()), 1)[0]
        # the fit is over widths and seeds (compare's), not the seed means
        expect = np.polyfit(np.log(np.repeat(widths, 4)), np.log(values[k].ravel()), 1)[0]
        assert slope == pytest.approx(expect, abs=1e-10)
        assert abs(slope + 0.5) < 0.03  # 2% noise on 5 widths: slope error ~ 0.01
        assert f"{slope:.2f}" in legend
    for ref in _lines(fig, "reference"):
        slope = np.polyfit(np.log(ref.get_xdata()), np.log(ref.get_ydata()), 1)[0]
        assert slope == pytest.approx(-0.5, abs=1e-12)
    _save_and_check(fig, tmp_path)
    # the NTK change row's reference is its own law (-1), named so in the key
    fig = plots.plot_ntk_width(err, theory_exponent=-1.0)
    for ref in _lines(fig, "reference"):
        slope = np.polyfit(np.log(ref.get_xdata()), np.log(ref.get_ydata()), 1)[0]
        assert slope == pytest.approx(-1.0, abs=1e-12)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    texts = [t.get_text() for leg in legends for t in leg.get_texts()]
    assert "dotted: slope −1 (theory)" in texts, texts


def test_ntk_width_markers_straddle_the_fit_when_seeds_spread_an_order_of_magnitude():
    """The fit is OLS of ln y over widths and seeds; with the same seeds at every width it
    passes through the mean ln y at each width on average, so the markers (geometric seed
    means) have log residuals summing to zero. Arithmetic means of a lognormal spread with
    sigma 1.5 lie exp(sigma^2 / 2) ~ 3x above it (what the coord-check figure showed)."""
    widths = np.array([512, 1024, 2048, 4096])
    rng = np.random.default_rng(4)
    values = 0.5 * widths[:, None] ** -1.0 * np.exp(1.5 * rng.standard_normal((4, 3)))
    err = xr.DataArray(values, dims=["width", "seed"], coords={"width": widths, "seed": range(3)},
                       name="ntk_rel_change")
    fig = plots.plot_ntk_width(err, theory_exponent=-1.0)
    ax = fig.axes[0]
    (measured,) = [c for c in ax.containers if c.lines[0].get_gid() == "measured"]
    (fit,) = _lines(fig, "fit")
    residuals = np.log(measured.lines[0].get_ydata()) - np.log(fit.get_ydata())
    assert abs(residuals.sum()) < 1e-10, residuals
    # the bars are exp(mean ln +- SE of ln) around each marker
    logs = np.log(values)
    se = logs.std(axis=1, ddof=1) / np.sqrt(3)
    (bars,) = measured.lines[2]
    ends = np.array([seg[:, 1] for seg in bars.get_segments()])
    np.testing.assert_allclose(ends, np.exp(logs.mean(axis=1)[:, None] + np.outer(se, [-1, 1])))


def test_tails_survival_and_power_law_overlay(tmp_path):
    rng = np.random.default_rng(2)
    a = 1.5  # survival exponent of the Pareto tail; density exponent alpha = a + 1
    pareto = (rng.pareto(a, 3000) + 1.0) * rng.choice([-1, 1], 3000)
    gauss = rng.standard_normal(2000)
    fits = {"dimension-wise": {"alpha": a + 1, "xmin": 1.0}}
    fig = plots.plot_tails({"dimension-wise": pareto, "noise": gauss}, fits=fits, fit_missing=False)
    assert len(fig.axes) == 2
    emp = _lines(fig, "measured")
    x = np.sort(np.abs(pareto))
    np.testing.assert_allclose(emp[0].get_xdata(), x)
    np.testing.assert_allclose(emp[0].get_ydata(), (3000 - np.arange(3000)) / 3000)
    (pl,) = _lines(fig, "power_law")  # only the panel with a fit
    slope = np.polyfit(np.log(pl.get_xdata()), np.log(pl.get_ydata()), 1)[0]
    assert slope == pytest.approx(-a, abs=1e-9)
    assert pl.get_ydata()[0] == pytest.approx(1.0)  # every |x| >= xmin = 1
    gaussian = _lines(fig, "gaussian")[1]  # noise panel: P(|Z| >= x) for the fitted normal
    xs = gaussian.get_xdata()
    mu, sd = gauss.mean(), gauss.std()
    expect = np.array([math.erfc((v - mu) / (sd * 2**0.5)) + math.erfc((v + mu) / (sd * 2**0.5))
                       for v in xs]) / 2
    np.testing.assert_allclose(gaussian.get_ydata(), expect, rtol=1e-9)
    assert len(_lines(fig, "lognormal")) == 2
    _save_and_check(fig, tmp_path)


@pytest.mark.slow  # imports torch via gradstats.simulate (~4 s alone)
def test_tails_of_results_name_the_fixed_axes_in_the_title():
    """As every figure of a results dataset: the title says what was held fixed."""
    rng = np.random.default_rng(5)
    ds = xr.Dataset({"example_grad_norm": (("width", "sample"), rng.pareto(2.0, (2, 200)) + 1)},
                    coords={"width": [32, 64], "depth": 6, "activation": "relu"})
    fig = plots.tails.plot_tail_configs(ds, {"per-example norm": "example_grad_norm"})
    title = fig._suptitle.get_text().replace("\n", " ")
    assert "depth=6" in title and "relu" in title, title


def test_tails_fit_missing_power_law_recovers_exponent():
    rng = np.random.default_rng(3)
    a = 2.0
    sample = rng.pareto(a, 4000) + 1.0  # pure Pareto, xmin = 1
    fig = plots.plot_tails({"iteration-wise": sample})
    (pl,) = _lines(fig, "power_law")
    slope = np.polyfit(np.log(pl.get_xdata()), np.log(pl.get_ydata()), 1)[0]
    n_tail = np.sum(sample >= pl.get_xdata()[0])
    assert abs(-slope - a) < 4 * a / np.sqrt(n_tail)  # MLE sd = (alpha - 1)/sqrt(n_tail)


def spectrum_dataset(s: float = 1.5, steps=(0, 5)) -> xr.Dataset:
    ranks = np.arange(16)
    lam = (ranks + 1.0) ** -s
    values = np.stack([lam * c for c in (1.0, 2.0)])  # steps 0 and 5: same exponent
    values = np.broadcast_to(values, (2, 3, 2, 16)).copy()  # (width, seed, step, rank)
    values[:, :, :, -1] = 0.0  # rank <= B - 1: the last eigenvalue is zero
    coords = {"width": [32, 64], "seed": range(3), "step": list(steps), "rank": ranks}
    return xr.Dataset({"noise_eigenvalues": (list(coords), values)}, coords=coords)


def test_spectrum_rank_plot_with_fitted_exponent(tmp_path):
    fig = plots.plot_spectrum(spectrum_dataset(1.5))
    assert len(fig.axes) == 2
    measured = _lines(fig, "measured")
    assert len(measured) == 4
    np.testing.assert_allclose(measured[0].get_xdata(), np.arange(1, 16))
    np.testing.assert_allclose(measured[1].get_ydata(), 2.0 * np.arange(1, 16) ** -1.5)
    assert "s = 1.50" in fig.axes[0].get_legend().get_texts()[0].get_text()
    for fit in _lines(fig, "fit"):
        slope = np.polyfit(np.log(fit.get_xdata()), np.log(fit.get_ydata()), 1)[0]
        assert slope == pytest.approx(-1.5, abs=1e-9)
    _save_and_check(fig, tmp_path)


def test_spectrum_shades_the_standard_error_over_seeds():
    ds = spectrum_dataset(1.5)
    ds["noise_eigenvalues"] = ds.noise_eigenvalues * (1 + 0.1 * ds.seed)  # seeds differ
    fig = plots.plot_spectrum(ds.isel(width=0, step=0))
    (band,) = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "band"]
    lam = ds.noise_eigenvalues.isel(width=0, step=0).values[:, :15]  # (seed, rank > 0)
    mean, se = lam.mean(0), lam.std(0, ddof=1) / np.sqrt(3)
    y = band.get_paths()[0].vertices[:, 1]
    assert y.max() == pytest.approx((mean + se).max()) and y.min() == pytest.approx((mean - se).min())


def directions_dataset() -> xr.Dataset:
    rng = np.random.default_rng(4)
    steps = np.array([0, 10, 20, 40])
    kappa = 50 + 10 * rng.random((2, 3, 4))
    r_bar = 0.2 + 0.05 * rng.random((2, 3, 4))
    coords = {"width": [32, 64], "seed": range(3), "step": steps}
    return xr.Dataset({"example_dir_kappa": (list(coords), kappa), "example_dir_r_bar": (list(coords), r_bar),
                       "example_dir_kappa_uniform": (["width"], [11.0, 16.0]),
                       "example_dir_r_bar_uniform": ((), 1 / np.sqrt(32))}, coords=coords)


def test_directions_over_training_with_uniform_baseline(tmp_path):
    ds = directions_dataset()
    fig = plots.plot_directions(ds)
    measured, uniform = _lines(fig, "measured"), _lines(fig, "uniform")
    assert len(measured) == 4 and len(uniform) == 4
    np.testing.assert_allclose(measured[1].get_ydata(), ds.example_dir_kappa.values[1].mean(axis=0))
    np.testing.assert_allclose(measured[2].get_ydata(), ds.example_dir_r_bar.values[0].mean(axis=0))
    np.testing.assert_allclose(uniform[1].get_ydata(), [16.0] * 4)
    np.testing.assert_allclose(uniform[3].get_ydata(), [1 / np.sqrt(32)] * 4)
    _save_and_check(fig, tmp_path)


def test_summary_uses_whatever_variables_exist(tmp_path):
    spectrum = spectrum_dataset(steps=(0, 10)).isel(width=0, drop=True)
    ds = layer_dataset(CHI, widths=(64,)).merge(spectrum, join="exact")
    ds["full_loss"] = ds["grad_sq_norm"].isel(layer=0) * 0 + xr.DataArray([1.0, 0.5], dims="step")
    fig = plots.plot_summary(ds)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3  # grad_sq_norm, full_loss, noise_eigenvalues
    first = [ln for ln in visible[0].get_lines() if ln.get_gid() == "measured"][0]
    expect = ds["grad_sq_norm"].isel(step=0).values[0, 0, 0].mean(axis=0)
    np.testing.assert_allclose(first.get_ydata(), expect)
    assert plots.kinds_available(ds) == ["summary", "layers", "spectrum"]
    _save_and_check(fig, tmp_path)


def test_missing_variables_are_named():
    ds = spectrum_dataset()
    with pytest.raises(plots.MissingVariables, match="grad_sq_norm"):
        plots.render(ds, "layers")
    with pytest.raises(plots.MissingVariables, match="example_dir_kappa"):
        plots.render(ds, "directions")


@pytest.mark.slow  # renders and saves four figures (~5 s on a busy machine)
def test_plot_command_writes_every_available_kind_and_pdf(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plots.phase, "critical_curve", lambda activation, sb: 2.0 + sb)  # fast
    path = tmp_path / "results.nc"
    layer_dataset(CHI).to_netcdf(path)
    plot_command(path, kind="all", out=tmp_path / "figs", format_="png")
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert written == ["layers.png", "summary.png"]
    assert "not drawn" in capsys.readouterr().out
    plot_command(path, kind="layers", out=tmp_path / "figs", format_="pdf")
    assert (tmp_path / "figs" / "layers.pdf").read_bytes()[:4] == b"%PDF"
    plot_command(path, kind="layers", out=tmp_path / "figs", format_="svg")
    assert b"<svg" in (tmp_path / "figs" / "layers.svg").read_bytes()[:500]


@pytest.mark.parametrize("argv, message", [
    (["--kind", "bogus"], "'bogus' is not one of 'summary'"),
    (["--format", "tiff"], "'tiff' is not one of 'png', 'pdf', 'svg'"),
    (["--kind", "spectrum"], "noise_eigenvalues"),
])
def test_plot_cli_input_errors_exit_2(tmp_path, capsys, argv, message):
    from gradstats import cli

    path = tmp_path / "results.nc"
    layer_dataset(CHI, widths=(64,)).to_netcdf(path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["plot", str(path), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def signals_dataset() -> xr.Dataset:
    """forward_q, backward_q, grad_sq_norm and their stored predictions over (depth, residual,
    norm, seed, step, layer), NaN-padded beyond each depth; (residual=1, norm=layer) absent."""
    rng = np.random.default_rng(1)
    depths, layers = [2, 4], np.arange(1, 6)
    coords = {"depth": depths, "residual": [0, 1], "norm": ["layer", "none"], "seed": SEEDS,
              "step": [0], "layer": layers}
    shape = tuple(len(v) for v in coords.values())
    ds = xr.Dataset(coords=coords)
    for k, var in enumerate(("forward_q", "backward_q", "grad_sq_norm")):
        clean = (1.5 + k) ** layers.astype(float)
        values = clean * (1 + 0.05 * rng.standard_normal(shape))
        values[0, ..., 3:] = np.nan  # depth 2: layers 1..3
        values[:, 1, 0] = np.nan
        ds[var] = (list(coords), values)
        ds[f"theory_{var}"] = (list(coords), np.where(np.isnan(values), np.nan, clean))
    return ds


def test_signals_draw_each_signal_per_layer_beside_its_stored_prediction(tmp_path):
    ds = signals_dataset()
    fig = plots.plot_signals(ds)
    assert len(fig.axes) == 3 * 2  # rows: the three signals; columns: depth
    measured, theory = _lines(fig, "measured"), _lines(fig, "theory")
    assert len(measured) == len(theory) == 3 * 2 * 3  # 3 present configurations per panel
    first = ds["forward_q"].sel(depth=2, residual=0, norm="layer", step=0).mean("seed")
    np.testing.assert_allclose(measured[0].get_xdata(), [1, 2])  # hidden layers: no readout
    np.testing.assert_allclose(measured[0].get_ydata(), first.values[:2])
    np.testing.assert_allclose(theory[0].get_ydata(), 1.5 ** np.arange(1, 3))
    grad = [ln for ln in fig.axes[4].get_lines() if ln.get_gid() == "measured"][0]
    np.testing.assert_allclose(grad.get_xdata(), [1, 2, 3])  # the readout's gradient too
    assert "signals" in plots.kinds_available(ds)
    assert "signals" not in plots.kinds_available(ds.drop_vars("backward_q"))
    _save_and_check(fig, tmp_path)
