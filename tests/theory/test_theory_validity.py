"""Validity domains of residual and normalized networks: the effective depth, and the rows
whose theory is derived for plain MLPs only."""

from __future__ import annotations

import dataclasses

import pytest

from gradstats.comparisons import COMPARISONS, by_name
from gradstats.spec import Architecture, Data, Point, Training
from gradstats.theory import validity


def point(**arch) -> Point:
    base = dict(width=512, depth=16, activation="relu", sigma_w2=1.5, sigma_b2=0.05,
                input_dim=32)
    return Point(arch=Architecture(**{**base, **arch}), data=Data(input_dim=32),
                 training=Training(batch_size=32))


RESIDUAL = dict(residual=True, residual_scale=1.0)
SCALED = dict(residual=True, residual_scale="1/sqrt(depth)")


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_a_plain_network_keeps_beta_equal_to_depth_over_width(norm):
    for depth in (1, 4, 64):
        p = point(depth=depth, norm=norm)
        assert validity.effective_depth(p.arch) == depth
        assert validity.beta(p) == depth / 512


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("norm", ["none", "layer"])
def test_alpha_one_over_sqrt_depth_keeps_the_effective_depth_bounded(activation, norm):
    """Hayou & Yang 2023: with 1/sqrt(depth) branches the finite-width corrections do not
    accumulate over depth."""
    depths = [validity.effective_depth(point(depth=d, activation=activation, norm=norm,
                                             **SCALED).arch) for d in (4, 16, 64, 256)]
    assert all(1.0 <= d <= 3.0 for d in depths), depths
    assert depths[-1] - depths[-2] < 0.1  # converged in depth


def test_alpha_one_accumulates_like_an_mlp_without_norm_and_logarithmically_with_layernorm():
    """relu, sigma_w2 = 1.5: r = 0.43 per block without norm (w = 2r = 0.87, the measured
    envelope); LayerNorm makes the stream grow linearly, r_l ~ 1/l."""
    plain = [validity.effective_depth(point(depth=d, **RESIDUAL).arch) for d in (16, 64)]
    assert 0.8 * 16 <= plain[0] < 16 and 0.8 * 64 <= plain[1] < 64
    normed = [validity.effective_depth(point(depth=d, norm="layer", **RESIDUAL).arch)
              for d in (16, 64, 256)]
    assert normed[0] < 6 and normed[1] < 9 and normed[2] < 12, normed
    # ~ 2 x 1.25 x ln 4 more per factor 4 in depth
    assert normed[2] - normed[1] == pytest.approx(normed[1] - normed[0], rel=0.3)


def test_the_domain_follows_the_effective_depth():
    """At width 512 a depth-64 relu network is inside with alpha = 1/sqrt(depth) or LayerNorm,
    outside as a plain MLP and with alpha = 1 and no norm (finite-width effects not small:
    median per-seed spread of ln grad_sq_norm / prediction 0.64 there)."""
    assert validity.infinite_width(point(depth=64, **SCALED)) is None
    assert validity.infinite_width(point(depth=64, norm="layer", **RESIDUAL)) is None
    assert "depth/width = 0.125" in validity.infinite_width(point(depth=64))
    reason = validity.infinite_width(point(depth=64, **RESIDUAL))
    assert reason.startswith("effective depth/width")
    assert validity.infinite_width(point(depth=16, **RESIDUAL)) is None
    narrow = point(width=64, depth=12, **RESIDUAL)
    assert "effective depth/width" in validity.infinite_width(narrow)
    # the allowance grows with the effective depth, not the nominal one
    scaled, plain = point(depth=64, **SCALED), point(depth=4)
    assert validity.finite_width_allowance(scaled) < validity.finite_width_allowance(plain)


MLP_ONLY = ("product_bound", "relu_masked_bound", "ln_grad_sq_norm_var")


@pytest.mark.parametrize("arch", [RESIDUAL, SCALED, dict(norm="layer"),
                                  dict(norm="layer", **RESIDUAL)],
                         ids=["alpha=1", "alpha=1/sqrt(depth)", "layernorm", "residual+ln"])
def test_rows_derived_for_plain_mlps_are_outside_for_residual_and_normalized_networks(arch):
    # the Hanin-Nica setting otherwise (relu, no bias, one example with target 0)
    p = point(depth=4, sigma_b2=0.0, bias=False, **arch)
    p = dataclasses.replace(p, training=Training(batch_size=1),
                            data=Data(input_dim=32, teacher="zero"))
    for name in MLP_ONLY:
        reason = validity.DOMAINS[by_name(name).domain](p)
        assert reason and "plain MLP" in reason, (name, reason)
    assert validity.plain_mlp(p).startswith("plain MLPs only: residual/norm")
    mlp = dataclasses.replace(p, arch=dataclasses.replace(p.arch, residual=False, norm="none"))
    for name in MLP_ONLY:
        assert validity.DOMAINS[by_name(name).domain](mlp) is None, name


def test_kernel_rows_stay_valid_for_residual_and_layernorm_networks():
    p = point(depth=16, norm="layer", **SCALED)
    for c in COMPARISONS:
        if c.name in ("grad_sq_norm", "bias_grad_sq_norm", "backward_q", "forward_q",
                      "backward_q_decay", "grad_sq_norm_decay", "weight_sq_norm"):
            assert validity.DOMAINS[c.domain](p) is None, c.name


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_the_residual_weight_coefficient_interpolates_between_one_layer_and_the_full_depth(norm):
    """w_l = min(1, c r_l): c = 0 leaves only the first layer, a c large enough to saturate
    every block counts every layer; the default is c = 2, and c = 1 weighs no more than it."""
    arch = point(depth=16, norm=norm, **RESIDUAL).arch
    assert validity.effective_depth(arch, weight_coef=0.0) == 1.0
    assert validity.effective_depth(arch, weight_coef=1e9) == 16.0
    default = validity.effective_depth(arch)
    assert default == validity.effective_depth(arch, weight_coef=validity.RESIDUAL_WEIGHT_COEF)
    assert validity.effective_depth(arch, weight_coef=1.0) < default
