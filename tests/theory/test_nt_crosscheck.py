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


# Residual and LayerNorm compositions (gradstats.layers): (residual, residual_scale, norm,
# depth, x2). Each case checks one of the two paths (x2=None: the symmetric one with the
# exact diagonal; x2 given: the cross kernel) so the file stays cheap; "1/sqrt(depth)" at
# depth 6 is alpha = 0.408, distinct from the explicit 0.5. Depths stay <= 6 with alpha = 1:
# the stream variance grows with depth and with it the error of neural-tangents' own
# Gauss-Hermite tanh (1e-9 relative at depth 4, 2e-7 at depth 5).
COMPOSITIONS = [
    (True, 1.0, "none", 4, None),
    (True, 0.5, "none", 4, X2),
    (True, "1/sqrt(depth)", "none", 6, None),
    (False, 1.0, "layer", 3, X2),
    (True, "1/sqrt(depth)", "layer", 4, None),
]


def _composed(activation, parameterization, bias, residual, scale, norm, depth, **kw):
    return Architecture(width=48, depth=depth, activation=activation, sigma_w2=1.6,
                        sigma_b2=0.1, bias=bias, parameterization=parameterization,
                        input_dim=D, residual=residual, residual_scale=scale, norm=norm, **kw)


@pytest.mark.parametrize("activation", ["relu", "erf", "tanh"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("bias", [True, False])
def test_residual_and_layer_norm_kernels_match_neural_tangents(activation, parameterization,
                                                               bias):
    for residual, scale, norm, depth, x2 in COMPOSITIONS:
        arch = _composed(activation, parameterization, bias, residual, scale, norm, depth)
        k_nt, t_nt = nt_backend.kernels(arch, X1, x2, x64=True, deg=TANH_DEG)
        k, t = theory.nngp(arch, X1, x2, x64=True), theory.ntk(arch, X1, x2, x64=True)
        case = (residual, scale, norm, depth, x2 is None)
        assert _rel(k, k_nt) < 1e-6, (case, _rel(k, k_nt))
        assert _rel(t, t_nt) < 1e-6, (case, _rel(t, t_nt))


def test_crosscheck_rejects_a_wrong_alpha_or_a_missing_layer_norm():
    """The comparison above can fail: neural-tangents' kernels of a network with another
    alpha, or without its LayerNorm, are far from ours at the 1e-6 level."""
    import dataclasses

    arch = _composed("relu", "standard", True, True, 0.5, "layer", 4)
    k, t = theory.nngp_and_ntk(arch, X1, X2, x64=True)
    for wrong in (dataclasses.replace(arch, residual_scale=0.55),
                  dataclasses.replace(arch, norm="none")):
        k_nt, t_nt = nt_backend.kernels(wrong, X1, X2, x64=True)
        assert _rel(t, t_nt) > 1e-3 and _rel(k, k_nt) > 1e-3, wrong
    # folding alpha into the branch's W_std/b_std is exact for the NNGP but not for the
    # standard-parameterization NTK (raw-parameter gradients of alpha z carry alpha^2)
    import math

    from neural_tangents import stax

    sw, sb, a = math.sqrt(arch.sigma_w2), math.sqrt(arch.sigma_b2), arch.alpha
    pre = [stax.LayerNorm(axis=-1, eps=1e-12), stax.Relu()]
    branch = stax.serial(*pre, stax.Dense(48, W_std=a * sw, b_std=a * sb,
                                          parameterization="standard"))
    folded = stax.serial(
        stax.Dense(48, W_std=sw, b_std=sb, parameterization="standard"),
        *[stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(), branch), stax.FanInSum())
          for _ in range(3)],
        *pre, stax.Dense(1, W_std=sw, b_std=sb, parameterization="standard"))
    from gradstats.theory._compat import enable_x64

    with enable_x64():
        kf = folded[2](X1, X2, ("nngp", "ntk"))
    assert _rel(np.asarray(kf.nngp), k) < 1e-12
    assert _rel(np.asarray(kf.ntk), t) > 1e-3


def test_batch_norm_has_no_neural_tangents_kernel():
    arch = Architecture(width=16, depth=2, input_dim=D, norm="batch")
    with pytest.raises(NotImplementedError, match="batch"):
        nt_backend.stax_network(arch)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize(("residual", "scale", "norm"),
                         [(True, 0.5, "none"), (False, 1.0, "layer"),
                          (True, "1/sqrt(depth)", "layer")])
def test_torch_weights_in_nt_apply_fn_residual_layer_norm(parameterization, residual, scale,
                                                          norm):
    """Guard for the compositions: `build_model` and the stax apply_fn compute the same f."""
    import torch

    from gradstats.simulate import build_model
    from gradstats.theory._compat import enable_x64

    arch = Architecture(width=32, depth=4, activation="tanh", sigma_w2=1.7, sigma_b2=0.3,
                        parameterization=parameterization, input_dim=D, output_dim=2,
                        residual=residual, residual_scale=scale, norm=norm)
    model = build_model(arch, seed=3, dtype=torch.float64)
    x = np.random.default_rng(2).normal(size=(7, D))
    with torch.no_grad():
        out_torch = model(torch.tensor(x)).numpy()
    with enable_x64():
        _, apply_fn, _ = nt_backend.stax_network(arch)
        out_nt = np.asarray(apply_fn(nt_backend.params_from_torch(model, arch), x))
    np.testing.assert_allclose(out_nt, out_torch, rtol=1e-11, atol=1e-12)
