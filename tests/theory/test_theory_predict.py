"""predict_statistics: conventions and agreement with Monte Carlo over `build_model` networks."""

from __future__ import annotations

import numpy as np
import pytest
from theory_helpers import assert_mc_agrees, mc_statistics, sphere_inputs

from gradstats import Architecture, statistics, theory
from gradstats.theory.predict import PREDICTED

LAYERED = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "backward_q", "weight_sq_norm")


def _check(arch, x, y, seeds, loss="mse"):
    pred = theory.predict_statistics(arch, x, y, loss=loss)
    mc = mc_statistics(arch, x, y, seeds, loss=loss)
    # finite-width model error O(depth/width) on top of the Monte Carlo error
    rel = 6.0 * arch.n_layers / arch.width
    for name in PREDICTED:
        if name == "bias_grad_sq_norm" and not arch.bias:
            assert np.all(np.isnan(pred[name]))
            continue
        assert_mc_agrees(mc[name], pred[name], n_se=4.0, rel=rel, what=name)
    return pred


def test_mc_relu_ntk_mse_two_outputs():
    x = sphere_inputs(4, 12, seed=1)
    y = np.random.default_rng(2).normal(size=(4, 2))
    arch = Architecture(width=256, depth=2, activation="relu", sigma_w2=1.8, sigma_b2=0.2,
                        parameterization="ntk", input_dim=12, output_dim=2)
    _check(arch, x, y, seeds=250)


def test_mc_tanh_standard_mse_no_bias():
    x = sphere_inputs(3, 10, seed=3) * 1.3
    y = np.random.default_rng(4).normal(size=(3, 1))
    arch = Architecture(width=256, depth=2, activation="tanh", sigma_w2=1.5, bias=False,
                        parameterization="standard", input_dim=10)
    pred = _check(arch, x, y, seeds=250)
    # standard parameterization: raw-weight gradients of hidden layers scale with the width
    wide = theory.predict_statistics(Architecture(**{**arch.__dict__, "width": 512}), x, y)
    assert wide["grad_sq_norm"][1] > 1.5 * pred["grad_sq_norm"][1]
    np.testing.assert_allclose(wide["forward_q"], pred["forward_q"])


def test_mc_erf_cross_entropy():
    x = sphere_inputs(4, 8, seed=5)
    y = np.array([0, 2, 1, 2])
    arch = Architecture(width=256, depth=1, activation="erf", sigma_w2=2.0, sigma_b2=0.1,
                        input_dim=8, output_dim=3)
    _check(arch, x, y, seeds=250, loss="cross_entropy")


def test_mse_closed_forms():
    x = sphere_inputs(5, 6, seed=6)
    y = np.random.default_rng(7).normal(size=(5, 2))
    arch = Architecture(width=64, depth=3, activation="gelu", sigma_w2=1.3, sigma_b2=0.2,
                        input_dim=6, output_dim=2)
    pred = theory.predict_statistics(arch, x, y)
    kern = theory.layer_kernels(arch, x, x64=True)
    k, tw, tb = kern["nngp"], kern["ntk_weight"], kern["ntk_bias"]
    b = len(x)
    for l in range(arch.n_layers):
        expected = sum(np.trace(tw[l] @ k) + y[:, j] @ tw[l] @ y[:, j] for j in range(2)) / b**2
        assert pred["grad_sq_norm"][l] == pytest.approx(expected, rel=1e-10)
        expected_b = sum(np.trace(tb[l] @ k) + y[:, j] @ tb[l] @ y[:, j] for j in range(2)) / b**2
        assert pred["bias_grad_sq_norm"][l] == pytest.approx(expected_b, rel=1e-10)
    assert pred["output_mean_sq"] == pytest.approx(np.mean(np.diag(k)))
    assert pred["batch_loss"] == pytest.approx(0.5 * np.mean(2 * np.diag(k) + np.sum(y * y, axis=1)))
    assert pred["backward_q"][-1] == pytest.approx(np.mean(np.diag(k)) + np.mean(y * y))
    np.testing.assert_allclose(pred["weight_sq_norm"], [64 * 1.3] * 3 + [2 * 1.3])
    for name in LAYERED:
        assert pred[name].shape == (arch.n_layers,)
    assert pred["batch_loss"].shape == () and pred["output_mean_sq"].shape == ()


def test_backward_chain_and_fan_ratio():
    """E[delta_l^2] = sigma_w^2 E[phi'^2] (n_{l+1}/n_l) E[delta_{l+1}^2]; readout fan ratio."""
    x = sphere_inputs(3, 4, seed=8)
    y = np.zeros((3, 3))
    arch = Architecture(width=50, depth=2, activation="relu", sigma_w2=2.0, bias=False,
                        input_dim=4, output_dim=3)
    pred = theory.predict_statistics(arch, x, y)
    bq = pred["backward_q"]
    assert bq[1] == pytest.approx(2.0 * 0.5 * (3 / 50) * bq[2])
    assert bq[0] == pytest.approx(2.0 * 0.5 * bq[1])


def test_input_validation():
    arch = Architecture(width=8, depth=1, input_dim=3, output_dim=2)
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="targets"):
        theory.predict_statistics(arch, x, np.ones((2, 3)))
    with pytest.raises(ValueError, match="labels"):
        theory.predict_statistics(arch, x, np.array([0, 5]), loss="cross_entropy")
    with pytest.raises(ValueError, match="int labels"):
        theory.predict_statistics(arch, x, np.ones((2, 2)), loss="cross_entropy")
    with pytest.raises(ValueError, match="unknown loss"):
        theory.predict_statistics(arch, x, np.ones((2, 2)), loss="hinge")
    with pytest.raises(ValueError, match="x must be"):
        theory.predict_statistics(arch, np.ones((2, 4)), np.ones((2, 2)))
    one = Architecture(width=8, depth=1, input_dim=3)
    a = theory.predict_statistics(one, x, np.array([0.5, -1.0]))
    b = theory.predict_statistics(one, x, np.array([[0.5], [-1.0]]))
    np.testing.assert_allclose(a["grad_sq_norm"], b["grad_sq_norm"])


