"""CNN-GP / CNTK through the layer path (`gradstats.theory.kernels` for cnn architectures).

External references: a CNN on 1x1 images with 1x1 filters is the MLP of the same
hyper-parameters (its kernels come from the MLP's own, independently tested code); a VALID
convolution whose filter covers the whole 1-D image is a dense layer on the flattened image.
neural-tangents' agreement is in test_conv_nt_crosscheck.py, Monte Carlo in
test_conv_monte_carlo.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gradstats import Architecture, theory
from gradstats.errors import InputError

RNG = np.random.default_rng(0)


def _cnn(**kw) -> Architecture:
    base = dict(width=8, depth=3, activation="relu", sigma_w2=1.7, sigma_b2=0.2,
                architecture="cnn")
    return Architecture(**{**base, **kw})


def _mlp_of(arch: Architecture, input_dim: int) -> Architecture:
    """The MLP with the cnn's hyper-parameters (conv fields back at their MLP defaults)."""
    return dataclasses.replace(arch, architecture="mlp", input_dim=input_dim, kernel_size=3,
                               padding="SAME", readout="flatten", image_shape=None)


@pytest.mark.parametrize("readout,parameterization,activation", [
    ("flatten", "ntk", "relu"), ("gap", "standard", "relu"), ("flatten", "standard", "erf"),
    ("gap", "ntk", "erf"),
    pytest.param("gap", "ntk", "tanh", marks=pytest.mark.slow),  # quadrature: slow to compile
])
def test_one_pixel_cnn_is_the_mlp(readout, parameterization, activation):
    x = RNG.normal(size=(4, 3))
    x2 = RNG.normal(size=(3, 3))
    cnn = _cnn(kernel_size=1, readout=readout, parameterization=parameterization,
               activation=activation)
    mlp = _mlp_of(cnn, 3)
    for other in (None, x2):
        got = theory.layer_kernels(cnn, x[:, :, None, None],
                                   None if other is None else other[:, :, None, None], x64=True)
        want = theory.layer_kernels(mlp, x, other, x64=True)
        for name in ("nngp", "ntk", "ntk_weight", "ntk_bias"):
            np.testing.assert_allclose(got[name], want[name], rtol=1e-11, atol=1e-13,
                                       err_msg=name)
    diag = theory.conv_diag_recursion(cnn, x[:, :, None, None], x64=True)
    want = theory.diag_recursion(mlp, np.mean(x * x, axis=1), x64=True)
    for name in ("q", "backward", "chi"):
        np.testing.assert_allclose(diag[name], want[name], rtol=1e-11, err_msg=name)


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_valid_filter_over_the_whole_image_is_a_dense_layer(parameterization):
    """depth 1: Conv(k = W, VALID) -> one pixel -> phi -> Flatten -> Dense."""
    x = RNG.normal(size=(4, 2, 5))
    cnn = _cnn(depth=1, kernel_size=5, padding="VALID", parameterization=parameterization)
    got = theory.layer_kernels(cnn, x, x64=True)
    want = theory.layer_kernels(_mlp_of(cnn, 10), x.reshape(4, 10), x64=True)
    for name in ("nngp", "ntk", "ntk_weight", "ntk_bias"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-11, err_msg=name)


@pytest.mark.parametrize("readout", ["flatten", "gap"])
@pytest.mark.parametrize("padding", ["SAME", "VALID", "CIRCULAR"])
def test_per_layer_terms_sum_to_the_ntk(readout, padding):
    """SAME/CIRCULAR blocks run in a scan, VALID ones unrolled (their images shrink)."""
    x = RNG.normal(size=(3, 2, 8, 7))
    arch = _cnn(readout=readout, padding=padding, sigma_b2=0.3)
    out = theory.layer_kernels(arch, x, x64=True)
    total = out["ntk_weight"].sum(axis=0) + out["ntk_bias"].sum(axis=0)
    np.testing.assert_allclose(total, out["ntk"], rtol=1e-12)
    assert out["ntk_weight"].shape == (arch.n_layers, 3, 3)
    assert np.all(np.diagonal(out["ntk_weight"], 0, 1, 2) > 0)
    assert np.all(np.diagonal(out["ntk_bias"], 0, 1, 2) > 0)
    k, t = theory.nngp_and_ntk(arch, x, x64=True)
    np.testing.assert_allclose(k, out["nngp"], rtol=1e-12)
    np.testing.assert_allclose(t, out["ntk"], rtol=1e-12)


def test_gap_and_flatten_differ_and_gap_sees_pixel_pairs():
    """A guard that the readouts are not silently the same map: GAP couples pixels, so
    shifting an image circularly leaves a CIRCULAR GAP kernel unchanged but not Flatten's
    kernel between an image and its shift."""
    x = RNG.normal(size=(1, 1, 6, 6))
    shifted = np.roll(x, 2, axis=-1)
    pair = np.concatenate([x, shifted])
    gap = theory.nngp(_cnn(readout="gap", padding="CIRCULAR"), pair, x64=True)
    flat = theory.nngp(_cnn(readout="flatten", padding="CIRCULAR"), pair, x64=True)
    assert gap[0, 1] == pytest.approx(gap[0, 0], rel=1e-12)
    assert flat[0, 1] < 0.9 * flat[0, 0]


def test_one_dimensional_and_two_dimensional_images_both_run():
    x1 = RNG.normal(size=(3, 2, 9))
    x2 = x1[:, :, None, :]  # the same image as (1, 9): a 1x3 filter would match; 3x3 pads rows
    k1 = theory.nngp(_cnn(kernel_size=3), x1, x64=True)
    k2 = theory.nngp(_cnn(kernel_size=3), x2, x64=True)
    assert k1.shape == k2.shape == (3, 3)
    assert not np.allclose(k1, k2)  # zero rows above and below shrink the 2-D variances


def test_image_inputs_are_checked():
    with pytest.raises(ValueError, match=r"images x of shape \(n, C, W\) or \(n, C, H, W\)"):
        theory.nngp(_cnn(), RNG.normal(size=(3, 4)))
    with pytest.raises(ValueError, match="x2 must be"):
        theory.nngp(_cnn(), RNG.normal(size=(3, 1, 5, 5)), RNG.normal(size=(2, 1, 4, 5)))
    with pytest.raises(InputError, match="padding"):
        _cnn(padding="same")
    with pytest.raises(InputError, match="readout"):
        _cnn(readout="mean")
