"""`gradstats.simulate.sgd.SGD` is torch.optim.SGD bit for bit, and spares a fresh process
torch.optim's import of torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gradstats.simulate import training as tr
from gradstats.simulate.sgd import SGD
from gradstats.spec import Architecture, Data, Point, Training

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
