"""What the engine measures with batch normalization (norm = "batch") and what it refuses.

Example i's output depends on the whole batch through the batch statistics, so per-example
gradients, the per-example Grams built from them and the per-example empirical NTK are not
defined: the groups that need them (`estimator_names.NEEDS_PER_EXAMPLE`) are refused at sweep
validation (one line naming ``measure[i]``) and by the engine (ValueError). The spine
statistics (minibatch gradients, forward/backward signals, weight norms, losses) are measured;
a trained point records no NTK change; ``distribution`` keeps its dimension-wise and
iteration-wise samples and leaves the gradient-noise sample NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradstats.simulate import engine
from gradstats.simulate.estimator_names import NEEDS_PER_EXAMPLE, batch_norm_refusal
from gradstats.simulate.model import build_model
from gradstats.simulate.training import per_example_loss_fn, simulate_point
from gradstats.spec import Architecture, Data, Point, Training
from gradstats.sweeps import SweepError, expand, parse_sweep

ARCH = Architecture(width=16, depth=3, activation="relu", norm="batch", input_dim=8)
REFUSED = "which batch normalization"


def bn_point(steps: int = 0, measure: tuple[str, ...] = (), **arch) -> Point:
    a = Architecture(**{**dict(width=16, depth=3, activation="relu", norm="batch", input_dim=8),
                        **arch})
    record = (0,) if steps == 0 else (0, steps)
    return Point(arch=a, training=Training(batch_size=8, steps=steps, record=record),
                 data=Data(input_dim=8, n_train=32), seed=0, device="cpu", measure=measure)


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 8, generator=gen)
    return x, torch.randn(8, 1, generator=gen)


def test_the_network_says_it_has_no_per_example_gradients():
    assert not build_model(ARCH, 0).per_example
    assert build_model(Architecture(width=16, depth=3, input_dim=8), 0).per_example
    assert build_model(Architecture(width=16, depth=3, norm="layer", input_dim=8), 0).per_example


@pytest.mark.parametrize("call", [
    lambda m, x, y: engine.signals(m, x, y, per_example_loss_fn("mse")),
    lambda m, x, y: engine.signals(m, x, target="output"),
    lambda m, x, y: engine.per_example_gram(m, x, y, per_example_loss_fn("mse")),
    lambda m, x, y: engine.per_example_grad_sq_norm(m, x, y, per_example_loss_fn("mse")),
    lambda m, x, y: engine.layer_grams(m, x, target="output"),
    lambda m, x, y: engine.empirical_ntk_model(m, x),
    lambda m, x, y: engine.slow_per_example_grads(m, x, y, per_example_loss_fn("mse")),
], ids=["signals-loss", "signals-output", "per_example_gram", "per_example_grad_sq_norm",
        "layer_grams", "empirical_ntk_model", "slow_per_example_grads"])
def test_engine_functions_refuse_a_batch_normalized_network(batch, call):
    x, y = batch
    with pytest.raises(ValueError, match=REFUSED):
        call(build_model(ARCH, 0), x, y)


def test_signals_from_forward_and_empirical_ntk_refuse_too(batch):
    x, y = batch
    model = build_model(ARCH, 0)
    fwd = model.forward_all(x, retain_preact_grad=True)
    per_example_loss_fn("mse")(fwd.output, y).mean().backward()
    with pytest.raises(ValueError, match=REFUSED):
        engine.signals_from_forward(model, fwd, scale=8.0)
    with pytest.raises(ValueError, match=REFUSED):
        engine.empirical_ntk(ARCH, x.numpy())


@pytest.mark.parametrize("name", sorted(NEEDS_PER_EXAMPLE))
def test_simulate_point_refuses_per_example_groups(name):
    with pytest.raises(ValueError, match=f"measure: {name} needs per-example gradients"):
        simulate_point(bn_point(measure=(name,)))


def test_which_groups_need_per_example_gradients():
    assert set(NEEDS_PER_EXAMPLE) == {"per_example", "full_batch", "directions", "ntk", "xie"}
    assert batch_norm_refusal("distribution") is None
    assert batch_norm_refusal("per_example") == (
        'per_example needs per-example gradients, which batch normalization (norm = "batch") '
        "does not define")


def test_a_trained_point_records_the_spine_and_no_ntk():
    record = simulate_point(bn_point(steps=2))
    values = record.values
    assert "ntk_rel_change" not in values and "ntk_trace" not in values
    for name in ("grad_sq_norm", "forward_q", "backward_q", "weight_sq_norm", "batch_loss",
                 "full_loss"):
        assert np.all(np.isfinite(values[name])), name
    assert values["grad_sq_norm"].shape == (2, 4)
    assert record.inputs.probe_ntk0.shape == (0, 0) and record.inputs.train_ntk0 is None
    # BN removes per-unit constants: the hidden biases get no gradient (up to round-off)
    hidden_bias = values["bias_grad_sq_norm"][0, :3]
    assert np.all(hidden_bias <= 1e-10 * values["grad_sq_norm"][0, :3])


def test_distribution_keeps_the_minibatch_samples_and_leaves_the_noise_nan():
    values = simulate_point(bn_point(measure=("distribution",))).values
    assert np.all(np.isfinite(values["dimwise_kurtosis"]))
    assert np.all(np.isnan(values["noise_kurtosis"]))


def _sweep(measure, **fixed):
    return {"name": "bn", "seeds": 1, "measure": measure, "grid": {"norm": ["none", "batch"]},
            "fixed": {"width": 8, "depth": 2, "input_dim": 4, "n_train": 8, "batch_size": 4,
                      **fixed}}


@pytest.mark.parametrize("name", sorted(NEEDS_PER_EXAMPLE))
def test_sweep_validation_names_the_measure_field(name):
    with pytest.raises(SweepError) as err:
        expand(parse_sweep(_sweep(["distribution", name])))
    assert str(err.value) == f"measure[1]: {batch_norm_refusal(name)}"
    assert "\n" not in str(err.value)


def test_a_sweep_without_batch_norm_or_with_allowed_groups_expands():
    assert len(expand(parse_sweep(_sweep(["distribution"])))) == 2
    plain = _sweep(["per_example", "ntk"])
    plain["grid"] = {"norm": ["none", "layer"]}
    assert len(expand(parse_sweep(plain))) == 2
