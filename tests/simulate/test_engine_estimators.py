"""The ``per_example``, ``full_batch`` and ``ntk`` estimators through a hand-built RunContext /
StepSnapshot."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
from torch.func import functional_call, jacrev, vmap

from gradstats import statistics
from gradstats.simulate import build_model, engine
from gradstats.simulate.estimators import RunContext, StepSnapshot, make_estimator
from gradstats.spec import Architecture, Data, Point, Training

B, D_IN = 6, 4


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1)


def make_ctx(bias: bool = True, n_train: int = 10, out_dim: int = 2) -> RunContext:
    arch = Architecture(width=5, depth=2, activation="tanh", sigma_w2=1.3, sigma_b2=0.2,
                        bias=bias, input_dim=D_IN, output_dim=out_dim)
    point = Point(arch=arch, training=Training(batch_size=B),
                  data=Data(input_dim=D_IN, n_train=n_train))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n_train, D_IN, generator=gen, dtype=torch.float64)
    y = torch.randn(n_train, out_dim, generator=gen, dtype=torch.float64)
    model = build_model(arch, 0, dtype=torch.float64)
    return RunContext(point=point, model=model, device=torch.device("cpu"), dtype=torch.float64,
                      x_train=x, y_train=y, loss_fn=mse, seed=0)


def make_snapshot(ctx: RunContext, model=None, retain: bool = True) -> StepSnapshot:
    """What the training loop hands over: forward with dL/dh_l in preacts' .grad."""
    model = ctx.model if model is None else model
    x, y = ctx.x_train[:B], ctx.y_train[:B]
    fwd = model.forward_all(x, retain_preact_grad=retain)
    loss = ctx.loss_fn(fwd.output, y).mean()
    params = list(model.weights) + (list(model.biases) if model.biases is not None else [])
    grads = torch.autograd.grad(loss, params, retain_graph=True)
    if retain:
        hg = torch.autograd.grad(loss, fwd.preacts)
        for h, g in zip(fwd.preacts, hg, strict=True):
            h.grad = g
    n = model.arch.n_layers
    return StepSnapshot(step=0, model=model, x=x, y=y, forward=fwd, loss=loss.detach(),
                        weight_grads=list(grads[:n]),
                        bias_grads=list(grads[n:]) if model.biases is not None else None)


def python_loop_grads(model, x, y):
    """Per layer lists of flattened per-example gradients (weight, bias): (B, P_l) each."""
    n = model.arch.n_layers
    out = []
    for i in range(x.shape[0]):
        params = list(model.weights) + (list(model.biases) if model.biases is not None else [])
        g = torch.autograd.grad(mse(model(x[i:i + 1]), y[i:i + 1]).sum(), params)
        out.append([torch.cat([g[l].reshape(-1)] + ([g[n + l]] if len(g) > n else []))
                    for l in range(n)])
    return [torch.stack([o[l] for o in out]).numpy() for l in range(n)]


def subset_mean_sq(g: np.ndarray, size: int) -> float:
    """Mean over every subset S of ``size`` rows of ||mean of g[S]||^2 (enumerated)."""
    return float(np.mean([np.sum(g[list(s)].mean(0) ** 2)
                          for s in itertools.combinations(range(len(g)), size)]))


