"""The Gram-trick engine against materialized per-example gradients (float64, tiny MLPs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gradstats.simulate import build_model, engine
from gradstats.spec import ACTIVATIONS, PARAMETERIZATIONS, Architecture

B, D_IN, WIDTH, DEPTH = 7, 5, 6, 2
RTOL, ATOL = 1e-10, 1e-12


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1)


def cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out, y, reduction="none")


def make_case(activation: str, parameterization: str, bias: bool, loss: str, seed: int = 0):
    """A float64 MLP, a batch, targets and the loss function."""
    out_dim = 3 if loss == "cross_entropy" else 2
    arch = Architecture(width=WIDTH, depth=DEPTH, activation=activation, sigma_w2=1.7,
                        sigma_b2=0.4, parameterization=parameterization, bias=bias,
                        input_dim=D_IN, output_dim=out_dim)
    model = build_model(arch, seed, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(B, D_IN, generator=gen, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.randint(0, out_dim, (B,), generator=gen)
        return model, x, y, cross_entropy
    return model, x, torch.randn(B, out_dim, generator=gen, dtype=torch.float64), mse


def loop_grads(model, x, y, loss_fn):
    """The obvious path: one autograd call per example; (B, P) per layer for W and b."""
    n = model.arch.n_layers
    ws = [[] for _ in range(n)]
    bs = [[] for _ in range(n)]
    for i in range(x.shape[0]):
        params = list(model.weights) + (list(model.biases) if model.biases is not None else [])
        li = loss_fn(model(x[i:i + 1]), y[i:i + 1]).sum()
        grads = torch.autograd.grad(li, params)
        for l in range(n):
            ws[l].append(grads[l].reshape(-1))
            if model.biases is not None:
                bs[l].append(grads[n + l])
    w = [torch.stack(g) for g in ws]
    b = [torch.stack(g) for g in bs] if model.biases is not None else None
    return w, b


def materialized_grams(model, x, y, loss_fn):
    """(weight part, bias part) per layer, (L, B, B), from vmap(grad) gradients."""
    w, b = engine.slow_per_example_grads(model, x, y, loss_fn)
    wf = [g.reshape(g.shape[0], -1) for g in w]
    gw = torch.stack([f @ f.T for f in wf])
    gb = torch.stack([f @ f.T for f in b]) if b is not None else torch.zeros_like(gw)
    return gw, gb


def flat_grads(model, x, y, loss_fn) -> np.ndarray:
    """(B, P) all per-example gradients concatenated."""
    w, b = engine.slow_per_example_grads(model, x, y, loss_fn)
    parts = [g.reshape(g.shape[0], -1) for g in w] + ([] if b is None else list(b))
    return torch.cat(parts, 1).numpy()


def test_slow_per_example_grads_match_python_loop():
    for bias in (True, False):
        model, x, y, loss_fn = make_case("tanh", "ntk", bias, "mse")
        w, b = engine.slow_per_example_grads(model, x, y, loss_fn)
        lw, lb = loop_grads(model, x, y, loss_fn)
        for l in range(model.arch.n_layers):
            torch.testing.assert_close(w[l].reshape(B, -1), lw[l], rtol=RTOL, atol=ATOL)
            if bias:
                torch.testing.assert_close(b[l], lb[l], rtol=RTOL, atol=ATOL)
        assert (b is None) == (not bias)


@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_loss_grams_match_materialized(activation: str, parameterization: str):
    for bias in (True, False):
        for loss in ("mse", "cross_entropy"):
            model, x, y, loss_fn = make_case(activation, parameterization, bias, loss)
            gw, gb = materialized_grams(model, x, y, loss_fn)
            g = engine.layer_grams(model, x, y, loss_fn)
            assert g.input_grams.shape == (DEPTH + 1, B, B)
            assert g.signal_grams.shape == (DEPTH + 1, B, B)
            torch.testing.assert_close(g.weight_part(), gw, rtol=RTOL, atol=ATOL)
            torch.testing.assert_close(g.bias_part(), gb, rtol=RTOL, atol=ATOL)
            torch.testing.assert_close(g.per_layer(), gw + gb, rtol=RTOL, atol=ATOL)
            full = engine.per_example_gram(model, x, y, loss_fn)
            torch.testing.assert_close(full, (gw + gb).sum(0), rtol=RTOL, atol=ATOL)
            per = engine.per_example_gram(model, x, y, loss_fn, per_layer=True)
            torch.testing.assert_close(per, gw + gb, rtol=RTOL, atol=ATOL)
            diag = {"weight": gw, "bias": gb, "total": gw + gb}
            for part, ref in diag.items():
                got = engine.per_example_grad_sq_norm(model, x, y, loss_fn, part=part)
                torch.testing.assert_close(got, ref.diagonal(dim1=-2, dim2=-1),
                                           rtol=RTOL, atol=ATOL)


def test_grad_sq_norm_default_is_weight_part():
    model, x, y, loss_fn = make_case("relu", "ntk", True, "mse")
    w, _ = engine.slow_per_example_grads(model, x, y, loss_fn)
    ref = torch.stack([(g**2).sum((1, 2)) for g in w])
    torch.testing.assert_close(engine.per_example_grad_sq_norm(model, x, y, loss_fn), ref,
                               rtol=RTOL, atol=ATOL)


def test_chunked_equals_unchunked():
    model, x, y, loss_fn = make_case("gelu", "standard", True, "cross_entropy")
    whole = engine.layer_grams(model, x, y, loss_fn)
    for chunk in (1, 3, B, 100):
        part = engine.layer_grams(model, x, y, loss_fn, chunk_size=chunk)
        torch.testing.assert_close(part.input_grams, whole.input_grams, rtol=RTOL, atol=ATOL)
        torch.testing.assert_close(part.signal_grams, whole.signal_grams, rtol=RTOL, atol=ATOL)
    out_whole = engine.layer_grams(model, x, target="output", classes="full")
    out_part = engine.layer_grams(model, x, target="output", classes="full", chunk_size=2)
    torch.testing.assert_close(out_part.per_layer(), out_whole.per_layer(), rtol=RTOL, atol=ATOL)


def test_engine_leaves_parameter_grads_untouched():
    model, x, y, loss_fn = make_case("relu", "ntk", True, "mse")
    engine.layer_grams(model, x, y, loss_fn)
    engine.empirical_ntk_model(model, x)
    assert all(p.grad is None for p in model.parameters())


def test_signals_from_forward_equal_fresh_signals():
    model, x, y, loss_fn = make_case("softplus", "ntk", True, "cross_entropy")
    fwd = model.forward_all(x, retain_preact_grad=True)
    loss_fn(fwd.output, y).mean().backward()
    reused = engine.grams(engine.signals_from_forward(model, fwd, scale=float(B)))
    gw, gb = materialized_grams(model, x, y, loss_fn)
    torch.testing.assert_close(reused.per_layer(), gw + gb, rtol=RTOL, atol=ATOL)
    assert engine.signals_from_forward(model, model.forward_all(x), scale=1.0) is None


def test_loss_target_needs_targets():
    model, x, _, _ = make_case("relu", "ntk", True, "mse")
    with pytest.raises(ValueError, match="needs y and loss_fn"):
        engine.layer_grams(model, x, target="loss")
    with pytest.raises(ValueError, match="unknown target"):
        engine.layer_grams(model, x, target="nonsense")


def test_noise_eigenvalues_match_explicit_covariance():
    model, x, y, loss_fn = make_case("tanh", "standard", True, "mse", seed=3)
    g = flat_grads(model, x, y, loss_fn)  # (B, P)
    centered = g - g.mean(0)
    sigma = centered.T @ centered / B  # (P, P)
    ref = np.sort(np.linalg.eigvalsh(sigma))[::-1][:B]
    gram = engine.per_example_gram(model, x, y, loss_fn)
    got = engine.noise_covariance_eigenvalues(gram).numpy()
    assert got.shape == (B,)
    assert np.all(np.diff(got) <= 0)
    scale = ref[0]
    np.testing.assert_allclose(got, np.clip(ref, 0, None), rtol=1e-8, atol=1e-10 * scale)
    assert got[-1] <= 1e-10 * scale  # centering leaves rank <= B - 1
    np.testing.assert_allclose(engine.noise_trace(gram).item(), np.trace(sigma), rtol=1e-10)
    mean_sq = float(g.mean(0) @ g.mean(0))
    np.testing.assert_allclose(engine.mean_grad_sq_norm(gram).item(), mean_sq, rtol=1e-10)


def test_noise_eigenvalues_batched_over_layers():
    model, x, y, loss_fn = make_case("erf", "ntk", True, "mse")
    per = engine.per_example_gram(model, x, y, loss_fn, per_layer=True)
    batched = engine.noise_covariance_eigenvalues(per)
    assert batched.shape == (DEPTH + 1, B)
    for l in range(DEPTH + 1):
        torch.testing.assert_close(batched[l], engine.noise_covariance_eigenvalues(per[l]))
