"""The lr-transfer summary on synthetic sweeps whose optimum is known by construction: a
loss that is a parabola in log2 lr with its minimum at a chosen grid lr per width."""

from __future__ import annotations

import numpy as np
import pytest
from lr_transfer_helpers import LOG2_LR, SEEDS, parabola_dataset

from gradstats.results.lr_transfer import lr_transfer_summary


def test_recovers_known_optima_and_their_shift_in_grid_steps():
    # "sp": optimum one grid step lower per width doubling (-3 over 8x); "mup": fixed at -4
    ds = parabola_dataset({"sp": [-5, -6, -7, -8], "mup": [-4, -4, -4, -4]})
    s = lr_transfer_summary(ds)
    assert s["lr_opt"].dims == ("parameterization", "width")
    assert np.array_equal(np.log2(s["lr_opt"].sel(parameterization="sp")), [-5, -6, -7, -8])
    assert np.array_equal(np.log2(s["lr_opt"].sel(parameterization="mup")), [-4] * 4)
    assert np.array_equal(s["shift_steps"].sel(parameterization="sp"), [0, -1, -2, -3])
    assert float(s["lr_shift"].sel(parameterization="sp")) == -3
    assert float(s["lr_shift"].sel(parameterization="mup")) == 0
    assert float(s["grid_factor"].sel(parameterization="sp")) == 2.0
    assert s["resolved"].all() and (s["status"] == "resolved").all()
    assert s["lr_shift_resolved"].all()
    # a resolved optimum is the only plausible lr: the shift range is the shift itself
    assert (s["plausible"].sum("lr") == 1).all()
    assert s["lr_shift_low"].equals(s["lr_shift"]) and s["lr_shift_high"].equals(s["lr_shift"])
    # distance from the grid's edge (grid -12..0): -5 is 5 steps above the lower edge
    assert np.array_equal(s["edge_steps"].sel(parameterization="sp"), [5, 6, 5, 4])
    assert not s["on_edge"].any()
    # seed mean and standard error straight from the data
    last = ds["full_loss"].isel(step=-1)
    assert np.allclose(s["loss_mean"], last.mean("seed").transpose(*s["loss_mean"].dims))
    se = last.std("seed", ddof=1) / np.sqrt(SEEDS)
    assert np.allclose(s["loss_se"], se.transpose(*s["loss_se"].dims))


def test_a_tie_between_two_grid_lrs_is_unresolved_and_widens_the_shift_range():
    # minima halfway between grid lrs at widths 128 and 1024: two lrs tie (0.025 above the
    # minimum), their neighbours are 0.2 higher
    ds = parabola_dataset({"sp": [-5.5, -6, -7, -8.5], "mup": [-4] * 4})
    s = lr_transfer_summary(ds).sel(parameterization="sp")
    for width, pair in ((128, [-6, -5]), (1024, [-9, -8])):
        cell = s.sel(width=width)
        assert list(np.log2(cell["lr"].values[cell["plausible"].values])) == pair
        assert float(np.log2(cell["lr_low"])) == pair[0] and float(np.log2(cell["lr_high"])) == pair[1]
        assert str(cell["status"].values) == "unresolved"
    assert float(s["lr_shift_low"]) == -4 and float(s["lr_shift_high"]) == -2
    assert -4 <= float(s["lr_shift"]) <= -2 and not bool(s["lr_shift_resolved"])


def test_an_optimum_on_the_grid_edge_is_flagged():
    ds = parabola_dataset({"sp": [-5, -8, -11, -14], "mup": [-4, -4, -4, -4]})
    s = lr_transfer_summary(ds).sel(parameterization="sp")
    # width 1024's true optimum (-14) lies below the grid: the argmin is the edge lr -12
    assert float(np.log2(s["lr_opt"].sel(width=1024))) == -12
    assert bool(s["on_edge"].sel(width=1024)) and str(s["status"].sel(width=1024).values) == "edge"
    assert int(s["edge_steps"].sel(width=1024)) == 0
    assert not bool(s["resolved"].sel(width=1024)) and not bool(s["lr_shift_resolved"])
    assert not s["on_edge"].sel(width=[128, 256, 512]).any()


