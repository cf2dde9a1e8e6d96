"""Kernels of residual and LayerNorm networks against closed forms that do not come from the
code under test, and against Monte Carlo over the finite torch networks.

The reference (`_reference`) is the composition of DESIGN.md written out in numpy with the
arc-cosine (relu, Cho & Saul 2009) and arcsine (erf, Williams 1997) kernels:

    h_1 = dense(x);  h_l = h_{l-1} + alpha dense(phi(N(h_{l-1})))  (residual, l = 2..depth)
    readout f = dense(phi(N(h_depth))),  N = LayerNorm or identity,

K_out = K_in + alpha^2 K_branch and Theta_out = Theta_in + alpha^2 Theta_branch for a residual
block; N divides K and Theta by sqrt(K(x,x) K(x',x')).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gradstats import theory
from gradstats.simulate import build_model, engine
from gradstats.spec import Architecture

D = 6
X = np.random.default_rng(5).normal(size=(5, D)) * 1.5  # |x|^2/d far from 1: LN matters
X2 = np.random.default_rng(6).normal(size=(3, D)) * 0.7


def _arch(**kw) -> Architecture:
    base = dict(width=64, depth=4, activation="relu", sigma_w2=1.8, sigma_b2=0.2, input_dim=D)
    return Architecture(**{**base, **kw})


def _pair(name: str, k: np.ndarray, q1: np.ndarray, q2: np.ndarray):
    """E[phi(u) phi(v)], E[phi'(u) phi'(v)] for (u, v) ~ N(0, [[q1, k], [k, q2]])."""
    qq = np.outer(q1, q2)
    if name == "relu":
        c = np.clip(k / np.sqrt(qq), -1.0, 1.0)
        th = np.arccos(c)
        return (np.sqrt(qq) / (2 * np.pi) * (np.sin(th) + (np.pi - th) * c),
                (np.pi - th) / (2 * np.pi))
    if name == "erf":
        s = np.outer(1 + 2 * q1, 1 + 2 * q2)
        return 2 / np.pi * np.arcsin(2 * k / np.sqrt(s)), 4 / np.pi / np.sqrt(s - 4 * k * k)
    raise ValueError(name)


def _reference(arch: Architecture, x1: np.ndarray, x2: np.ndarray | None = None,
               alpha: float | None = None, layer_norm: bool | None = None):
    """(NNGP, NTK, per-layer NTK (L, n1, n2)) of ``arch``; ``alpha`` / ``layer_norm``
    override the architecture's (for the negative checks)."""
    alpha = arch.alpha if alpha is None else alpha
    layer_norm = (arch.norm == "layer") if layer_norm is None else layer_norm
    x = x1 if x2 is None else np.vstack([x1, x2])  # one matrix: diagonals and cross terms
    ntk = arch.parameterization == "ntk"
    sw2, sb2, bias = arch.sigma_w2, arch.sigma_b2 if arch.bias else 0.0, float(arch.bias)

    def dense(a, fan_in, incoming=None, dot=None):
        """K, own term (weight + bias) of a dense layer on input kernel a."""
        k = sw2 * a + sb2
        own = (sw2 if ntk else fan_in) * a + (sb2 if ntk else 1.0) * bias
        return k, own

    k0 = x @ x.T / D
    k, theta1 = dense(k0, D)
    terms = [theta1]  # each layer's contribution, carried to the current stream
    for l in range(2, arch.n_layers + 1):
        q = np.diag(k).copy()
        ratio = 1 / np.sqrt(np.outer(q + 1e-12, q + 1e-12)) if layer_norm else 1.0
        kn = k * ratio
        qn = np.diag(kn).copy()
        a, dd = _pair(arch.activation, kn, qn, qn)
        kz, own = dense(a, arch.width)
        carry = sw2 * dd * ratio  # d Theta_z / d Theta_in
        if arch.residual and l <= arch.depth:
            k = k + alpha**2 * kz
            terms = [t * (1 + alpha**2 * carry) for t in terms] + [alpha**2 * own]
        else:
            k = kz
            terms = [t * carry for t in terms] + [own]
    per_layer = np.stack(terms)
    n1 = len(x1)
    cut = (slice(None), slice(None)) if x2 is None else (slice(0, n1), slice(n1, None))
    return k[cut], per_layer.sum(0)[cut], per_layer[(slice(None), *cut)]


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


