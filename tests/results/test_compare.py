"""Theory vs measurement on small real runs, with an independent hand-derived theory.

`LinearTheory` holds closed forms for LINEAR scalar-output MLPs (phi(h) = h, mse with
l_i = 0.5 (f_i - y_i)^2), derived by hand and independent of `gradstats.theory`. With
A_0 = x x^T / d and K_l = sigma_w^2 A_{l-1} + sigma_b^2, A_l = K_l: forward_q(l) = mean diag
K_l; the backward vector delta_l = df/dh_l has |delta_l|^2 = sigma_w^(2(L-l)), so per unit
sigma_w^(2(L-l)) / n_l (n_L = 1), and backward_q(l) = mean_i E[r_i^2] times that with
E[r r^T] = K_L + y y^T; the weight part of layer l's NTK (ntk parameterization) is
sigma_w^(2(L-l+1)) A_{l-1}, fan_in / sigma_w^2 times that for the raw weights of the standard
parameterization; E||dL/dW_l||^2 = B^-2 sum_ij Theta_l^W_ij (K_L + y y^T)_ij.
"""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gradstats.results.compare import compare, predicted_active_fraction, summary_rows
from gradstats.results.io import combine
from gradstats.results.schema import record_to_dataset
from gradstats.simulate.model import build_model
from gradstats.simulate.probe_estimators import init_batch
from gradstats.simulate.training import derive_seeds, simulate_point
from gradstats.spec import Architecture, Data, Point, Training


class LinearTheory:
    """Predictions for linear nets; ``as_param`` evaluates another parameterization than
    the run's (a deliberately wrong theory)."""

    def __init__(self, as_param: str | None = None, nngp_scale: float = 1.0) -> None:
        self.as_param, self.nngp_scale = as_param, nngp_scale

    def predict_statistics(self, arch: Architecture, x, y, loss: str = "mse") -> dict:
        assert arch.activation == "linear" and arch.output_dim == 1 and loss == "mse"
        if self.as_param:
            arch = dataclasses.replace(arch, parameterization=self.as_param)
        sw2, sb2 = arch.sigma_w2, (arch.sigma_b2 if arch.bias else 0.0)
        n_layers, batch = arch.n_layers, x.shape[0]
        a = [x @ x.T / x.shape[1]]
        for _ in range(n_layers):
            a.append(sw2 * a[-1] + sb2)
        c = a[n_layers] + np.outer(y[:, 0], y[:, 0])
        grad, fwd, bwd = [], [], []
        for l in range(1, n_layers + 1):
            theta_w = sw2 ** (n_layers - l + 1) * a[l - 1]
            if arch.parameterization == "standard":
                theta_w = theta_w * arch.fan_in(l) / sw2
            grad.append(float((theta_w * c).sum()) / batch**2)
            fwd.append(float(np.diag(a[l]).mean()))
            bwd.append(float(np.diag(c).mean()) * sw2 ** (n_layers - l) / arch.fan_out(l))
        return {"grad_sq_norm": np.array(grad), "forward_q": np.array(fwd),
                "backward_q": np.array(bwd),
                "output_mean_sq": np.asarray(np.diag(a[n_layers]).mean())}

    def signal_propagation(self, arch: Architecture) -> SimpleNamespace:
        return SimpleNamespace(chi_1=arch.sigma_w2)

    def nngp(self, arch: Architecture, x1, x2=None) -> np.ndarray:
        x2 = x1 if x2 is None else x2
        k = x1 @ x2.T / x1.shape[1]
        for _ in range(arch.n_layers):
            k = arch.sigma_w2 * k + (arch.sigma_b2 if arch.bias else 0.0)
        return self.nngp_scale * k

    def ntk(self, arch: Architecture, x1, x2=None) -> np.ndarray:
        """ntk parameterization: Theta_1 = K_1, Theta_{l+1} = K_{l+1} + sigma_w^2 Theta_l."""
        x2 = x1 if x2 is None else x2
        sb2 = arch.sigma_b2 if arch.bias else 0.0
        k = arch.sigma_w2 * x1 @ x2.T / x1.shape[1] + sb2
        theta = k.copy()
        for _ in range(arch.n_layers - 1):
            k = arch.sigma_w2 * k + sb2
            theta = k + arch.sigma_w2 * theta
        return theta


SEEDS = 6
SW2 = 1.5


