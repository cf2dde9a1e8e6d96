"""The cnn composition: layer numbering, fan-ins, initialization scales and spec errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from gradstats.layers import network_spec
from gradstats.layers.activation import Activation
from gradstats.layers.conv import Conv, Flatten, GlobalAvgPool, same_pads
from gradstats.layers.dense import Dense
from gradstats.simulate import build_model
from gradstats.spec import Architecture, Data, Point, SpecError

KEY_BEFORE_CNN = "d9a634c9c369af30"  # main before issue 15


def cnn(**changes) -> Architecture:
    base = dict(width=6, depth=3, architecture="cnn", input_dim=2, image_shape=(8, 8))
    return Architecture(**{**base, **changes})


def test_network_spec_numbers_layers_like_neural_tangents():
    arch = cnn(readout="gap")
    blocks = network_spec(arch).blocks()
    assert len(blocks) == arch.n_layers == 4
    assert blocks[0].layers == (Conv("ntk", "input", 2, (3, 3), "SAME", True),)
    assert blocks[1].layers == (Activation("relu"), Conv("ntk", "hidden", None, (3, 3), "SAME",
                                                         True))
    assert blocks[2] == blocks[1]
    assert blocks[3].layers == (Activation("relu"), GlobalAvgPool(), Dense("ntk", "readout",
                                                                           None, True))
    flat = network_spec(cnn(image_shape=(9,))).blocks()
    assert flat[0].layers[0].kernel_size == (3,) and isinstance(flat[3].layers[1], Flatten)


def test_fan_ins():
    assert [cnn().fan_in(l) for l in range(1, 5)] == [2 * 9, 6 * 9, 6 * 9, 6 * 64]
    assert cnn(readout="gap").fan_in(4) == 6
    valid = cnn(padding="VALID", kernel_size=2)  # 8 -> 7 -> 6 -> 5 pixels per dim
    assert valid.spatial_shape(3) == (5, 5) and valid.fan_in(4) == 6 * 25
    assert cnn(image_shape=(10,), kernel_size=5).fan_in(1) == 2 * 5


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_effective_weight_variance_is_sigma_w2_over_fan_in(parameterization):
    """Monte Carlo over the entries: var(m W) = sigma_w^2 / fan_in per layer (nt's init)."""
    arch = cnn(width=64, sigma_w2=1.7, sigma_b2=0.3, parameterization=parameterization)
    model = build_model(arch, 0, dtype=torch.float64)
    for l in range(1, arch.n_layers + 1):
        w = model.effective_weight(l).detach().numpy().ravel()
        want = 1.7 / arch.fan_in(l)
        # sample variance of n Gaussian entries: relative sd sqrt(2/n)
        assert abs(w.var() / want - 1) < 5 * math.sqrt(2 / w.size), l
        assert model.weights[l - 1].shape[0] == arch.fan_out(l)
    assert model.weights[0].shape == (64, 2, 3, 3)
    if parameterization == "ntk":
        assert model.w_mult[0] == pytest.approx(math.sqrt(1.7 / 18))


def test_same_seed_same_weights_and_a_different_seed_differs():
    a, b = build_model(cnn(), 3), build_model(cnn(), 3)
    for wa, wb in zip(a.weights, b.weights, strict=True):
        torch.testing.assert_close(wa, wb, rtol=0, atol=0)
    assert not torch.equal(build_model(cnn(), 4).weights[0], a.weights[0])


def test_forward_matches_torch_conv_modules():
    """The composition against a hand-written torch network with the same weights."""
    arch = cnn(depth=2, padding="CIRCULAR", readout="flatten", activation="tanh", sigma_b2=0.5,
               output_dim=3)
    model = build_model(arch, 1, dtype=torch.float64)
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    h = x
    for l in range(1, 3):
        if l > 1:
            h = torch.tanh(h)
        conv = torch.nn.Conv2d(h.shape[1], 6, 3, padding=1, padding_mode="circular",
                               dtype=torch.float64)
        conv.weight.data = model.effective_weight(l).detach()
        conv.bias.data = model.b_mult[l - 1] * model.biases[l - 1].detach()
        h = conv(h)
    out = model.effective_weight(3) @ torch.tanh(h).reshape(4, -1).T
    out = out.T + model.b_mult[2] * model.biases[2]
    torch.testing.assert_close(model(x), out.detach(), rtol=1e-12, atol=1e-12)


def test_same_padding_splits_like_xla():
    assert same_pads(3) == (1, 1) and same_pads(4) == (1, 2) and same_pads(1) == (0, 0)
    arch = cnn(kernel_size=4, depth=1)
    model = build_model(arch, 0, dtype=torch.float64)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    fwd = model.forward_all(x)
    assert fwd.preacts[0].shape == (2, 6, 8, 8)


@pytest.mark.parametrize(("changes", "field"), [
    ({"depth": 0}, "depth"),
    ({"init": "orthogonal"}, "init"),
    ({"residual": True}, "residual"),
    ({"norm": "layer"}, "norm"),
    ({"padding": "same"}, "padding"),
    ({"readout": "max"}, "readout"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"padding": "VALID", "kernel_size": 4}, "kernel_size"),  # 3 layers: 8 - 9 < 1
    ({"image_shape": (2, 2, 2)}, "image_shape"),
    ({"architecture": "rnn"}, "architecture"),
])
def test_bad_cnn_fields_name_the_field(changes, field):
    with pytest.raises(SpecError, match=f"^{field}: "):
        cnn(**changes)


