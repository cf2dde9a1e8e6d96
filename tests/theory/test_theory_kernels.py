"""Analytic NNGP/NTK: hand-derived values, structure, quadrature accuracy, Monte Carlo guards."""

from __future__ import annotations

import math

import numpy as np
import pytest
from theory_helpers import mc_outputs, sphere_inputs

from gradstats import Architecture, theory
from gradstats.theory import activations as act
from gradstats.theory import kernels

D = 6


def arch_(**kw) -> Architecture:
    base = dict(width=64, depth=3, activation="relu", sigma_w2=1.7, sigma_b2=0.1,
                parameterization="ntk", input_dim=D)
    base.update(kw)
    return Architecture(**base)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(5, D)) * np.array([0.5, 1, 1.5, 2, 1, 1])


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_relu_he_no_bias_hand_derived(x, depth):
    arch = arch_(depth=depth, sigma_w2=2.0, bias=False)
    sq = np.sum(x * x, axis=1) / D
    k = theory.nngp(arch, x, x64=True)
    t = theory.ntk(arch, x, x64=True)
    np.testing.assert_allclose(np.diag(k), 2 * sq, rtol=1e-12)
    np.testing.assert_allclose(np.diag(t), 2 * (depth + 1) * sq, rtol=1e-12)


def test_relu_one_hidden_layer_arccos(x):
    """depth 1: K = sw2 * arc-cosine(K_1) + sb2, written out by hand."""
    sw2, sb2 = 1.3, 0.2
    arch = arch_(depth=1, sigma_w2=sw2, sigma_b2=sb2)
    k1 = sw2 * x @ x.T / D + sb2
    q = np.diag(k1)
    rho = np.clip(k1 / np.sqrt(np.outer(q, q)), -1, 1)
    th = np.arccos(rho)
    a = np.sqrt(np.outer(q, q)) * (np.sin(th) + (np.pi - th) * rho) / (2 * np.pi)
    dot = (np.pi - th) / (2 * np.pi)
    np.testing.assert_allclose(theory.nngp(arch, x, x64=True), sw2 * a + sb2, rtol=1e-10)
    t1 = sw2 * x @ x.T / D + sb2
    np.testing.assert_allclose(theory.ntk(arch, x, x64=True),
                               sw2 * a + sb2 + sw2 * dot * t1, rtol=1e-10)


@pytest.mark.parametrize(("activation", "parameterization", "bias"), [
    ("relu", "ntk", True), ("relu", "standard", False), ("erf", "standard", True),
    ("tanh", "ntk", False), ("tanh", "standard", True), ("gelu", "ntk", True)])
def test_per_layer_terms_sum_to_ntk(x, activation, parameterization, bias):
    arch = arch_(activation=activation, parameterization=parameterization, bias=bias)
    t = theory.ntk(arch, x, x64=True)
    both = theory.ntk_per_layer(arch, x, x64=True)
    w = theory.ntk_per_layer(arch, x, part="weight", x64=True)
    b = theory.ntk_per_layer(arch, x, part="bias", x64=True)
    assert both.shape == (arch.depth + 1, len(x), len(x))
    np.testing.assert_allclose(both.sum(axis=0), t, rtol=1e-10)
    np.testing.assert_allclose(w + b, both, rtol=1e-12, atol=1e-14)
    if not bias:
        assert np.all(b == 0)
    all_ = theory.layer_kernels(arch, x, x64=True)
    np.testing.assert_allclose(all_["ntk"], t, rtol=1e-12)
    np.testing.assert_allclose(all_["ntk_weight"], w, rtol=1e-12)


def test_standard_vs_ntk_parameterization_terms(x):
    """Standard: layer l's weight term is fan_in/sigma_w^2 times the ntk one, bias term 1."""
    sw2, sb2 = 1.7, 0.3
    ntk_w = theory.ntk_per_layer(arch_(sigma_w2=sw2, sigma_b2=sb2), x, part="weight", x64=True)
    std_w = theory.ntk_per_layer(arch_(sigma_w2=sw2, sigma_b2=sb2, parameterization="standard"),
                                 x, part="weight", x64=True)
    ntk_b = theory.ntk_per_layer(arch_(sigma_w2=sw2, sigma_b2=sb2), x, part="bias", x64=True)
    std_b = theory.ntk_per_layer(arch_(sigma_w2=sw2, sigma_b2=sb2, parameterization="standard"),
                                 x, part="bias", x64=True)
    fan_in = np.array([D] + [64] * 3, float)
    np.testing.assert_allclose(std_w, ntk_w * (fan_in / sw2)[:, None, None], rtol=1e-10)
    np.testing.assert_allclose(std_b, ntk_b / sb2, rtol=1e-10)
    # the NNGP does not depend on the parameterization, the standard NTK on the width
    np.testing.assert_allclose(
        theory.nngp(arch_(parameterization="standard"), x, x64=True),
        theory.nngp(arch_(), x, x64=True), rtol=1e-12)
    wide = theory.ntk(arch_(parameterization="standard", width=128), x, x64=True)
    narrow = theory.ntk(arch_(parameterization="standard"), x, x64=True)
    assert np.all(wide > narrow)
    assert np.allclose(theory.ntk(arch_(width=128), x, x64=True), theory.ntk(arch_(), x, x64=True))