def _points(parameterization: str, width: int, depth: int = 2, seeds: int = SEEDS) -> list[Point]:
    arch = Architecture(width=width, depth=depth, activation="linear", sigma_w2=SW2,
                        sigma_b2=0.1, parameterization=parameterization, input_dim=16)
    return [Point(arch=arch, training=Training(batch_size=16),
                  data=Data(input_dim=16, n_train=64), seed=s, device="cpu")
            for s in range(seeds)]


def _results(points: list[Point]):
    return combine([record_to_dataset(simulate_point(p)) for p in points])


@pytest.fixture(scope="module")
def linear_results():
    """Linear nets, width 128, depth 2, ntk and standard parameterization, 6 seeds."""
    return _results(_points("ntk", 128) + _points("standard", 128))


def test_probe_batch_is_the_simulators_step0_batch(linear_results):
    point = _points("standard", 128)[2]
    x, _ = init_batch(point)
    model = build_model(point.arch, derive_seeds(point).init)
    with torch.no_grad():
        h1 = model.forward_all(torch.as_tensor(x, dtype=torch.float32)).preacts[0]
    recorded = linear_results["forward_q"].sel(parameterization="standard", seed=2, step=0,
                                               layer=1)
    assert float((h1.double() ** 2).mean()) == pytest.approx(float(recorded), rel=1e-6)


def test_correct_theory_agrees(linear_results):
    out = compare(linear_results, theory=LinearTheory())
    for name in ("grad_sq_norm", "forward_q", "backward_q", "output_mean_sq",
                 "backward_q_decay", "nngp_ks"):
        verdicts = out[f"{name}_agrees"]
        assert int((verdicts == 1).sum()) == int(verdicts.notnull().sum()) > 0, name
    assert out["grad_sq_norm_pred"].attrs["units"] == "1"
    assert "theory" in out["grad_sq_norm_pred"].attrs["long_name"]
    # linear hidden layers: the backward signal grows by sigma_w^2 per layer toward the input
    np.testing.assert_allclose(out["backward_q_decay_pred"], math.log(SW2), rtol=1e-9)
    np.testing.assert_allclose(out["ln_chi1"], math.log(SW2))
    assert set(out["grad_sq_norm_mean"].dims) == {"parameterization", "layer"}
    assert {r.name for r in summary_rows(out)} >= {"grad_sq_norm", "forward_q", "nngp_ks"}


def test_wrong_parameterization_is_flagged(linear_results):
    """ntk-parameterization theory for the standard-parameterization run must disagree."""
    out = compare(linear_results, theory=LinearTheory(as_param="ntk"))
    wrong = out["grad_sq_norm_agrees"].sel(parameterization="standard")
    right = out["grad_sq_norm_agrees"].sel(parameterization="ntk")
    assert (wrong == 0).all() and (right == 1).all()
    assert (out["forward_q_agrees"] == 1).all()  # forward pass: parameterization-free


def test_wrong_nngp_fails_ks(linear_results):
    """Outputs whitened with a kernel 4x too small are not N(0, 1)."""
    out = compare(linear_results, theory=LinearTheory(nngp_scale=0.25))
    assert (out["nngp_ks_agrees"] == 0).all() and (out["nngp_output_var_agrees"] == 0).all()


def test_missing_statistics_and_theory_are_noted(linear_results):
    out = compare(linear_results, theory=SimpleNamespace(
        predict_statistics=LinearTheory().predict_statistics))
    notes = " ".join(out.attrs["notes"])
    for needle in ("grad_noise_trace not recorded", "ntk_rel_change not recorded",
                   "no nngp()", "needs at least 3 widths", "finite-width"):
        assert needle in notes
    assert "nngp_ks_agrees" not in out and "grad_sq_norm_agrees" in out


def test_predicted_active_fraction_closed_forms():
    assert predicted_active_fraction("relu", 0.7) == pytest.approx(0.5, abs=1e-3)
    assert predicted_active_fraction("leaky_relu", 3.0) == 1.0
    # erf: phi'(h) = 2/sqrt(pi) exp(-h^2) > 1e-6  <=>  |h| < t
    t = math.sqrt(math.log(2 / math.sqrt(math.pi) / 1e-6))
    assert predicted_active_fraction("erf", 4.0) == pytest.approx(math.erf(t / math.sqrt(8.0)),
                                                                  abs=2e-3)