def expected_per_example(ctx: RunContext) -> dict[str, np.ndarray]:
    """Per-example statistics from explicit gradients; N = 10 training examples, B = 6 drawn
    without replacement, so the unbiased trace is (N-1)/N times the 1/(B-1) sample trace."""
    n_train = len(ctx.x_train)
    model, x, y = ctx.model, ctx.x_train[:B], ctx.y_train[:B]
    layers = python_loop_grads(model, x, y)
    n = model.arch.n_layers
    fan_w = [model.weights[l].numel() for l in range(n)]
    w_sq = np.stack([(g[:, :fan_w[l]] ** 2).sum(1) for l, g in enumerate(layers)])
    b_sq = np.stack([(g[:, fan_w[l]:] ** 2).sum(1) for l, g in enumerate(layers)])
    allg = np.concatenate(layers, 1)
    sigma = np.cov(allg.T, bias=True)
    gbar = allg.mean(0)
    layer_tr = np.array([np.trace(np.cov(g.T, bias=True)) for g in layers])
    layer_mean = np.array([g.mean(0) @ g.mean(0) for g in layers])
    fpc = (n_train - 1) / n_train
    c_b = (n_train - B) / (B * (n_train - 1))
    tr_unb = fpc * np.trace(np.cov(allg.T, ddof=1))
    layer_tr_unb = fpc * np.array([np.trace(np.cov(g.T, ddof=1)) for g in layers])
    return {
        "per_example_grad_sq_norm": w_sq,
        "per_example_bias_grad_sq_norm": b_sq if model.biases is not None else np.nan * b_sq,
        "grad_noise_trace": np.trace(sigma),
        "noise_eigenvalues": np.clip(np.sort(np.linalg.eigvalsh(sigma))[::-1][:B], 0, None),
        "grad_noise_scale": np.trace(sigma) / (gbar @ gbar),
        "layer_grad_noise_trace": layer_tr,
        "layer_grad_noise_scale": layer_tr / layer_mean,
        "full_noise_trace_unbiased": tr_unb,
        "full_grad_sq_norm_unbiased": gbar @ gbar - c_b * tr_unb,
        "layer_full_noise_trace_unbiased": layer_tr_unb,
        "layer_full_grad_sq_norm_unbiased": layer_mean - c_b * layer_tr_unb,
        "subbatch_grad_sq_norm": np.array([subset_mean_sq(allg, b) for b in (1, 2, 4)]),
        "subbatch_size": np.array([1.0, 2.0, 4.0]),
    }


def test_per_example_estimator_matches_python_loop():
    for bias in (True, False):
        ctx = make_ctx(bias=bias)
        est = make_estimator("per_example")
        state = est.init(ctx)
        for retain in (True, False):  # reuse the step's backward, or recompute it
            _, values = est.update(ctx, state, make_snapshot(ctx, retain=retain))
            expected = expected_per_example(ctx)
            assert set(values) == set(est.statistics) == set(expected)
            for name, ref in expected.items():
                np.testing.assert_allclose(values[name], ref, rtol=1e-9, atol=1e-12,
                                           err_msg=name)
        assert all(p.grad is None for p in ctx.model.parameters())


def test_estimator_statistics_are_registered_with_matching_shapes():
    ctx = make_ctx()
    n_layers = ctx.point.arch.n_layers
    sizes = {"step": None, "layer": n_layers, "sample": B, "rank": B, "subbatch": 3}
    for name in ("per_example", "full_batch", "ntk"):
        est = make_estimator(name)
        _, values = est.update(ctx, est.init(ctx), make_snapshot(ctx))
        assert set(values) == set(est.statistics)
        for stat_name, value in values.items():
            dims = statistics.get(stat_name).dims
            dims = dims[1:] if dims[:1] == ("step",) else dims
            assert value.shape == tuple(sizes[d] for d in dims), stat_name


def jacobian_ntk_traced(model, x) -> np.ndarray:
    params = {k: v.detach() for k, v in model.named_parameters()}
    j = vmap(jacrev(lambda p, xi: functional_call(model, p, (xi.unsqueeze(0),))[0]),
             in_dims=(None, 0))(params, x)
    flat = torch.cat([v.reshape(x.shape[0], model.arch.output_dim, -1) for v in j.values()], -1)
    return torch.einsum("ikp,jkp->ij", flat, flat).numpy()


def test_ntk_estimator_tracks_drift_on_probe_batch():
    ctx = make_ctx(n_train=10)  # probe = all 10 training inputs (fewer than 64)
    est = make_estimator("ntk")
    state = est.init(ctx)
    theta0 = jacobian_ntk_traced(ctx.model, ctx.x_train)
    _, v0 = est.update(ctx, state, make_snapshot(ctx))
    assert v0["ntk_rel_change"] == 0.0
    np.testing.assert_allclose(v0["ntk_trace"], np.trace(theta0), rtol=1e-10)

    moved = copy.deepcopy(ctx.model)
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    theta_t = jacobian_ntk_traced(moved, ctx.x_train)
    _, v1 = est.update(ctx, state, make_snapshot(ctx, model=moved))
    rel = np.linalg.norm(theta_t - theta0) / np.linalg.norm(theta0)
    assert rel > 1e-3  # the perturbation does move the kernel
    np.testing.assert_allclose(v1["ntk_rel_change"], rel, rtol=1e-9)
    np.testing.assert_allclose(v1["ntk_trace"], np.trace(theta_t), rtol=1e-10)


