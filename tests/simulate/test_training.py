"""The simulator's recorded statistics against signal-propagation theory written here.

Expected values come from a small Gauss-Hermite quadrature of the length map in this file
(independent of gradstats.theory). Tolerances: 4 standard errors over seeds plus an
O(1/width) finite-width allowance.
"""

import math

import numpy as np
import pytest
import torch

from gradstats.simulate.training import simulate_point
from gradstats.spec import Architecture, Data, Point, Training

NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(100)  # even: no node at 0 (relu kink)
WEIGHTS = WEIGHTS / WEIGHTS.sum()  # E[g(z)], z ~ N(0, 1)
PHI = {"relu": lambda h: np.maximum(h, 0), "tanh": np.tanh}
DPHI = {"relu": lambda h: (h > 0).astype(float), "tanh": lambda h: 1 - np.tanh(h) ** 2}


def gauss(fn, q):
    return float(WEIGHTS @ fn(math.sqrt(q) * NODES))


def length_map(activation, sigma_w2, sigma_b2, depth, q1):
    qs = [q1]
    for _ in range(depth - 1):
        qs.append(sigma_w2 * gauss(lambda h: PHI[activation](h) ** 2, qs[-1]) + sigma_b2)
    return np.array(qs)


def _points(activation, sigma_w2, sigma_b2, depth, width, seeds, **training):
    arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                        sigma_b2=sigma_b2, input_dim=32)
    return [Point(arch=arch, data=Data(input_dim=32, n_train=128), seed=s,
                  training=Training(batch_size=64, **training)) for s in range(seeds)]


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2", [("relu", 2.0, 0.0), ("tanh", 1.5, 0.05)])
def test_forward_q_follows_length_map(activation, sigma_w2, sigma_b2):
    depth, width = 5, 512
    runs = np.stack([simulate_point(p).values["forward_q"][0]
                     for p in _points(activation, sigma_w2, sigma_b2, depth, width, seeds=16)])
    q1 = sigma_w2 * 1.0 + sigma_b2  # sphere inputs: |x|^2 / d = 1
    expected = length_map(activation, sigma_w2, sigma_b2, depth, q1)
    mean = runs[:, :depth].mean(axis=0)
    se = runs[:, :depth].std(axis=0, ddof=1) / math.sqrt(len(runs))
    assert np.all(np.abs(mean - expected) <= 4 * se + 4 / width * expected), (mean, expected, se)


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2", [("relu", 2.0, 0.0), ("tanh", 1.5, 0.05)])
def test_backward_q_ratio_is_chi_1(activation, sigma_w2, sigma_b2):
    """E[delta_l^2] / E[delta_{l+1}^2] = sigma_w^2 E[phi'(h_l)^2] for hidden l < depth."""
    depth, width = 10, 512
    runs = np.stack([simulate_point(p).values["backward_q"][0]
                     for p in _points(activation, sigma_w2, sigma_b2, depth, width, seeds=8)])
    qs = length_map(activation, sigma_w2, sigma_b2, depth, sigma_w2 + sigma_b2)
    layers = np.arange(4, depth)  # deep hidden layers l with l+1 <= depth, 1-based
    chi = np.array([sigma_w2 * gauss(lambda h: DPHI[activation](h) ** 2, qs[l - 1]) for l in layers])
    ratios = np.log(runs[:, layers - 1] / runs[:, layers])  # per seed, per layer
    # average over layers: one ratio per seed; compare its mean over seeds to the log of chi_1
    per_seed = ratios.mean(axis=1)
    se = per_seed.std(ddof=1) / math.sqrt(len(per_seed))
    assert abs(per_seed.mean() - np.log(chi).mean()) <= 4 * se + 2 / math.sqrt(width)


def test_same_point_same_numbers():
    (point,) = _points("tanh", 1.5, 0.05, depth=2, width=32, seeds=1, steps=5, record=(0, 5))
    a, b = simulate_point(point), simulate_point(point)
    for name in a.values:
        if name != "wall_time":
            np.testing.assert_array_equal(a.values[name], b.values[name])


def test_training_reduces_loss_and_records_every_step():
    (point,) = _points("relu", 2.0, 0.0, depth=2, width=128, seeds=1, steps=100, lr=0.1,
                       record=(0, 10, 100))
    rec = simulate_point(point)
    assert list(rec.steps) == [0, 10, 100]
    assert rec.values["grad_sq_norm"].shape == (3, 3)
    assert rec.values["full_loss"][-1] < 0.7 * rec.values["full_loss"][0]
    assert rec.values["diverged"] == 0


