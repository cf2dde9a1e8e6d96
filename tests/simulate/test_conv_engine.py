"""The conv engine (patch Grams / per-example materialization) against torch.func vmap(grad)
and jacrev materialization, for 1-D and 2-D CNNs, SAME/VALID/CIRCULAR, Flatten and GAP."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.func import functional_call, jacrev

from gradstats.simulate import build_model, conv_engine, engine
from gradstats.simulate.engine_estimators import noise_values
from gradstats.spec import Architecture

B, C_IN, WIDTH, DEPTH = 5, 2, 3, 2
F64 = {"rtol": 1e-10, "atol": 1e-12}
# float32: sums of ~1e3 products each (round-off ~ sqrt(n) * 6e-8 relative), scaled by the
# largest entry of the reference
F32_RTOL = 1e-4

CASES = list(itertools.product(((7,), (6, 5)), ("SAME", "VALID", "CIRCULAR"), ("flatten", "gap")))


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1)


def make_case(shape, padding, readout, dtype=torch.float64, parameterization="ntk",
              bias=True, out_dim=2, seed=0, activation="tanh"):
    arch = Architecture(width=WIDTH, depth=DEPTH, activation=activation, sigma_w2=1.7,
                        sigma_b2=0.3, parameterization=parameterization, bias=bias,
                        architecture="cnn", kernel_size=3, padding=padding, readout=readout,
                        input_dim=C_IN, image_shape=shape, output_dim=out_dim)
    model = build_model(arch, seed, dtype=dtype)
    gen = torch.Generator().manual_seed(seed + 7)
    x = torch.randn(B, C_IN, *shape, generator=gen, dtype=dtype)
    y = torch.randn(B, out_dim, generator=gen, dtype=dtype)
    return model, x, y


def materialized(model, x, y):
    """(weight Grams, bias Grams) per layer, (L, B, B), from vmap(grad) per-example grads."""
    w, b = engine.slow_per_example_grads(model, x, y, mse)
    wf = [g.reshape(g.shape[0], -1) for g in w]
    gw = torch.stack([f @ f.T for f in wf])
    gb = torch.stack([f @ f.T for f in b]) if b is not None else torch.zeros_like(gw)
    return gw, gb


def close(got: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> None:
    if dtype == torch.float64:
        torch.testing.assert_close(got, ref, **F64)
    else:
        scale = float(ref.abs().max())
        torch.testing.assert_close(got, ref, rtol=F32_RTOL, atol=F32_RTOL * scale)


def test_patches_reproduce_the_convolution():
    """z_p = W a_p: the unfolded patches times the reshaped kernel give the conv output."""
    for shape, padding, _ in CASES:
        model, x, _ = make_case(shape, padding, "flatten", bias=False)
        op, weight = model.ops[0], model.weights[0]
        z = op.conv(x, weight)  # (B, C, *s')
        a = op.patches(x)  # (B, P, F)
        zp = a @ weight.reshape(weight.shape[0], -1).T  # (B, P, C)
        torch.testing.assert_close(conv_engine.to_pixel_major(z[None])[0], zp, **F64)


@pytest.mark.parametrize(("shape", "padding", "readout"), CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_loss_grams_match_vmap_grad(shape, padding, readout, dtype):
    model, x, y = make_case(shape, padding, readout, dtype=dtype)
    gw, gb = materialized(model, x, y)
    g = engine.layer_grams(model, x, y, mse)
    close(g.weight_part(), gw, dtype)
    close(g.bias_part(), gb, dtype)
    close(engine.per_example_gram(model, x, y, mse), (gw + gb).sum(0), dtype)
    for part, ref in {"weight": gw, "bias": gb, "total": gw + gb}.items():
        got = engine.per_example_grad_sq_norm(model, x, y, mse, part=part)
        close(got, ref.diagonal(dim1=-2, dim2=-1), dtype)
    assert torch.isnan(g.input_grams[:DEPTH]).all()  # conv layers: no input Gram factor


@pytest.mark.parametrize(("shape", "padding", "readout"), CASES[:6:2] + CASES[7::3])
def test_both_routes_agree_with_materialization(shape, padding, readout):
    """Each route on its own (not only the cheaper one) gives the exact Gram and diagonal."""
    model, x, y = make_case(shape, padding, readout)
    gw, _ = materialized(model, x, y)
    s = engine.signals(model, x, y, mse)
    for l in range(DEPTH):
        a, d = s.inputs[l], s.deltas[l]
        for route in ("patch", "materialize"):
            got = s.w_mult2[l] * conv_engine.weight_gram(a, d, a, d, route=route)
            torch.testing.assert_close(got, gw[l], **F64)
            diag = s.w_mult2[l] * conv_engine.weight_sq_norms(a, d, route=route)
            torch.testing.assert_close(diag, gw[l].diagonal(), **F64)


def test_patch_route_in_blocks_equals_one_block(monkeypatch):
    model, x, y = make_case((6, 5), "SAME", "gap")
    s = engine.signals(model, x, y, mse)
    a, d = s.inputs[1], s.deltas[1]
    whole = conv_engine.weight_gram(a, d, a, d, route="patch")
    monkeypatch.setattr(conv_engine, "MAX_BLOCK_ELEMENTS", 1)  # one row per block
    torch.testing.assert_close(conv_engine.weight_gram(a, d, a, d, route="patch"), whole, **F64)


def test_a_wrong_gram_is_caught():
    """The comparison can fail: dropping the cross-pixel terms (p != q) is a different Gram."""
    model, x, y = make_case((6, 5), "SAME", "flatten")
    gw, _ = materialized(model, x, y)
    s = engine.signals(model, x, y, mse)
    a, d = s.inputs[1], s.deltas[1]
    diagonal_pixels = torch.einsum("ipf,jpf,kipc,kjpc->ij", a, a, d, d) * s.w_mult2[1]
    assert not torch.allclose(diagonal_pixels, gw[1], rtol=1e-3)


def jacobian_ntk(model, x1, x2, per_layer=False):
    """J(x1) J(x2)^T per layer from jacrev over all parameters: (L, n1, n2, K, K)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x,))

    j1, j2 = jacrev(f)(params, x1), jacrev(f)(params, x2)
    n = model.arch.n_layers
    out = []
    for l in range(n):
        names = [f"weights.{l}"] + ([f"biases.{l}"] if model.biases is not None else [])
        t = sum(torch.einsum("ik...,jm...->ijkm", j1[k].flatten(2), j2[k].flatten(2))
                for k in names)
        out.append(t)
    return torch.stack(out)


