"""`network_spec`: the composition an `Architecture` describes, and its torch realization
checked against a forward pass written out by hand from the conventions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gradstats import parameterization as pz
from gradstats.layers import Block, hyper, network_spec
from gradstats.layers.activation import Activation
from gradstats.layers.dense import Dense
from gradstats.layers.norm import BatchNorm, LayerNorm
from gradstats.layers.residual import Residual
from gradstats.simulate import build_model
from gradstats.spec import Architecture

D = 5


def _arch(**kw) -> Architecture:
    base = dict(width=16, depth=4, activation="tanh", sigma_w2=1.7, sigma_b2=0.3, input_dim=D)
    return Architecture(**{**base, **kw})


def _dense(arch: Architecture, layer: int) -> Dense:
    role = {1: "input", arch.n_layers: "readout"}.get(layer, "hidden")
    return Dense(arch.parameterization, role, arch.input_dim if layer == 1 else None, arch.bias)


def _kinds(block: Block) -> list[str]:
    return [type(layer).__name__ for layer in block.all_layers()]


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("bias", [True, False])
def test_mlp_composition(parameterization, bias):
    arch = _arch(parameterization=parameterization, bias=bias)
    net = network_spec(arch)
    act = Activation("tanh")
    assert net.runs == ((Block((_dense(arch, 1),)), 1),
                        (Block((act, _dense(arch, 2))), arch.depth - 1),
                        (Block((act, _dense(arch, arch.n_layers))), 1))
    assert net.n_layers == arch.n_layers == len(net.blocks()) == 5
    assert not any(block.residual for block in net.blocks())
    assert net.per_example


def test_residual_composition():
    """Blocks 2..depth are residual (phi then Dense inside the branch); block 1 and the
    readout are not."""
    arch = _arch(residual=True, residual_scale=0.5)
    blocks = network_spec(arch).blocks()
    assert len(blocks) == arch.n_layers
    assert [b.residual for b in blocks] == [False, True, True, True, False]
    for block in blocks[1:-1]:
        (res,) = block.layers
        assert isinstance(res, Residual)
        assert res.branch == (Activation("tanh"), _dense(arch, 2))
        assert _kinds(block) == ["Residual", "Activation", "Dense"]
    assert _kinds(blocks[-1]) == ["Activation", "Dense"]
    assert blocks[-1].layers[-1].role == "readout"
    # depth 1: no hidden-to-hidden layer, so no residual block at all
    assert not any(b.residual for b in network_spec(_arch(depth=1, residual=True)).blocks())


@pytest.mark.parametrize("norm", ["layer", "batch"])
@pytest.mark.parametrize("residual", [False, True])
def test_norm_precedes_every_activation(norm, residual):
    arch = _arch(norm=norm, residual=residual)
    net = network_spec(arch)
    kind = {"layer": "LayerNorm", "batch": "BatchNorm"}[norm]
    blocks = net.blocks()
    assert _kinds(blocks[0]) == ["Dense"]
    for block in blocks[1:]:
        kinds = [k for k in _kinds(block) if k != "Residual"]
        assert kinds == [kind, "Activation", "Dense"]
    n_norms = sum(isinstance(layer, LayerNorm | BatchNorm)
                  for block in blocks for layer in block.all_layers())
    assert n_norms == arch.depth  # before each of the depth activations
    assert net.per_example is (norm != "batch")


@pytest.mark.parametrize("kw", [{}, {"norm": "layer"}, {"residual": True},
                                {"residual": True, "norm": "layer"}, {"norm": "batch"},
                                {"norm": "batch", "residual": True}])
def test_per_example_false_only_with_batch_norm(kw):
    arch = _arch(**kw)
    expected = kw.get("norm") != "batch"
    assert network_spec(arch).per_example is expected
    assert build_model(arch, seed=0).per_example is expected


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("residual", [False, True])
def test_block_counts_and_runs(depth, residual):
    """Consecutive identical blocks form one run; every block holds exactly one Dense."""
    arch = _arch(depth=depth, residual=residual, norm="layer")
    net = network_spec(arch)
    counts = [count for _, count in net.runs]
    expected = {0: [1], 1: [1, 1]}.get(depth, [1, depth - 1, 1])
    assert counts == expected
    assert sum(counts) == net.n_layers == depth + 1
    blocks = net.blocks()
    assert len(blocks) == depth + 1
    for l, block in enumerate(blocks, start=1):
        dense = [layer for layer in block.all_layers() if isinstance(layer, Dense)]
        assert len(dense) == 1
        assert dense[0].role == pz.role(l, depth + 1)
        assert dense[0].fan_in == (D if l == 1 else None)
    for (a, _), (b, _) in zip(net.runs, net.runs[1:], strict=False):
        assert a != b  # maximal runs: neighbours differ


def test_structure_leaves_out_the_swept_values():
    """sigma_w^2, sigma_b^2, width and alpha are values (`hyper`), not structure: archs that
    differ only in them share one `NetworkSpec` (one compilation of the kernels)."""
    arch = _arch(residual=True, residual_scale=0.5)
    for change in ({"sigma_w2": 2.5}, {"sigma_b2": 0.0}, {"width": 64},
                   {"residual_scale": "1/sqrt(depth)"}):
        other = dataclasses.replace(arch, **change)
        assert network_spec(other) == network_spec(arch)
        assert hash(network_spec(other)) == hash(network_spec(arch))
    for change in ({"depth": 5}, {"bias": False}, {"norm": "layer"}, {"residual": False},
                   {"activation": "relu"}, {"parameterization": "standard"}):
        assert network_spec(dataclasses.replace(arch, **change)) != network_spec(arch)


def test_hyper():
    arch = _arch(residual=True, residual_scale="1/sqrt(depth)", depth=9)
    assert hyper(arch) == {"sw2": 1.7, "sb2": 0.3, "width": 16.0, "alpha": 1 / 3}
    assert hyper(_arch(residual=False, residual_scale=0.5))["alpha"] == 1.0
    assert hyper(_arch(bias=False))["sb2"] == 0.0


def _hand_forward(model, arch: Architecture, x: torch.Tensor, *, alpha: float,
                  layer_norm: bool) -> list[torch.Tensor]:
    """The streams h_1..h_L from the conventions, written out without `gradstats.layers`."""
    phi = {"tanh": torch.tanh, "relu": torch.relu}[arch.activation]

    def norm(h):
        if not layer_norm:
            return h
        mu = h.mean(-1, keepdim=True)
        var = ((h - mu) ** 2).mean(-1, keepdim=True)
        return (h - mu) / torch.sqrt(var + 1e-12)

    def dense(l, a):
        z = model.w_mult[l - 1] * a @ model.weights[l - 1].T
        return z if model.biases is None else z + model.b_mult[l - 1] * model.biases[l - 1]

    hs = [dense(1, x)]
    for l in range(2, arch.n_layers + 1):
        z = dense(l, phi(norm(hs[-1])))
        hs.append(hs[-1] + alpha * z if arch.residual and l <= arch.depth else z)
    return hs


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize(("residual", "scale", "norm"),
                         [(False, 1.0, "none"), (True, 0.5, "none"), (False, 1.0, "layer"),
                          (True, "1/sqrt(depth)", "layer")])
def test_torch_composition_matches_hand_forward(parameterization, residual, scale, norm):
    arch = _arch(parameterization=parameterization, residual=residual, residual_scale=scale,
                 norm=norm, output_dim=3)
    model = build_model(arch, seed=1, dtype=torch.float64)
    x = torch.randn(6, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    with torch.no_grad():
        fwd = model.forward_all(x)
        hs = _hand_forward(model, arch, x, alpha=arch.alpha, layer_norm=norm == "layer")
        for l in range(1, arch.n_layers + 1):
            torch.testing.assert_close(fwd.streams[l - 1], hs[l - 1], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fwd.output, hs[-1], rtol=1e-12, atol=1e-12)
        # the dense outputs z_l: the streams' increments / alpha in residual blocks
        for l in range(2, arch.depth + 1):
            if residual:
                torch.testing.assert_close(fwd.streams[l - 1] - fwd.streams[l - 2],
                                           arch.alpha * fwd.preacts[l - 1])
            else:
                assert fwd.preacts[l - 1] is fwd.streams[l - 1]
        if norm == "layer":  # phi's input is normalized: zero mean, unit variance per example
            for u in fwd.phi_inputs:
                torch.testing.assert_close(u.mean(-1), torch.zeros(6, dtype=u.dtype),
                                           atol=1e-12, rtol=0)
                torch.testing.assert_close(u.var(-1, unbiased=False),
                                           torch.ones(6, dtype=u.dtype), atol=1e-9, rtol=0)
        # negative checks: the hand forward with another alpha or without LayerNorm differs
        if residual:
            wrong = _hand_forward(model, arch, x, alpha=1.1 * arch.alpha,
                                  layer_norm=norm == "layer")[-1]
            assert not torch.allclose(wrong, fwd.output, rtol=1e-6)
        if norm == "layer":
            wrong = _hand_forward(model, arch, x, alpha=arch.alpha, layer_norm=False)[-1]
            assert not torch.allclose(wrong, fwd.output, rtol=1e-6)


def test_batch_norm_couples_the_examples():
    """With batch norm f(x_i) depends on the other examples of the batch; otherwise not."""
    x = torch.randn(8, D, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for norm, coupled in (("batch", True), ("layer", False), ("none", False)):
        model = build_model(_arch(norm=norm), seed=0, dtype=torch.float64)
        with torch.no_grad():
            full, half = model(x)[:4], model(x[:4])
        assert (not torch.allclose(full, half, rtol=1e-9)) is coupled, norm


def test_alpha_resolution():
    assert _arch(residual=True, residual_scale="1/sqrt(depth)", depth=4).alpha == 0.5
    assert _arch(residual=True, residual_scale=0.3).alpha == 0.3
    assert _arch(residual=False, residual_scale=0.3).alpha == 1.0
    assert math.isclose(build_model(_arch(residual=True, residual_scale="1/sqrt(depth)"),
                                    seed=0)._trace(2, False).alpha, 0.5)
    np.testing.assert_equal(network_spec(_arch()).n_layers, 5)
