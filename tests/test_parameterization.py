"""The abc table (`gradstats.parameterization`): each row's multiplier, init and
learning-rate exponents, the kernel scales derived from them, and the torch model built
from a row."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradstats import parameterization as pz
from gradstats.simulate import build_model
from gradstats.spec import Architecture

FAN_INS = (1, 3, 64, 1000)
SIGMA_W = (0.5, 1.0, math.sqrt(2.0))


@pytest.mark.parametrize("name", pz.NAMES)
@pytest.mark.parametrize("role", pz.ROLES)
def test_effective_weight_variance(name, role):
    """m^2 std^2 = sigma_w^2 / n for the ntk and standard rows (same function at init)."""
    row = pz.get(name)
    for n in FAN_INS:
        for sw in SIGMA_W:
            m, std = row.weight_multiplier(role, n, sw), row.weight_init_std(role, n, sw)
            assert m**2 * std**2 == pytest.approx(sw**2 / n, rel=1e-12), (n, sw)
    for sb in (0.0, 0.3, 1.7):
        assert (row.bias_multiplier(sb) * row.bias_init_std(sb)) ** 2 == pytest.approx(
            sb**2, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("name", pz.NAMES)
@pytest.mark.parametrize("role", pz.ROLES)
def test_kernel_scales_follow_the_row(name, role):
    """T^W / A = m^2 n lr_scale (gradient of m W a wrt raw W is m a; lr scales it);
    T^b = m_b^2."""
    row = pz.get(name)
    for n in FAN_INS:
        for sw in SIGMA_W:
            m = row.weight_multiplier(role, n, sw)
            assert row.weight_kernel_scale(role, n, sw**2) == pytest.approx(
                m**2 * n * row.lr_scale(role, n), rel=1e-12)
    for sb in (0.0, 0.3, 1.7):
        assert row.bias_kernel_scale(sb**2) == pytest.approx(row.bias_multiplier(sb) ** 2,
                                                             rel=1e-12, abs=1e-15)


def test_the_two_rows():
    """DESIGN.md: ntk W, b ~ N(0,1), m = sigma_w/sqrt(n), m_b = sigma_b; standard
    W ~ N(0, sigma_w^2/n), b ~ N(0, sigma_b^2), m = m_b = 1. Kernel scales: ntk sigma_w^2 and
    sigma_b^2 (width-free), standard n and 1."""
    ntk, std = pz.get("ntk"), pz.get("standard")
    n, sw, sb = 256, 1.3, 0.4
    for role in pz.ROLES:
        assert ntk.weight_multiplier(role, n, sw) == pytest.approx(sw / 16)
        assert ntk.weight_init_std(role, n, sw) == 1.0
        assert std.weight_multiplier(role, n, sw) == 1.0
        assert std.weight_init_std(role, n, sw) == pytest.approx(sw / 16)
        assert ntk.weight_kernel_scale(role, n, sw**2) == pytest.approx(sw**2)
        assert std.weight_kernel_scale(role, n, sw**2) == pytest.approx(n)
        assert ntk.lr_scale(role, n) == std.lr_scale(role, n) == 1.0
    assert (ntk.bias_multiplier(sb), ntk.bias_init_std(sb)) == (sb, 1.0)
    assert (std.bias_multiplier(sb), std.bias_init_std(sb)) == (1.0, sb)
    assert ntk.bias_kernel_scale(sb**2) == pytest.approx(sb**2)
    assert std.bias_kernel_scale(sb**2) == 1.0
    # negative: the rows are not interchangeable
    assert ntk.weight_kernel_scale("hidden", n, sw**2) != std.weight_kernel_scale(
        "hidden", n, sw**2)


def test_roles_and_lookup():
    assert [pz.role(l, 4) for l in (1, 2, 3, 4)] == ["input", "hidden", "hidden", "readout"]
    assert pz.role(1, 1) == "readout"  # depth 0: the readout alone
    assert pz.Exponents(1, 2, 3).of("hidden") == 2
    with pytest.raises(ValueError, match="unknown parameterization 'mup'"):
        pz.get("mup")


@pytest.mark.parametrize("parameterization", pz.NAMES)
def test_torch_model_follows_the_row(parameterization):
    """`build_model`: multipliers equal the row's, raw weights have the row's std (checked
    over a 1024 x 1024 matrix: relative SE of a sample std sqrt(1/(2N)) ~ 7e-4)."""
    arch = Architecture(width=1024, depth=2, input_dim=512, output_dim=3, sigma_w2=1.7,
                        sigma_b2=0.3, parameterization=parameterization)
    row = pz.get(parameterization)
    model = build_model(arch, seed=0, dtype=torch.float64)
    sw, sb = math.sqrt(arch.sigma_w2), math.sqrt(arch.sigma_b2)
    for l in range(1, arch.n_layers + 1):
        role, n = pz.role(l, arch.n_layers), arch.fan_in(l)
        assert model.w_mult[l - 1] == pytest.approx(row.weight_multiplier(role, n, sw),
                                                    rel=1e-14)
        assert model.b_mult[l - 1] == pytest.approx(row.bias_multiplier(sb), rel=1e-14)
        w = model.weights[l - 1].detach().numpy()
        assert w.shape == (arch.fan_out(l), n)
        expected = row.weight_init_std(role, n, sw)
        tol = 5 / math.sqrt(2 * w.size)
        assert w.std() == pytest.approx(expected, rel=tol)
        eff = model.effective_weight(l).detach().numpy()
        assert eff.var() * n == pytest.approx(arch.sigma_w2, rel=2 * tol)
        other = pz.get("standard" if parameterization == "ntk" else "ntk")
        if w.size > 1000:  # negative: the other row's std is rejected
            assert w.std() != pytest.approx(other.weight_init_std(role, n, sw), rel=tol)
    b = np.concatenate([bias.detach().numpy() for bias in model.biases[:2]])  # 2048 entries
    assert b.std() == pytest.approx(row.bias_init_std(sb), rel=5 / math.sqrt(2 * b.size))