def test_ntk_probe_is_first_64_training_inputs():
    ctx = make_ctx(n_train=80, out_dim=1)
    state = make_estimator("ntk").init(ctx)
    assert state.probe.shape == (64, D_IN)
    torch.testing.assert_close(state.probe, ctx.x_train[:64])


def float32_ctx(arch: Architecture, n_train: int = 64) -> RunContext:
    """A float32 run (the simulator's default dtype) on Gaussian inputs."""
    point = Point(arch=arch, training=Training(batch_size=B),
                  data=Data(input_dim=arch.input_dim, n_train=n_train))
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(n_train, arch.input_dim, generator=gen)
    y = torch.randn(n_train, arch.output_dim, generator=gen)
    return RunContext(point=point, model=build_model(arch, 0), device=torch.device("cpu"),
                      dtype=torch.float32, x_train=x, y_train=y, loss_fn=mse,
                      seed=0)


def test_ntk_trace_does_not_overflow_where_float32_does():
    """gelu, depth 65, sigma_w2 = 8: outputs and gradients are finite in float32, but the
    float32 NTK (~1e40) overflows; the estimator matches the float64 Jacobian contraction."""
    arch = Architecture(width=32, depth=65, activation="gelu", sigma_w2=8.0, input_dim=16)
    ctx = float32_ctx(arch)
    probe = ctx.x_train
    assert torch.isfinite(ctx.model(probe)).all()
    assert not torch.isfinite(engine.empirical_ntk_model(ctx.model, probe).trace())
    est = make_estimator("ntk")
    _, values = est.update(ctx, est.init(ctx), make_snapshot(ctx))
    ref = jacobian_ntk_traced(engine.model_as_dtype(ctx.model, torch.float64), probe.double())
    assert np.isfinite(values["ntk_trace"])
    np.testing.assert_allclose(values["ntk_trace"], np.trace(ref), rtol=1e-10)


def test_ntk_rel_change_resolves_a_one_ulp_change():
    """1% of the layer-2 weights moved by one float32 ulp: the kernel moves by ~2e-9, below
    the ~3e-8 round-off floor of a float32 NTK; the estimator matches the float64 Jacobian
    contraction of the two networks to 1e-6."""
    arch = Architecture(width=64, depth=3, activation="tanh", sigma_w2=1.5, input_dim=8)
    ctx = float32_ctx(arch)
    moved = copy.deepcopy(ctx.model)
    with torch.no_grad():
        w = moved.weights[1]
        mask = torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) < 0.01
        w.copy_(torch.where(mask, torch.nextafter(w, torch.full_like(w, math.inf)), w))
    x64 = ctx.x_train.double()
    theta0, theta1 = (jacobian_ntk_traced(engine.model_as_dtype(m, torch.float64), x64)
                      for m in (ctx.model, moved))
    true = np.linalg.norm(theta1 - theta0) / np.linalg.norm(theta0)
    assert 0 < true < 1e-8
    est = make_estimator("ntk")
    _, values = est.update(ctx, est.init(ctx), make_snapshot(ctx, model=moved))
    np.testing.assert_allclose(values["ntk_rel_change"], true, rtol=1e-6)
    f32 = [engine.empirical_ntk_model(m, ctx.x_train).double() for m in (ctx.model, moved)]
    assert float(torch.linalg.norm(f32[1] - f32[0]) / torch.linalg.norm(f32[0])) > 10 * true


def test_full_batch_estimator_matches_explicit_gradients():
    ctx = make_ctx(n_train=10)
    est = make_estimator("full_batch")
    _, values = est.update(ctx, est.init(ctx), make_snapshot(ctx))
    layers = python_loop_grads(ctx.model, ctx.x_train, ctx.y_train)  # all 10 examples
    allg = np.concatenate(layers, 1)
    g = allg.mean(0)
    trace = ((allg - g) ** 2).sum(1).mean()
    np.testing.assert_allclose(values["full_grad_sq_norm"], g @ g, rtol=1e-10)
    np.testing.assert_allclose(values["full_noise_trace"], trace, rtol=1e-10)
    np.testing.assert_allclose(values["full_noise_scale"], trace / (g @ g), rtol=1e-10)
    np.testing.assert_allclose(values["layer_full_grad_sq_norm"],
                               [lg.mean(0) @ lg.mean(0) for lg in layers], rtol=1e-10)
    np.testing.assert_allclose(values["layer_full_noise_trace"],
                               [((lg - lg.mean(0)) ** 2).sum(1).mean() for lg in layers],
                               rtol=1e-10)
