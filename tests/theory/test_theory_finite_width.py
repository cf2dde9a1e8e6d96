"""Finite-width ReLU fluctuations (Hanin & Nica) against Monte Carlo over `build_model` networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from theory_helpers import sphere_inputs

from gradstats import Architecture
from gradstats.simulate import build_model
from gradstats.theory import finite_width


def _var_and_se(v: np.ndarray) -> tuple[float, float]:
    """Sample variance and its standard error from the fourth central moment."""
    c = v - v.mean()
    var = float(np.mean(c**2))
    m4 = float(np.mean(c**4))
    return var, math.sqrt(max(m4 - var**2, 0.0) / len(v))


def test_jacobian_log_norm_law():
    arch = Architecture(width=24, depth=4, activation="relu", sigma_w2=2.0, sigma_b2=0.2,
                        input_dim=10)
    x = torch.tensor(sphere_inputs(1, 10, seed=1))
    u = torch.tensor(np.random.default_rng(2).normal(size=(1, 10)))
    u = u / u.norm()
    logs = []
    for s in range(2500):
        model = build_model(arch, s, dtype=torch.float64)
        _, ju = torch.func.jvp(model, (x,), (u,))
        logs.append(math.log(float((ju.detach() ** 2).sum())))
    logs = np.array(logs)
    pred = finite_width.jacobian_log_norm(arch)
    se_mean = logs.std(ddof=1) / math.sqrt(len(logs))
    assert abs(logs.mean() - pred.mean) < 4 * se_mean, (logs.mean(), pred.mean, se_mean)
    var, se_var = _var_and_se(logs)
    assert abs(var - pred.var) < 4 * se_var, (var, pred.var, se_var)
    assert pred.beta == pytest.approx(4 / 24)
    # leading order is close to exact at this width
    assert pred.mean_asymptotic == pytest.approx(pred.mean, abs=0.1)
    assert pred.var_asymptotic == pytest.approx(pred.var, rel=0.1)


def test_jacobian_asymptotics_he():
    """He init, equal widths: mean -5 beta/2, var 5 beta plus the exact readout chi^2 term."""
    arch = Architecture(width=1000, depth=10, activation="relu", sigma_w2=2.0, input_dim=1000,
                        bias=False)
    p = finite_width.jacobian_log_norm(arch)
    beta = 10 / 1000
    readout_mean = math.log(2.0 / 1000) + float(
        __import__("scipy.special", fromlist=["digamma"]).digamma(0.5)) + math.log(2)
    assert p.mean_asymptotic == pytest.approx(-2.5 * beta + readout_mean, rel=1e-12)
    assert p.var_asymptotic == pytest.approx(5 * beta + math.pi**2 / 2, rel=1e-12)
    assert p.mean == pytest.approx(p.mean_asymptotic, abs=2e-4)
    assert p.var == pytest.approx(p.var_asymptotic, rel=1e-3)


def test_ln_grad_sq_norm_variance_over_seeds():
    """One example, target 0, no bias: Var ln ||dL/dW_l||^2 is the readout value in every layer."""
    arch = Architecture(width=32, depth=3, activation="relu", sigma_w2=2.0, bias=False,
                        input_dim=12, parameterization="standard")
    x = torch.tensor(sphere_inputs(1, 12, seed=3))
    logs = []
    for s in range(3000):
        model = build_model(arch, s, dtype=torch.float64)
        (0.5 * model(x).pow(2).sum()).backward()
        logs.append([math.log(float((w.grad**2).sum())) for w in model.weights])
    logs = np.array(logs)
    pred = finite_width.ln_grad_sq_norm_variance(arch)
    assert pred.shape == (4,) and np.all(pred == pred[-1])
    for l in range(4):
        var, se = _var_and_se(logs[:, l])
        assert abs(var - pred[l]) < 4 * se + 0.03 * pred[l], (l, var, pred[l], se)
    wide = finite_width.ln_grad_sq_norm_variance(Architecture(**{**arch.__dict__, "width": 1024}))
    assert wide[0] == pytest.approx(20 * 3 / 1024 + math.pi**2 / 2, rel=2e-3)
    multi = finite_width.ln_grad_sq_norm_variance(Architecture(**{**arch.__dict__, "output_dim": 3}))
    assert np.all(np.isnan(multi[:-1])) and np.isfinite(multi[-1])


def test_empirical_ntk_fluctuation_scales_as_inverse_sqrt_width():
    x = torch.tensor(sphere_inputs(1, 8, seed=5))
    rel = {}
    for width in (32, 128):
        arch = Architecture(width=width, depth=3, activation="relu", sigma_w2=2.0, bias=False,
                            input_dim=8)
        thetas = []
        for s in range(150):
            model = build_model(arch, s, dtype=torch.float64)
            g = torch.autograd.grad(model(x)[0, 0], list(model.parameters()))
            thetas.append(float(sum((gi**2).sum() for gi in g)))
        thetas = np.array(thetas)
        rel[width] = thetas.std(ddof=1) / thetas.mean()
        pred = finite_width.ntk_relative_fluctuation(arch)
        assert 0.5 * pred < rel[width] < 2.0 * pred, (width, rel[width], pred)
    assert 1.5 < rel[32] / rel[128] < 2.7, rel


def test_relu_only():
    with pytest.raises(ValueError, match="relu"):
        finite_width.jacobian_log_norm(Architecture(width=8, depth=1, activation="tanh"))
    with pytest.raises(ValueError, match="bias"):
        finite_width.ln_grad_sq_norm_variance(Architecture(width=8, depth=1, sigma_b2=0.1))
    with pytest.raises(ValueError, match="Gaussian"):
        finite_width.jacobian_log_norm(Architecture(width=8, depth=1, init="orthogonal"))
