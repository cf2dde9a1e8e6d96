"""conditional_statistics: the prediction for the measured network, given its readout gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from theory_helpers import assert_mc_agrees, sphere_inputs

from gradstats import Architecture, theory
from gradstats.simulate.model import build_model

CONDITIONED = ("grad_sq_norm", "bias_grad_sq_norm", "backward_q")

# Spread of ln(measured / conditional) per seed, in units of sqrt(depth/width). Measured with
# 100 seeds (30 at width 2048) of relu and tanh networks, sigma_w2 1.8, sigma_b2 0.05, B = 16,
# 2 outputs, at widths 128/512/2048 and depths 1/3/6: the seed std over sqrt(depth/width) was
# 1.1-1.8 (relu) and 0.6-1.5 (tanh) for weights and biases of every layer, and never above 2.0.
LOG_RATIO_SPREAD = 2.0


def test_gp_average_reproduces_unconditional_prediction():
    """E over f ~ GP(0, K) of the conditional prediction with g = (f - y)/B is predict_statistics."""
    x = sphere_inputs(8, 6, seed=11)
    y = np.random.default_rng(12).normal(size=(8, 2))
    arch = Architecture(width=64, depth=3, activation="tanh", sigma_w2=1.8, sigma_b2=0.05,
                        input_dim=6, output_dim=2)
    k = theory.nngp(arch, x, x64=True)
    evals, evecs = np.linalg.eigh(k)
    root = evecs * np.sqrt(np.clip(evals, 0, None))
    draws = 400
    f = np.einsum("ij,sjk->sik", root, np.random.default_rng(13).standard_normal((draws, 8, 2)))
    cond = [theory.conditional_statistics(arch, x, (fs - y) / len(x)) for fs in f]
    pred = theory.predict_statistics(arch, x, y)
    for name in CONDITIONED:
        samples = np.stack([c[name] for c in cond])
        assert_mc_agrees(samples, pred[name], n_se=4.0, what=name)


def _measured_and_conditional(arch: Architecture, x: np.ndarray, y: np.ndarray, seed: int):
    """Per-layer ||dL/dW_l||^2, ||dL/db_l||^2 of build_model(arch, seed) (mse, float64) and the
    conditional predictions from its own g = dL/df."""
    model = build_model(arch, seed, dtype=torch.float64)
    f = model(torch.tensor(x))
    loss = (0.5 * ((f - torch.tensor(y)) ** 2).sum(dim=1)).mean()
    (g,) = torch.autograd.grad(loss, f, retain_graph=True)
    loss.backward()
    weights = np.array([float((w.grad**2).sum()) for w in model.weights])
    biases = np.array([float((b.grad**2).sum()) for b in model.biases])
    return weights, biases, theory.conditional_statistics(arch, x, g.numpy())


@pytest.mark.parametrize(("activation", "parameterization"),
                         [("relu", "ntk"), ("tanh", "ntk"), ("relu", "standard")])
def test_wide_networks_match_their_conditional_prediction(activation, parameterization):
    """Per seed, measured ||dL/dW_l||^2 / conditional prediction is within O(sqrt(depth/width)).

    (The same seed builds the same function in both parameterizations; only the raw-weight
    gradients differ, by per-layer constants the prediction must carry.)
    """
    width, depth = 2048, 3
    x = sphere_inputs(16, 16, seed=21)
    y = np.random.default_rng(22).normal(size=(16, 2))
    arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=1.8,
                        sigma_b2=0.05, parameterization=parameterization, input_dim=16,
                        output_dim=2)
    unconditional = theory.predict_statistics(arch, x, y)["grad_sq_norm"]
    cond_logs, uncond_logs = [], []
    for seed in range(4):
        weights, biases, cond = _measured_and_conditional(arch, x, y, seed)
        cond_logs.append(np.log(np.concatenate([weights / cond["grad_sq_norm"],
                                                biases[:-1] / cond["bias_grad_sq_norm"][:-1]])))
        uncond_logs.append(np.log(weights / unconditional))
        # the readout bias term Theta_L^b is the constant sigma_b^2 (ntk) or 1 (standard) at any
        # width: ||dL/db_L||^2 = Theta_L^b ||sum_i g_i||^2 exactly
        assert biases[-1] == pytest.approx(float(cond["bias_grad_sq_norm"][-1]), rel=1e-10)
    cond_logs, uncond_logs = np.array(cond_logs), np.array(uncond_logs)
    # 4 standard deviations of the measured per-seed spread (LOG_RATIO_SPREAD sqrt(depth/width))
    tol = 4.0 * LOG_RATIO_SPREAD * np.sqrt(depth / width)
    assert np.all(np.abs(cond_logs) < tol), (cond_logs, tol)
    # conditioning removes the chi^2-like readout noise: at this width the unconditional
    # log-ratios spread 0.3-1.0, the conditional ones about 0.05
    rms = lambda a: np.sqrt(np.mean(a**2))  # noqa: E731
    assert rms(cond_logs) < rms(uncond_logs) / 4, (rms(cond_logs), rms(uncond_logs))


def test_shapes_no_bias_and_validation():
    x = sphere_inputs(5, 4, seed=31)
    arch = Architecture(width=32, depth=2, activation="relu", bias=False, input_dim=4)
    g = np.random.default_rng(32).normal(size=5)
    out = theory.conditional_statistics(arch, x, g)
    assert set(out) == set(CONDITIONED)
    for name in CONDITIONED:
        assert out[name].shape == (arch.n_layers,)
    assert np.all(np.isnan(out["bias_grad_sq_norm"]))
    # readout entry of backward_q is the measured readout signal itself: mean of (B g)^2
    assert out["backward_q"][-1] == pytest.approx(np.mean((5 * g) ** 2))
    np.testing.assert_allclose(theory.conditional_statistics(arch, x, g[:, None])["grad_sq_norm"],
                               out["grad_sq_norm"])
    with pytest.raises(ValueError, match="grad_output"):
        theory.conditional_statistics(arch, x, np.ones((5, 2)))
    with pytest.raises(ValueError, match="x must be"):
        theory.conditional_statistics(arch, np.ones((5, 3)), g)