# Depth 4 throughout: the three residual scales share one structure (alpha is a traced value),
# so each (activation, parameterization, bias) compiles three kernels, not five.
CASES = [dict(residual=True, residual_scale=1.0), dict(residual=True, residual_scale=0.8),
         dict(residual=True, residual_scale="1/sqrt(depth)"), dict(norm="layer"),
         dict(norm="layer", residual=True, residual_scale=0.7)]
XX = np.vstack([X, X2])  # x2=None on the stacked inputs: diagonals and cross terms at once


@pytest.mark.parametrize(("activation", "parameterization", "bias"),
                         [("relu", "ntk", True), ("relu", "ntk", False),
                          ("relu", "standard", True), ("relu", "standard", False),
                          ("erf", "ntk", True), ("erf", "standard", False)])
def test_kernels_match_closed_form_compositions(activation, parameterization, bias):
    for case in CASES:
        arch = _arch(activation=activation, parameterization=parameterization, bias=bias, **case)
        k_ref, t_ref, layers_ref = _reference(arch, XX)
        lk = theory.layer_kernels(arch, XX, x64=True)
        assert _rel(lk["nngp"], k_ref) < 1e-10, case
        assert _rel(lk["ntk"], t_ref) < 1e-10, case
        assert _rel(lk["ntk_weight"] + lk["ntk_bias"], layers_ref) < 1e-10, case
    # negative: the same comparison rejects a wrong alpha and a missing normalization
    for wrong in (_reference(arch, XX, alpha=0.75), _reference(arch, XX, layer_norm=False)):
        assert _rel(lk["ntk"], wrong[1]) > 1e-3 and _rel(lk["nngp"], wrong[0]) > 1e-3


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_cross_kernels_match_closed_form(parameterization):
    """The x2 path (no shared diagonal) of nngp / ntk / ntk_per_layer."""
    arch = _arch(parameterization=parameterization, norm="layer", residual=True,
                 residual_scale="1/sqrt(depth)")
    k_ref, t_ref, layers_ref = _reference(arch, X, X2)
    assert _rel(theory.nngp(arch, X, X2, x64=True), k_ref) < 1e-10
    assert _rel(theory.ntk(arch, X, X2, x64=True), t_ref) < 1e-10
    assert _rel(theory.ntk_per_layer(arch, X, X2, x64=True), layers_ref) < 1e-10
    assert _rel(theory.ntk(arch, X, X2, x64=True), _reference(arch, X, X2, alpha=0.55)[1]) > 1e-3