def test_shapes_symmetry_cross_kernel_and_options(x):
    arch = arch_(activation="tanh")
    k = theory.nngp(arch, x, x64=True)
    assert k.shape == (5, 5) and np.allclose(k, k.T)
    k12 = theory.nngp(arch, x, x[:3] * 0.5, x64=True)
    assert k12.shape == (5, 3)
    np.testing.assert_allclose(theory.nngp(arch, x[:3] * 0.5, x, x64=True), k12.T, rtol=1e-9)
    np.testing.assert_allclose(theory.nngp(arch, x, x, x64=True), k, rtol=1e-9)
    # bias=False ignores sigma_b2; output_dim does not change the per-unit kernel
    np.testing.assert_allclose(theory.ntk(arch_(bias=False, sigma_b2=0.7), x, x64=True),
                               theory.ntk(arch_(bias=False, sigma_b2=0.0), x, x64=True))
    np.testing.assert_allclose(theory.ntk(arch_(output_dim=3), x, x64=True),
                               theory.ntk(arch_(), x, x64=True))
    assert theory.nngp(arch, x, x64=True).dtype == np.float64
    assert theory.nngp(arch, x, x64=False).dtype == np.float32
    with pytest.raises(ValueError, match="part"):
        theory.ntk_per_layer(arch, x, part="weights")
    with pytest.raises(ValueError, match="input_dim"):
        theory.nngp(arch, x[:, :3])
    with pytest.raises(ValueError, match="backend"):
        theory.nngp(arch, x, backend="nt")


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_a_symmetric_kernel_integrates_each_pair_once(x, activation):
    """With x2 = x1 the 2-D quadrature runs on the pairs i < j only and is mirrored
    (`layers.activation.Activation._upper_pairs`): exactly symmetric, and each entry equals
    the same pair of the cross-kernel path (x2 given, every (i, j) integrated)."""
    arch = arch_(activation=activation, depth=4)
    quad = act.Quadrature(points=32)
    same = theory.layer_kernels(arch, x, x64=True, quadrature=quad)
    cross = theory.layer_kernels(arch, x, x.copy(), x64=True, quadrature=quad)
    upper = np.triu_indices(len(x), 1)
    for name in ("nngp", "ntk", "ntk_weight", "ntk_bias"):
        a, b = same[name], cross[name]
        np.testing.assert_array_equal(a, np.swapaxes(a, -1, -2), err_msg=name)
        np.testing.assert_allclose(a[..., upper[0], upper[1]], b[..., upper[0], upper[1]],
                                   rtol=1e-12, atol=0, err_msg=name)
    one = theory.layer_kernels(arch, x[:1], x64=True, quadrature=quad)  # no pair i < j:
    # its diagonal from the 1-D maps, as in the larger kernel
    np.testing.assert_allclose(one["ntk"], same["ntk"][:1, :1], rtol=1e-12)


def test_x64_context_is_honoured(x):
    arch = arch_()
    with theory.enable_x64():
        assert theory.ntk(arch, x).dtype == np.float64
    with theory.enable_x64(False):
        assert theory.ntk(arch, x).dtype == np.float32


def test_float32_diagonal_is_accurate():
    """Correlation 1 on the diagonal comes from the 1-D maps (no arccos(1 - eps) error)."""
    x = sphere_inputs(40, 16)
    arch = Architecture(width=8, depth=10, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        input_dim=16)
    ref = theory.ntk(arch, x, x64=True)
    f32 = theory.ntk(arch, x, x64=False)
    assert np.max(np.abs(f32 - ref) / np.abs(ref)) < 1e-5


