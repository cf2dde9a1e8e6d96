"""Cross-checks against neural-tangents (run in the nt environment):

    PYTHONPATH=src .venv-nt/bin/python -m pytest -m nt tests/theory

Skipped cleanly where neural-tangents is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

nt = pytest.importorskip("neural_tangents")

from gradstats import Architecture, theory  # noqa: E402
from gradstats.theory import nt_backend  # noqa: E402

pytestmark = pytest.mark.nt

D = 5
# Inputs of moderate norm: neural-tangents integrates tanh with Gauss-Hermite (deg below),
# whose own error grows with the pre-activation variance.
X1 = np.random.default_rng(0).normal(size=(6, D)) * 0.8
X2 = np.random.default_rng(1).normal(size=(4, D)) * 0.6
TANH_DEG = 300


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("bias", [True, False])
def test_kernels_match_neural_tangents(activation, parameterization, bias):
    for depth in range(1, 9):
        arch = Architecture(width=48, depth=depth, activation=activation, sigma_w2=1.6,
                            sigma_b2=0.1, bias=bias, parameterization=parameterization,
                            input_dim=D)
        for x2 in (None, X2):
            k_nt, t_nt = nt_backend.kernels(arch, X1, x2, x64=True, deg=TANH_DEG)
            k, t = theory.nngp_and_ntk(arch, X1, x2, x64=True)
            assert _rel(k, k_nt) < 1e-6, (depth, x2 is None, _rel(k, k_nt))
            assert _rel(t, t_nt) < 1e-6, (depth, x2 is None, _rel(t, t_nt))


@pytest.mark.parametrize("activation", ["leaky_relu", "abs", "linear", "gelu"])
def test_other_activations_match(activation):
    arch = Architecture(width=48, depth=3, activation=activation, sigma_w2=1.3, sigma_b2=0.2,
                        parameterization="standard", input_dim=D)
    k_nt, t_nt = nt_backend.kernels(arch, X1, X2, x64=True)
    assert _rel(theory.nngp(arch, X1, X2, x64=True), k_nt) < 1e-8
    assert _rel(theory.ntk(arch, X1, X2, x64=True), t_nt) < 1e-8


def test_backend_argument():
    arch = Architecture(width=48, depth=2, activation="erf", sigma_w2=1.6, sigma_b2=0.1,
                        input_dim=D)
    np.testing.assert_allclose(theory.nngp(arch, X1, backend="neural-tangents", x64=True),
                               theory.nngp(arch, X1, x64=True), rtol=1e-9)
    np.testing.assert_allclose(theory.ntk(arch, X1, X2, backend="neural-tangents", x64=True),
                               theory.ntk(arch, X1, X2, x64=True), rtol=1e-9)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_torch_weights_in_nt_apply_fn_give_the_same_outputs(parameterization, bias, activation):
    """Guard: `build_model` and neural-tangents' apply_fn are the same network."""
    import torch

    from gradstats.simulate import build_model
    from gradstats.theory._compat import enable_x64

    arch = Architecture(width=32, depth=3, activation=activation, sigma_w2=1.7, sigma_b2=0.3,
                        bias=bias, parameterization=parameterization, input_dim=D,
                        output_dim=2)
    model = build_model(arch, seed=3, dtype=torch.float64)
    x = np.random.default_rng(2).normal(size=(7, D))
    with torch.no_grad():
        out_torch = model(torch.tensor(x)).numpy()
    with enable_x64():
        _, apply_fn, _ = nt_backend.stax_network(arch)
        out_nt = np.asarray(apply_fn(nt_backend.params_from_torch(model, arch), x))
    np.testing.assert_allclose(out_nt, out_torch, rtol=1e-12, atol=1e-12)
