"""Gradient-norm bounds hold on random torch networks; dead relu units; attenuation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from theory_helpers import sphere_inputs

from gradstats import Architecture
from gradstats.simulate import build_model
from gradstats.theory import bounds


def _run(arch, seed, b=6, y_scale=1.0, bias_shift=0.0):
    """One minibatch through `build_model`: effective weights, pre-activations, dL/df, x, and
    measured ||dL/dW_eff|| and ||dL/dW_raw|| per layer (mean mse loss)."""
    model = build_model(arch, seed, dtype=torch.float64)
    if bias_shift and model.biases is not None:
        with torch.no_grad():
            for bb in model.biases[:-1]:
                bb.add_(bias_shift)
    x = sphere_inputs(b, arch.input_dim, seed=seed + 100)
    y = y_scale * np.random.default_rng(seed).normal(size=(b, arch.output_dim))
    xt = torch.tensor(x)
    fw = model.forward_all(xt, retain_preact_grad=True)
    out = fw.output
    out.retain_grad()
    loss = 0.5 * ((out - torch.tensor(y)) ** 2).sum(dim=1).mean()
    loss.backward()
    n = arch.n_layers
    w_eff = [model.effective_weight(l).detach().numpy() for l in range(1, n + 1)]
    raw = np.array([float(w.grad.norm()) for w in model.weights])
    eff = raw / np.array(model.w_mult)
    pre = [h.detach().numpy() for h in fw.preacts]
    return w_eff, pre, out.grad.numpy(), x, eff, raw, model


CASES = [
    ("relu", "ntk", True, 3), ("relu", "standard", False, 4), ("tanh", "ntk", True, 5),
    ("sigmoid", "standard", True, 6), ("erf", "ntk", False, 2), ("gelu", "standard", True, 3),
    ("leaky_relu", "ntk", True, 3), ("abs", "standard", True, 2), ("softplus", "ntk", True, 3),
    ("linear", "ntk", False, 3),
]


@pytest.mark.parametrize(("activation", "param", "bias", "depth"), CASES)
def test_bounds_never_below_measured_norm(activation, param, bias, depth):
    for seed in range(4):
        arch = Architecture(width=24 + 8 * seed, depth=depth, activation=activation,
                            sigma_w2=[0.5, 1.5, 2.5, 4.0][seed], sigma_b2=0.2, bias=bias,
                            parameterization=param, input_dim=7, output_dim=1 + seed % 2)
        w, pre, g, x, measured, raw, model = _run(arch, seed)
        prod = bounds.product_bound(w, pre, g, x, activation)
        sup = bounds.derivative_sup_bound(w, pre, g, x, activation)
        slack = 1 + 1e-9
        assert np.all(measured <= prod * slack), (measured, prod)
        assert np.all(prod <= sup * slack), (prod, sup)
        # raw-weight gradients: scale by w_mult
        assert np.all(raw <= prod * np.asarray(model.w_mult) * slack)
        if activation == "relu":
            masked = bounds.relu_masked_bound(w, pre, g, x)
            assert np.all(measured <= masked * slack) and np.all(masked <= prod * slack)


def test_sigmoid_decay_bound():
    arch = Architecture(width=32, depth=6, activation="sigmoid", sigma_w2=1.0, input_dim=7)
    w, pre, g, x, measured, _, _ = _run(arch, 0)
    sup = bounds.derivative_sup_bound(w, pre, g, x, "sigmoid")
    ops = np.array([bounds.op_norm(m) for m in w])
    decay = bounds.sigmoid_decay_factor(arch.n_layers)
    np.testing.assert_allclose(decay, 0.25 ** np.arange(6, -1, -1))
    a_g = sum(np.linalg.norm(x[i]) * np.linalg.norm(g[i]) for i in range(len(x)))
    # layer 1: sum_i ||x_i|| ||G_i|| 4^-(L-1) prod_{k=2}^L ||W_k||_op
    assert sup[0] == pytest.approx(a_g * decay[0] * np.prod(ops[1:]), rel=1e-12)
    assert measured[0] <= sup[0]


def test_dead_relu_units_zero_their_gradient_rows_and_columns():
    arch = Architecture(width=20, depth=3, activation="relu", sigma_w2=2.0, sigma_b2=1.0,
                        input_dim=7)
    w, pre, g, x, measured, _, model = _run(arch, 1, bias_shift=-2.5)
    dead = bounds.dead_units(pre)
    assert sum(int(d.sum()) for d in dead) > 0
    for k, mask in enumerate(dead, start=1):  # hidden layer k
        grad_in = model.weights[k - 1].grad.numpy()  # W_k: rows are layer-k units
        grad_out = model.weights[k].grad.numpy()  # W_{k+1}: columns are layer-k units
        assert np.all(grad_in[mask] == 0) and np.all(grad_out[:, mask] == 0)
    frac = bounds.active_fraction(pre)
    assert frac[-1] == 1.0 and np.all(frac[:-1] < 0.5)
    masked = bounds.relu_masked_bound(w, pre, g, x)
    assert np.all(measured <= masked * (1 + 1e-9))


def test_relu_attenuation_predicts_backward_norms():
    """Mean over networks of ||delta_l||^2 / ||delta_L||^2 vs prod sigma_w^2 p_k."""
    sw2 = 1.6
    arch = Architecture(width=128, depth=3, activation="relu", sigma_w2=sw2, sigma_b2=0.3,
                        input_dim=7)
    ratios, preds = [], []
    for seed in range(40):
        model = build_model(arch, seed, dtype=torch.float64)
        x = torch.tensor(sphere_inputs(8, 7, seed=seed))
        fw = model.forward_all(x, retain_preact_grad=True)
        (0.5 * (fw.output**2).sum()).backward()
        d2 = np.array([float((h.grad**2).sum()) for h in fw.preacts])
        ratios.append(d2 / d2[-1])
        p = bounds.active_fraction([h.detach().numpy() for h in fw.preacts])
        preds.append(bounds.relu_attenuation(p, sw2))
    ratios, preds = np.array(ratios), np.array(preds)
    se = ratios.std(0, ddof=1) / np.sqrt(len(ratios))
    assert np.all(np.abs(ratios.mean(0) - preds.mean(0)) < 4 * se + 0.05 * preds.mean(0))
    per_unit = bounds.relu_attenuation([0.5, 0.5, 0.5, 1.0], 2.0, widths=[128, 128, 128, 1])
    np.testing.assert_allclose(per_unit, [1 / 128, 1 / 128, 1 / 128, 1.0])


def test_shape_checks():
    w = [np.ones((3, 2)), np.ones((1, 3))]
    pre = [np.ones((4, 3)), np.ones((4, 1))]
    with pytest.raises(ValueError):
        bounds.product_bound(w, pre[:1], np.ones((4, 1)), np.ones((4, 2)), "relu")
    with pytest.raises(ValueError):
        bounds.product_bound(w, pre, np.ones((4, 2)), np.ones((4, 2)), "relu")
    assert bounds.product_bound(w, pre, np.ones((4, 1)), np.ones((4, 2)), "relu").shape == (2,)


@pytest.mark.parametrize("shape", [(300, 300), (512, 256), (1024, 1024), (8, 300)])
def test_op_norm_is_the_largest_singular_value(shape):
    """Lanczos above 256 rows/columns, SVD below: both equal numpy's 2-norm to round-off."""
    from gradstats.theory.bounds import op_norm

    rng = np.random.default_rng(sum(shape))
    w = rng.standard_normal(shape) / np.sqrt(shape[1])
    w[:, 0] *= 3.0  # a dominant direction, as trained weights have
    assert op_norm(w) == pytest.approx(np.linalg.norm(w, 2), rel=1e-12)
