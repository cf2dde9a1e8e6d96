"""The whole-training-set NTK at init is formed exactly for the points whose lazy-training
prediction is computed (its one consumer), and the lazy prediction is unchanged there."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradstats.predictions import _outside_parts, predict_record
from gradstats.simulate.theory_inputs import LAZY_MAX_TRAIN, keeps_train_ntk
from gradstats.simulate.training import simulate_point
from gradstats.spec import Architecture, Data, Point, Training

OPTIMIZERS = {"sgd": {}, "momentum": {"momentum": 0.9}, "adam": {}, "adamw": {}}


def point(optimizer: str, parameterization: str, steps: int = 2, n_train: int = 32) -> Point:
    arch = Architecture(width=8, depth=1, parameterization=parameterization, input_dim=4)
    record = (0,) if steps == 0 else (0, steps)
    training = Training(batch_size=8, optimizer=optimizer, lr=0.01, steps=steps, record=record,
                        **OPTIMIZERS[optimizer])
    return Point(arch=arch, training=training, data=Data(input_dim=4, n_train=n_train),
                 device="cpu")


@pytest.mark.parametrize(("optimizer", "parameterization", "steps"), list(itertools.product(
    OPTIMIZERS, ("standard", "ntk", "mup", "mean_field"), (0, 2))))
def test_the_train_ntk_is_kept_exactly_where_the_lazy_prediction_is_computed(
        optimizer, parameterization, steps):
    p = point(optimizer, parameterization, steps)
    lazy_computed = steps > 0 and "lazy training" not in _outside_parts(p)
    assert keeps_train_ntk(p) == lazy_computed
    assert not keeps_train_ntk(point(optimizer, parameterization, steps, LAZY_MAX_TRAIN + 1))


@pytest.mark.parametrize(("optimizer", "lazy"), [("sgd", True), ("adam", False)])
def test_records_carry_the_train_ntk_and_the_lazy_loss_only_where_used(optimizer, lazy):
    record = simulate_point(point(optimizer, "standard"), ())
    assert (record.inputs.train_ntk0 is not None) == lazy
    assert record.inputs.probe_ntk0.shape == (16, 16)
    predicted = predict_record(record).values
    assert ("theory_full_loss_lazy" in predicted) == lazy
    assert np.isfinite(predicted["theory_ntk_init_rel_err"])
