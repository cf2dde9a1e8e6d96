"""Monte Carlo over finite CNNs against the CNN-GP / CNTK (the theory's external check).

The finite networks are a small pure-torch CNN written here (ntk parameterization, the
contract's layer numbering: Conv, [phi, Conv] x (depth-1), phi, Flatten | GAP, Dense), with
padding done by ``F.pad`` and ``conv{1,2}d(padding=0)``, independent of
`gradstats.theory.conv.ops`; the last test runs the same per-layer NTK check on the
package's own network (`build_model`, the one the sweeps train).

- NNGP: at depth 1 the output covariance equals the NNGP at every width (h_1 is exactly
  Gaussian), so mean_nets f(x_i) f(x_j) is an unbiased estimate; z-scores use the sample
  standard error of the products. At depth 2 and 64 channels the finite-width bias is O(1/C),
  below the Monte Carlo error. A wrong prediction (the other readout's kernel) is rejected
  by the same test, and the false-alarm rate over independent replications is binomial at
  the nominal level.
- CNTK: the empirical per-layer NTK (gradients of f wrt each layer's raw weights and biases)
  of wide single networks, averaged over seeds, vs ``ntk_weight`` / ``ntk_bias``, with the
  standard error across seeds; and the per-layer backward signal sum_c mean_p (df/dh_l)^2
  vs `conv_diag_recursion`'s ``backward``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
F = torch.nn.functional

from gradstats import Architecture, theory  # noqa: E402

SW2, SB2 = 1.8, 0.15
Z_FAMILY = 4.0  # |z| threshold for a handful of kernel entries (two-sided p ~ 6e-5 each)


def _arch(readout: str, depth: int, padding: str = "SAME", d: int = 2) -> Architecture:
    return Architecture(width=16, depth=depth, activation="relu", sigma_w2=SW2, sigma_b2=SB2,
                        architecture="cnn", kernel_size=3, padding=padding, readout=readout)


def _pad(a, k: int, padding: str, d: int):
    if padding == "VALID":
        return a
    lo, hi = (k - 1) // 2, k // 2
    return F.pad(a, (lo, hi) * d, mode="circular" if padding == "CIRCULAR" else "constant")


def _conv(a, w, k: int, padding: str, groups: int = 1):
    d = a.ndim - 2
    conv = F.conv1d if d == 1 else F.conv2d
    return conv(_pad(a, k, padding, d), w, groups=groups)


def _ensemble_outputs(arch: Architecture, x: np.ndarray, nets: int, channels: int,
                      gen: torch.Generator) -> np.ndarray:
    """f(x) of ``nets`` independent CNNs (grouped convolutions), shape (n, nets)."""
    k, pad = arch.kernel_size, arch.padding
    xt = torch.as_tensor(x, dtype=torch.float64)
    n, c_in = xt.shape[:2]
    d = xt.ndim - 2
    sw, sb = math.sqrt(SW2), math.sqrt(SB2)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    a = xt.repeat(1, nets, *([1] * d))
    fan = c_in
    for layer in range(arch.depth):
        if layer:
            a = torch.relu(a)
        w = randn(nets * channels, fan, *([k] * d))
        b = randn(nets * channels).reshape(1, -1, *([1] * d))
        a = sw / math.sqrt(fan * k**d) * _conv(a, w, k, pad, groups=nets) + sb * b
        fan = channels
    a = torch.relu(a).reshape(n, nets, channels, -1)
    pooled = a.reshape(n, nets, -1) if arch.readout == "flatten" else a.mean(dim=-1)
    v = randn(nets, pooled.shape[-1])
    f = sw / math.sqrt(pooled.shape[-1]) * torch.einsum("inp,np->in", pooled, v)
    return (f + sb * randn(nets)).numpy()


def _z_scores(f: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """z of mean_nets f_i f_j against ``kernel``, upper triangle incl. the diagonal."""
    iu = np.triu_indices(f.shape[0])
    prods = (f[:, None, :] * f[None, :, :])[iu]  # (pairs, nets)
    se = prods.std(axis=1, ddof=1) / math.sqrt(prods.shape[1])
    return (prods.mean(axis=1) - kernel[iu]) / se


IMAGES_2D = np.random.default_rng(3).normal(size=(3, 1, 6, 6))
IMAGES_1D = np.random.default_rng(4).normal(size=(3, 2, 9))


@pytest.mark.parametrize("readout,padding,x", [
    ("flatten", "SAME", IMAGES_2D), ("gap", "SAME", IMAGES_2D), ("gap", "CIRCULAR", IMAGES_1D),
    ("flatten", "VALID", IMAGES_1D)])
def test_depth_one_output_covariance_is_the_nngp_and_a_wrong_kernel_is_rejected(readout, padding,
                                                                                 x):
    arch = _arch(readout, 1, padding)
    f = _ensemble_outputs(arch, x, nets=6000, channels=8, gen=torch.Generator().manual_seed(0))
    z = _z_scores(f, theory.nngp(arch, x, x64=True))
    assert np.max(np.abs(z)) < Z_FAMILY, z
    other = _arch("gap" if readout == "flatten" else "flatten", 1, padding)
    z_wrong = _z_scores(f, theory.nngp(other, x, x64=True))
    assert np.max(np.abs(z_wrong)) > Z_FAMILY, z_wrong


def test_false_alarm_rate_is_nominal():
    """30 independent replications at depth 1 (the NNGP exact): the number of replications
    whose Bonferroni family test rejects at alpha = 0.05 is consistent with Binomial(30, 0.05)
    (or fewer: Bonferroni is conservative)."""
    arch = _arch("gap", 1)
    kernel = theory.nngp(arch, IMAGES_2D, x64=True)
    pairs = 6
    z_crit = stats.norm.isf(0.05 / (2 * pairs))
    gen = torch.Generator().manual_seed(1)
    rejections = sum(
        int(np.max(np.abs(_z_scores(_ensemble_outputs(arch, IMAGES_2D, 1500, 8, gen), kernel)))
            > z_crit) for _ in range(30))
    assert stats.binom.sf(rejections - 1, 30, 0.05) > 1e-3, rejections


@pytest.mark.slow
def test_wide_depth_two_output_covariance_agrees():
    arch = _arch("gap", 2)
    gen = torch.Generator().manual_seed(2)
    f = np.concatenate([_ensemble_outputs(arch, IMAGES_2D, 100, 64, gen) for _ in range(20)],
                       axis=1)
    z = _z_scores(f, theory.nngp(arch, IMAGES_2D, x64=True))
    assert np.max(np.abs(z)) < Z_FAMILY, z


def _empirical_ntk(arch: Architecture, x: np.ndarray, channels: int, seed: int):
    """Per-layer empirical NTK of one CNN: weight and bias parts (L, n, n), and the
    backward signal sum_c mean_p (df/dh_l)^2 per layer and image (depth, n)."""
    gen = torch.Generator().manual_seed(seed)
    k, pad = arch.kernel_size, arch.padding
    xt = torch.as_tensor(x, dtype=torch.float64)
    n, c_in = xt.shape[:2]
    d = xt.ndim - 2
    sw, sb = math.sqrt(SW2), math.sqrt(SB2)
    params = []
    fan = c_in
    for _ in range(arch.depth):
        params.append((torch.randn(channels, fan, *([k] * d), generator=gen, dtype=torch.float64),
                       torch.randn(channels, generator=gen, dtype=torch.float64)))
        fan = channels
    n_pixels = int(np.prod(x.shape[2:]))
    fan = channels * n_pixels if arch.readout == "flatten" else channels
    params.append((torch.randn(fan, generator=gen, dtype=torch.float64),
                   torch.randn((), generator=gen, dtype=torch.float64)))
    for w, b in params:
        w.requires_grad_(True)
        b.requires_grad_(True)
    grads_w, grads_b, backward = [], [], []
    for i in range(n):
        a, streams = xt[i:i + 1], []
        fan_c = c_in
        for layer, (w, b) in enumerate(params[:-1]):
            if layer:
                a = torch.relu(a)
            a = sw / math.sqrt(fan_c * k**d) * _conv(a, w, k, pad) + sb * b.reshape(1, -1,
                                                                                  *([1] * d))
            a.retain_grad()
            streams.append(a)
            fan_c = channels
        h = torch.relu(a).reshape(channels, -1)
        pooled = h.reshape(-1) if arch.readout == "flatten" else h.mean(dim=-1)
        w, b = params[-1]
        f = sw / math.sqrt(pooled.numel()) * pooled @ w + sb * b
        f.backward()
        grads_w.append([p[0].grad.reshape(-1).clone() for p in params])
        grads_b.append([p[1].grad.reshape(-1).clone() for p in params])
        backward.append([float((s.grad**2).sum() / s.grad[0, 0].numel()) for s in streams])
        for p in params:
            p[0].grad = None
            p[1].grad = None
    layers = len(params)
    tw = np.array([[[float(grads_w[i][l] @ grads_w[j][l]) for j in range(n)] for i in range(n)]
                   for l in range(layers)])
    tb = np.array([[[float(grads_b[i][l] @ grads_b[j][l]) for j in range(n)] for i in range(n)]
                   for l in range(layers)])
    return tw, tb, np.array(backward).T


@pytest.mark.slow
@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_wide_empirical_ntk_per_layer_agrees_with_the_cntk(readout):
    """t-tests over seeds (Student t with seeds - 1 dof, Bonferroni over every entry tested at
    a family level of 1%); the readout bias term sigma_b^2 is deterministic and must match
    exactly."""
    arch = _arch(readout, 2)
    x = IMAGES_2D
    seeds = 10
    runs = [_empirical_ntk(arch, x, channels=256, seed=s) for s in range(seeds)]
    theory_k = theory.layer_kernels(arch, x, x64=True)
    back = theory.conv_diag_recursion(arch, x, x64=True)["backward"][:-1]  # the conv layers
    iu = np.triu_indices(x.shape[0])
    measured = {
        "ntk_weight": np.stack([r[0][:, iu[0], iu[1]] for r in runs]),
        "ntk_bias": np.stack([r[1][:-1][:, iu[0], iu[1]] for r in runs]),  # random part
        "ntk": np.stack([(r[0].sum(0) + r[1].sum(0))[iu] for r in runs]),
        "backward": np.stack([r[2] for r in runs])}
    predicted = {"ntk_weight": theory_k["ntk_weight"][:, iu[0], iu[1]],
                 "ntk_bias": theory_k["ntk_bias"][:-1][:, iu[0], iu[1]],
                 "ntk": theory_k["ntk"][iu], "backward": back}
    entries = sum(v[0].size for v in measured.values())
    t_crit = stats.t.isf(0.01 / (2 * entries), seeds - 1)

    def t(m, p):
        return (m.mean(axis=0) - p) / (m.std(axis=0, ddof=1) / math.sqrt(seeds))

    for name in measured:
        ts = t(measured[name], predicted[name])
        assert np.max(np.abs(ts)) < t_crit, (name, ts, t_crit)
    for r in runs:  # d f / d b_readout = sigma_b: exactly sigma_b^2 for every pair
        np.testing.assert_allclose(r[1][-1], SB2, rtol=1e-12)
    np.testing.assert_allclose(theory_k["ntk_bias"][-1], SB2, rtol=1e-12)
    wrong = theory.ntk(_arch("gap" if readout == "flatten" else "flatten", 2), x, x64=True)
    assert np.max(np.abs(t(measured["ntk"], wrong[iu]))) > t_crit


@pytest.mark.slow
@pytest.mark.parametrize("readout", ["flatten", "gap"])
def test_the_packages_own_cnn_has_the_cntk_per_layer(readout):
    """The same per-layer t-tests on the network the sweeps train (`build_model` through
    `engine.empirical_ntk`, float64, 256 channels): its per-layer empirical NTK (weights +
    bias of layer l) averaged over seeds is the CNTK's per-layer term; the other readout's
    kernel is rejected."""
    import dataclasses

    from gradstats.simulate import engine

    arch = _arch(readout, 2)
    x = IMAGES_2D
    seeds = 10
    wide = dataclasses.replace(arch, width=256)
    runs = np.stack([engine.empirical_ntk(wide, x, seed=s, per_layer=True, dtype="float64")
                     for s in range(seeds)])  # (seeds, L, n, n)
    k = theory.layer_kernels(arch, x, x64=True)
    predicted = k["ntk_weight"] + k["ntk_bias"]  # (L, n, n)
    iu = np.triu_indices(x.shape[0])
    measured = runs[:, :, iu[0], iu[1]]
    pred = predicted[:, iu[0], iu[1]]
    t_crit = stats.t.isf(0.01 / (2 * measured[0].size), seeds - 1)

    def t(m, p):
        return (m.mean(axis=0) - p) / (m.std(axis=0, ddof=1) / math.sqrt(seeds))

    assert np.max(np.abs(t(measured, pred))) < t_crit
    wrong = theory.ntk(_arch("gap" if readout == "flatten" else "flatten", 2), x, x64=True)
    assert np.max(np.abs(t(measured.sum(1), wrong[iu]))) > t_crit
