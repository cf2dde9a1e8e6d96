"""Empirical NTK: Gram trick vs full Jacobian contraction, and convergence to the analytic NTK."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev, vmap

from gradstats.simulate import build_model, empirical_ntk, engine
from gradstats.spec import ACTIVATIONS, PARAMETERIZATIONS, Architecture

D_IN, WIDTH, DEPTH = 4, 6, 2
RTOL, ATOL = 1e-10, 1e-12


def jacobian_ntk(model, x1, x2):
    """Theta_l[i, j, k, m] = <d f_ik / d theta_l, d f_jm / d theta_l>: (L, n1, n2, K, K)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),))[0]

    j1 = vmap(jacrev(f), in_dims=(None, 0))(params, x1)
    j2 = vmap(jacrev(f), in_dims=(None, 0))(params, x2)
    n1, n2, k = x1.shape[0], x2.shape[0], model.arch.output_dim
    out = []
    for l in range(model.arch.n_layers):
        names = [f"weights.{l}"] + ([f"biases.{l}"] if model.biases is not None else [])
        a = torch.cat([j1[n].reshape(n1, k, -1) for n in names], -1)
        b = torch.cat([j2[n].reshape(n2, k, -1) for n in names], -1)
        out.append(torch.einsum("ikp,jmp->ijkm", a, b))
    return torch.stack(out)


def make_model(activation="relu", parameterization="ntk", bias=True, out_dim=1, seed=0):
    arch = Architecture(width=WIDTH, depth=DEPTH, activation=activation, sigma_w2=1.5,
                        sigma_b2=0.3, parameterization=parameterization, bias=bias,
                        input_dim=D_IN, output_dim=out_dim)
    return build_model(arch, seed, dtype=torch.float64)


