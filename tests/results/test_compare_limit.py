"""compare's infinite-width-limit rows (``*_limit``, test ``width_limit``) on simulated networks.

Setting where the fixed-allowance rows fail: relu MLPs on the digits (one-hot mse over 10
outputs, biases, batch 16; the `scripts/sweeps/validity-digits-mlp.toml` setting), depth 2,
widths 64-512, 16 seeds at init. There the layer-1 gradient norm exceeds its infinite-width
mean by 32-42/width (docs/measured/width_limit.md), beyond the 3 beta + 10/width envelope
measured on sphere data, so the `log_ratio` rows disagree although the theory is right in the
limit (the excess halves with each doubling of the width). The limit rows must agree there,
and refuse the same theory scaled by 2 or 1/2 and a mis-parameterized one (sigma_w^2 1.5 for 2).
False alarms in a valid regime: independent groups of seeds on sphere data.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib

import numpy as np
import pytest
from compare_helpers import (
    AGREE,
    DISAGREE,
    ArchTheory,
    ScaledTheory,
    compared,
    count,
    fraction,
    make_points,
    simulate,
)

from gradstats.results import stats
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep

pytestmark = pytest.mark.slow

LIMIT_ROWS = ("grad_sq_norm_limit", "bias_grad_sq_norm_limit", "backward_q_limit")
DIGITS_TOML = """
name = "digits-limit"
seeds = 16
[grid]
width = [64, 128, 256, 512]
[fixed]
data = "digits"
activation = "relu"
depth = 2
sigma_w2 = 2.0
sigma_b2 = 0.05
parameterization = "ntk"
n_train = 64
batch_size = 16
steps = 0
device = "cpu"
"""


@functools.cache
def digits_records():
    points = expand(parse_sweep(tomllib.loads(DIGITS_TOML)))
    return tuple(simulate_point(p) for p in points)


def test_limit_rows_agree_where_the_fixed_envelope_raises_false_alarms():
    cmp = compared(list(digits_records()))
    # the envelope's failure this row exists for (a characterization: if it stops failing
    # here, the motivation in docs/compare.md must be revisited)
    assert count(cmp, "grad_sq_norm", DISAGREE) >= 1
    for name in LIMIT_ROWS:
        assert count(cmp, name, DISAGREE) == 0, name
    assert fraction(cmp, "grad_sq_norm_limit", AGREE) == 1.0


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_a_theory_off_by_a_factor_2_is_refused_in_the_limit(factor):
    cmp = compared(list(digits_records()), ScaledTheory(factor))
    for name in ("grad_sq_norm_limit", "bias_grad_sq_norm_limit", "backward_q_limit"):
        assert count(cmp, name, AGREE) == 0, name
        assert fraction(cmp, name, DISAGREE) >= 0.5, name


def test_a_mis_parameterized_theory_is_refused_in_the_limit():
    """sigma_w^2 = 1.5 in the theory for a network drawn with 2.0: an error that does not
    fall with width, which the extrapolation must not absorb into its slope."""
    wrong = ArchTheory(lambda arch: dataclasses.replace(arch, sigma_w2=1.5))
    cmp = compared(list(digits_records()), wrong)
    assert count(cmp, "grad_sq_norm_limit", DISAGREE) >= 1


def test_false_alarm_rate_in_a_valid_regime_is_at_most_the_level():
    """8 independent groups of 8 seeds (sphere data, relu, depth 2, widths 64-256, teacher
    targets): raw per-cell false-disagreement rate at level 0.05 over the three limit rows.
    The allowance makes the test conservative; a rate above the level by more than two
    binomial standard errors would mean it is not calibrated."""
    level, groups, group = 0.05, 8, 8
    records = []
    for width in (64, 128, 256):
        records += simulate(make_points(groups * group, width=width, depth=2, n_train=64))
    by_seed = {}
    for r in records:
        by_seed.setdefault(r.point.seed, []).append(r)
    flags = []
    for g in range(groups):
        chunk = [r for s in range(g * group, (g + 1) * group) for r in by_seed[s]]
        cmp = compared(chunk, level=level)
        for name in LIMIT_ROWS:
            p = cmp[f"{name}_p"].values.ravel()
            codes = cmp[f"{name}_verdict"].values.ravel()
            tested = np.isfinite(p) & (codes != stats.OUTSIDE)
            flags.extend(p[tested] < level)
    rate, n = float(np.mean(flags)), len(flags)
    assert n >= 8 * groups
    assert rate <= level + 2 * np.sqrt(level * (1 - level) / n), (rate, n)
