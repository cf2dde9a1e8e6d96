"""Minibatch gradient-noise estimators against exact full-data values of a fixed network.

The truth comes from explicit per-example gradients of all N training examples
(`engine.slow_per_example_grads`, torch.func vmap(grad)): G = mean_i g_i and
tr Sigma_N = mean_i ||g_i - G||^2. Minibatches are uniform random subsets (the marginal of
the simulator's shuffled-epoch sampler) or, for B > N, draws with replacement (what the
sampler does then). Means over M minibatches are compared with the truth within 3 standard
errors (SE = sample std / sqrt(M), the minibatches being independent): a two-sided 0.3%
test, run on fixed seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from gradstats.simulate import engine, noise
from gradstats.simulate.model import build_model
from gradstats.simulate.training import per_example_loss_fn
from gradstats.spec import Architecture

N, D_IN, M = 64, 8, 4000
Z = 3.0  # two-sided 0.3% test


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return per_example_loss_fn("mse")(out, y)


@pytest.fixture(scope="module")
def case():
    """A fixed tanh network on N examples: explicit per-example gradients (N, P) in float64."""
    arch = Architecture(width=16, depth=2, activation="tanh", sigma_w2=1.5, sigma_b2=0.1,
                        input_dim=D_IN)
    model = build_model(arch, 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(N, D_IN, generator=gen, dtype=torch.float64)
    y = torch.randn(N, 1, generator=gen, dtype=torch.float64) + 1.0
    weights, biases = engine.slow_per_example_grads(model, x, y, mse)
    flat = torch.cat([w.reshape(N, -1) for w in weights] + [b for b in biases], 1).numpy()
    return model, x, y, flat


def truth(flat: np.ndarray) -> tuple[float, float]:
    """(||G||^2, tr Sigma_N) of the per-example gradients (N, P)."""
    g = flat.mean(0)
    return float(g @ g), float(((flat - g) ** 2).sum(1).mean())


def minibatch_grams(flat: np.ndarray, batch: int, seed: int) -> torch.Tensor:
    """(M, B, B) Grams of M independent minibatches (without replacement when B <= N)."""
    rng = np.random.default_rng(seed)
    if batch <= len(flat):
        idx = np.stack([rng.choice(len(flat), batch, replace=False) for _ in range(M)])
    else:
        idx = rng.integers(0, len(flat), size=(M, batch))
    rows = torch.as_tensor(flat[idx])
    return rows @ rows.transpose(1, 2)


def mean_se(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))


def test_subbatch_curve_is_the_mean_over_every_subbatch():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((7, 5)) + 0.3
    gram = torch.as_tensor(g @ g.T)
    sizes = np.arange(1, 9)
    got = noise.subbatch_grad_sq_norm(gram, sizes).numpy()
    slow = [np.mean([np.sum(g[list(s)].mean(0) ** 2) for s in itertools.combinations(range(7), b)])
            for b in range(1, 8)]
    np.testing.assert_allclose(got[:7], slow, rtol=1e-12)
    assert np.isnan(got[7])  # b = 8 > B
    np.testing.assert_array_equal(noise.subbatch_sizes(7), [1, 2, 4])
    np.testing.assert_array_equal(noise.subbatch_sizes(8), [1, 2, 4, 8])


@pytest.mark.parametrize("n_population, batch", [(50, 7), (5, 7)])
def test_subbatch_curve_is_a_line_in_the_noise_factor(n_population, batch):
    """OLS of the curve on c_b: slope = unbiased tr Sigma_N, intercept = unbiased ||G||^2."""
    rng = np.random.default_rng(1)
    g = rng.standard_normal((batch, 6)) + 0.5
    gram = torch.as_tensor(g @ g.T)
    sizes = np.arange(1, batch + 1)
    replace = not noise.without_replacement(batch, n_population)
    c = noise.noise_factor(sizes, n_population, replace=replace)
    slope, intercept = np.polyfit(c, noise.subbatch_grad_sq_norm(gram, sizes).numpy(), 1)
    assert slope == pytest.approx(float(noise.unbiased_noise_trace(gram, n_population)), rel=1e-10)
    assert intercept == pytest.approx(float(noise.unbiased_grad_sq_norm(gram, n_population)),
                                      rel=1e-10)
    # and the slope is the textbook sample trace: 1/(B-1) sum ||g_i - gbar||^2, times
    # (N-1)/N without replacement
    s2 = ((g - g.mean(0)) ** 2).sum(1).sum() / (batch - 1)
    assert slope == pytest.approx(s2 * (1 if replace else (n_population - 1) / n_population))


def test_full_data_noise_matches_explicit_gradients(case):
    model, x, y, flat = case
    g2, trace = truth(flat)
    model32 = engine.model_as_dtype(model, torch.float32)
    for chunk in (N, 10):
        full = noise.full_data_noise(model, x, y, mse, chunk=chunk)
        assert full.n == N
        assert full.grad_sq_norm.sum() == pytest.approx(g2, rel=1e-10)
        assert full.trace == pytest.approx(trace, rel=1e-10)
        assert full.noise_scale == pytest.approx(trace / g2, rel=1e-10)
    # a float32 network is evaluated as its exact float64 copy
    ref = noise.full_data_noise(engine.model_as_dtype(model32, torch.float64), x, y, mse)
    got = noise.full_data_noise(model32, x.float(), y.float(), mse)
    np.testing.assert_allclose(got.grad_sq_norm, ref.grad_sq_norm, rtol=1e-6)
    np.testing.assert_allclose(got.layer_trace, ref.layer_trace, rtol=1e-6)


@pytest.mark.parametrize("batch", [4, 16, 48, 96])
def test_unbiased_estimates_hit_the_full_data_truth_and_the_plug_in_does_not(case, batch):
    """Over M minibatches the unbiased ||G||^2 and tr Sigma_N means are within 3 SE of the
    truth, and so is the ratio of means B_simple (delta-method SE); the plug-in
    tr Sigma_B / ||gbar||^2 (``grad_noise_scale``) is many SE off. B = 96 > N draws with
    replacement."""
    _, _, _, flat = case
    g2_true, trace_true = truth(flat)
    b_true = trace_true / g2_true
    grams = minibatch_grams(flat, batch, seed=batch)
    trace = noise.unbiased_noise_trace(grams, N).numpy()
    g2 = noise.unbiased_grad_sq_norm(grams, N).numpy()
    for values, target in ((trace, trace_true), (g2, g2_true)):
        mean, se = mean_se(values)
        assert abs(mean - target) <= Z * se, (batch, mean, target, se)
    ratio = trace.mean() / g2.mean()
    ratio_se = (trace - ratio * g2).std(ddof=1) / math.sqrt(M) / g2.mean()
    assert abs(ratio - b_true) <= Z * ratio_se, (batch, ratio, b_true, ratio_se)
    plug_in = (engine.noise_trace(grams) / engine.mean_grad_sq_norm(grams)).numpy()
    mean, se = mean_se(plug_in)
    assert abs(mean - b_true) > 10 * se, (batch, mean, b_true, se)


def test_finite_population_factor_is_needed_without_replacement(case):
    """At B = 48 of N = 64 the noise term of E||g_B||^2 is (N-B)/(N-1) = 0.25 of the
    with-replacement one: dropping the factor biases the ||G||^2 estimate by many SE."""
    _, _, _, flat = case
    g2_true, _ = truth(flat)
    grams = minibatch_grams(flat, 48, seed=7)
    naive = (engine.mean_grad_sq_norm(grams) - engine.noise_trace(grams) / 47).numpy()
    mean, se = mean_se(naive)
    assert abs(mean - g2_true) > 10 * se
    mean, se = mean_se(noise.unbiased_grad_sq_norm(grams, N).numpy())
    assert abs(mean - g2_true) <= Z * se


def test_batch_of_one_and_full_batch():
    g = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    one = g @ g.T
    assert torch.isnan(noise.unbiased_noise_trace(one, 10)).item()
    assert torch.isnan(noise.unbiased_grad_sq_norm(one, 10)).item()
    assert noise.subbatch_grad_sq_norm(one, np.array([1])).item() == pytest.approx(5.0)
    # B = N: the minibatch is the training set, ||gbar||^2 is exact
    rng = np.random.default_rng(2)
    f = rng.standard_normal((6, 3))
    gram = torch.as_tensor(f @ f.T)
    g2, trace = truth(f)
    assert float(noise.unbiased_grad_sq_norm(gram, 6)) == pytest.approx(g2, rel=1e-12)
    assert float(noise.unbiased_noise_trace(gram, 6)) == pytest.approx(trace, rel=1e-12)
