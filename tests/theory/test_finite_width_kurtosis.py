"""Preactivation excess kurtosis (Roberts, Yaida & Hanin 2022) against a slow, obvious numpy
Monte Carlo over networks, independent of the package's simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradstats import Architecture
from gradstats import activations as act_table
from gradstats.theory import finite_width


def _networks(activation, width, depth, sigma_w2, sigma_b2, n_nets, input_dim=8, seed=0):
    """Per network and layer, the mean over units of h^2 and h^4 at one fixed input of mean
    square 1 (standard parameterization, readout of one unit): (n_nets, depth+1) each."""
    phi, _ = act_table.functions(activation, "numpy")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_dim)
    x *= math.sqrt(input_dim) / np.linalg.norm(x)
    m2 = np.zeros((n_nets, depth + 1))
    m4 = np.zeros((n_nets, depth + 1))
    for s in range(n_nets):
        a, fan_in = x, input_dim
        for l in range(depth + 1):
            fan_out = width if l < depth else 1
            w = rng.standard_normal((fan_out, fan_in)) * math.sqrt(sigma_w2 / fan_in)
            h = w @ a + math.sqrt(sigma_b2) * rng.standard_normal(fan_out)
            m2[s, l], m4[s, l] = np.mean(h**2), np.mean(h**4)
            a, fan_in = phi(h), fan_out
    return m2, m4


def _pooled_kurtosis(m2, m4):
    """E[m4]/E[m2]^2 - 3 over networks and its delta-method standard error."""
    a, b = m4.mean(0), m2.mean(0)
    g4, g2 = 1 / b**2, -2 * a / b**3
    se = []
    for l in range(m2.shape[1]):
        c = np.cov(m4[:, l], m2[:, l])
        se.append(math.sqrt((g4[l]**2 * c[0, 0] + 2 * g4[l] * g2[l] * c[0, 1]
                             + g2[l]**2 * c[1, 1]) / len(m2)))
    return a / b**2 - 3, np.array(se)


def test_critical_constants_relu_15_linear_6():
    """The leading order is 15 (l-1)/n for relu at sigma_w^2 = 2, 6 (l-1)/n for linear at 1
    (any width), with layer 1 exactly Gaussian."""
    for activation, sw2, c in (("relu", 2.0, 15.0), ("linear", 1.0, 6.0)):
        for width in (32, 64):
            arch = Architecture(width=width, depth=6, activation=activation, sigma_w2=sw2,
                                sigma_b2=0.0, bias=False, input_dim=8)
            layers = np.arange(1, 8)
            np.testing.assert_allclose(finite_width.preact_excess_kurtosis(arch),
                                       c * (layers - 1) / width, rtol=1e-9, atol=1e-12)
            exact = finite_width.preact_excess_kurtosis_exact(arch)
            r = c / 3
            np.testing.assert_allclose(exact, 3 * ((1 + r / width) ** (layers - 1) - 1),
                                       rtol=1e-9)


@pytest.mark.parametrize("activation, sigma_w2, width", [("relu", 2.0, 32), ("relu", 2.0, 16),
                                                        ("linear", 1.0, 16)])
def test_exact_kurtosis_matches_monte_carlo(activation, sigma_w2, width):
    """3000 networks: the pooled kurtosis of every layer within 4 standard errors of the exact
    product formula (relu: 1 + 5/n per layer, linear: 1 + 2/n)."""
    depth = 5
    m2, m4 = _networks(activation, width, depth, sigma_w2, 0.0, 3000, seed=width)
    kurt, se = _pooled_kurtosis(m2, m4)
    arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                        sigma_b2=0.0, bias=False, input_dim=8)
    exact = finite_width.preact_excess_kurtosis_exact(arch)
    assert np.all(np.abs(kurt - exact) < 4 * se), (kurt, exact, se)
    # the layers' kurtosis grows: the leading order 15 (l-1)/n, not 5 or 6 (l-1)/n, for relu
    lead = finite_width.preact_excess_kurtosis(arch)
    wrong = lead * (6 / 15 if activation == "relu" else 15 / 6)
    assert np.all(np.abs(kurt - wrong)[2:-1] > 4 * se[2:-1])


@pytest.mark.parametrize("activation, sigma_w2, sigma_b2", [("tanh", 1.5, 0.1),
                                                           ("relu", 1.5, 0.5),
                                                           ("gelu", 3.0, 0.2)])
def test_leading_order_recursion_off_criticality(activation, sigma_w2, sigma_b2):
    """General activations and sigma_b^2 > 0: the recursion within 4 standard errors plus the
    measured next-order envelope 3 (l-1)/n x kappa (`validity.KURTOSIS_NEXT_ORDER_COEF`) at
    (l-1)/n <= 0.15, and its 1/n scaling: n kappa_l(n) equal at widths 24 and 48."""
    from gradstats.theory.validity import KURTOSIS_NEXT_ORDER_COEF

    depth = 3
    scaled = []
    for width in (24, 48):
        m2, m4 = _networks(activation, width, depth, sigma_w2, sigma_b2, 4000, seed=width + 1)
        kurt, se = _pooled_kurtosis(m2, m4)
        arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                            sigma_b2=sigma_b2, input_dim=8)
        lead = finite_width.preact_excess_kurtosis(arch)
        assert lead[0] == 0 and np.all(lead[1:] > 0)
        allow = KURTOSIS_NEXT_ORDER_COEF * np.arange(depth + 1) / width * lead
        assert np.all(np.abs(kurt - lead) < 4 * se + allow), (kurt, lead, se, allow)
        scaled.append((kurt * width, se * width, allow * width))
    # n kappa_l(n) is the same at both widths within the errors (the 1/n scaling)
    (k24, s24, a24), (k48, s48, _) = scaled
    assert np.all(np.abs(k24 - k48) < 4 * np.hypot(s24, s48) + a24), scaled
