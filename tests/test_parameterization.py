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


KERNEL_NAMES = ("ntk", "standard")


def test_kernel_rows():
    assert tuple(n for n in pz.NAMES if pz.get(n).kernel_row) == KERNEL_NAMES


@pytest.mark.parametrize("name", KERNEL_NAMES)
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
    with pytest.raises(ValueError, match="unknown parameterization 'mup2'"):
        pz.get("mup2")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        pz.optimizer_family("lion")


@pytest.mark.parametrize("parameterization", KERNEL_NAMES)
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


# The mu-P and mean-field rows, written out by hand (independently of the row code) from
# Yang et al. 2022 ("Tensor Programs V", Table 3: mu-P without multipliers) and the
# mean-field form (raw weights N(0, 1), readout multiplier 1/n). d: input dim, n: width.
# Each entry: (multiplier, raw init std, weight lr factor, bias lr factor) per role and
# optimizer family, for fan_in (d or n) and fan_out (n, or k outputs for the readout).
def _expected(name, role, family, d, n, k, sw):
    fan_in = d if role == "input" else n
    fan_out = k if role == "readout" else n
    if name == "mup":
        m = 1.0
        std = sw / (n if role == "readout" else math.sqrt(fan_in))
        if family == "sgd":
            lr = {"input": n, "hidden": 1.0, "readout": 1.0 / n}[role]
            blr = fan_out
        else:
            lr = {"input": 1.0, "hidden": 1.0 / n, "readout": 1.0 / n}[role]
            blr = 1.0
    else:  # mean_field
        std = 1.0
        m = sw / (n if role == "readout" else math.sqrt(fan_in))
        if family == "sgd":
            lr = {"input": n, "hidden": n, "readout": n}[role]
            blr = fan_out
        else:
            lr = {"input": 1.0, "hidden": n ** -0.5, "readout": 1.0}[role]
            blr = 1.0
    return m, std, lr, blr


NEW_ROWS = ("mup", "mean_field")


@pytest.mark.parametrize("name", NEW_ROWS)
@pytest.mark.parametrize("role", pz.ROLES)
@pytest.mark.parametrize("optimizer", ("sgd", "momentum", "adam", "adamw"))
def test_new_rows_against_the_papers(name, role, optimizer):
    row = pz.get(name)
    family = "sgd" if optimizer in ("sgd", "momentum") else "adam"
    for d, n, k in ((10, 64, 1), (64, 1000, 3), (7, 4096, 10)):
        for sw in SIGMA_W:
            fan_in = d if role == "input" else n
            fan_out = k if role == "readout" else n
            m, std, lr, blr = _expected(name, role, family, d, n, k, sw)
            assert row.weight_multiplier(role, fan_in, sw) == pytest.approx(m, rel=1e-12)
            assert row.weight_init_std(role, fan_in, sw) == pytest.approx(std, rel=1e-12)
            assert row.lr_scale(role, fan_in, fan_out, optimizer) == pytest.approx(lr, rel=1e-12)
            assert row.bias_lr_scale(fan_out, optimizer) == pytest.approx(blr, rel=1e-12)


@pytest.mark.parametrize("role", pz.ROLES)
@pytest.mark.parametrize("family", ("sgd", "adam"))
def test_mean_field_is_mup_up_to_constants(role, family):
    """abc symmetry (Yang & Hu 2021): the effective weight m W has the same init variance and
    moves at the same width rate (SGD: lr m^2, Adam: lr m) under both rows, up to
    width-free constants; the rows differ from standard and ntk."""
    def effective(name, n):
        row = pz.get(name)
        fan_in = 16 if role == "input" else n
        fan_out = 1 if role == "readout" else n
        m = row.weight_multiplier(role, fan_in, 1.0)
        var = (m * row.weight_init_std(role, fan_in, 1.0)) ** 2
        lr = row.lr_scale(role, fan_in, fan_out, family)
        return var, lr * m ** (2 if family == "sgd" else 1)

    def slopes(name):
        (v1, r1), (v2, r2) = effective(name, 100), effective(name, 1600)
        return math.log(v2 / v1) / math.log(16), math.log(r2 / r1) / math.log(16)

    assert slopes("mup") == pytest.approx(slopes("mean_field"), abs=1e-12)
    if role == "readout":
        assert slopes("mup") != pytest.approx(slopes("standard"), abs=1e-6)


def _arch(name, width=512, depth=2, input_dim=32):
    return Architecture(width=width, depth=depth, parameterization=name, sigma_w2=2.0,
                        sigma_b2=0.25, input_dim=input_dim, output_dim=3)


@pytest.mark.parametrize("name", NEW_ROWS)
def test_model_reads_new_rows(name):
    """Built weights: raw init variance and output multipliers as the hand-written table."""
    arch = _arch(name)
    model = build_model(arch, seed=3, dtype=torch.float64)
    sw = math.sqrt(2.0)
    for l in range(1, arch.n_layers + 1):
        role = pz.role(l, arch.n_layers)
        m, std, _, _ = _expected(name, role, "sgd", arch.input_dim, arch.width, 3, sw)
        w = model.weights[l - 1].detach().numpy()
        assert model.w_mult[l - 1] == pytest.approx(m, rel=1e-12)
        # sample variance within 5 standard errors of std^2
        assert w.var() == pytest.approx(std**2, rel=5 * math.sqrt(2.0 / w.size))


@pytest.mark.parametrize("name", pz.NAMES)
@pytest.mark.parametrize("optimizer", ("sgd", "adam"))
def test_optimizer_param_groups_follow_the_row(name, optimizer):
    from gradstats.simulate.training import make_optimizer
    from gradstats.spec import Training

    arch = _arch(name)
    model = build_model(arch, seed=0)
    opt = make_optimizer(model, Training(optimizer=optimizer, lr=0.01, steps=1, record=(0, 1)))
    groups = opt.param_groups
    assert len(groups) == 2 * arch.n_layers
    for l in range(1, arch.n_layers + 1):
        role = pz.role(l, arch.n_layers)
        wg, bg = groups[2 * (l - 1)], groups[2 * (l - 1) + 1]
        assert wg["params"][0] is model.weights[l - 1]
        assert bg["params"][0] is model.biases[l - 1]
        if name in NEW_ROWS:
            _, _, lr, blr = _expected(name, role, "sgd" if optimizer == "sgd" else "adam",
                                      arch.input_dim, arch.width, 3, 1.0)
        else:
            lr = blr = 1.0
        assert wg["lr"] == pytest.approx(0.01 * lr, rel=1e-12)
        assert bg["lr"] == pytest.approx(0.01 * blr, rel=1e-12)