# --------------------------------------------------------------------------- quadrature
def _reference_pair(name, q1, q2, rho, n=2001):
    """Brute-force 2-D trapezoid in (z1, z2) on [-9.5, 9.5]^2 (numpy)."""
    z = np.linspace(-9.5, 9.5, n)
    w = (z[1] - z[0]) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    phi = act.phi_numpy(name)
    dphi = act.dphi_numpy(name)
    u = math.sqrt(q1) * z
    v = math.sqrt(q2) * (rho * z[:, None] + math.sqrt(1 - rho * rho) * z[None, :])
    ww = w[:, None] * w[None, :]
    return (float(np.sum(ww * phi(u)[:, None] * phi(v))),
            float(np.sum(ww * dphi(u)[:, None] * dphi(v))))


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu"])
def test_quadrature_pair_against_brute_force(name):
    import jax.numpy as jnp

    cases = [(0.05, 0.3, 0.5), (1.0, 1.0, 0.999), (3.0, 0.7, -0.6), (10.0, 25.0, 0.9),
             (30.0, 2.0, 0.2), (1.5, 1.5, 1.0)]
    with theory.enable_x64():
        for q1, q2, rho in cases:
            c = rho * math.sqrt(q1 * q2)
            a, d = act.pair(name, jnp.array([q1]), jnp.array([q2]), jnp.array([c]))
            ra, rd = _reference_pair(name, q1, q2, rho)
            v1, d1 = act.diag(name, jnp.array([q1]))
            v2, d2 = act.diag(name, jnp.array([q2]))
            scale_a = math.sqrt(float(v1[0]) * float(v2[0]))
            scale_d = math.sqrt(float(d1[0]) * float(d2[0]))
            assert abs(float(a[0]) - ra) < 1e-7 * scale_a, (q1, q2, rho, float(a[0]), ra)
            assert abs(float(d[0]) - rd) < 1e-7 * scale_d, (q1, q2, rho, float(d[0]), rd)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "gelu"])
