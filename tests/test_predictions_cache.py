"""Seed-free predictions are computed once per configuration and reused for every seed."""

import numpy as np

import gradstats.theory as theory
from gradstats import predictions
from gradstats.simulate.training import simulate_point
from gradstats.sweeps import expand, parse_sweep


def test_seed_free_parts_run_once_per_configuration_with_the_same_values(monkeypatch):
    points = expand(parse_sweep({"name": "t", "seeds": 2, "fixed": {
        "width": 16, "depth": 2, "activation": "tanh", "input_dim": 8, "n_train": 32,
        "batch_size": 8, "steps": 2, "record": [0, 2]}}))
    records = [simulate_point(p) for p in points]
    predictions._config_cache.clear()
    calls = []
    real = theory.signal_propagation
    monkeypatch.setattr(theory, "signal_propagation", lambda arch: calls.append(1) or real(arch))
    first, second = (predictions.predict_record(r) for r in records)
    assert len(calls) == 1  # the second seed reused the first one's signal propagation
    uncached = predictions.predict_record(records[1], theory=_Other())
    assert "theory_ln_chi1" in second.values and "theory_preact_kurtosis" in second.values
    assert set(second.values) == set(uncached.values)
    for name, value in uncached.values.items():
        np.testing.assert_array_equal(second.values[name], value, err_msg=name)
    np.testing.assert_array_equal(first.values["theory_ln_chi1"], second.values["theory_ln_chi1"])
    assert len(calls) == 2  # another theory object is never served from the cache


class _Other:
    """The theory package seen through another object (bypasses the cache)."""

    def __getattr__(self, name):
        return getattr(theory, name)
