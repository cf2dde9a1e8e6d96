"""Optimizers: Adam/AdamW (and SGD/momentum) in `simulate_point` follow a hand-written update
step for step, with the per-layer rates of the abc table written out here; gradient
statistics are recorded the same way whatever the optimizer. `optimizers.SGD` is
torch.optim.SGD bit for bit and spares a fresh process torch.optim's import of torch._dynamo
(the per-member optimizers are tested in test_ensemble.py)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from gradstats.simulate import training as tr
from gradstats.simulate.data import load_data
from gradstats.simulate.model import build_model
from gradstats.simulate.optimizers import SGD
from gradstats.spec import Architecture, Data, Point, Training

STEPS = 4
D, N = 8, 32


def _point(parameterization, optimizer, **kw):
    arch = Architecture(width=N, depth=2, parameterization=parameterization, input_dim=D,
                        sigma_b2=0.1)
    t = Training(batch_size=16, optimizer=optimizer, steps=STEPS, record=tuple(range(STEPS + 1)),
                 **kw)
    return Point(arch=arch, training=t, data=Data(input_dim=D, n_train=64), dtype="float64",
                 device="cpu")


def _hand_rates(parameterization, optimizer, lr):
    """(weight lr, bias lr) per layer, from Yang et al. 2022 Table 3 (mu-P) and the mean-field
    form, written here: layers input, hidden, readout; fan-outs N, N, 1."""
    adam = optimizer in ("adam", "adamw")
    if parameterization in ("ntk", "standard"):
        return [(lr, lr)] * 3
    if parameterization == "mup":
        w = (1, 1 / N, 1 / N) if adam else (N, 1, 1 / N)
    else:
        w = (1, N ** -0.5, 1) if adam else (N, N, N)
    b = (1, 1, 1) if adam else (N, N, 1)
    return [(lr * wi, lr * bi) for wi, bi in zip(w, b, strict=True)]


def _hand_run(point):
    """The same network trained by a hand-written loop: returns per step (loss, grad_sq_norm,
    weight_sq_norm) before that step's update."""
    t = point.training
    seeds = tr.derive_seeds(point)
    data = load_data(point.data, t.loss, seeds.data)
    x = torch.as_tensor(data.x, dtype=torch.float64)
    y = torch.as_tensor(data.y, dtype=torch.float64)
    model = build_model(point.arch, seeds.init, dtype=torch.float64)
    params, rates = [], []
    for l, (wlr, blr) in enumerate(_hand_rates(point.arch.parameterization, t.optimizer, t.lr)):
        params += [model.weights[l], model.biases[l]]
        rates += [wlr, blr]
    state = [dict(m=torch.zeros_like(p), v=torch.zeros_like(p), buf=None) for p in params]
    sampler = tr._BatchSampler(len(x), t.batch_size, seeds.batches)
    out = []
    for step in range(t.steps + 1):
        idx = torch.as_tensor(sampler.next())
        loss = (0.5 * ((model(x[idx]) - y[idx]) ** 2).sum(dim=1)).mean()
        for p in params:
            p.grad = None
        loss.backward()
        out.append((float(loss.detach()), [float((w.grad.double() ** 2).sum()) for w in model.weights],
                    [float((model.effective_weight(l) ** 2).sum()) for l in (1, 2, 3)]))
        if step == t.steps:
            break
        with torch.no_grad():
            for p, lr, s in zip(params, rates, state, strict=True):
                g = p.grad.clone()
                if t.optimizer in ("sgd", "momentum"):
                    g = g + t.weight_decay * p
                    s["buf"] = g if s["buf"] is None else t.momentum * s["buf"] + g
                    p -= lr * s["buf"]
                    continue
                k = step + 1
                if t.optimizer == "adam":
                    g = g + t.weight_decay * p
                else:
                    p *= 1 - lr * t.weight_decay
                s["m"] = t.beta1 * s["m"] + (1 - t.beta1) * g
                s["v"] = t.beta2 * s["v"] + (1 - t.beta2) * g * g
                mhat = s["m"] / (1 - t.beta1 ** k)
                vhat = s["v"] / (1 - t.beta2 ** k)
                p -= lr * mhat / (vhat.sqrt() + t.eps)
    return out


@pytest.mark.parametrize("parameterization, optimizer, kw", [
    ("mup", "adam", dict(lr=0.01)),
    ("mup", "adamw", dict(lr=0.01, weight_decay=0.1, beta1=0.8)),
    ("mean_field", "adam", dict(lr=0.003, eps=1e-6)),
    ("standard", "adamw", dict(lr=0.001, weight_decay=0.01)),
    ("mup", "momentum", dict(lr=0.05, momentum=0.9)),
    ("mean_field", "sgd", dict(lr=0.05, weight_decay=0.01)),
    ("ntk", "sgd", dict(lr=0.5)),
])
def test_optimizers_step_for_step(parameterization, optimizer, kw):
    point = _point(parameterization, optimizer, **kw)
    rec = tr.simulate_point(point, measure=())
    hand = _hand_run(point)
    loss = np.array([h[0] for h in hand])
    grad = np.array([h[1] for h in hand])
    wsq = np.array([h[2] for h in hand])
    np.testing.assert_allclose(rec.values["batch_loss"], loss, rtol=1e-10)
    np.testing.assert_allclose(rec.values["grad_sq_norm"], grad, rtol=1e-9)
    np.testing.assert_allclose(rec.values["weight_sq_norm"], wsq, rtol=1e-10)
    assert not np.allclose(wsq[0], wsq[-1], rtol=1e-6)  # the weights did move


