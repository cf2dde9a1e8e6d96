"""`stats.width_limit_test`: the extrapolation is exact on a noiseless a + b/width law, its
false-alarm rate stays at or below the level on Monte Carlo log-ratios with a finite-width bias
(with and without an O(1/width^2) remainder), and a factor-2 error is refused."""

from __future__ import annotations

import numpy as np
import pytest

from gradstats.results import stats

WIDTHS = np.array([64.0, 128.0, 256.0, 512.0])


def _log_ratios(rng, bias, seeds, sd=0.1, offset=0.0):
    """Per-seed ln(measured/predicted) ~ N(bias(w) + offset - sd^2/2, sd^2): ln E[ratio] =
    bias(w) + offset exactly (the lognormal mean)."""
    mean = bias(WIDTHS)[:, None] + offset - sd**2 / 2
    return mean + sd * rng.standard_normal((len(WIDTHS), seeds))


def test_noiseless_law_is_extrapolated_exactly():
    theta = 0.3 + 40.0 / WIDTHS
    # two seeds per width, ln ratio theta +- d: Cox's estimate is theta exactly
    d = 1e-3
    logs = theta[:, None] + np.array([-d, d]) - d**2  # mean + var/2 = theta (var = 2 d^2)
    result = stats.width_limit_test(WIDTHS, np.exp(logs), 1.0, 0.01)
    assert result.test.estimate == pytest.approx(0.3, abs=1e-9)
    assert result.slope == pytest.approx(40.0, rel=1e-7)
    assert result.allowance == pytest.approx(40.0 / 512 + stats.WIDTH_LIMIT_ROUNDOFF, rel=1e-7)


@pytest.mark.parametrize("bias", [lambda w: 0.0 * w, lambda w: 45.0 / w,
                                  lambda w: 30.0 / w - 600.0 / w**2,
                                  lambda w: 60.0 / w + 1500.0 / w**2])
@pytest.mark.parametrize("seeds", [8, 32])
def test_false_alarm_rate_is_at_most_the_level(bias, seeds):
    rng = np.random.default_rng(seeds)
    level, trials = 0.05, 2000
    logs = np.stack([_log_ratios(rng, bias, seeds) for _ in range(trials)], axis=1)
    p = stats.width_limit_test(WIDTHS, np.exp(logs), 1.0, level).test.pvalue
    assert p.shape == (trials,)
    rate = float(np.mean(p < level))
    assert rate <= level + 2 * np.sqrt(level * (1 - level) / trials), rate


@pytest.mark.parametrize("offset", [np.log(2.0), -np.log(2.0)])
def test_a_factor_2_is_refused_at_8_seeds(offset):
    rng = np.random.default_rng(7)
    logs = np.stack([_log_ratios(rng, lambda w: 45.0 / w, 8, sd=0.2, offset=offset)
                     for _ in range(500)], axis=1)
    result = stats.width_limit_test(WIDTHS, np.exp(logs), 1.0, 0.01)
    assert float(np.mean(result.test.pvalue < 0.01)) >= 0.95
    assert np.all(result.test.detectable < 2.0)


def test_needs_three_widths():
    with pytest.raises(ValueError, match="widths"):
        stats.width_limit_test(WIDTHS[:2], np.ones((2, 4)), 1.0, 0.01)
