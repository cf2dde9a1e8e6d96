"""compare on cnn points: a wrong CNN-GP/CNTK prediction is refused, the right one raises no
false alarm inside the domain.

Finite relu CNNs (3x3 SAME convs, Flatten, ntk parameterization, 256 channels, depth 1: beta =
1/256, inside every per-layer domain) on smooth torus fields with teacher targets, 8 seeds,
at init. The reference is the package's own CNN theory (checked against neural-tangents and
by Monte Carlo in tests/theory); the wrong ones are it scaled by 2, and the other readout's
(GAP's) kernels for a Flatten network.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from compare_helpers import AGREE, DISAGREE, ArchTheory, ScaledTheory, compared, count, fraction

from gradstats.simulate.training import simulate_point
from gradstats.spec import Architecture, Data, Point, Training

pytestmark = pytest.mark.slow

ROWS = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "backward_q")


@functools.cache
def records(seeds: int = 8):
    arch = Architecture(width=256, depth=1, activation="relu", sigma_w2=2.0, sigma_b2=0.05,
                        architecture="cnn", kernel_size=3, padding="SAME", readout="flatten",
                        input_dim=1)
    data = Data(name="torus-fields", input_dim=1, n_train=64, image_size=8)
    training = Training(batch_size=16, steps=0, record=(0,))
    return tuple(simulate_point(Point(arch=arch, data=data, training=training, seed=s,
                                      dtype="float64", device="cpu")) for s in range(seeds))


def test_the_cnn_theory_raises_no_false_alarm_inside_the_domain():
    cmp = compared(list(records()))
    for name in ROWS:
        assert count(cmp, name, DISAGREE) == 0, name
    assert fraction(cmp, "grad_sq_norm", AGREE) == 1.0


def test_a_cnn_theory_off_by_2x_never_agrees():
    cmp = compared(list(records()), ScaledTheory(2.0))
    for name in ("grad_sq_norm", "bias_grad_sq_norm", "backward_q"):
        assert count(cmp, name, AGREE) == 0, name
        assert fraction(cmp, name, DISAGREE) >= 0.5, name


def test_the_other_readouts_kernels_are_refused():
    """GAP's kernels for a Flatten network: the readout's input is the pixel mean, whose
    variance on smooth fields differs from the mean pixel variance."""
    wrong = ArchTheory(lambda arch: dataclasses.replace(arch, readout="gap"))
    cmp = compared(list(records()), wrong)
    assert count(cmp, "grad_sq_norm", DISAGREE) >= 1
