"""The validity map on synthetic results whose errors are known by construction: predictions
off by a known factor, error curves c beta with a known crossing, pooled fourth moments with
a known ratio; the boundary interpolation; the command and the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats as sps

from gradstats.results.validity_map import crossing, validity_map
from gradstats.spec import Architecture, Data, Point, Training

WIDTHS = (16, 32, 64, 128)
DEPTHS = (1, 2, 4, 8)


def _points(widths, depths, seeds, activation="relu"):
    out = []
    for w in widths:
        for d in depths:
            arch = Architecture(width=w, depth=d, activation=activation, sigma_w2=2.0,
                                sigma_b2=0.0, bias=False, input_dim=4)
            for s in range(seeds):
                out.append(Point(arch=arch, training=Training(batch_size=1, steps=0),
                                 data=Data(input_dim=4, n_train=4, teacher="zero"), seed=s,
                                 device="cpu"))
    return out


def synthetic(error_of_beta, seeds=8, noise=None, widths=WIDTHS, depths=DEPTHS):
    """A results dataset over (width, depth, seed, step, layer): forward_q, backward_q and
    grad_sq_norm measured = prediction x (1 + error_of_beta(beta)) x (1 + noise_s), with
    sum_s noise_s = 0, so the ratio of seed means is exactly 1 + error."""
    n_layers = max(depths) + 1
    noise = np.zeros(seeds) if noise is None else np.asarray(noise, float)
    shape = (len(widths), len(depths), seeds, 1, n_layers)
    pred = np.full(shape, np.nan)
    meas = np.full(shape, np.nan)
    for i, w in enumerate(widths):
        for j, d in enumerate(depths):
            p = np.linspace(1.0, 2.0, d + 1)
            pred[i, j, :, 0, : d + 1] = p
            meas[i, j, :, 0, : d + 1] = (p * (1 + error_of_beta(d / w))
                                         * (1 + noise)[:, None])
    coords = {"width": list(widths), "depth": list(depths), "seed": np.arange(seeds),
              "step": [0], "layer": np.arange(1, n_layers + 1)}
    dims = ("width", "depth", "seed", "step", "layer")
    ds = xr.Dataset({name: (dims, meas) for name in ("forward_q", "backward_q", "grad_sq_norm")}
                    | {f"theory_{name}": (dims, pred)
                       for name in ("forward_q", "backward_q", "grad_sq_norm")}, coords=coords)
    ds.attrs["points"] = [p.to_json() for p in _points(widths, depths, seeds)]
    return ds


def test_scaled_prediction_gives_its_error_within_the_t_interval():
    noise = np.array([-0.15, 0.15, -0.05, 0.05, -0.1, 0.1, 0.0, 0.0])
    ds = synthetic(lambda b: 0.2, noise=noise)
    vmap = validity_map(ds, level=0.95)
    err = vmap["rel_error"].sel(quantity="forward_q", width=64, depth=4, step=0, layer=3)
    assert float(err) == pytest.approx(0.2, abs=1e-12)
    # the t-interval of the seed mean of m / p (p constant over seeds), from scipy
    ratio = 1.2 * (1 + noise)
    lo, hi = sps.t.interval(0.95, len(ratio) - 1, loc=ratio.mean(), scale=sps.sem(ratio))
    sel = dict(quantity="forward_q", width=64, depth=4, step=0, layer=3)
    assert float(vmap["rel_error_lo"].sel(sel)) == pytest.approx(lo - 1, rel=1e-9)
    assert float(vmap["rel_error_hi"].sel(sel)) == pytest.approx(hi - 1, rel=1e-9)
    # one network's error: median over seeds of |1.2 (1 + noise_s) - 1|
    typical = float(vmap["typical_error"].sel(sel))
    assert typical == pytest.approx(np.median(np.abs(ratio - 1)), rel=1e-9)
    # no correction exists for forward_q: NaN, not zero
    assert np.isnan(vmap["rel_error_corrected"].sel(sel))


def test_a_prediction_too_high_counts_as_much_as_too_low():
    vmap = validity_map(synthetic(lambda b: -0.25))
    err = vmap["rel_error"].sel(quantity="backward_q", width=32, depth=2, step=0, layer=1)
    assert float(err) == pytest.approx(0.25)
    assert float(vmap["error"].sel(quantity="backward_q", width=32, depth=2, step=0,
                                   layer=1)) == pytest.approx(-0.25)


def test_an_interval_around_zero_error_starts_at_zero():
    noise = np.array([-0.3, 0.3, -0.1, 0.1, -0.2, 0.2, 0.0, 0.0])
    vmap = validity_map(synthetic(lambda b: 0.0, noise=noise))
    sel = dict(quantity="forward_q", width=64, depth=4, step=0, layer=2)
    assert float(vmap["rel_error_lo"].sel(sel)) == 0.0
    assert float(vmap["rel_error_hi"].sel(sel)) > 0.1


@pytest.mark.parametrize("c", [2.0, 5.0])
def test_boundary_of_an_error_curve_c_beta_is_threshold_over_c(c):
    vmap = validity_map(synthetic(lambda b: c * b), threshold=0.1)
    bound = float(vmap["beta_boundary"].sel(quantity="forward_q", layer=1, step=0))
    betas = sorted({d / w for w in WIDTHS for d in DEPTHS})
    b0 = max(b for b in betas if c * b <= 0.1)
    b1 = min(b for b in betas if c * b > 0.1)
    t = (0.1 - c * b0) / (c * (b1 - b0))  # linear in (ln beta, error), computed by hand
    assert bound == pytest.approx(math.exp((1 - t) * math.log(b0) + t * math.log(b1)))
    assert bound == pytest.approx(0.1 / c, rel=0.1)  # the grid is fine enough to see 0.1/c
    # the same at the readout position and without noise the interval collapses onto it
    at = vmap["beta_boundary_at"].sel(quantity="forward_q", position="readout", step=0)
    assert float(at) == pytest.approx(0.1 / c, rel=0.1)
    assert float(vmap["beta_boundary_lo"].sel(quantity="forward_q", layer=1, step=0)) == \
        pytest.approx(bound)


def test_crossing_edges():
    assert crossing([0.1, 0.2, 0.4], [0.01, 0.02, 0.05], 0.1) == math.inf
    assert crossing([0.1, 0.2, 0.4], [0.2, 0.3, 0.5], 0.1) == 0.0
    assert math.isnan(crossing([0.1, 0.2], [np.nan, np.nan], 0.1))
    # unsorted input; the first crossing counts even when the error dips again above it
    assert crossing([0.4, 0.1, 0.2, 0.8], [0.05, 0.0, 0.2, 0.3], 0.1) == pytest.approx(
        math.exp(0.5 * (math.log(0.1) + math.log(0.2))))
    assert crossing([0.0, 1.0], [0.0, 0.2], 0.1, log=False) == pytest.approx(0.5)


def test_grad_sq_norm_corrected_by_the_stored_mean_factor():
    ds = synthetic(lambda b: 0.3)
    factor = xr.full_like(ds["theory_grad_sq_norm"].isel(step=0), 1.3).where(
        ds["theory_grad_sq_norm"].isel(step=0).notnull())
    ds["theory_grad_sq_norm_mean_factor"] = factor
    vmap = validity_map(ds)
    sel = dict(quantity="grad_sq_norm", width=16, depth=8, step=0, layer=9)
    assert float(vmap["rel_error"].sel(sel)) == pytest.approx(0.3)
    assert float(vmap["rel_error_corrected"].sel(sel)) == pytest.approx(0.0, abs=1e-12)
    assert float(vmap["correction"].sel(sel)) == pytest.approx(1.3)
    assert math.isinf(float(vmap["beta_boundary_corrected"].sel(
        quantity="grad_sq_norm", layer=1, step=0)))


def test_kurtosis_ratio_error_against_zero_and_the_finite_width_prediction():
    ds = synthetic(lambda b: 0.0, seeds=6)
    # per seed m2 = 1, 2 (pooled mean 1.5) and m4 with pooled mean 3 x 1.5^2 x (1 + k/3)
    k_true, k_pred = 0.6, 0.45
    m2 = xr.ones_like(ds["forward_q"]).where(ds["forward_q"].notnull())
    m2 = m2 * xr.DataArray([1.0, 2.0] * 3, dims="seed", coords={"seed": ds.seed})
    ds["forward_q"] = m2
    ds["forward_m4"] = xr.full_like(m2, 3 * 1.5**2 * (1 + k_true / 3)).where(m2.notnull())
    ds["theory_preact_kurtosis"] = xr.full_like(m2.isel(step=0), k_pred).where(
        m2.isel(step=0).notnull())
    vmap = validity_map(ds)
    sel = dict(quantity="preact_kurtosis", width=32, depth=8, step=0, layer=5)
    assert float(vmap["rel_error"].sel(sel)) == pytest.approx(k_true / 3)
    assert float(vmap["rel_error_corrected"].sel(sel)) == pytest.approx(
        (1 + k_true / 3) / (1 + k_pred / 3) - 1)
    lo, hi = float(vmap["rel_error_lo"].sel(sel)), float(vmap["rel_error_hi"].sel(sel))
    assert lo <= k_true / 3 <= hi
    # layer 1 (Gaussian exactly) and the readout are not mapped
    assert np.isnan(vmap["rel_error"].sel({**sel, "layer": 1}))
    assert np.isnan(vmap["rel_error"].sel({**sel, "layer": 9}))


def test_kurtosis_above_the_measurable_range_is_not_mapped():
    ds = synthetic(lambda b: 0.0, seeds=4)
    ds["forward_m4"] = 3 * ds["forward_q"] ** 2
    ds["theory_preact_kurtosis"] = xr.full_like(ds["forward_q"].isel(step=0), 1.5)
    vmap = validity_map(ds)
    assert not vmap["rel_error"].sel(quantity="preact_kurtosis").notnull().any()


def test_bad_threshold_is_a_value_error():
    with pytest.raises(ValueError, match="threshold"):
        validity_map(synthetic(lambda b: 0.0), threshold=1.5)


def test_beta_is_depth_over_width_and_attrs_say_what_each_variable_is():
    vmap = validity_map(synthetic(lambda b: 0.0))
    assert float(vmap["beta"].sel(width=32, depth=4)) == pytest.approx(4 / 32)
    for name, var in vmap.data_vars.items():
        assert var.attrs.get("long_name"), name
        assert "units" in var.attrs, name


def test_command_writes_validity_nc_and_prints_the_boundaries(tmp_path, capsys):
    from gradstats.cli import main

    path = tmp_path / "results.nc"
    synthetic(lambda b: 2.0 * b).to_netcdf(path)
    main(["validity", str(path)])
    out = capsys.readouterr().out
    assert (tmp_path / "validity.nc").exists()
    assert "forward_q" in out and "grad_sq_norm" in out
    written = xr.open_dataset(tmp_path / "validity.nc")
    assert float(written["beta_boundary_at"].sel(
        quantity="forward_q", position="last_hidden", step=0)) == pytest.approx(0.05, rel=0.1)
    written.close()
    main(["validity", str(path), "--threshold", "0.2"])  # a rerun replaces its own map
    with xr.open_dataset(tmp_path / "validity.nc") as again:
        assert float(again["beta_boundary_at"].sel(
            quantity="forward_q", position="last_hidden", step=0)) == pytest.approx(0.1, rel=0.1)


def test_command_names_the_sweeps_beta_range_where_a_boundary_lies_outside_it(tmp_path, capsys):
    """Never exceeded: "> largest beta"; exceeded already at the smallest: "< smallest"."""
    from gradstats.cli import main

    betas = [d / w for w in WIDTHS for d in DEPTHS]
    for error, expected in ((lambda b: 0.0, f"> {max(betas):.2g}"),
                            (lambda b: 1.0, f"< {min(betas):.2g}")):
        path = tmp_path / "results.nc"
        synthetic(error).to_netcdf(path)
        main(["validity", str(path)])
        rows = [line for line in capsys.readouterr().out.splitlines() if "forward_q" in line]
        assert rows and all(expected in row for row in rows), (expected, rows)


def test_command_on_results_without_measurements_is_one_line_exit_2(tmp_path, capsys):
    """A sweep whose every point failed stores no per-layer variables."""
    from gradstats.cli import main

    path = tmp_path / "results.nc"
    xr.Dataset({"failed": ("seed", [1])}, coords={"seed": [0]}).to_netcdf(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["validity", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "RESULTS" in err and "no per-layer measurements" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "validity.nc").exists()


@pytest.mark.parametrize("value", ["0", "1", "-0.1", "nan"])
def test_command_rejects_a_threshold_outside_0_1(tmp_path, capsys, value):
    from gradstats.cli import main

    path = tmp_path / "results.nc"
    synthetic(lambda b: 0.0).to_netcdf(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["validity", str(path), "--threshold", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--threshold" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "validity.nc").exists()


def test_validity_figure_draws_heatmaps_and_the_collapse_panel():
    from gradstats.results import plots

    ds = synthetic(lambda b: 2.0 * b)
    fig = plots.render(ds, "validity")
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes if ax.get_visible()]  # wrapped
    assert any("forward_q (last hidden layer)" in t for t in titles)
    assert any("vs beta" in t for t in titles)
    assert "validity" in plots.kinds_available(ds)
    with_bar = [a for ax in fig.axes for a in ax.collections if a.colorbar is not None]
    assert with_bar and all(a.colorbar.extend == "both" for a in with_bar)  # colours clip


@pytest.mark.slow
def test_cells_beyond_the_map_boundary_are_outside_for_compare():
    """Consistency of the map and the verdicts: a small simulated relu sweep at beta =
    depth/width 0.125-0.5 (narrow and deep); wherever the map finds the infinite-width error
    above the threshold, compare's row for that statistic must say `outside`, not agree or
    disagree."""
    from compare_helpers import OUTSIDE, compared, make_points, simulate, to_results

    records = []
    for width, depth in ((16, 4), (32, 4), (32, 8)):
        records += simulate(make_points(6, width=width, depth=depth, sigma_w2=2.0,
                                        sigma_b2=0.0, bias=False, batch_size=1, n_train=8,
                                        input_dim=4, teacher="zero"))
    ds = to_results(records)
    vmap = validity_map(ds)
    cmp = compared(records)
    checked = 0
    for name in ("forward_q", "backward_q", "grad_sq_norm"):
        err = vmap["rel_error"].sel(quantity=name).isel(step=0)
        verdict = cmp[f"{name}_verdict"].isel(step=0) if "step" in cmp[f"{name}_verdict"].dims \
            else cmp[f"{name}_verdict"]
        err, verdict = xr.align(err, verdict, join="inner")
        beyond = (err > vmap.attrs["threshold"]).values & np.isfinite(verdict.values)
        checked += int(beyond.sum())
        assert np.all(verdict.values[beyond] == OUTSIDE), name
    assert checked > 0  # the sweep does reach beyond the boundary


def test_one_noisy_configuration_does_not_set_the_boundary():
    # error 2 beta everywhere (crossing at 0.05) except a wide-interval outlier at the
    # smallest beta: the weighted isotonic fit keeps the crossing near 0.05
    x = np.array([0.01, 0.02, 0.04, 0.08, 0.16])
    y = 2 * x
    y_noisy = y.copy()
    y_noisy[0] = 0.3
    w = np.array([1 / 0.5**2, 1e4, 1e4, 1e4, 1e4])
    assert crossing(x, y_noisy, 0.1) == 0.0  # the raw first crossing
    assert crossing(x, y_noisy, 0.1, weights=w) == pytest.approx(
        crossing(x, y, 0.1), rel=0.05)