def test_mlp_refuses_conv_fields():
    with pytest.raises(SpecError, match="^kernel_size: applies to architecture"):
        Architecture(width=4, depth=1, kernel_size=5)


def test_point_fills_the_image_shape_and_checks_the_data():
    p = Point(arch=Architecture(width=4, depth=1, architecture="cnn"),
              data=Data(name="digits-images", input_dim=1, n_train=10))
    assert p.arch.image_shape == (8, 8) and p.arch.input_dim == 1
    with pytest.raises(SpecError, match="^data: architecture"):
        Point(arch=Architecture(width=4, depth=1, architecture="cnn"), data=Data(name="sphere"))
    with pytest.raises(SpecError, match="^data: data = 'torus-fields' is image-shaped"):
        Point(arch=Architecture(width=4, depth=1), data=Data(name="torus-fields", input_dim=64))
    assert Point.from_json(p.to_json()) == p


def test_mlp_points_keep_their_keys():
    """The new fields stay out of an MLP point's JSON (its content key is unchanged)."""
    p = Point(arch=Architecture(width=4, depth=1), data=Data())
    d = p.to_dict()
    for name in ("architecture", "kernel_size", "padding", "readout", "image_shape"):
        assert name not in d["arch"]
    assert "image_size" not in d["data"]
    c = dataclasses.replace(p, arch=dataclasses.replace(p.arch, architecture="cnn"),
                            data=Data(name="torus-fields", input_dim=64))
    assert c.key() != p.key() and c.to_dict()["arch"]["architecture"] == "cnn"


def test_with_image_infers_and_checks():
    arch = Architecture(width=4, depth=1, architecture="cnn")
    assert arch.with_image((3, 5, 6)).image_shape == (5, 6)
    assert arch.with_image((3, 5, 6)).input_dim == 3
    with pytest.raises(SpecError, match="^image_shape:"):
        cnn().with_image((2, 5, 5))
    with pytest.raises(SpecError, match="^data:"):
        arch.with_image((7,))
    with pytest.raises(SpecError, match="^data:"):
        Architecture(width=4, depth=1).with_image((1, 8, 8))
    np.testing.assert_equal(Architecture(width=4, depth=1).with_image((7,)).input_dim, 7)


def test_mlp_point_key_and_data_seed_are_those_of_before_the_cnn_fields():
    """Values computed by the code before the cnn fields existed: an MLP point's content key
    and data seed (which hashes repr(Data)) are unchanged, so its results are too."""
    from gradstats.simulate.training import derive_seeds
    from gradstats.spec import Training

    p = Point(arch=Architecture(width=16, depth=2, activation="tanh", sigma_b2=0.1),
              data=Data(input_dim=8, n_train=64),
              training=Training(batch_size=16, steps=3, record=(0, 3)),
              measure=("per_example", "full_batch"))
    assert p.key() == KEY_BEFORE_CNN
    assert derive_seeds(p).data == 12181585965362770508
