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


def _ln_jacobian_sq_norms(arch: Architecture, networks: int = 2500) -> np.ndarray:
    """ln ||df/dx u||^2 over `build_model` networks, one fixed sphere input and unit u."""
    x = torch.tensor(sphere_inputs(1, arch.input_dim, seed=1))
    u = torch.tensor(np.random.default_rng(2).normal(size=(1, arch.input_dim)))
    u = u / u.norm()
    logs = []
    for s in range(networks):
        model = build_model(arch, s, dtype=torch.float64)
        _, ju = torch.func.jvp(model, (x,), (u,))
        logs.append(math.log(float((ju.detach() ** 2).sum())))
    return np.array(logs)


def test_jacobian_log_norm_law():
    arch = Architecture(width=24, depth=4, activation="relu", sigma_w2=2.0, sigma_b2=0.2,
                        input_dim=10)
    logs = _ln_jacobian_sq_norms(arch)
    pred = finite_width.jacobian_log_norm(arch)
    se_mean = logs.std(ddof=1) / math.sqrt(len(logs))
    assert abs(logs.mean() - pred.mean) < 4 * se_mean, (logs.mean(), pred.mean, se_mean)
    var, se_var = _var_and_se(logs)
    assert abs(var - pred.var) < 4 * se_var, (var, pred.var, se_var)
    assert pred.beta == pytest.approx(4 / 24)
    # leading order is close to exact at this width
    assert pred.mean_asymptotic == pytest.approx(pred.mean, abs=0.1)
    assert pred.var_asymptotic == pytest.approx(pred.var, rel=0.1)


def test_jacobian_log_norm_law_orthogonal():
    """Orthogonal weights keep lengths: per hidden layer only the gates' share fluctuates
    (variance ~3/n instead of Gaussian 5/n)."""
    # a square readout (output_dim = width) keeps lengths too, so only the hidden gates remain
    arch = Architecture(width=24, depth=4, activation="relu", sigma_w2=2.0, bias=False,
                        input_dim=10, output_dim=24, init="orthogonal")
    logs = _ln_jacobian_sq_norms(arch)
    pred = finite_width.jacobian_log_norm(arch)
    gauss = finite_width.jacobian_log_norm(Architecture(**{**arch.__dict__, "init": "gaussian"}))
    se_mean = logs.std(ddof=1) / math.sqrt(len(logs))
    assert abs(logs.mean() - pred.mean) < 4 * se_mean, (logs.mean(), pred.mean, se_mean)
    var, se_var = _var_and_se(logs)
    assert abs(var - pred.var) < 4 * se_var, (var, pred.var, se_var)
    assert abs(var - gauss.var) > 4 * se_var  # the Gaussian law is visibly wrong here
    wide = finite_width.jacobian_log_norm(Architecture(**{**arch.__dict__, "width": 1000,
                                                          "output_dim": 1000}))
    assert wide.var_asymptotic == pytest.approx(4 * 3 / 1000, rel=1e-12)
    assert wide.var == pytest.approx(wide.var_asymptotic, rel=0.02)  # O(1/n^2) terms


def _closed_form_mean_grad(arch: Architecture, x: np.ndarray) -> np.ndarray:
    """Infinite-width E ||dL/dW_l||^2, l = 1..L, for a relu MLP without bias, standard
    parameterization, one input x, scalar output, loss f^2/2: E f^2 b_l E||a_{l-1}||^2 with
    E||a_l||^2 = ||x||^2 prod_k sigma_w^2 n_k / (2 n_{k-1}) and b_l = E||df/dh_l||^2 =
    (sigma_w^2/2)^(L-l)."""
    sw2, L = arch.sigma_w2, arch.n_layers
    a_sq = [float(x @ x)]
    for l in range(1, L):
        a_sq.append(a_sq[-1] * sw2 * arch.fan_out(l) / (2 * arch.fan_in(l)))
    f_sq = sw2 / arch.fan_in(L) * a_sq[L - 1]
    return np.array([f_sq * (sw2 / 2) ** (L - l) * a_sq[l - 1] for l in range(1, L + 1)])


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_grad_sq_norm_mean_and_log_mean_over_seeds(init):
    """>= 2000 networks: the seed mean of ||dL/dW_l||^2 is the infinite-width mean times
    prod (1 + 5/n) (Gaussian) or prod (n + 5)/(n + 2) (orthogonal), and the mean of its log
    sits at the predicted shift below, in every layer; the infinite-width values are off."""
    arch = Architecture(width=20, depth=3, activation="relu", sigma_w2=2.0, bias=False,
                        input_dim=12, parameterization="standard", init=init)
    x = sphere_inputs(1, 12, seed=3)
    xt = torch.tensor(x)
    grads = []
    for s in range(2500):
        model = build_model(arch, s, dtype=torch.float64)
        (0.5 * model(xt).pow(2).sum()).backward()
        grads.append([float((w.grad**2).sum()) for w in model.weights])
    grads = np.array(grads)
    grads = grads[np.all(grads > 0, axis=1)]  # all units of a layer off: prob ~ 3 * 2^-20
    infinite = _closed_form_mean_grad(arch, x[0])
    factor = finite_width.grad_sq_norm_mean_factor(arch)
    shift = finite_width.ln_grad_sq_norm_mean_shift(arch)
    var = finite_width.ln_grad_sq_norm_variance(arch)
    for l in range(arch.n_layers):
        g = grads[:, l]
        ratio, se = g.mean() / infinite[l], g.std(ddof=1) / math.sqrt(len(g)) / infinite[l]
        assert abs(ratio - factor[l]) < 4 * se, (l, ratio, factor[l], se)
        assert abs(ratio - 1.0) > 4 * se, (l, ratio, se)  # the correction is needed
        lg = np.log(g) - math.log(infinite[l])
        se_log = lg.std(ddof=1) / math.sqrt(len(lg))
        assert abs(lg.mean() - shift[l]) < 4 * se_log, (l, lg.mean(), shift[l], se_log)
        v, se_v = _var_and_se(np.log(g))
        assert abs(v - var[l]) < 4 * se_v + 0.03 * var[l], (l, v, var[l], se_v)
    n = arch.width
    expected = (1 + 5 / n) ** 3 if init == "gaussian" else ((n + 5) / (n + 2)) ** 3
    assert factor[-1] == pytest.approx(expected, rel=1e-12)


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
        finite_width.ntk_relative_fluctuation(Architecture(width=8, depth=1, input_dim=64,
                                                               init="orthogonal"))
    with pytest.raises(ValueError, match="isometric"):  # input_dim 64 > width 8
        finite_width.jacobian_log_norm(Architecture(width=8, depth=1, input_dim=64,
                                                        init="orthogonal"))
