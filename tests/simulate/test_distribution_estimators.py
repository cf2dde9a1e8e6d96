"""Tests of the ``distribution`` and ``directions`` estimators: against slow obvious
computations (autograd loops, scipy moments), synthetic gradients of known shape, and the
registry contract inside `simulate_point`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradstats import statistics
from gradstats.simulate import distribution_estimators as DE
from gradstats.simulate.estimators import RunContext, StepSnapshot, make_estimator
from gradstats.simulate.model import build_model
from gradstats.simulate.training import per_example_loss_fn, simulate_point
from gradstats.spec import Architecture, Data, Point, Training


def make_ctx(width: int = 64, depth: int = 2, n_train: int = 40, record=(0,), seed: int = 0,
             output_dim: int = 3) -> RunContext:
    arch = Architecture(width=width, depth=depth, input_dim=8, output_dim=output_dim)
    steps = max(record)
    point = Point(arch=arch, training=Training(batch_size=8, loss="mse", steps=steps,
                                               record=tuple(record)),
                  data=Data(name="sphere", input_dim=8, n_train=n_train))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train, 8, generator=gen, dtype=torch.float64)
    y = torch.randn(n_train, output_dim, generator=gen, dtype=torch.float64)
    model = build_model(arch, seed, dtype=torch.float64)
    return RunContext(point=point, model=model, device=torch.device("cpu"), dtype=torch.float64,
                      x_train=x, y_train=y, loss_fn=per_example_loss_fn("mse"),
                      seed=seed)


def make_snap(ctx: RunContext, step: int = 0, grads: list[torch.Tensor] | None = None,
              batch: int = 8) -> StepSnapshot:
    """A snapshot of the first ``batch`` examples; ``grads`` replace the true weight grads."""
    model = ctx.model
    xb, yb = ctx.x_train[:batch], ctx.y_train[:batch]
    fwd = model.forward_all(xb, retain_preact_grad=True)
    loss = ctx.loss_fn(fwd.output, yb).mean()
    true = torch.autograd.grad(loss, list(model.weights), retain_graph=True)
    return StepSnapshot(step=step, model=model, x=xb, y=yb, forward=fwd, loss=loss.detach(),
                        weight_grads=list(grads) if grads is not None else list(true),
                        bias_grads=None)


def test_full_batch_grads_match_one_pass_and_leave_grad_untouched():
    ctx = make_ctx(width=16, n_train=23)
    chunked = DE.full_batch_weight_grads(ctx.model, ctx.x_train, ctx.y_train, ctx.loss_fn,
                                         chunk=5)
    loss = ctx.loss_fn(ctx.model(ctx.x_train), ctx.y_train).mean()
    direct = torch.autograd.grad(loss, list(ctx.model.weights))
    for a, b in zip(chunked, direct, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    assert all(w.grad is None for w in ctx.model.weights)


def test_distribution_estimator_on_planted_gradients():
    ctx = make_ctx(width=128, depth=2)
    rng = np.random.default_rng(1)
    shapes = [tuple(w.shape) for w in ctx.model.weights]  # (128,8), (128,128), (3,128)
    lap = rng.laplace(size=shapes[0])
    gau = rng.standard_normal(shapes[1])
    gau[:32] = 0.0  # 1/4 of the rows dead: exact zeros
    par = rng.standard_normal(shapes[2])
    planted = [lap, gau, par]
    est = make_estimator("distribution")
    state = est.init(ctx)
    snap = make_snap(ctx, grads=[torch.as_tensor(g) for g in planted])
    _, values = est.update(ctx, state, snap)
    n_layers = 3
    for name in est.statistics:
        dims = statistics.get(name).dims
        assert values[name].shape == ((n_layers,) if "layer" in dims else ()), name
    # planted shapes: Laplace kurtosis 6 (sd ~ 29/sqrt(n)), zero fraction 1/4 exactly
    assert values["dimwise_kurtosis"][0] == pytest.approx(6.0, abs=5 * 29 / math.sqrt(lap.size))
    assert values["dimwise_zero_fraction"][1] == pytest.approx(0.25)
    expect = [stats.kurtosis(g.ravel(), fisher=False) for g in planted]
    assert np.allclose(values["dimwise_kurtosis"], expect, rtol=1e-10)
    # noise = planted - full-batch gradient, an independent slow computation
    loss = ctx.loss_fn(ctx.model(ctx.x_train), ctx.y_train).mean()
    full = torch.autograd.grad(loss, list(ctx.model.weights))
    noise = [g - f.numpy() for g, f in zip(planted, full, strict=True)]
    assert np.allclose(values["noise_kurtosis"],
                       [stats.kurtosis(g.ravel(), fisher=False) for g in noise], rtol=1e-10)
    assert np.allclose(values["noise_skewness"], [stats.skew(g.ravel()) for g in noise],
                       rtol=1e-8, atol=1e-12)
    whole = np.concatenate([g.ravel() for g in planted])
    assert values["dimwise_net_zero_fraction"] == pytest.approx(np.mean(whole == 0))
    # the Gaussian layer is not a power law, the Laplace one has an exponential tail
    assert values["dimwise_powerlaw_p"][1] < 0.1
    assert np.all(np.isnan(values["iterwise_kurtosis"]))  # one step of three recorded


def test_iterwise_statistics_at_the_last_recorded_step(monkeypatch):
    monkeypatch.setattr(DE, "N_BOOTSTRAP", 10)
    record = tuple(range(DE.ITER_MIN_STEPS_SHAPE))
    ctx = make_ctx(width=32, depth=1, record=record)
    rng = np.random.default_rng(2)
    est = make_estimator("distribution")
    state = est.init(ctx)
    shapes = [tuple(w.shape) for w in ctx.model.weights]
    series = [[] for _ in shapes]
    for step in record:
        grads = [rng.standard_t(4, size=s) for s in shapes]
        for l, g in enumerate(grads):
            series[l].append(g.ravel()[state.coords[l]])
        state, values = est.update(ctx, state, make_snap(ctx, step, [torch.as_tensor(g)
                                                                     for g in grads]))
        if step < record[-1]:
            assert np.all(np.isnan(values["iterwise_kurtosis"]))
    assert values["iterwise_n_steps"] == len(record)
    for l, cols in enumerate(series):
        x = np.stack(cols)  # (T, coords)
        kurt = np.median(stats.kurtosis(x, axis=0, fisher=False))
        assert values["iterwise_kurtosis"][l] == pytest.approx(kurt, rel=1e-10)
        reject = np.mean([stats.normaltest(x[:, c]).pvalue < 0.05 for c in range(x.shape[1])])
        assert values["iterwise_normal_reject_fraction"][l] == pytest.approx(reject)
    assert np.all(np.isnan(values["iterwise_powerlaw_pass_fraction"]))  # T = 8 < 50


def test_iterwise_power_law_pass_fraction_separates_tails():
    rng = np.random.default_rng(3)
    t = 300
    pareto_cols = rng.choice([-1, 1], (t, 6)) * (1 - rng.random((t, 6))) ** (-1 / 1.5)
    gauss_cols = rng.standard_normal((t, 6))
    assert DE.iterwise_stats(pareto_cols, rng)["powerlaw_pass_fraction"] >= 4 / 6
    assert DE.iterwise_stats(gauss_cols, rng)["powerlaw_pass_fraction"] <= 2 / 6


def _per_example_unit_grads(ctx: RunContext, snap: StepSnapshot) -> np.ndarray:
    """Slow obvious per-example gradients over all parameters, one autograd call each."""
    rows = []
    params = list(ctx.model.parameters())
    for i in range(snap.x.shape[0]):
        li = ctx.loss_fn(ctx.model(snap.x[i:i + 1]), snap.y[i:i + 1]).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, params)]))
    g = torch.stack(rows).numpy()
    return g


def test_directions_estimator_against_autograd_loop():
    ctx = make_ctx(width=32, depth=2)
    snap = make_snap(ctx)
    est = make_estimator("directions")
    _, values = est.update(ctx, est.init(ctx), snap)
    g = _per_example_unit_grads(ctx, snap)
    u = g / np.linalg.norm(g, axis=1, keepdims=True)
    assert values["example_dir_r_bar"] == pytest.approx(np.linalg.norm(u.mean(axis=0)),
                                                        rel=1e-8)
    norms = np.linalg.norm(g, axis=1)
    assert values["example_norm_cv"] == pytest.approx(norms.std() / norms.mean(), rel=1e-8)
    assert values["example_dir_r_bar_uniform"] == pytest.approx(1 / math.sqrt(8))
    assert values["minibatch_dir_r_bar_uniform"] == pytest.approx(1 / math.sqrt(DE.MINIBATCHES))
    dim = sum(p.numel() for p in ctx.model.parameters())
    # d >> n: kappa ~ r_bar d / (1 - r_bar^2) (Banerjee), so the uniform baseline
    # (r_bar = 1/sqrt(n)) is ~ d / sqrt(n) / (1 - 1/n)
    for p, n in (("example_dir", 8), ("minibatch_dir", DE.MINIBATCHES)):
        assert values[f"{p}_kappa"] == pytest.approx(values[f"{p}_kappa_banerjee"], rel=0.01)
        assert values[f"{p}_kappa_uniform"] == pytest.approx(dim / math.sqrt(n) / (1 - 1 / n),
                                                                   rel=0.01)
    assert 0 < values["minibatch_norm_cv"] < 1 and values["gradient_stochasticity"] > 0
    assert np.isfinite(values["noise_spectrum_exponent"])


@pytest.mark.slow
def test_estimators_inside_simulate_point_follow_the_registry():
    arch = Architecture(width=32, depth=2, input_dim=8, output_dim=1)
    point = Point(arch=arch, training=Training(batch_size=8, steps=3, record=(0, 1, 3)),
                  data=Data(name="sphere", input_dim=8, n_train=48))
    rec = simulate_point(point, ["distribution", "directions"])
    for name in ("distribution", "directions"):
        for stat in make_estimator(name).statistics:
            dims = statistics.get(stat).dims
            shape = tuple({"step": 3, "layer": 3}[d] for d in dims)
            assert rec.values[stat].shape == shape, stat
    assert np.all(np.isfinite(rec.values["dimwise_kurtosis"]))
    assert np.all(np.isfinite(rec.values["example_dir_kappa"]))
    assert np.all(rec.values["example_dir_r_bar"] > 0)


def test_minibatch_gram_matches_autograd_minibatch_gradients():
    ctx = make_ctx(width=24, depth=2, n_train=30)
    idx = DE.minibatch_indices(np.random.default_rng(4), 30, 6, 5)
    assert idx.shape == (5, 6) and all(len(set(row)) == 6 for row in idx)
    params = list(ctx.model.parameters())
    rows = []
    for row in idx:
        t = torch.as_tensor(row)
        loss = ctx.loss_fn(ctx.model(ctx.x_train[t]), ctx.y_train[t]).mean()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    mb = torch.stack(rows).numpy()
    got = DE.minibatch_gram(ctx.model, ctx.x_train, ctx.y_train, ctx.loss_fn, idx)
    assert np.allclose(got, mb @ mb.T, rtol=1e-8, atol=1e-12)
    assert DE.minibatch_indices(np.random.default_rng(4), 3, 6, 2).max() < 3  # with replacement