def test_noise_far_above_the_curvature_leaves_the_optimum_unresolved():
    """Noise 1 against a curvature of 1e-4 per grid step^2, so no optimum: the argmin is the
    smallest of 13 noisy means, and the one-sided 5% rule calls about 1 in 12 of them resolved
    (simulated in the module docstring), far from the all-resolved clear parabola above."""
    interior = resolved = 0
    for seed in range(20):
        s = lr_transfer_summary(parabola_dataset({"sp": [-6] * 4, "mup": [-6] * 4},
                                                 curvature=1e-4, noise=1.0, seed=seed))
        inside = ~s["on_edge"]
        assert set(s["status"].values[inside.values]) <= {"resolved", "unresolved"}
        interior += int(inside.sum())
        resolved += int(s["resolved"].sum())
    assert interior > 100 and resolved / interior < 0.12


def test_diverged_seeds_are_inf_and_never_the_optimum():
    ds = parabola_dataset({"sp": [-5, -6, -7, -8], "mup": [-4] * 4})
    cell = {"parameterization": "sp", "width": 512, "lr": 2.0 ** -7}
    # one seed of the true optimum diverged: its loss is NaN padding, diverged = 1
    ds["full_loss"].loc[{**cell, "seed": 1, "step": 100}] = np.nan
    ds["diverged"].loc[{**cell, "seed": 1}] = 1.0
    s = lr_transfer_summary(ds)
    assert int(s["n_diverged"].sel(cell)) == 1 and np.isinf(float(s["loss_mean"].sel(cell)))
    assert int(s["n_diverged"].sum()) == 1
    # the optimum moves to a neighbour of -7 (both are 0.1 above the minimum in expectation)
    opt = float(np.log2(s["lr_opt"].sel(parameterization="sp", width=512)))
    assert opt in (-8.0, -6.0)
    # a diverged neighbour counts as higher: all seeds of width 128's -4 and -6 diverge
    for lr in (-6, -4):
        sel = {"parameterization": "sp", "width": 128, "lr": 2.0 ** lr}
        ds["diverged"].loc[sel] = 1.0
        ds["full_loss"].loc[{**sel, "step": 100}] = np.nan
    s = lr_transfer_summary(ds)
    w128 = s.sel(parameterization="sp", width=128)
    assert float(np.log2(w128["lr_opt"])) == -5 and bool(w128["resolved"])


def test_every_lr_diverged_gives_no_optimum():
    ds = parabola_dataset({"sp": [-5] * 4, "mup": [-4] * 4})
    ds["diverged"].loc[{"parameterization": "sp", "width": 256}] = 1.0
    s = lr_transfer_summary(ds).sel(parameterization="sp", width=256)
    assert str(s["status"].values) == "diverged" and np.isnan(float(s["lr_opt"]))


def test_each_group_uses_its_own_lr_grid():
    """A zip of (parameterization, lr) runs each parameterization on its own grid: the other
    lrs are NaN with diverged NaN (never run) and do not count as the grid's edge."""
    ds = parabola_dataset({"sp": [-9, -10, -11, -11], "mup": [-5, -5, -4, -4]})
    off = {"parameterization": "mup", "lr": 2.0 ** LOG2_LR[LOG2_LR < -7]}
    ds["full_loss"].loc[off] = np.nan
    ds["diverged"].loc[off] = np.nan
    s = lr_transfer_summary(ds)
    mup = s.sel(parameterization="mup")
    assert int(mup["on_grid"].sel(width=128).sum()) == 8   # -7..0
    assert np.array_equal(mup["edge_steps"], [2, 2, 3, 3])  # -5, -4: indices 2, 3 of -7..0
    assert float(mup["lr_shift"]) == 1 and float(s["lr_shift"].sel(parameterization="sp")) == -2
    assert np.isnan(mup["loss_mean"].sel(lr=2.0 ** -8)).all()
    assert (mup["n_diverged"] == 0).all()


def test_needs_an_lr_dim():
    ds = parabola_dataset({"sp": [-5] * 4}).isel(lr=0)
    with pytest.raises(ValueError, match="'lr' dim"):
        lr_transfer_summary(ds)