def test_grad_sq_norm_matches_autograd_of_minibatch_loss():
    """grad_sq_norm is ||dL/dW_l||^2 of the raw weights: recompute it independently."""
    (point,) = _points("tanh", 1.5, 0.05, depth=2, width=16, seeds=1)
    rec = simulate_point(point)
    from gradstats.simulate.data import load_data
    from gradstats.simulate.model import build_model
    from gradstats.simulate.training import _BatchSampler, derive_seeds

    seeds = derive_seeds(point)
    data = load_data(point.data, "mse", seeds.data)
    idx = _BatchSampler(len(data.x), 64, seeds.batches).next()
    model = build_model(point.arch, seeds.init)
    x = torch.as_tensor(data.x[idx], dtype=torch.float32)
    y = torch.as_tensor(data.y[idx], dtype=torch.float32)
    loss = 0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()
    grads = torch.autograd.grad(loss, list(model.weights))
    expected = [float((g.double() ** 2).sum()) for g in grads]
    np.testing.assert_allclose(rec.values["grad_sq_norm"][0], expected, rtol=1e-5)


def test_relu_active_fraction_is_half_at_init():
    (point,) = _points("relu", 2.0, 0.0, depth=3, width=512, seeds=1)
    active = simulate_point(point).values["active_fraction"][0]
    assert np.allclose(active[:-1], 0.5, atol=4 * math.sqrt(0.25 / (512 * 64)) + 0.02)
    assert active[-1] == 1.0


def test_diverging_point_is_recorded_not_raised():
    arch = Architecture(width=64, depth=6, activation="relu", sigma_w2=8.0, input_dim=16)
    point = Point(arch=arch, data=Data(input_dim=16, n_train=64),
                  training=Training(batch_size=16, lr=50.0, steps=30, record=(0, 1, 10, 30)))
    rec = simulate_point(point)
    assert rec.values["diverged"] == 1
    step = int(rec.values["diverged_step"])
    assert 0 <= step <= 30
    i = list(rec.steps).index(step) if step in rec.steps else None
    if i is not None:  # the step where it happened is kept as it was: non-finite
        assert not np.all(np.isfinite(rec.values["grad_sq_norm"][i]))
    later = rec.steps > step
    assert np.all(np.isnan(rec.values["grad_sq_norm"][later]))


def _diverging_point(measure: tuple[str, ...]) -> Point:
    """relu, sigma_w2 = 8, lr = 50: finite at step 0, inf/nan at the recorded step 1."""
    arch = Architecture(width=64, depth=6, activation="relu", sigma_w2=8.0, input_dim=16)
    return Point(arch=arch, data=Data(input_dim=16, n_train=64), measure=measure,
                 training=Training(batch_size=16, lr=50.0, steps=30, record=(0, 1, 10, 30)))


@pytest.mark.parametrize("measure", ["per_example", "directions", "distribution", "ntk",
                                     "full_batch"])
def test_diverging_point_with_estimators_is_recorded_not_raised(measure):
    """Estimators skip the non-finite step (eigvalsh raised LinAlgError on it): NaN there."""
    from gradstats import statistics
    from gradstats.simulate.estimators import make_estimator

    rec = simulate_point(_diverging_point((measure,)))
    assert rec.values["diverged"] == 1
    step = int(rec.values["diverged_step"])
    assert step in rec.steps  # the estimators did meet the non-finite step
    i = list(rec.steps).index(step)
    for name in make_estimator(measure).statistics:
        if statistics.get(name).dims[:1] != ("step",):
            continue
        value = rec.values[name]
        assert np.all(np.isnan(value[i:])), name
        if name.startswith(("iterwise", "minibatch_dir_kappa")):
            continue  # written at the last recorded step only / may be inf
        assert np.isfinite(value[:i]).any(), name


def test_diverging_sweep_completes_and_is_not_recomputed(tmp_path):
    from gradstats.results import io
    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.executors import InProcessExecutor

    points = [_diverging_point((m,)) for m in ("per_example", "directions")]
    summary = run_sweep(points, [], tmp_path, executor=InProcessExecutor(),
                        consolidate_store=False)
    assert (summary.computed, summary.failed) == (2, [])
    for point in points:
        ds = io.load_point(io.point_path(tmp_path, point))
        assert float(ds["diverged"].squeeze()) == 1.0
    again = run_sweep(points, [], tmp_path, executor=InProcessExecutor(),
                      consolidate_store=False)
    assert (again.computed, again.skipped) == (0, 2)