@pytest.mark.parametrize(("shape", "padding", "readout"), CASES[::2])
def test_empirical_ntk_matches_jacobian(shape, padding, readout):
    model, x, _ = make_case(shape, padding, readout, out_dim=3)
    x2 = torch.randn(4, C_IN, *shape, generator=torch.Generator().manual_seed(3),
                     dtype=torch.float64)
    ref = jacobian_ntk(model, x, x2)  # (L, n1, n2, K, K)
    full = engine.empirical_ntk_model(model, x, x2, per_layer=True, classes="full")
    torch.testing.assert_close(full, ref, **F64)
    trace = engine.empirical_ntk_model(model, x, x2, classes="trace")
    torch.testing.assert_close(trace, ref.sum(0).diagonal(dim1=-2, dim2=-1).sum(-1), **F64)
    mean = engine.empirical_ntk_model(model, x, classes="mean")
    ref_same = jacobian_ntk(model, x, x).sum(0).diagonal(dim1=-2, dim2=-1).mean(-1)
    torch.testing.assert_close(mean, ref_same, **F64)


def test_empirical_ntk_wrapper_infers_the_image_shape():
    arch = Architecture(width=4, depth=1, architecture="cnn", readout="gap")
    x = np.random.default_rng(0).standard_normal((3, 2, 5, 5))
    theta = engine.empirical_ntk(arch, x, dtype="float64")
    model = build_model(arch.with_image((2, 5, 5)), 0, dtype=torch.float64)
    ref = jacobian_ntk(model, torch.as_tensor(x), torch.as_tensor(x)).sum(0)[..., 0, 0]
    np.testing.assert_allclose(theta, ref.numpy(), rtol=1e-10)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_per_example_statistics_match_materialization(parameterization):
    """Every per_example statistic from the engine's Grams equals the same function of the
    vmap(grad) Grams (the statistics are functions of the Grams alone)."""
    for shape, padding, readout in CASES[1::3]:
        model, x, y = make_case(shape, padding, readout, parameterization=parameterization)
        gw, gb = materialized(model, x, y)
        g = engine.layer_grams(model, x, y, mse)
        per_layer = g.per_layer()
        got = noise_values(per_layer.sum(0), per_layer, n_train=40)
        ref = noise_values((gw + gb).sum(0), gw + gb, n_train=40)
        for name, value in ref.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12, err_msg=name)


def test_costs_choose_the_cheaper_route():
    # 8x8 images, batch 64, 128 channels: materializing (B C F (P + B)) is far cheaper
    c = conv_engine.gram_costs(64, 64, 64, 128 * 9, 128, 1)
    assert conv_engine.choose_route(c) == "materialize"
    # a short 1-D signal (P = 4) and a wide layer: patches are cheaper
    c = conv_engine.gram_costs(16, 16, 4, 1024 * 3, 1024, 1)
    assert conv_engine.choose_route(c) == "patch"
    # the diagonal alone: patches once P < C
    assert conv_engine.choose_route(conv_engine.diag_costs(64, 64, 128 * 9, 128, 1)) == "patch"


@pytest.mark.parametrize(("shape", "padding", "readout"), CASES[::5])
def test_full_data_noise_of_a_cnn_matches_autograd(shape, padding, readout):
    """full_batch's exact ||G_l||^2 (chunked pixel-summed gradients) and mean ||g_i,l||^2
    against autograd of the full loss and vmap(grad) per-example gradients."""
    from gradstats.simulate import noise

    model, x, y = make_case(shape, padding, readout)
    full = noise.full_data_noise(model, x, y, mse, chunk=2)
    params = list(model.weights) + list(model.biases)
    grads = torch.autograd.grad(mse(model(x), y).mean(), params)
    n = model.arch.n_layers
    ref = [float((grads[l] ** 2).sum() + (grads[n + l] ** 2).sum()) for l in range(n)]
    np.testing.assert_allclose(full.grad_sq_norm, ref, rtol=1e-10)
    gw, gb = materialized(model, x, y)
    np.testing.assert_allclose(full.mean_sq_norm,
                               (gw + gb).diagonal(dim1=-2, dim2=-1).mean(-1).numpy(), rtol=1e-10)
