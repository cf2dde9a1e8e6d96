"""The Python API's own contracts that need no sweep: overrides, bad input, input_dim
inference, keyword signal propagation, labelled predictions (the sweep-running parts are
tested with the README in tests/test_readme_snippets.py)."""

from __future__ import annotations

import numpy as np
import pytest

import gradstats
from gradstats import Architecture, theory
from gradstats.api import _override_strings
from gradstats.errors import InputError
from gradstats.spec import SpecError


def test_overrides_become_the_clis_set_strings():
    assert _override_strings({"width": [64, 128], "bias": False, "lr": 0.05, "seeds": 4}) == [
        "width=64,128", "bias=false", "lr=0.05", "seeds=4"]
    assert _override_strings(["width=8"]) == ["width=8"]


def test_a_bad_sweep_names_the_field_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="width"):
        gradstats.run_sweep({"name": "bad", "grid": {"width": [0]}}, out=out)
    with pytest.raises(InputError, match="--set"):
        gradstats.run_sweep("quickstart", out=out, set=["width"])
    assert not out.exists()


def test_compare_checks_its_level():
    with pytest.raises(SpecError, match="level"):
        gradstats.compare("nowhere", level=2.0)


def test_input_dim_is_taken_from_the_inputs():
    x = np.random.default_rng(0).normal(size=(5, 7))
    free = Architecture(width=32, depth=2, activation="relu")
    fixed = Architecture(width=32, depth=2, activation="relu", input_dim=7)
    np.testing.assert_allclose(theory.nngp(free, x), theory.nngp(fixed, x))
    # relu layer 1: K_1 = sigma_w^2 x.x'/d + sigma_b^2 with d = 7
    assert theory.layer_kernels(free, x)["nngp"].shape == (5, 5)
    with pytest.raises(SpecError, match="input_dim") as err:
        theory.ntk(Architecture(width=32, depth=2, input_dim=3), x)
    assert err.value.field == "input_dim"
    with pytest.raises(SpecError, match="input_dim"):
        theory.predict_statistics(Architecture(width=32, depth=2, input_dim=3), x, np.ones(5))


def test_empirical_ntk_infers_input_dim_and_names_it_when_wrong():
    from gradstats.simulate import empirical_ntk
    from gradstats.simulate.model import build_model

    x = np.random.default_rng(1).normal(size=(4, 6))
    theta = empirical_ntk(Architecture(width=16, depth=1), x)
    assert theta.shape == (4, 4)
    with pytest.raises(SpecError, match="input_dim=64 but x has 6 features"):
        empirical_ntk(Architecture(width=16, depth=1, input_dim=64), x)
    with pytest.raises(SpecError, match="input_dim: not set"):
        build_model(Architecture(width=16, depth=1), seed=0)


def test_signal_propagation_needs_no_width():
    # relu: chi_1 = sigma_w^2 E[step(z)] = sigma_w^2 / 2 at any q*
    sp = theory.signal_propagation(activation="relu", sigma_w2=1.5, sigma_b2=0.1, depth=4)
    assert sp.chi_1 == pytest.approx(0.75, rel=1e-9) and len(sp.q_l) == 5
    same = theory.signal_propagation(Architecture(width=999, depth=4, activation="relu",
                                                  sigma_w2=1.5, sigma_b2=0.1))
    np.testing.assert_allclose(sp.q_l, same.q_l)
    with pytest.raises(SpecError, match="sigma_w2"):
        theory.signal_propagation(activation="relu")


def test_predictions_are_labelled_by_layer():
    x = np.random.default_rng(2).normal(size=(6, 5))
    arch = Architecture(width=64, depth=2, activation="tanh", sigma_w2=1.5)
    pred = theory.predict_statistics(arch, x, np.zeros(6))
    assert list(pred.layer.values) == [1, 2, 3]
    assert pred.grad_sq_norm.dims == ("layer",) and pred.batch_loss.dims == ()
    assert pred.grad_sq_norm.attrs["long_name"] == "squared norm of weight gradient"
    # E||effective W_l||_F^2: fan_in * fan_out entries of variance sigma_w^2 / fan_in
    np.testing.assert_allclose(pred.weight_sq_norm.values, [64 * 1.5, 64 * 1.5, 1 * 1.5])
    mean, var = theory.unconditional_moments(arch, x, np.zeros(6))["grad_sq_norm"]
    np.testing.assert_allclose(mean.values, pred.grad_sq_norm.values, rtol=1e-10)
    assert np.all(var.values > 0)