def test_wrong_rates_are_seen():
    """Negative: the mu-P Adam run differs from one with plain (unscaled) rates."""
    point = _point("mup", "adam", lr=0.01)
    rec = tr.simulate_point(point, measure=())
    hand = _hand_run(_point("standard", "adam", lr=0.01))
    assert not np.allclose(rec.values["batch_loss"][1:], [h[0] for h in hand][1:], rtol=1e-6)


def test_gradient_statistics_do_not_depend_on_the_optimizer(monkeypatch):
    """With the same init and batches, step 0 records the same numbers under sgd and adam
    (the optimizer only acts between steps); step 1 differs."""
    fixed = tr.derive_seeds(_point("mup", "sgd", lr=0.01))
    monkeypatch.setattr(tr, "derive_seeds", lambda point: fixed)
    a = tr.simulate_point(_point("mup", "sgd", lr=0.01), measure=())
    b = tr.simulate_point(_point("mup", "adam", lr=0.01), measure=())
    compared = 0
    for name in tr.SPINE_STATISTICS:
        va, vb = a.values[name], b.values[name]
        if va.ndim and va.shape[0] == STEPS + 1:
            np.testing.assert_array_equal(va[0], vb[0], err_msg=name)
            compared += 1
    assert compared >= 8
    assert not np.allclose(a.values["grad_sq_norm"][1], b.values["grad_sq_norm"][1])


def test_point_keys_of_earlier_points_unchanged():
    """New training fields are left out of the key JSON at their defaults."""
    p = Point(arch=Architecture(width=8, depth=1), training=Training())
    assert "beta1" not in p.to_json() and "weight_decay" not in p.to_json()
    q = Point(arch=Architecture(width=8, depth=1), training=Training(optimizer="adam", eps=1e-6))
    assert '"eps":1e-06' in q.to_json()
    assert Point.from_json(q.to_json()) == q
    assert math.isclose(Point.from_json(p.to_json()).training.beta2, 0.999)


CASES = [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.0, 0.05)]


def _groups(dtype):
    gen = torch.Generator().manual_seed(0)
    shapes = [(7, 5), (7,), (3, 7)]
    params = [torch.randn(s, generator=gen, dtype=dtype, requires_grad=True) for s in shapes]
    lrs = [0.3, 0.011, 1.7]  # per group, as per-layer rates give
    return params, [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("momentum,weight_decay", CASES)
def test_updates_equal_torch_sgd_bit_for_bit(momentum, weight_decay, dtype):
    ours, ours_groups = _groups(dtype)
    theirs, theirs_groups = _groups(dtype)
    opt_ours = SGD(ours_groups, momentum=momentum, weight_decay=weight_decay)
    opt_theirs = torch.optim.SGD(theirs_groups, lr=0.1, momentum=momentum,
                                 weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(1)
    for _ in range(8):
        opt_ours.zero_grad(set_to_none=False)
        opt_theirs.zero_grad(set_to_none=False)
        for a, b in zip(ours, theirs, strict=True):  # one loss, its gradient on both copies
            g = torch.randn(a.shape, generator=gen, dtype=dtype) * 10
            a.grad, b.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a, b)
    assert any(not torch.equal(a, p) for a, p in zip(ours, _groups(dtype)[0], strict=True))


@pytest.mark.parametrize("optimizer,kw", [("sgd", {}),
                                          ("momentum", {"momentum": 0.9, "weight_decay": 0.01})])
def test_simulated_point_equals_its_run_under_torch_sgd(monkeypatch, optimizer, kw):
    arch = Architecture(width=16, depth=3, input_dim=8, parameterization="mup", sigma_b2=0.1)
    point = Point(arch=arch, data=Data(input_dim=8, n_train=64), dtype="float32",
                  training=Training(batch_size=16, optimizer=optimizer, lr=0.2, steps=10,
                                    record=(0, 5, 10), **kw))
    ours = tr.simulate_point(point)

    def torch_sgd(model, training):
        return torch.optim.SGD(tr.param_groups(model, training), lr=training.lr,
                               momentum=training.momentum, weight_decay=training.weight_decay)

    monkeypatch.setattr(tr, "make_optimizer", torch_sgd)
    theirs = tr.simulate_point(point)
    for name, value in theirs.values.items():
        if name != "wall_time":
            np.testing.assert_array_equal(ours.values[name], value, err_msg=name)


def test_a_fresh_process_simulating_an_sgd_point_does_not_import_dynamo():
    code = ("import sys\n"
            "from gradstats.simulate.training import simulate_point\n"
            "from gradstats.spec import Architecture, Data, Point, Training\n"
            "p = Point(arch=Architecture(width=8, depth=2, input_dim=4),\n"
            "          data=Data(input_dim=4, n_train=32),\n"
            "          training=Training(batch_size=8, steps=3, record=(0, 3), momentum=0.5,\n"
            "                            optimizer='momentum'))\n"
            "simulate_point(p)\n"
            "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
