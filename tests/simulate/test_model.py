"""The torch MLP realizes the parameterizations of DESIGN.md exactly."""

import math

import numpy as np
import pytest
import torch

from gradstats.simulate.model import activation_derivative, activation_fn, build_model
from gradstats.spec import ACTIVATIONS, Architecture


def _arch(**kw) -> Architecture:
    base = dict(width=512, depth=2, input_dim=256, sigma_w2=1.7, sigma_b2=0.3)
    return Architecture(**{**base, **kw})


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_weight_variance_per_scheme(parameterization, init):
    arch = _arch(parameterization=parameterization, init=init)
    model = build_model(arch, seed=0, dtype=torch.float64)
    for l in (1, 2):
        w = model.weights[l - 1].detach().numpy()
        expected = 1.0 if parameterization == "ntk" else arch.sigma_w2 / arch.fan_in(l)
        # the sample variance of n iid entries has relative sd sqrt(2/n)
        assert w.var() == pytest.approx(expected, rel=5 * math.sqrt(2 / w.size))
        eff = model.effective_weight(l).detach().numpy()
        assert eff.var() * arch.fan_in(l) == pytest.approx(arch.sigma_w2, rel=5 * math.sqrt(2 / w.size))
    b = model.biases[0].detach().numpy()
    expected_b = 1.0 if parameterization == "ntk" else arch.sigma_b2
    assert b.var() == pytest.approx(expected_b, rel=5 * math.sqrt(2 / b.size))


def test_orthogonal_rows_are_orthogonal():
    arch = _arch(init="orthogonal", width=128, input_dim=256)
    w = build_model(arch, seed=1, dtype=torch.float64).weights[0].detach().numpy()
    gram = w @ w.T
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-8)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_forward_variance_through_one_layer(parameterization):
    """E[h_1^2] = sigma_w^2 |x|^2 / d + sigma_b^2 over the random init (same for both)."""
    arch = _arch(parameterization=parameterization, depth=0, width=1, input_dim=16)
    x = torch.randn(1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = torch.stack([build_model(arch, seed=s, dtype=torch.float64)(x)[0, 0] for s in range(4000)])
    expected = arch.sigma_w2 * float((x**2).sum()) / 16 + arch.sigma_b2
    se = float(h.pow(2).std()) / math.sqrt(len(h))
    assert float(h.pow(2).mean()) == pytest.approx(expected, abs=4 * se)


def test_same_seed_same_weights_different_seed_different():
    arch = _arch(width=8, input_dim=4)
    a, b, c = (build_model(arch, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.weights[0], c.weights[0])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_derivative_matches_autograd(name):
    h = torch.linspace(-3, 3, 101, dtype=torch.float64).add(0.013).requires_grad_()
    (grad,) = torch.autograd.grad(activation_fn(name)(h).sum(), h)
    assert torch.allclose(activation_derivative(name)(h.detach()), grad, atol=1e-10)
