"""The activation table (`gradstats.activations`): one formula, three backends, and the
properties the theory reads from it (derivative, sup |phi'|, homogeneity, slopes)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradstats import activations
from gradstats.activations import ACTIVATIONS, NAMES

GRID = np.concatenate([np.linspace(-9.0, 9.0, 721), [-1e-3, 1e-3, 0.0, 37.5, -41.0]])
# points away from the kinks of the piecewise-linear activations (autograd at 0 is a
# convention there; the table's subgradient at 0 is checked separately)
SMOOTH = GRID[np.abs(GRID) > 1e-9]


def _jax():
    import jax

    from gradstats.theory._compat import enable_x64

    return jax, enable_x64


def _numpy(name, x):
    phi, dphi = activations.functions(name, "numpy")
    return np.asarray(phi(x), float), np.asarray(dphi(x), float)


def _torch(name, x):
    phi, dphi = activations.functions(name, "torch")
    t = torch.tensor(x, dtype=torch.float64)
    return phi(t).numpy(), dphi(t).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_backends_agree(name):
    jax, enable_x64 = _jax()
    p_np, d_np = _numpy(name, GRID)
    p_t, d_t = _torch(name, GRID)
    with enable_x64():
        phi, dphi = activations.functions(name, "jax")
        x = jax.numpy.asarray(GRID)
        assert x.dtype == jax.numpy.float64
        p_j, d_j = np.asarray(phi(x)), np.asarray(dphi(x))
    for got in (p_t, p_j):
        np.testing.assert_allclose(got, p_np, rtol=1e-12, atol=1e-12)
    for got in (d_t, d_j):
        np.testing.assert_allclose(got, d_np, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_is_the_autograd_of_phi(name):
    jax, enable_x64 = _jax()
    phi_t, dphi_t = activations.functions(name, "torch")
    x = torch.tensor(SMOOTH, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(phi_t(x).sum(), x)
    np.testing.assert_allclose(dphi_t(x.detach()).numpy(), grad.numpy(), rtol=1e-12,
                               atol=1e-12)
    with enable_x64():
        phi_j, dphi_j = activations.functions(name, "jax")
        xj = jax.numpy.asarray(SMOOTH)
        grad_j = np.asarray(jax.vmap(jax.grad(phi_j))(xj))
        np.testing.assert_allclose(np.asarray(dphi_j(xj)), grad_j, rtol=1e-12, atol=1e-12)
    # and the derivative is not some other function: a central difference agrees to 1e-6
    p, _ = _numpy(name, SMOOTH)
    h = 1e-6
    fd = (_numpy(name, SMOOTH + h)[0] - _numpy(name, SMOOTH - h)[0]) / (2 * h)
    np.testing.assert_allclose(_numpy(name, SMOOTH)[1], fd, rtol=1e-5, atol=1e-5)
    assert np.all(np.isfinite(p))


def test_subgradients_at_the_kinks():
    """dphi at 0: 0 for relu and abs (the documented convention), the negative slope for
    leaky relu (its formula is where(x > 0, b, a))."""
    zero = np.array([0.0])
    assert _numpy("relu", zero)[1][0] == 0.0
    assert _numpy("abs", zero)[1][0] == 0.0
    assert _numpy("leaky_relu", zero)[1][0] == activations.LEAKY_RELU_SLOPE
    assert _numpy("linear", zero)[1][0] == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_derivative_sup_is_the_sup_on_a_fine_grid(name):
    x = np.linspace(-30.0, 30.0, 600_001)  # step 1e-4
    grid_sup = float(np.max(np.abs(_numpy(name, x)[1])))
    sup = ACTIVATIONS[name].derivative_sup
    assert grid_sup <= sup * (1 + 1e-12)
    # the grid resolves the peak to second order: |phi''| h^2 at most ~1e-8
    assert grid_sup == pytest.approx(sup, rel=1e-7, abs=1e-12)


def test_derivative_sup_closed_forms():
    """Values known independently of the table."""
    expected = {"relu": 1.0, "tanh": 1.0, "erf": 2 / math.sqrt(math.pi), "sigmoid": 0.25,
                "linear": 1.0, "softplus": 1.0, "abs": 1.0, "leaky_relu": 1.0,
                "gelu": 1.12890414}  # gelu'(sqrt 2) = Phi(sqrt 2) + sqrt 2 phi(sqrt 2)
    assert set(expected) == set(NAMES)
    for name, value in expected.items():
        assert ACTIVATIONS[name].derivative_sup == pytest.approx(value, rel=1e-7), name


@pytest.mark.parametrize("name", NAMES)
def test_homogeneity_where_declared(name):
    x = GRID
    entry = ACTIVATIONS[name]
    holds = all(np.allclose(_numpy(name, c * x)[0], c * _numpy(name, x)[0], rtol=1e-12,
                            atol=1e-12) for c in (0.3, 2.0, 7.0))
    assert holds is entry.homogeneous, name


@pytest.mark.parametrize("name", [n for n in NAMES if ACTIVATIONS[n].piecewise is not None])
def test_piecewise_slopes(name):
    a, b = ACTIVATIONS[name].piecewise
    np.testing.assert_allclose(_numpy(name, GRID)[0],
                               a * np.minimum(GRID, 0) + b * np.maximum(GRID, 0), rtol=1e-15,
                               atol=0)
    assert ACTIVATIONS[name].kernel == "arccos"
    # negative: other slopes do not describe it
    assert not np.allclose(_numpy(name, GRID)[0],
                           (a + 0.1) * np.minimum(GRID, 0) + b * np.maximum(GRID, 0))


def test_kernel_kinds():
    assert {n for n in NAMES if ACTIVATIONS[n].kernel == "arccos"} == {
        "relu", "linear", "abs", "leaky_relu"}
    assert ACTIVATIONS["erf"].kernel == "erf"
    for name in ("tanh", "sigmoid", "gelu", "softplus"):
        assert ACTIVATIONS[name].kernel == "quadrature"
        assert ACTIVATIONS[name].piecewise is None


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        activations.get("swish")
    with pytest.raises(ValueError, match="unknown backend"):
        activations.array_ops("cupy")