def inputs(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_ntk_matches_jacobian_contraction(activation: str, parameterization: str):
    x1, x2 = inputs(5, 1), inputs(3, 2)
    for bias in (True, False):
        for out_dim in (1, 3):
            model = make_model(activation, parameterization, bias, out_dim)
            ref = jacobian_ntk(model, x1, x2)  # (L, 5, 3, K, K)
            traced = ref.diagonal(dim1=-2, dim2=-1).sum(-1)
            full = engine.empirical_ntk_model(model, x1, x2, per_layer=True, classes="full")
            torch.testing.assert_close(full, ref, rtol=RTOL, atol=ATOL)
            got = engine.empirical_ntk_model(model, x1, x2, per_layer=True)
            torch.testing.assert_close(got, traced, rtol=RTOL, atol=ATOL)
            torch.testing.assert_close(engine.empirical_ntk_model(model, x1, x2),
                                       traced.sum(0), rtol=RTOL, atol=ATOL)
            mean = engine.empirical_ntk_model(model, x1, x2, classes="mean")
            torch.testing.assert_close(mean, traced.sum(0) / out_dim, rtol=RTOL, atol=ATOL)


def test_ntk_square_default_and_chunked():
    model = make_model("tanh", out_dim=2)
    x = inputs(6, 3)
    ref = jacobian_ntk(model, x, x).sum(0).diagonal(dim1=-2, dim2=-1).sum(-1)
    theta = engine.empirical_ntk_model(model, x)
    torch.testing.assert_close(theta, ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(theta, theta.T)
    chunked = engine.empirical_ntk_model(model, x, chunk_size=4)
    torch.testing.assert_close(chunked, ref, rtol=RTOL, atol=ATOL)


def test_empirical_ntk_wrapper_builds_model_at_init():
    arch = Architecture(width=8, depth=1, activation="erf", sigma_b2=0.2, input_dim=D_IN,
                        output_dim=2)
    x = np.random.default_rng(0).standard_normal((4, D_IN))
    model = build_model(arch, seed=5, dtype=torch.float64)
    ref = jacobian_ntk(model, torch.as_tensor(x), torch.as_tensor(x)).numpy()
    got = empirical_ntk(arch, x, seed=5, per_layer=True, dtype="float64")
    assert isinstance(got, np.ndarray) and got.shape == (2, 4, 4)
    np.testing.assert_allclose(got, np.trace(ref, axis1=-2, axis2=-1), rtol=1e-10)
    full = empirical_ntk(arch, x, seed=5, classes="full", dtype="float64")
    np.testing.assert_allclose(full, ref.sum(0), rtol=1e-10, atol=1e-12)
    f32 = empirical_ntk(arch, x.astype(np.float32), seed=5)
    assert f32.dtype == np.float32 and f32.shape == (4, 4)


def relu_ntk(x: np.ndarray, depth: int, sw2: float, sb2: float) -> np.ndarray:
    """Analytic NTK of a relu MLP (ntk parameterization) by the arc-cosine recursion."""
    k = sw2 * x @ x.T / x.shape[1] + sb2
    theta = k.copy()
    for _ in range(depth):
        d = np.sqrt(np.diag(k))
        norm = np.outer(d, d)
        rho = np.clip(k / norm, -1.0, 1.0)
        np.fill_diagonal(rho, 1.0)  # exact: arccos is ill-conditioned at 1
        angle = np.arccos(rho)
        e_phi = norm * (np.sin(angle) + (np.pi - angle) * np.cos(angle)) / (2 * np.pi)
        e_dphi = (np.pi - angle) / (2 * np.pi)
        k = sw2 * e_phi + sb2
        theta = k + sw2 * e_dphi * theta
    return theta


def test_relu_ntk_recursion_closed_form_one_hidden_layer():
    # One hidden layer, no bias, q = sw2 |x|^2 / d. Same input (angle 0): E[relu relu] = q/2,
    # E[relu' relu'] = 1/2, so Theta = sw2 q/2 + sw2 q/2. Orthogonal inputs (angle pi/2):
    # K_1 = 0, E[relu relu] = sqrt(q q')/(2 pi), so Theta = sw2 sqrt(q q')/(2 pi).
    sw2 = 1.5
    x = np.array([[1.0, 2.0, -1.0], [2.0, -1.0, 0.0]])
    q = sw2 * (x * x).sum(1) / 3
    theta = relu_ntk(x, 1, sw2, 0.0)
    np.testing.assert_allclose(np.diag(theta), sw2 * q, rtol=1e-12)
    np.testing.assert_allclose(theta[0, 1], sw2 * np.sqrt(q[0] * q[1]) / (2 * np.pi), rtol=1e-12)


def test_empirical_ntk_converges_to_analytic_at_rate_one_over_sqrt_width():
    depth, sw2, sb2, n, d = 2, 2.0, 0.1, 6, 4
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    x *= np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True)
    target = relu_ntk(x, depth, sw2, sb2)
    widths = np.array([64, 128, 256, 512, 1024])
    seeds = range(6)
    rms = []
    for w in widths:
        arch = Architecture(width=int(w), depth=depth, activation="relu", sigma_w2=sw2,
                            sigma_b2=sb2, input_dim=d)
        errs = [np.linalg.norm(empirical_ntk(arch, x, seed=s, dtype="float64") - target)
                / np.linalg.norm(target) for s in seeds]
        rms.append(np.sqrt(np.mean(np.square(errs))))
    slope = np.polyfit(np.log(widths), np.log(rms), 1)[0]
    print(f"slope {slope:.3f}, rms errors {np.round(rms, 4)}")
    assert -0.8 <= slope <= -0.3, (slope, rms)
    # fluctuations of a depth-2 NTK at width 1024: a few percent, O(1/sqrt(width))
    assert rms[-1] < 5.0 / np.sqrt(widths[-1]), rms


@pytest.mark.nt
def test_ntk_matches_neural_tangents():
    nt = pytest.importorskip("neural_tangents")
    jnp = pytest.importorskip("jax.numpy")
    import jax

    jax.config.update("jax_enable_x64", True)
    arch = Architecture(width=16, depth=2, activation="erf", sigma_w2=1.5, sigma_b2=0.3,
                        input_dim=D_IN, output_dim=2)
    model = build_model(arch, 0, dtype=torch.float64)
    stax = nt.stax
    w_std, b_std = np.sqrt(arch.sigma_w2), np.sqrt(arch.sigma_b2)
    _, apply_fn, _ = stax.serial(stax.Dense(16, w_std, b_std), stax.Erf(),
                                 stax.Dense(16, w_std, b_std), stax.Erf(),
                                 stax.Dense(2, w_std, b_std))
    layers = [(jnp.asarray(w.detach().numpy().T), jnp.asarray(b.detach().numpy()))
              for w, b in zip(model.weights, model.biases, strict=True)]
    params = [layers[0], (), layers[1], (), layers[2]]
    x = inputs(5, 7)
    ntk_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0)
    ref = np.asarray(ntk_fn(jnp.asarray(x.numpy()), None, params))  # (n, n, K, K)
    got = engine.empirical_ntk_model(model, x, classes="full").numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10)
    traced_fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0)
    ref_mean = np.asarray(traced_fn(jnp.asarray(x.numpy()), None, params))  # (n, n)
    got_mean = engine.empirical_ntk_model(model, x, classes="mean").numpy()
    np.testing.assert_allclose(got_mean, ref_mean, rtol=1e-8, atol=1e-10)