@pytest.mark.slow
def test_ntk_init_exponent_on_three_widths():
    """Empirical NTK error ~ width^-1/2: the fitted exponent's CI holds -1/2."""
    points = [p for w in (32, 128, 512) for p in _points("ntk", w, depth=1, seeds=4)]
    out = compare(_results(points), theory=LinearTheory())
    assert float(out["ntk_init_exponent_agrees"]) == 1.0
    assert float(out["ntk_init_exponent_ci_low"]) < -0.5 < float(out["ntk_init_exponent_ci_high"])


# --- product bounds and the gradient noise scale on a tiny relu run ----------------------------

def _relu_points(batch_size: int, seeds: int = 3) -> list[Point]:
    arch = Architecture(width=32, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.05,
                        input_dim=8)
    return [Point(arch=arch, training=Training(batch_size=batch_size, lr=0.05, steps=3,
                                               record=(0, 3)),
                  data=Data(input_dim=8, n_train=32), seed=s, device="cpu",
                  measure=("per_example",))
            for s in range(seeds)]


@pytest.fixture(scope="module")
def relu_results():
    """relu, width 32, depth 2, batch sizes 1 and 8, 3 seeds, per_example measured."""
    return _results(_relu_points(1) + _relu_points(8))


@pytest.fixture(scope="module")
def relu_bounds(relu_results):
    from gradstats.theory import bounds
    return compare(relu_results, theory=SimpleNamespace(bounds=bounds))


def test_product_bound_holds_on_a_real_run(relu_bounds):
    out = relu_bounds
    for name in ("product_bound", "relu_masked_bound"):
        assert set(out[f"{name}_valid"].dims) == {"batch_size", "layer"}
        assert (out[f"{name}_valid"] == 1).all(), name
        assert (out[f"{name}_tightness"] >= 1 - 1e-4).all(), name
    # one example: the readout gradient G a^T has norm ||G|| ||a|| exactly, the bound's value
    readout = out["product_bound_tightness"].sel(batch_size=1, layer=3)
    assert float(readout) == pytest.approx(1.0, rel=1e-4)
    # masking inactive units can only tighten the bound
    assert (out["relu_masked_bound_tightness"]
            <= out["product_bound_tightness"] * (1 + 1e-9)).all()
    rows = {r.name: r for r in summary_rows(out)}
    assert rows["product_bound"].agree == 6 and rows["product_bound"].disagree == 0
    assert "bound/norm" in rows["product_bound"].detail


def test_halved_product_bound_is_flagged(relu_results, monkeypatch):
    from gradstats.theory import bounds

    original = bounds.product_bound
    monkeypatch.setattr(bounds, "product_bound", lambda *a, **k: 0.5 * original(*a, **k))
    out = compare(relu_results, theory=SimpleNamespace(bounds=bounds))
    # at batch size 1 the readout bound is exact, so half of it is below the measured norm
    assert float(out["product_bound_valid"].sel(batch_size=1, layer=3)) == 0.0
    assert float(out["product_bound_tightness"].sel(batch_size=1, layer=3)) == \
        pytest.approx(0.5, rel=1e-4)
    rows = {r.name: r for r in summary_rows(out)}
    assert rows["product_bound"].disagree >= 1


def test_noise_scale_rows_with_per_example(relu_results, relu_bounds, linear_results):
    out = relu_bounds
    first = out["noise_scale_first_mean"]
    # one example has no spread: grad_noise_scale is undefined (NaN) at batch size 1
    assert np.isnan(float(first.sel(batch_size=1)))
    measured = relu_results["grad_noise_scale"].sel(batch_size=8)
    assert float(first.sel(batch_size=8)) == pytest.approx(float(measured.sel(step=0).mean()))
    assert float(out["noise_scale_last_mean"].sel(batch_size=8)) == \
        pytest.approx(float(measured.sel(step=3).mean()))
    assert float(out["noise_scale_first_mean"].sel(batch_size=8)) > 0
    assert out["noise_scale_last_mean"].attrs["step"] == 3
    row = {r.name: r for r in summary_rows(out)}["noise_scale"]
    assert (row.agree, row.disagree, row.undetermined) == (0, 0, 2)
    assert "step 0" in row.detail and "step 3" in row.detail
    # not measured: no rows, a note
    plain = compare(linear_results, theory=LinearTheory())
    assert "noise_scale_agrees" not in plain
    assert any("grad_noise_scale not recorded" in n for n in plain.attrs["notes"])
