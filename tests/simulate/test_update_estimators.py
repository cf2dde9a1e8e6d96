"""The ``updates`` estimator against a slow, obvious numpy implementation: the same network
retrained by hand with every step's weights kept, forward passes written out, operator norms
by SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gradstats.simulate import training as tr
from gradstats.simulate.data import load_data
from gradstats.simulate.estimators import random_stream
from gradstats.simulate.model import build_model
from gradstats.spec import Architecture, Data, Point, Training

STEPS = 3


def _point(parameterization, optimizer, lr, record=tuple(range(STEPS + 1)), **kw):
    arch = Architecture(width=48, depth=2, parameterization=parameterization, input_dim=12,
                        sigma_b2=0.1)
    return Point(arch=arch, data=Data(input_dim=12, n_train=100), dtype="float64", device="cpu",
                 training=Training(batch_size=20, optimizer=optimizer, lr=lr, steps=STEPS,
                                   record=record, **kw), measure=("updates",))


def _slow(point):
    """Per step: effective weights (numpy) and probe dense outputs, by hand."""
    t = point.training
    seeds = tr.derive_seeds(point)
    data = load_data(point.data, t.loss, seeds.data)
    x = torch.as_tensor(data.x, dtype=torch.float64)
    y = torch.as_tensor(data.y, dtype=torch.float64)
    model = build_model(point.arch, seeds.init, dtype=torch.float64)
    opt = tr.make_optimizer(model, t)
    sampler = tr._BatchSampler(len(x), t.batch_size, seeds.batches)
    probe_rows = np.sort(random_stream(seeds.estimators, "updates", "probe").choice(
        len(x), size=64, replace=False))
    probe = data.x[probe_rows].astype(np.float64)
    weights, biases, zs, ins = [], [], [], []
    for _step in range(t.steps + 1):
        ws = [(model.w_mult[l] * model.weights[l]).detach().numpy().copy() for l in range(3)]
        bs = [(model.b_mult[l] * model.biases[l]).detach().numpy().copy() for l in range(3)]
        a, z_step, in_step = probe, [], []
        for l in range(3):
            in_step.append(a)
            z = a @ ws[l].T + bs[l]
            z_step.append(z)
            a = np.maximum(z, 0.0)
        weights.append(ws)
        biases.append(bs)
        zs.append(z_step)
        ins.append(in_step)
        idx = torch.as_tensor(sampler.next())
        loss = (0.5 * ((model(x[idx]) - y[idx]) ** 2).sum(dim=1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _slow.biases = biases
    return weights, zs, ins


@pytest.mark.parametrize("parameterization, optimizer, lr", [
    ("mup", "adam", 0.01), ("standard", "sgd", 0.05), ("mean_field", "momentum", 0.02)])
def test_updates_match_the_slow_way(parameterization, optimizer, lr):
    point = _point(parameterization, optimizer, lr,
                   **({"momentum": 0.9} if optimizer == "momentum" else {}))
    rec = tr.simulate_point(point, measure=("updates",))
    v = rec.values
    weights, zs, ins = _slow(point)
    for t in range(STEPS + 1):
        rms = [np.sqrt(np.mean((zs[t][l] - zs[0][l]) ** 2)) for l in range(3)]
        np.testing.assert_allclose(v["preact_change_rms"][t], rms, rtol=1e-8, atol=1e-14)
        assert v["output_change_rms"][t] == pytest.approx(rms[2], rel=1e-8, abs=1e-14)
        np.testing.assert_allclose(v["weight_op_norm"][t],
                                   [np.linalg.norm(w, 2) for w in weights[t]], rtol=2e-3)
        if t == 0:
            for name in ("update_fro_sq", "update_op_norm", "update_alignment"):
                assert np.all(np.isnan(v[name][0])), name
            continue
        dws = [weights[t][l] - weights[t - 1][l] for l in range(3)]
        np.testing.assert_allclose(v["update_fro_sq"][t], [np.sum(d**2) for d in dws],
                                   rtol=1e-8)
        ops = [np.linalg.norm(d, 2) for d in dws]
        np.testing.assert_allclose(v["update_op_norm"][t], ops, rtol=2e-3)
        align = [np.linalg.norm(ins[t][l] @ dws[l].T) / (ops[l] * np.linalg.norm(ins[t][l]))
                 for l in range(3)]
        np.testing.assert_allclose(v["update_alignment"][t], align, rtol=3e-3)
        assert np.all(np.asarray(v["update_alignment"][t]) <= 1 + 1e-9)
    assert v["preact_change_rms"][STEPS][1] > 0  # training moved the hidden layer


def test_update_is_since_the_previous_recorded_step():
    """With steps 0 and 3 recorded, the update at 3 is W(3) - W(0)."""
    point = _point("mup", "sgd", 0.1, record=(0, STEPS))
    rec = tr.simulate_point(point, measure=("updates",))
    weights, _, _ = _slow(point)
    expected = [np.sum((weights[STEPS][l] - weights[0][l]) ** 2) for l in range(3)]
    np.testing.assert_allclose(rec.values["update_fro_sq"][1], expected, rtol=1e-8)
    one_step = [np.sum((weights[STEPS][l] - weights[STEPS - 1][l]) ** 2) for l in range(3)]
    assert not np.allclose(rec.values["update_fro_sq"][1], one_step, rtol=1e-3)


def test_updates_do_not_change_other_statistics():
    """Independence: the spine is the same with and without the updates estimator."""
    point = _point("mup", "adam", 0.01)
    a = tr.simulate_point(point, measure=("updates",))
    b = tr.simulate_point(point, measure=())
    for name in ("grad_sq_norm", "batch_loss", "weight_sq_norm", "forward_q"):
        np.testing.assert_array_equal(a.values[name], b.values[name])


@pytest.mark.parametrize("parameterization, optimizer", [("standard", "adam"), ("mup", "sgd")])
def test_output_change_splits_into_features_and_readout(parameterization, optimizer):
    """f(t) - f(0) = W_out(0) (a(t) - a(0)) + [(W_out(t) - W_out(0)) a(t) + db], by hand."""
    point = _point(parameterization, optimizer, 0.01 if optimizer == "adam" else 0.05)
    rec = tr.simulate_point(point, measure=("updates",))
    weights, zs, ins = _slow(point)
    biases = _slow.biases
    for t in range(STEPS + 1):
        feature = (ins[t][2] - ins[0][2]) @ weights[0][2].T
        readout = ins[t][2] @ (weights[t][2] - weights[0][2]).T + (biases[t][2] - biases[0][2])
        np.testing.assert_allclose(feature + readout, zs[t][2] - zs[0][2], atol=1e-12)
        rms = lambda m: np.sqrt(np.mean(m ** 2))  # noqa: E731
        assert rec.values["output_change_feature_rms"][t] == pytest.approx(
            rms(feature), rel=1e-8, abs=1e-14)
        assert rec.values["output_change_readout_rms"][t] == pytest.approx(
            rms(readout), rel=1e-8, abs=1e-14)
    assert rec.values["output_change_feature_rms"][STEPS] > 0
    assert rec.values["output_change_readout_rms"][STEPS] > 0


@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adam", 0.1),
                                                     ("adamw", 0.1)])
def test_adam_direction_is_the_step_torch_takes(optimizer, weight_decay):
    """The (u, v_hat) read before a step reproduce the step torch.optim then takes:
    W(t+1) = W(t) (1 - lr wd [AdamW]) - lr u, at every step (moments carried over)."""
    from gradstats.simulate.update_estimators import adam_direction

    point = _point("standard", optimizer, 0.01, beta1=0.8, beta2=0.95, eps=1e-6,
                   weight_decay=weight_decay)
    t = point.training
    model = build_model(point.arch, 0, dtype=torch.float64)
    opt = tr.make_optimizer(model, t)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(20, 12, generator=gen, dtype=torch.float64)
    for _ in range(4):
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        before = [w.detach().clone() for w in model.weights]
        found = [adam_direction(opt, w) for w in model.weights]
        lrs = [next(g["lr"] for g in opt.param_groups if any(p is w for p in g["params"]))
               for w in model.weights]
        opt.step()
        for w0, w1, (u, _), lr in zip(before, model.weights, found, lrs, strict=True):
            decay = 1 - lr * weight_decay if optimizer == "adamw" else 1.0
            torch.testing.assert_close(w1.detach(), w0 * decay - lr * u, rtol=1e-10,
                                       atol=1e-14)


def test_adam_statistics_at_the_first_step():
    """Step 0: m_hat = g, v_hat = g^2, so u = g / (|g| + eps): every sign agrees, the norm
    ratio is sqrt(nonzero entries) / ||g|| (eps << |g|; a dead relu unit's row is 0) and the
    median scale is median |g|."""
    point = _point("standard", "adam", 0.01)
    rec = tr.simulate_point(point, measure=("updates",))
    v = rec.values
    model = build_model(point.arch, tr.derive_seeds(point).init, dtype=torch.float64)
    seeds = tr.derive_seeds(point)
    data = load_data(point.data, point.training.loss, seeds.data)
    idx = torch.as_tensor(tr._BatchSampler(100, 20, seeds.batches).next())
    x = torch.as_tensor(data.x, dtype=torch.float64)[idx]
    y = torch.as_tensor(data.y, dtype=torch.float64)[idx]
    (0.5 * ((model(x) - y) ** 2).sum(dim=1)).mean().backward()
    grads = [w.grad.numpy() for w in model.weights]
    np.testing.assert_allclose(v["adam_sign_agreement"][0], 1.0)
    np.testing.assert_allclose(v["adam_update_ratio"][0],
                               [np.sqrt(np.count_nonzero(g)) / np.linalg.norm(g) for g in grads],
                               rtol=1e-4)
    np.testing.assert_allclose(v["adam_second_moment_median"][0],
                               [np.median(np.abs(g)) for g in grads], rtol=1e-6)
    np.testing.assert_allclose(v["adam_second_moment_log_sd"][0],
                               [np.std(np.log(np.abs(g[g != 0])), ddof=1) for g in grads],
                               rtol=1e-6)
    assert np.all(v["adam_sign_agreement"][STEPS] < 1)  # momentum has mixed in old gradients


def test_adam_statistics_are_nan_under_sgd():
    rec = tr.simulate_point(_point("mup", "sgd", 0.05), measure=("updates",))
    for name in ("adam_update_ratio", "adam_sign_agreement", "adam_second_moment_median",
                 "adam_second_moment_log_sd"):
        assert np.all(np.isnan(rec.values[name])), name