@pytest.mark.parametrize("alpha", [1.0, 0.5, "1/sqrt(depth)"])
def test_residual_relu_length_map(alpha):
    """q_1 = sw2 q0 + sb2; q_l = q_{l-1} + alpha^2 (sw2 q_{l-1}/2 + sb2) (l = 2..depth);
    readout q_L = sw2 q_depth / 2 + sb2."""
    arch = _arch(residual=True, residual_scale=alpha, depth=5)
    a2, sw2, sb2 = arch.alpha**2, arch.sigma_w2, arch.sigma_b2
    q0 = np.sum(X**2, axis=1) / D
    qs = [sw2 * q0 + sb2]
    for _ in range(2, arch.depth + 1):
        qs.append(qs[-1] + a2 * (sw2 * qs[-1] / 2 + sb2))
    qs.append(sw2 * qs[-1] / 2 + sb2)
    out = theory.diag_recursion(arch, q0, x64=True)
    np.testing.assert_allclose(out["q"], np.stack(qs), rtol=1e-12)
    # backward: chi of a residual block is 1 + alpha^2 sw2 / 2, of the readout sw2 / 2
    chi = [1 + a2 * sw2 / 2] * (arch.depth - 1) + [sw2 / 2, 1.0]
    np.testing.assert_allclose(out["chi"], np.tile(np.array(chi)[:, None], (1, len(q0))),
                               rtol=1e-12)
    np.testing.assert_allclose(np.diag(theory.nngp(arch, X, x64=True)), qs[-1], rtol=1e-12)
    # negative: alpha instead of alpha^2 in the map is rejected
    wrong = qs[0] + arch.alpha * (sw2 * qs[0] / 2 + sb2)
    if arch.alpha != 1.0:
        assert not np.allclose(out["q"][1], wrong, rtol=1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_layer_norm_fixes_the_relu_length(residual):
    """LayerNorm gives q = 1 before phi, so every dense layer after the first sees
    E[relu(z)^2] = 1/2: plain hidden q_l = sw2/2 + sb2 exactly; with residual blocks
    q_l = q_{l-1} + alpha^2 (sw2/2 + sb2) grows linearly."""
    arch = _arch(norm="layer", residual=residual, residual_scale=0.6, depth=5)
    sw2, sb2, a2 = arch.sigma_w2, arch.sigma_b2, arch.alpha**2
    q0 = np.sum(X**2, axis=1) / D
    q = theory.diag_recursion(arch, q0, x64=True)["q"]
    np.testing.assert_allclose(q[0], sw2 * q0 + sb2, rtol=1e-12)
    fixed = sw2 / 2 + sb2
    for l in range(2, arch.depth + 1):
        expected = q[l - 2] + a2 * fixed if residual else np.full_like(q0, fixed)
        np.testing.assert_allclose(q[l - 1], expected, rtol=1e-10)
    np.testing.assert_allclose(q[-1], fixed, rtol=1e-10)  # readout after LN
    # negative: the same network without LayerNorm does not have that length
    plain = theory.diag_recursion(dataclasses.replace(arch, norm="none"), q0, x64=True)["q"]
    assert not np.allclose(plain[-1], fixed, rtol=1e-3)


def test_layer_norm_kernels_are_scale_invariant_without_bias():
    """Without bias the first stream scales with |x|; LayerNorm removes the scale, so the
    NNGP and NTK after it do not depend on it (but the input layer's NTK term does). The
    same network without LayerNorm is homogeneous of degree 2 (relu) instead."""
    arch = _arch(norm="layer", bias=False, residual=False)
    k1, k3 = theory.nngp(arch, X, x64=True), theory.nngp(arch, 3 * X, x64=True)
    np.testing.assert_allclose(k3, k1, rtol=1e-10)
    plain = dataclasses.replace(arch, norm="none")
    np.testing.assert_allclose(theory.nngp(plain, 3 * X, x64=True),
                               9 * theory.nngp(plain, X, x64=True), rtol=1e-10)
    assert not np.allclose(theory.nngp(plain, 3 * X, x64=True),
                           theory.nngp(plain, X, x64=True), rtol=1e-3)


@pytest.mark.parametrize("kw", [dict(residual=True, residual_scale=0.5), dict(norm="layer"),
                                dict(norm="layer", residual=True)])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_per_layer_split_sums_to_the_ntk(kw, parameterization):
    arch = _arch(activation="erf", parameterization=parameterization, **kw)
    theta = theory.ntk(arch, X, X2, x64=True)  # its own pass ("ntk" mode)
    w = theory.ntk_per_layer(arch, X, X2, part="weight", x64=True)
    b = theory.ntk_per_layer(arch, X, X2, part="bias", x64=True)
    both = theory.ntk_per_layer(arch, X, X2, x64=True)
    assert both.shape == (arch.n_layers, len(X), len(X2))
    np.testing.assert_allclose(both.sum(0), theta, rtol=1e-10)
    np.testing.assert_allclose(w + b, both, rtol=1e-12, atol=1e-15)
    assert np.all(b[0] > 0) and np.all(np.abs(w) > 0)
    # negative: dropping any one layer's share breaks the sum
    for l in range(arch.n_layers):
        assert not np.allclose(np.delete(both, l, axis=0).sum(0), theta, rtol=1e-6)


def test_per_layer_split_closed_form_on_the_diagonal():
    """Residual relu, ntk parameterization: layer l's share of Theta(x, x) is its own term
    T_l times the chi of every block after it (1 + alpha^2 sw2/2 per residual block, sw2/2
    at the readout); T_1 = sw2 q0 + sb2, T_l = alpha^2 (sw2 q_{l-1}/2 + sb2)."""
    arch = _arch(residual=True, residual_scale=0.5, depth=4)
    a2, sw2, sb2 = arch.alpha**2, arch.sigma_w2, arch.sigma_b2
    q0 = np.sum(X**2, axis=1) / D
    q = theory.diag_recursion(arch, q0, x64=True)["q"]
    own = [sw2 * q0 + sb2] + [a2 * (sw2 * q[l - 2] / 2 + sb2) for l in range(2, 5)]
    own.append(sw2 * q[3] / 2 + sb2)
    chi = [1 + a2 * sw2 / 2] * 3 + [sw2 / 2]
    expected = [own[l] * np.prod(chi[l:]) for l in range(4)] + [own[4]]
    got = np.diagonal(theory.ntk_per_layer(arch, X, x64=True), axis1=1, axis2=2)
    np.testing.assert_allclose(got, np.stack(expected), rtol=1e-10)


def test_batch_norm_has_no_pair_kernel():
    with pytest.raises(NotImplementedError, match="batch"):
        theory.nngp(_arch(norm="batch"), X, x64=True)


# --- Monte Carlo over the finite torch networks -------------------------------------------

MC_CASES = {"residual": dict(residual=True, residual_scale=0.7),
            "layer_norm": dict(norm="layer"),
            "layer_norm_residual": dict(norm="layer", residual=True,
                                        residual_scale="1/sqrt(depth)")}


def _mc_arch(width: int, output_dim: int = 1, **kw) -> Architecture:
    return Architecture(width=width, depth=3, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        input_dim=D, output_dim=output_dim, **kw)


def _ntk_error(arch: Architecture, seeds) -> np.ndarray:
    theta = theory.ntk(arch, X[:4], x64=True)
    return np.array([np.abs(engine.empirical_ntk(arch, X[:4], seed=s, dtype="float64") - theta
                            ).mean() / np.abs(theta).mean() for s in seeds])


@pytest.mark.parametrize("name", list(MC_CASES))
def test_empirical_ntk_converges_like_one_over_sqrt_width(name):
    """Mean relative error of the empirical NTK (float64) over seeds: 24 networks of width
    128, 8 of width 2048. A 1/sqrt(width) law shrinks it by 4; demand a ratio in (2, 8)
    (the 1/sqrt(n) fluctuations of one seed are broad: 256 vs 2048 would expect 2.8 with a
    spread that reaches 2) and a small error at width 2048. A constant bias (a wrong kernel)
    would stall the ratio near 1."""
    torch.set_num_threads(1)
    small = _ntk_error(_mc_arch(128, **MC_CASES[name]), range(24)).mean()
    large = _ntk_error(_mc_arch(2048, **MC_CASES[name]), range(8)).mean()
    assert large < 0.08, (small, large)
    assert 2.0 < small / large < 8.0, (small, large)


@pytest.mark.parametrize("name", list(MC_CASES))
def test_mean_output_product_matches_the_nngp(name):
    """E[f(x) f(x')] over seeds (and the 256 i.i.d. readout units) is the NNGP: within 4
    Monte Carlo standard errors (per-seed means are the independent samples); the NNGP of a
    wrong alpha or of the network without LayerNorm is rejected."""
    torch.set_num_threads(1)
    arch = _mc_arch(1024, output_dim=256, **MC_CASES[name])
    xt, seeds = torch.tensor(X[:4]), 24
    samples = []
    with torch.no_grad():
        for s in range(seeds):
            f = build_model(arch, s, dtype=torch.float64)(xt).numpy()
            samples.append(f @ f.T / arch.output_dim)
    samples = np.array(samples)
    mean, se = samples.mean(0), samples.std(0, ddof=1) / math.sqrt(seeds)
    k = theory.nngp(arch, X[:4], x64=True)
    assert np.max(np.abs(mean - k) / se) < 4.0
    wrongs = []
    if arch.residual and arch.norm == "none":  # (after LN alpha moves the NNGP far less)
        wrongs.append(dataclasses.replace(arch, residual_scale=1.0))
    if arch.norm == "layer":
        wrongs.append(dataclasses.replace(arch, norm="none"))
    for wrong in wrongs:
        assert np.max(np.abs(mean - theory.nngp(wrong, X[:4], x64=True)) / se) > 6.0, wrong
