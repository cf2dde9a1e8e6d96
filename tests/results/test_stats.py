"""Statistical machinery on synthetic data with known answers."""

import numpy as np
import pytest
import xarray as xr

from gradstats.results import stats


def test_seed_mean_se_matches_hand_formula():
    values = np.array([[1.0, 2.0, 4.0, 5.0], [3.0, 3.0, 3.0, np.nan]])
    da = xr.DataArray(values, dims=("layer", "seed"))
    mean, se = stats.seed_mean_se(da)
    # layer 0: mean 3, sample variance ((4+1+1+4)/3) = 10/3, se = sqrt(10/3/4)
    assert mean.values[0] == pytest.approx(3.0)
    assert se.values[0] == pytest.approx(np.sqrt(10 / 3 / 4))
    assert mean.values[1] == pytest.approx(3.0) and se.values[1] == pytest.approx(0.0)


def test_critical_values_match_tables():
    assert stats.z_critical(0.05) == pytest.approx(1.959964, abs=1e-6)
    assert stats.z_critical(0.01) == pytest.approx(2.575829, abs=1e-6)
    assert stats.t_critical(0.05, 10) == pytest.approx(2.228139, abs=1e-6)
    assert stats.t_critical(0.01, 3) == pytest.approx(5.840909, abs=1e-6)
    assert np.isnan(stats.t_critical(0.05, 0))


def test_verdict_uses_model_floor_and_marks_undetermined():
    mean = np.array([1.0, 1.0, 1.0, np.nan])
    se = np.array([0.1, 0.1, np.nan, 0.1])
    pred = np.array([1.2, 1.5, 1.0, 1.0])
    # |1 - 1.2| = 0.2 <= 1.96*0.1 + 0.05*1.2 = 0.256 ; |1 - 1.5| = 0.5 > 0.196 + 0.075
    out = stats.verdict(mean, se, pred, 0.05, rel_tol=0.05)
    np.testing.assert_array_equal(out[:2], [1.0, 0.0])
    assert np.isnan(out[2]) and np.isnan(out[3])
    assert stats.verdict(np.array([1.0]), np.array([0.1]), np.array([1.2]), 0.05)[0] == 0.0


def test_verdict_false_alarm_rate_is_the_level():
    """n=5 seeds from N(mu, 1), correct prediction: disagreements ~ level (t-based)."""
    rng = np.random.default_rng(0)
    trials, n, level = 4000, 5, 0.05
    draws = xr.DataArray(rng.normal(2.0, 1.0, (trials, n)), dims=("trial", "seed"))
    mean, se = stats.seed_mean_se(draws)
    dof = draws.count("seed") - 1
    rate = 1 - float(stats.verdict(mean, se, xr.full_like(mean, 2.0), level, dof=dof).mean())
    assert abs(rate - level) < 4 * np.sqrt(level * (1 - level) / trials)
    # with z instead of t, 5 seeds give too many false alarms (t_4 tails)
    z_rate = 1 - float(stats.verdict(mean, se, xr.full_like(mean, 2.0), level).mean())
    assert z_rate > level + 4 * np.sqrt(level * (1 - level) / trials)
    # a prediction off by 3 standard deviations of one seed is caught most of the time
    wrong = 1 - float(stats.verdict(mean, se, xr.full_like(mean, 5.0), level, dof=dof).mean())
    assert wrong > 0.9


def test_fit_line_recovers_exact_line_and_covers():
    x = np.linspace(0, 1, 10)
    fit = stats.fit_line(x, 2.0 - 3.0 * x)
    assert fit.slope == pytest.approx(-3.0) and fit.intercept == pytest.approx(2.0)
    assert fit.slope_se == pytest.approx(0.0, abs=1e-12) and fit.dof == 8
    rng = np.random.default_rng(1)
    reps, level = 1000, 0.1
    hits = sum(stats.fit_line(x, 1.0 + 0.5 * x + rng.normal(0, 0.3, x.size), level).contains(0.5)
               for _ in range(reps))
    assert abs(hits / reps - (1 - level)) < 4 * np.sqrt(level * (1 - level) / reps)


def test_fit_power_law_exponent_and_errors():
    w = np.array([64.0, 128, 256, 512])
    fit = stats.fit_power_law(w, 3.0 * w**-0.5)
    assert fit.slope == pytest.approx(-0.5) and np.exp(fit.intercept) == pytest.approx(3.0)
    two = stats.fit_line(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    assert two.slope == pytest.approx(2.0) and np.isnan(two.ci[0])
    with pytest.raises(ValueError):
        stats.fit_line(np.array([1.0, 1.0]), np.array([1.0, 2.0]))


def test_ks_standard_normal_accepts_normal_rejects_shift():
    rng = np.random.default_rng(2)
    _, p_ok = stats.ks_standard_normal(rng.standard_normal(1000))
    _, p_bad = stats.ks_standard_normal(rng.standard_normal(1000) + 0.5)
    _, p_scale = stats.ks_standard_normal(1.5 * rng.standard_normal(1000))
    assert p_ok > 0.01 and p_bad < 1e-6 and p_scale < 1e-6


def test_variance_se_matches_monte_carlo():
    rng = np.random.default_rng(3)
    n, sigma2 = 10, 4.0
    variances = rng.normal(0, np.sqrt(sigma2), (20000, n)).var(axis=1, ddof=1)
    assert variances.std() == pytest.approx(float(stats.variance_se(sigma2, n)), rel=0.03)
    assert np.isnan(stats.variance_se(1.0, 1))
