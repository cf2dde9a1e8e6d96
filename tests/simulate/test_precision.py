"""The ``precision_loss`` quality flag against a float64 run of the same network and batch.

The reference rebuilds the point's float32 network and step-0 minibatch exactly (same
derived seeds and sampler) and recomputes the minibatch gradient on a float64 copy of it
(float32 weights are exact in float64) with plain autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradstats.simulate.data import load_data
from gradstats.simulate.model import build_model
from gradstats.simulate.precision import PRECISION_LOSS_THRESHOLD
from gradstats.simulate.training import (
    _BatchSampler,
    derive_seeds,
    per_example_loss_fn,
    simulate_point,
)
from gradstats.spec import Architecture, Data, Point, Training


def small_weights_point(activation: str, depth: int, dtype: str = "float32") -> Point:
    """sigma_w2 = 0.02, no bias: every layer scales signals by ~0.1, forward and backward."""
    arch = Architecture(width=64, depth=depth, activation=activation, sigma_w2=0.02,
                        input_dim=16)
    return Point(arch=arch, data=Data(input_dim=16, n_train=64), dtype=dtype,
                 training=Training(batch_size=32, steps=0))


def float64_grad_sq_norm(point: Point) -> np.ndarray:
    """||dL/dW_l||^2 at step 0 of the point's float32 network, computed in float64: (L,)."""
    seeds = derive_seeds(point)
    data = load_data(point.data, "mse", seeds.data)
    idx = _BatchSampler(len(data.x), point.training.batch_size, seeds.batches).next()
    model = build_model(point.arch, seeds.init).double()
    x = torch.as_tensor(data.x[idx], dtype=torch.float32).double()
    y = torch.as_tensor(data.y[idx], dtype=torch.float32).double()
    loss = per_example_loss_fn("mse")(model(x), y).mean()
    grads = torch.autograd.grad(loss, list(model.weights))
    return np.array([float((g**2).sum()) for g in grads])


@pytest.mark.parametrize("activation, depth", [("relu", 41), ("relu", 48), ("tanh", 48)])
def test_underflow_is_flagged_where_float32_is_wrong(activation, depth):
    """Gradients near 1e-42 are subnormal in float32 (or flushed to 0): grad_sq_norm is off
    by 10..100% and precision_loss says so. If ||a - b|| <= r ||b|| then |a|^2/|b|^2 - 1 is at
    most 2 r + r^2: the flag bounds the error (the 1e-6 allows float32 round-off of r)."""
    point = small_weights_point(activation, depth)
    values = simulate_point(point).values
    measured, flag = values["grad_sq_norm"][0], values["precision_loss"][0]
    ref = float64_grad_sq_norm(point)
    err = np.abs(measured / ref - 1)
    assert err.max() > 0.1
    assert np.all(flag[err > 0.1] > PRECISION_LOSS_THRESHOLD)
    assert np.all(err <= 2 * flag + flag**2 + 1e-6)


@pytest.mark.parametrize("activation, depth", [("relu", 10), ("tanh", 40)])
def test_no_flag_where_float32_is_right(activation, depth):
    """depth 10: nothing underflows, the flag is 0; tanh at depth 40 has subnormal entries
    but keeps its precision: the flag is measured and stays below the threshold."""
    point = small_weights_point(activation, depth)
    values = simulate_point(point).values
    err = np.abs(values["grad_sq_norm"][0] / float64_grad_sq_norm(point) - 1)
    flag = values["precision_loss"][0]
    assert err.max() < 1e-5  # float32 round-off through the depth
    assert np.all(flag < PRECISION_LOSS_THRESHOLD)
    if depth == 10:
        assert np.all(flag == 0)


def test_float64_run_has_no_wider_reference():
    ok = simulate_point(small_weights_point("relu", 10, dtype="float64")).values
    assert np.all(ok["precision_loss"] == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_finite_is_isfinite_all(dtype):
    """`all_finite` answers as ``isfinite(t).all()`` over every tensor, for NaN, +inf, -inf
    anywhere and for finite values whose sum overflows."""
    from gradstats.simulate.precision import all_finite

    big = torch.finfo(dtype).max
    cases = [torch.zeros(3, dtype=dtype), torch.full((4, 4), big, dtype=dtype),
             torch.tensor([-big, -big, 1.0], dtype=dtype)]
    for bad in (float("nan"), float("inf"), -float("inf")):
        for where in (0, 5, 11):
            t = torch.randn(3, 4, dtype=dtype)
            t.view(-1)[where] = bad
            cases.append(t)
    for i, t in enumerate(cases):
        group = [torch.ones(2, dtype=dtype), t]
        assert all_finite(group) == bool(torch.isfinite(t).all()), i
    assert all_finite([])