def test_registry_marks_predicted_statistics():
    for name in PREDICTED:
        assert statistics.get(name).theory, name


def _brute_force_statistics(arch, x, y, loss, draws, seed):
    """Per draw of f ~ GP(0, K) (i.i.d. over outputs), the statistics computed from f directly:
    {name: (draws, ...)} for grad_sq_norm, bias_grad_sq_norm, output_mean_sq, batch_loss."""
    from scipy.special import logsumexp, softmax

    b, n_out = x.shape[0], arch.output_dim
    kern = theory.layer_kernels(arch, x, x64=True)
    rng = np.random.default_rng(seed)
    f = rng.multivariate_normal(np.zeros(b), kern["nngp"], size=(draws, n_out), method="eigh")
    f = np.swapaxes(f, 1, 2)  # (draws, B, n_out)
    if loss == "mse":
        g = (f - y) / b
        batch_loss = 0.5 * np.sum((f - y) ** 2, axis=2).mean(axis=1)
    else:
        onehot = np.eye(n_out)[y]
        g = (softmax(f, axis=2) - onehot) / b
        batch_loss = (logsumexp(f, axis=2) - np.sum(f * onehot, axis=2)).mean(axis=1)
    return {"grad_sq_norm": np.einsum("lij,sik,sjk->sl", kern["ntk_weight"], g, g),
            "bias_grad_sq_norm": np.einsum("lij,sik,sjk->sl", kern["ntk_bias"], g, g),
            "output_mean_sq": np.mean(f**2, axis=(1, 2)), "batch_loss": batch_loss}


def _variance_se(samples: np.ndarray) -> np.ndarray:
    """Standard error of the sample variance: sqrt(Var[(s - mean)^2] / n) (delta method)."""
    dev2 = (samples - samples.mean(axis=0)) ** 2
    return dev2.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])


MOMENT_CASES = [
    ("mse", 1, True), ("mse", 3, True), ("mse", 2, False),
    ("cross_entropy", 2, True), ("cross_entropy", 4, False),
]


@pytest.mark.parametrize(("loss", "n_out", "bias"), MOMENT_CASES)
def test_unconditional_moments_against_brute_force(loss, n_out, bias):
    x = sphere_inputs(6, 5, seed=41)
    rng = np.random.default_rng(42)
    y = rng.normal(size=(6, n_out)) if loss == "mse" else rng.integers(0, n_out, size=6)
    arch = Architecture(width=64, depth=2, activation="tanh", sigma_w2=1.8, sigma_b2=0.05,
                        bias=bias, input_dim=5, output_dim=n_out)
    n_samples = 32768
    moments = theory.unconditional_moments(arch, x, y, loss=loss, n_samples=n_samples)
    pred = theory.predict_statistics(arch, x, y, loss=loss, n_samples=n_samples)
    brute = _brute_force_statistics(arch, x, y, loss, draws=n_samples, seed=43)
    for name, (mean, var) in moments.items():
        assert mean.shape == var.shape == pred[name].shape, name
        if name == "bias_grad_sq_norm" and not bias:
            assert np.all(np.isnan(mean)) and np.all(np.isnan(var))
            continue
        # the means are predict_statistics' (closed forms for mse; the same seeded draws for CE)
        np.testing.assert_allclose(mean, pred[name], rtol=1e-10, err_msg=name)
        samples = brute[name]
        # closed forms (mse, and output_mean_sq always) carry no sampling error; the cross-entropy
        # moments are themselves a Monte Carlo of the same size, so their error adds in quadrature
        exact = loss == "mse" or name == "output_mean_sq"
        se_var = _variance_se(samples) * (1.0 if exact else np.sqrt(2.0))
        se_mean = samples.std(axis=0, ddof=1) / np.sqrt(n_samples) * (1.0 if exact else np.sqrt(2.0))
        assert np.all(np.abs(samples.var(axis=0, ddof=1) - var) < 4 * se_var), (name, var)
        assert np.all(np.abs(samples.mean(axis=0) - mean) < 4 * se_mean), (name, mean)
        assert np.all(var > 0), name


def test_unconditional_moments_mse_closed_form():
    """One output, A = Theta^W_l / B^2: Var = 2 tr(AKAK) + 4 y^T A K A y, written out."""
    x = sphere_inputs(4, 3, seed=51)
    y = np.random.default_rng(52).normal(size=(4, 1))
    arch = Architecture(width=16, depth=1, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        input_dim=3)
    kern = theory.layer_kernels(arch, x, x64=True)
    k, b = kern["nngp"], 4
    moments = theory.unconditional_moments(arch, x, y)
    for l in range(arch.n_layers):
        a = kern["ntk_weight"][l] / b**2
        expected = 2 * np.trace(a @ k @ a @ k) + 4 * (y[:, 0] @ a @ k @ a @ y[:, 0])
        assert moments["grad_sq_norm"][1][l] == pytest.approx(expected, rel=1e-10)
    # output_mean_sq = f^T f / B, f ~ N(0, K): Var = 2 tr(K^2) / B^2
    assert moments["output_mean_sq"][1] == pytest.approx(2 * np.trace(k @ k) / b**2, rel=1e-10)
