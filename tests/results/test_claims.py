"""Seed-paper claim rows of compare (gradstats.results.claims): a true claim agrees, a false
one disagrees, too little data is undetermined."""

import numpy as np
import xarray as xr

from gradstats.comparisons import by_name
from gradstats.results import stats
from gradstats.results.claims import run_claim
from gradstats.results.compare import Context


def ctx_of(ds: xr.Dataset) -> Context:
    return Context(ds=ds, axes=[], configs={}, level=0.01)


def xie_ds(rate: float, seeds: int = 3, tests: int = 8) -> xr.Dataset:
    frac = xr.DataArray(np.full((seeds, 3, 4), rate), dims=("seed", "step", "layer"),
                        coords={"step": [0, 20, 1000], "layer": [1, 2, 3, 4]})
    n = xr.DataArray(np.full((seeds, 3), float(tests)), dims=("seed", "step"),
                     coords={"step": [0, 20, 1000]})
    return xr.Dataset({"xie_dimwise_pass_paper": frac, "xie_iterwise_pass_paper": frac,
                       "xie_dimwise_pass_paper_n": frac, "xie_iterwise_pass_paper_n": frac,
                       "xie_dimwise_tests": n, "xie_iterwise_tests": n})


def verdicts(out: dict, name: str) -> set:
    return set(np.unique(out[f"{name}_verdict"].values))


def test_rate_claims_agree_when_true_and_disagree_when_false():
    for up_name, down_name in (("xie_dimwise_power_law", "xie_iterwise_not_power_law"),
                               ("xie_dimwise_power_law_n", "xie_iterwise_not_power_law_n")):
        _check_rate_rows(by_name(up_name), by_name(down_name))


def _check_rate_rows(up, down):
    assert verdicts(run_claim(ctx_of(xie_ds(0.9)), up), up.name) == {stats.AGREE}
    assert verdicts(run_claim(ctx_of(xie_ds(0.1)), up), up.name) == {stats.DISAGREE}
    assert verdicts(run_claim(ctx_of(xie_ds(0.1)), down), down.name) == {stats.AGREE}
    assert verdicts(run_claim(ctx_of(xie_ds(0.9)), down), down.name) == {stats.DISAGREE}
    # one seed of one test per layer: 4 samples cannot tell 0.3 from 0.5
    assert verdicts(run_claim(ctx_of(xie_ds(0.9, seeds=1, tests=1)), up), up.name) == {
        stats.UNDETERMINED}


def test_rate_claim_pools_layers_and_seeds_and_reports_the_rate():
    ds = xie_ds(0.5)
    ds["xie_dimwise_pass_paper"].loc[{"layer": 1}] = 1.0
    out = run_claim(ctx_of(ds), by_name("xie_dimwise_power_law"))
    np.testing.assert_allclose(out["xie_dimwise_power_law_estimate"].values, 0.625)
    np.testing.assert_allclose(out["xie_dimwise_power_law_n_values"].values, 96)


def lee_ds(kappa_trend: float, seeds: int = 4) -> xr.Dataset:
    rng = np.random.default_rng(0)
    steps = np.arange(6)
    kappa = 1e5 * np.exp(kappa_trend * steps)[None, :] * np.exp(
        0.01 * rng.standard_normal((seeds, 6)))
    gs = 1 / kappa * 1e5 + 0.001 * rng.standard_normal((seeds, 6))
    cv = np.array([1.0, 0.0] * 3)[None, :] + 0.01 * rng.standard_normal((seeds, 6))
    dims, coords = ("seed", "step"), {"step": steps}
    return xr.Dataset({"minibatch_dir_kappa": xr.DataArray(kappa, dims=dims, coords=coords),
                       "gradient_stochasticity": xr.DataArray(gs, dims=dims, coords=coords),
                       "minibatch_norm_cv": xr.DataArray(cv, dims=dims, coords=coords)})


def test_lee_claims():
    uni, follows = by_name("lee_directions_uniformize"), by_name(
        "lee_stochasticity_follows_directions")
    assert verdicts(run_claim(ctx_of(lee_ds(-0.2)), uni), uni.name) == {stats.AGREE}
    assert verdicts(run_claim(ctx_of(lee_ds(+0.2)), uni), uni.name) == {stats.DISAGREE}
    assert verdicts(run_claim(ctx_of(lee_ds(-0.2)), follows), follows.name) == {stats.AGREE}
    # GS tracking the norm CV instead of the directions: the margin is about -1
    ds = lee_ds(-0.2, seeds=8)
    noise = np.random.default_rng(1).random(ds["gradient_stochasticity"].shape)
    ds["gradient_stochasticity"] = ds["gradient_stochasticity"].copy(data=noise)
    ds["minibatch_norm_cv"] = ds["gradient_stochasticity"] + 1e-3
    assert verdicts(run_claim(ctx_of(ds), follows), follows.name) == {stats.DISAGREE}


def test_missing_variables_skip_with_a_note():
    ctx = ctx_of(xr.Dataset())
    assert run_claim(ctx, by_name("xie_dimwise_power_law")) == {}
    assert any("measure" in n for n in ctx.notes)
