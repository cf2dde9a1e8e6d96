"""`compare` on residual and LayerNorm networks: a wrong prediction is refused, the right one
agrees, and rows derived for plain MLPs say `outside`.

Wrong predictions come from outside the code under test: the package's own theory evaluated
for a mis-specified architecture (the residual scale alpha = 1 for an alpha = 1/sqrt(depth)
network and back, LayerNorm ignored) or scaled by a known factor (`compare_helpers`).
Networks: relu at sigma_w2 = 1.5 (chi_1 = 0.75), width 512, depth 8, 8 seeds (the setting of
the `residual` preset at a depth the test suite can afford).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from compare_helpers import (
    AGREE,
    DISAGREE,
    OUTSIDE,
    ArchTheory,
    ScaledTheory,
    compared,
    count,
    fraction,
    make_points,
    simulate,
    to_results,
    verdicts,
)

from gradstats.results.compare import compare

KERNEL_ROWS = ("grad_sq_norm", "bias_grad_sq_norm", "backward_q", "forward_q")
NET = dict(width=512, depth=8, activation="relu", sigma_w2=1.5, sigma_b2=0.05, input_dim=32)
SCALED = dict(residual=True, residual_scale="1/sqrt(depth)")
ALPHA_1 = dict(residual=True, residual_scale=1.0)


@pytest.fixture(scope="module")
def runs():
    """alpha = 1/sqrt(depth) with LayerNorm, alpha = 1 without and with LayerNorm."""
    return {"scaled+layer": simulate(make_points(8, norm="layer", **SCALED, **NET)),
            "alpha=1": simulate(make_points(8, **ALPHA_1, **NET)),
            "alpha=1+layer": simulate(make_points(8, norm="layer", **ALPHA_1, **NET))}


def _with(**changes):
    return ArchTheory(lambda arch: dataclasses.replace(arch, **changes))


def _layers(cmp, name, code):
    """The layers whose cell of ``name`` has verdict ``code``."""
    v = cmp[f"{name}_verdict"].squeeze()
    return sorted(int(layer) for layer in v["layer"].values[(v == code).values])


def test_the_right_theory_agrees_on_residual_and_layernorm_networks(runs):
    """Inside the domain (effective depth/width <= 0.03 here) no kernel row disagrees and
    >= 90% of its cells agree at 8 seeds (the readout's forward_q is not tested). The exact
    weight norms, with no allowance, are tested as for any network in test_compare.py."""
    for label, records in runs.items():
        cmp = compared(records)
        for name in KERNEL_ROWS:
            assert count(cmp, name, DISAGREE) == 0, (label, name, verdicts(cmp, name))
            assert count(cmp, name, OUTSIDE) == 0, (label, name)
            assert fraction(cmp, name, AGREE) >= 0.9, (label, name, verdicts(cmp, name))
        for name in ("backward_q_decay", "grad_sq_norm_decay"):
            assert count(cmp, name, DISAGREE) == 0, (label, name)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_a_theory_off_by_two_is_detected_on_residual_networks(runs, factor):
    for label, records in runs.items():
        cmp = compared(records, ScaledTheory(factor))
        for name in KERNEL_ROWS:
            assert fraction(cmp, name, DISAGREE) >= 0.9, (label, name, factor,
                                                          verdicts(cmp, name))


def test_a_misspecified_residual_scale_is_detected(runs):
    """Predictions for alpha = 1 on an alpha = 1/sqrt(8) network (and back): the stream
    grows by 1 + alpha^2 sigma_w2/2 per block, 1.75 against 1.09. Layer 1 (before any block)
    does not depend on alpha and agrees; every later forward cell disagrees, and so do the
    gradient and backward rows but for at most one cell (with LayerNorm the branch gain and
    the norm's 1/q_l both grow with alpha and nearly cancel in layer 1's backward signal)."""
    for label, records, wrong in (("scaled+layer", runs["scaled+layer"], _with(residual_scale=1.0)),
                                  ("alpha=1", runs["alpha=1"],
                                   _with(residual_scale="1/sqrt(depth)"))):
        cmp = compared(records, wrong)
        assert _layers(cmp, "forward_q", DISAGREE) == list(range(2, 9)), label
        assert _layers(cmp, "forward_q", AGREE) == [1], label
        for name in ("grad_sq_norm", "backward_q"):
            assert count(cmp, name, AGREE) <= 1, (label, name, verdicts(cmp, name))
            assert fraction(cmp, name, DISAGREE) >= 0.8, (label, name, verdicts(cmp, name))


def test_layernorm_ignored_by_the_theory_is_detected(runs):
    """alpha = 1 with LayerNorm: the stream grows linearly (q_l = q_1 + 0.8 (l - 1)), the
    theory without the norm predicts 1.75^l and backward gains without the 1/q_l of the
    norm's Jacobian."""
    cmp = compared(runs["alpha=1+layer"], _with(norm="none"))
    assert _layers(cmp, "forward_q", DISAGREE) == list(range(2, 9))
    for name in ("grad_sq_norm", "backward_q"):
        assert count(cmp, name, AGREE) == 0, (name, verdicts(cmp, name))
        assert fraction(cmp, name, DISAGREE) >= 0.8, (name, verdicts(cmp, name))
    assert count(cmp, "backward_q_decay", DISAGREE) == 1


def test_rows_derived_for_plain_mlps_are_outside_with_the_reason():
    """A sweep with a plain MLP beside residual and normalized networks: the product bounds
    are tested on the MLP only, not computed for the others, which are `outside`."""
    cfgs = [dict(), ALPHA_1, dict(norm="layer")]
    records = [r for cfg in cfgs for r in simulate(make_points(2, width=128, depth=3,
                                                                input_dim=16, **cfg))]
    ds = to_results(records)
    assert "residual_scale" not in ds.dims  # 1.0 everywhere
    bound = ds["theory_product_bound"].isel(seed=0)
    mlp, residual, normed = (dict(residual=0, norm="none"), dict(residual=1, norm="none"),
                             dict(residual=0, norm="layer"))
    assert bool(bound.sel(mlp).notnull().all())
    assert bool(bound.sel(residual).isnull().all()) and bool(bound.sel(normed).isnull().all())
    assert bool(ds["theory_ln_chi1"].sel(normed).isnull().all())
    cmp = compare(ds)
    for name in ("product_bound", "relu_masked_bound"):
        v, reason = cmp[f"{name}_verdict"], cmp[f"{name}_reason"]
        assert bool((v.sel(mlp) == AGREE).all()), name
        for sel in (residual, normed):
            assert bool((v.sel(sel) == OUTSIDE).all()), (name, sel)
            assert all("plain MLPs only: residual/norm" in str(r)
                       for r in reason.sel(sel).values.ravel())
    # the kernel rows are tested on every network
    assert np.isin(verdicts(cmp, "grad_sq_norm"), [OUTSIDE], invert=True).all()


def test_a_narrow_deep_residual_network_is_outside_and_never_agrees():
    """alpha = 1 at width 32, depth 20: effective depth/width ~0.5, far outside; with the right
    theory and with it scaled by 0.1 and 10 no kernel cell agrees."""
    records = simulate(make_points(6, width=32, depth=20, activation="relu", sigma_w2=1.5,
                                   **ALPHA_1))
    for theory in (None, ScaledTheory(0.1), ScaledTheory(10.0)):
        cmp = compared(records, theory)
        for name in (*KERNEL_ROWS, "backward_q_decay", "grad_sq_norm_decay"):
            assert count(cmp, name, AGREE) == 0, name
        reasons = {str(r) for r in cmp["grad_sq_norm_reason"].values.ravel()}
        assert any(r.startswith("effective depth/width") for r in reasons), reasons