def test_quadrature_diag_against_scipy(name):
    import jax.numpy as jnp
    from scipy import integrate

    phi, dphi = act.phi_numpy(name), act.dphi_numpy(name)
    with theory.enable_x64():
        for q in (0.01, 0.5, 3.0, 40.0):
            v, d = act.diag(name, jnp.array([q]))
            for got, f in ((float(v[0]), phi), (float(d[0]), dphi)):
                def integrand(z, f=f, q=q):
                    return f(math.sqrt(q) * z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
                ref = sum(integrate.quad(integrand, a, a + 1, epsabs=0, epsrel=1e-13, limit=200)[0]
                          for a in range(-12, 12))
                assert abs(got - ref) < 1e-9 * abs(ref), (q, got, ref)


def test_quadrature_reproduces_closed_forms():
    """The 2-D rule applied to erf (smooth) and relu (kinked) vs their closed forms."""
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    q1 = np.exp(rng.uniform(np.log(0.01), np.log(100), 300))
    q2 = np.exp(rng.uniform(np.log(0.01), np.log(100), 300))
    rho = rng.uniform(-1, 1, 300)
    rho[:30] = 1.0
    c = rho * np.sqrt(q1 * q2)
    quad = act.DEFAULT_QUADRATURE
    with theory.enable_x64():
        args = (jnp.asarray(q1), jnp.asarray(q2), jnp.asarray(c))
        for name, tol_a, tol_d in (("erf", 1e-9, 1e-9), ("relu", 1e-3, 1e-2)):
            a_c, d_c = act.pair(name, *args)
            a_q, d_q = act._pair_quad(name, *args, quad, True)
            v1, dd1 = act.diag(name, jnp.asarray(q1))
            v2, dd2 = act.diag(name, jnp.asarray(q2))
            assert np.max(np.abs(a_c - a_q) / np.sqrt(v1 * v2)) < tol_a
            assert np.max(np.abs(d_c - d_q) / np.sqrt(dd1 * dd2)) < tol_d
            vq, dq = act._diag_quad(name, jnp.asarray(q1), quad)
            assert np.max(np.abs(vq - v1) / v1) < 1e-10
            assert np.max(np.abs(dq - dd1) / dd1) < 1e-10


def test_gelu_quadrature_matches_closed_form_kernel():
    """Gelu NNGP map, closed form of Tsuchida et al. (as in neural-tangents) vs our quadrature."""
    import jax.numpy as jnp

    def closed(q1, q2, c):
        p, pp1 = q1 * q2, (q1 + 1) * (q2 + 1)
        delta = np.sqrt(pp1 - c * c)
        ang = np.arctan2(c, delta)
        return ((c * c + p * (pp1 - c * c)) / (pp1 * delta) + c * ang) / (2 * np.pi) + 0.25 * c

    rng = np.random.default_rng(2)
    q1, q2 = rng.uniform(0.1, 5, 50), rng.uniform(0.1, 5, 50)
    c = rng.uniform(-1, 1, 50) * np.sqrt(q1 * q2)
    with theory.enable_x64():
        a, _ = act.pair("gelu", jnp.asarray(q1), jnp.asarray(q2), jnp.asarray(c))
    np.testing.assert_allclose(np.asarray(a), closed(q1, q2, c), rtol=1e-9, atol=1e-12)


def test_gauss_hermite_rule_agrees_for_small_variance():
    import jax.numpy as jnp

    gh = theory.Quadrature(rule="gauss-hermite", points=120)
    with theory.enable_x64():
        q = jnp.array([0.2, 0.6, 1.0])
        c = jnp.array([0.1, -0.3, 0.9])
        a1, d1 = act.pair("tanh", q, q[::-1], c)
        a2, d2 = act.pair("tanh", q, q[::-1], c, gh)
    np.testing.assert_allclose(np.asarray(a1), np.asarray(a2), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.asarray(d1), np.asarray(d2), rtol=1e-8, atol=1e-12)
    with pytest.raises(ValueError):
        theory.Quadrature(rule="simpson")


def test_quadrature_chunking_is_invisible():
    x = sphere_inputs(7, D)
    arch = arch_(activation="softplus", depth=2)
    k1 = theory.nngp(arch, x, x64=True)
    k2 = theory.nngp(arch, x, x64=True, quadrature=theory.Quadrature(chunk=5))
    np.testing.assert_allclose(k1, k2, rtol=1e-13)


def test_leaky_slope_and_derivative_sups_match_the_model():
    import torch

    from gradstats.simulate.model import activation_derivative

    h = torch.linspace(-10, 10, 200001, dtype=torch.float64)
    for name, sup in act.DERIVATIVE_SUP.items():
        measured = float(activation_derivative(name)(h).abs().max())
        assert sup - 1e-4 <= measured <= sup + 1e-12, (name, measured, sup)
        np.testing.assert_allclose(act.dphi_numpy(name)(h.numpy()),
                                   activation_derivative(name)(h).numpy(), atol=1e-12)


def test_diag_recursion_matches_kernel_diagonal(x):
    for name in ("relu", "tanh", "erf"):
        arch = arch_(activation=name)
        rec = theory.diag_recursion(arch, np.sum(x * x, axis=1) / D, x64=True)
        np.testing.assert_allclose(rec["q"][-1], np.diag(theory.nngp(arch, x, x64=True)),
                                   rtol=1e-10)
        assert rec["q"].shape == (arch.n_layers, len(x))
        assert np.all(rec["chi"][-1] == 1.0) and np.all(rec["backward"][-1] == 1.0)


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_mc_nngp_of_torch_networks(parameterization):
    """Output covariance over many `build_model` networks == NNGP, within standard errors."""
    x = sphere_inputs(3, 8, seed=3)
    arch = Architecture(width=128, depth=2, activation="erf", sigma_w2=1.6, sigma_b2=0.2,
                        parameterization=parameterization, input_dim=8, output_dim=2)
    f = mc_outputs(arch, x, seeds=600)  # (S, n, 2): outputs are iid -> 1200 samples
    samples = f.transpose(0, 2, 1).reshape(-1, 3)
    prods = samples[:, :, None] * samples[:, None, :]
    mean = prods.mean(axis=0)
    se = prods.std(axis=0, ddof=1) / np.sqrt(len(prods))
    k = theory.nngp(arch, x, x64=True)
    z = (mean - k) / se
    assert np.all(np.abs(z) < 4.5), z


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_mc_empirical_ntk_mean(parameterization):
    """Mean empirical NTK of `build_model` networks == analytic NTK (standard: width-dependent)."""
    import torch

    from gradstats.simulate import build_model

    x = sphere_inputs(2, 8, seed=4)
    arch = Architecture(width=128, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        parameterization=parameterization, input_dim=8)
    xt = torch.tensor(x)
    thetas = []
    for s in range(60):
        model = build_model(arch, s, dtype=torch.float64)
        params = list(model.parameters())
        rows = []
        for i in range(2):
            g = torch.autograd.grad(model(xt[i:i + 1])[0, 0], params)
            rows.append(torch.cat([gi.reshape(-1) for gi in g]))
        j = torch.stack(rows)
        thetas.append((j @ j.T).numpy())
    thetas = np.asarray(thetas)
    mean, se = thetas.mean(0), thetas.std(0, ddof=1) / np.sqrt(len(thetas))
    t = theory.ntk(arch, x, x64=True)
    assert np.all(np.abs(mean - t) < 4 * se + 0.02 * np.abs(t)), (mean, t, se)


def test_kernels_module_lists_backends():
    assert kernels.BACKENDS == ("gradstats", "neural-tangents")
