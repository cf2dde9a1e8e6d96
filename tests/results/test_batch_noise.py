"""Paired difference test and ratio-of-means noise scale against scipy and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from gradstats.results.batch_noise import noise_scale_ratio, paired_difference_test


def test_paired_difference_test_is_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    ref = rng.normal(10, 3, size=(3, 8))  # (cell, seed): networks differ a lot
    est = ref + rng.normal(0.5, 0.4, size=(3, 8))  # estimates scatter little around them
    est[2, 5] = np.nan  # a missing pair is dropped
    da = lambda a: xr.DataArray(a, dims=("cell", "seed"))  # noqa: E731
    out = paired_difference_test(da(est), da(ref))
    for c in range(3):
        ok = np.isfinite(est[c])
        res = stats.ttest_rel(est[c][ok], ref[c][ok])
        d = est[c][ok] - ref[c][ok]
        assert float(out["p_value"][c]) == pytest.approx(res.pvalue, rel=1e-10)
        assert float(out["difference"][c]) == pytest.approx(d.mean())
        assert float(out["se"][c]) == pytest.approx(d.std(ddof=1) / math.sqrt(ok.sum()))
        assert float(out["estimate"][c]) == pytest.approx(est[c][ok].mean())
        assert int(out["n"][c]) == ok.sum()
    one = paired_difference_test(da(est[:, :1]), da(ref[:, :1]))
    assert np.all(np.isnan(one["se"])) and np.all(np.isnan(one["p_value"]))
    same = paired_difference_test(da(ref), da(ref))
    assert np.all(same["p_value"] == 1.0)


def test_noise_scale_ratio_se_matches_monte_carlo_spread():
    """Over 2000 replicate experiments of n = 50 correlated (trace, ||G||^2) pairs, the
    delta-method SE matches the spread of the ratio of means (to 3 SE of a std estimated
    from 2000 draws, ~ 3 / sqrt(2 * 2000) = 5% relative), and the ratio's mean is off by the
    second-order bias (R var(g) - cov(t, g)) / (n E[g]^2) = (20 * 0.25 - 4 * 0.25) / 50 = 0.08,
    within 3 Monte Carlo SE."""
    rng = np.random.default_rng(1)
    reps, n, b_true = 2000, 50, 20.0
    g = rng.normal(1.0, 0.5, size=(reps, n))  # ||G||^2 estimates (can be negative)
    t = b_true * 1.0 + 4.0 * (g - 1.0) + rng.normal(0.0, 2.0, size=(reps, n))
    out = noise_scale_ratio(xr.DataArray(t, dims=("rep", "seed")),
                            xr.DataArray(g, dims=("rep", "seed")))
    ratios = out["b_simple"].values
    spread = ratios.std(ddof=1)
    assert float(out["se"].median()) == pytest.approx(spread, rel=3 / math.sqrt(2 * reps))
    bias = (b_true * 0.25 - 4.0 * 0.25) / n
    assert abs(ratios.mean() - (b_true + bias)) < 3 * spread / math.sqrt(reps)
    unresolved = noise_scale_ratio(xr.DataArray([1.0, 2.0], dims="seed"),
                                   xr.DataArray([-1.0, 0.5], dims="seed"))
    assert np.isnan(float(unresolved["b_simple"])) and np.isnan(float(unresolved["se"]))
