"""Mean-field signal propagation: published reference values, fixed points, phase diagram."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradstats import Architecture, theory
from gradstats.theory import activations as act
from gradstats.theory import signal


def arch_(**kw) -> Architecture:
    base = dict(width=100, depth=4, activation="tanh", sigma_w2=1.0, sigma_b2=0.05, input_dim=8)
    base.update(kw)
    return Architecture(**base)


def test_tanh_reference_values():
    """tanh, sigma_w2 = 1, sigma_b2 = 0.05 (Schoenholz et al. 2017 setting)."""
    sp = theory.signal_propagation(arch_())
    assert sp.q_star == pytest.approx(0.19359, abs=1e-5)
    assert sp.chi_1 == pytest.approx(0.75903, abs=1e-5)
    assert sp.phase == "ordered" and sp.c_star == 1.0
    assert sp.xi_grad == pytest.approx(-1 / math.log(sp.chi_1))
    assert sp.chi_c == pytest.approx(sp.chi_1)


def test_tanh_critical_line():
    assert theory.critical_sigma_w2("tanh", 0.05) == pytest.approx(1.761, abs=1e-3)
    assert theory.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    # erf without bias: chi_1 = sigma_w2 phi'(0)^2 = sigma_w2 * 4/pi at q* = 0
    assert theory.critical_sigma_w2("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-6)


@pytest.mark.parametrize("sw2", [1.0, 2.0, 3.5])
@pytest.mark.parametrize("sb2", [0.0, 0.3])
def test_relu_chi_is_half_sigma_w2(sw2, sb2):
    sp = theory.signal_propagation(arch_(activation="relu", sigma_w2=sw2, sigma_b2=sb2))
    assert sp.chi_1 == pytest.approx(sw2 / 2, rel=1e-12)
    assert sp.phase == {1.0: "ordered", 2.0: "critical", 3.5: "chaotic"}[sw2]
    if sw2 < 2 and sb2 > 0:
        assert sp.q_star == pytest.approx(sb2 / (1 - sw2 / 2))
    if sw2 > 2:
        assert sp.q_star == math.inf and sp.xi_q == math.inf
    assert theory.critical_sigma_w2("relu", sb2) == pytest.approx(2.0, rel=1e-10)


@pytest.mark.parametrize("activation", ["tanh", "erf", "sigmoid", "gelu", "softplus"])
def test_fixed_points_are_fixed(activation):
    import jax.numpy as jnp

    for sw2, sb2 in ((0.8, 0.1), (2.5, 0.2)):
        sp = theory.signal_propagation(arch_(activation=activation, sigma_w2=sw2, sigma_b2=sb2))
        if not (0 < sp.q_star < math.inf):
            continue
        with theory.enable_x64():
            q = jnp.array([sp.q_star])
            v, d = act.diag(activation, q)
            assert sw2 * float(v[0]) + sb2 == pytest.approx(sp.q_star, rel=1e-9)
            assert sw2 * float(d[0]) == pytest.approx(sp.chi_1, rel=1e-9)
            a, dot = act.pair(activation, q, q, jnp.array([sp.c_star * sp.q_star]))
            assert (sw2 * float(a[0]) + sb2) / sp.q_star == pytest.approx(sp.c_star, abs=1e-7)
            if sp.c_star < 1:
                assert sp.chi_c == pytest.approx(sw2 * float(dot[0]), rel=1e-9)
                assert sp.phase == "chaotic" and sp.chi_c < 1


def test_tanh_chaotic_correlation_fixed_point():
    sp = theory.signal_propagation(arch_(sigma_w2=2.5, sigma_b2=0.0))
    assert sp.phase == "chaotic"
    assert sp.c_star == pytest.approx(0.0, abs=1e-6)  # odd phi, no bias: c* = 0
    sp = theory.signal_propagation(arch_(sigma_w2=2.5, sigma_b2=0.1))
    assert 0 < sp.c_star < 1 and sp.chi_c < 1 and math.isfinite(sp.xi_c)


def test_xi_q_is_the_slope_of_the_length_map():
    import jax.numpy as jnp

    sw2, sb2 = 1.4, 0.1
    sp = theory.signal_propagation(arch_(sigma_w2=sw2, sigma_b2=sb2))
    h = 1e-5
    with theory.enable_x64():  # (jax 0.5 downcasts float64 arrays used outside the scope)
        v = np.asarray(act.diag("tanh", jnp.array([sp.q_star - h, sp.q_star + h]))[0])
    slope = sw2 * (v[1] - v[0]) / (2 * h)
    assert sp.xi_q == pytest.approx(-1 / math.log(slope), rel=1e-6)


def test_per_layer_q_and_backward_ratio():
    arch = arch_(depth=5, sigma_w2=1.5, sigma_b2=0.1)
    sp = theory.signal_propagation(arch, q0=2.0)
    assert sp.q_l.shape == (6,) and sp.backward_ratio.shape == (6,)
    assert sp.q_l[0] == pytest.approx(1.5 * 2.0 + 0.1)
    x = np.full((1, 8), math.sqrt(2.0))
    np.testing.assert_allclose(sp.q_l[-1], theory.nngp(arch, x, x64=True)[0, 0], rtol=1e-10)
    assert sp.chi_1_l[-1] == 1.0 and sp.backward_ratio[-1] == 1.0
    np.testing.assert_allclose(sp.backward_ratio[:-1] / sp.backward_ratio[1:], sp.chi_1_l[:-1])
    # deep layers approach the fixed point
    deep = theory.signal_propagation(arch_(depth=40, sigma_w2=1.5, sigma_b2=0.1))
    assert deep.q_l[-1] == pytest.approx(deep.q_star, rel=1e-6)
    assert deep.chi_1_l[-2] == pytest.approx(deep.chi_1, rel=1e-5)
    d = sp.to_dict()
    assert isinstance(d["q_l"], list) and d["phase"] == sp.phase


def test_bias_false_means_no_bias_variance():
    a = theory.signal_propagation(arch_(bias=False, sigma_b2=0.5))
    b = theory.signal_propagation(arch_(bias=True, sigma_b2=0.0))
    assert a.q_star == b.q_star == 0.0 and a.chi_1 == b.chi_1 == pytest.approx(1.0)


def test_classify_tolerance():
    assert signal.classify(1.0005) == "critical"
    assert signal.classify(1.0005, tol=1e-4) == "chaotic"
    assert signal.classify(0.5) == "ordered"


def test_phase_diagram_dataset(tmp_path):
    pytest.importorskip("xarray")
    sw = np.linspace(0.5, 3.0, 6)
    sb = np.array([0.0, 0.05, 0.2])
    ds = theory.phase_diagram("tanh", sw, sb)
    assert ds["chi_1"].dims == ("sigma_w2", "sigma_b2")
    assert ds["sigma_w2_critical"].dims == ("sigma_b2",)
    assert ds["sigma_w2_critical"].sel(sigma_b2=0.05).item() == pytest.approx(1.761, abs=1e-3)
    sp = theory.signal_propagation(arch_(sigma_w2=1.5, sigma_b2=0.2))
    point = ds.sel(sigma_w2=1.5, sigma_b2=0.2)
    assert point["chi_1"].item() == pytest.approx(sp.chi_1, rel=1e-9)
    assert point["q_star"].item() == pytest.approx(sp.q_star, rel=1e-9)
    assert point["phase"].item() == signal.PHASE_CODES[sp.phase]
    assert set(np.unique(ds["phase"].values)) <= {-1, 0, 1}
    # chi_1 grows with sigma_w2 at fixed sigma_b2 for tanh
    assert np.all(np.diff(ds["chi_1"].values, axis=0) > 0)
    pytest.importorskip("netCDF4")
    path = tmp_path / "pd.nc"
    ds.to_netcdf(path)
    import xarray as xr

    with xr.open_dataset(path) as back:
        np.testing.assert_allclose(back["chi_1"].values, ds["chi_1"].values)
    relu = theory.phase_diagram("relu", sw, sb)
    np.testing.assert_allclose(relu["chi_1"].values, np.repeat(sw[:, None] / 2, 3, axis=1))
    np.testing.assert_allclose(relu["sigma_w2_critical"].values, 2.0)
    with pytest.raises(ValueError):
        theory.phase_diagram("relu", [-1.0], [0.0])
