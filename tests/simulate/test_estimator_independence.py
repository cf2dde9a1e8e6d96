"""Estimators are pure and independent: a statistic's values do not depend on which other
``measure`` groups run, nor in which order; ``update`` never modifies the state it is given;
shared per-step quantities are computed once; random streams are stable."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from test_distribution_estimators import make_ctx, make_snap

from gradstats.simulate import distribution_estimators as DE
from gradstats.simulate import engine
from gradstats.simulate.data import output_dim
from gradstats.simulate.estimator_names import BUILTIN_ESTIMATORS, estimator_names
from gradstats.simulate.estimators import (
    StepCache,
    available_estimators,
    make_estimator,
    random_stream,
)
from gradstats.simulate.training import SPINE_STATISTICS, simulate_point
from gradstats.spec import Architecture, Data, Point, Training

BATCH = 8
RECORD = (0, 1, 3)


def small_point(loss: str = "mse") -> Point:
    data = Data(name="sphere", input_dim=5, n_train=20)
    arch = Architecture(width=12, depth=2, input_dim=5, output_dim=output_dim(data, loss))
    training = Training(batch_size=BATCH, loss=loss, steps=RECORD[-1], record=RECORD, lr=0.1)
    return Point(arch=arch, training=training, data=data)


@pytest.fixture
def cheap_fits(monkeypatch):
    """Fewer bootstrap reps and a shorter iteration-wise threshold: the same code, faster."""
    monkeypatch.setattr(DE, "N_BOOTSTRAP", 5)
    monkeypatch.setattr(DE, "ITER_MIN_STEPS_SHAPE", len(RECORD))
    from gradstats.simulate import paper_estimators, protocols

    monkeypatch.setattr(protocols, "STRICT_BOOTSTRAP", 5)
    monkeypatch.setattr(paper_estimators, "XIE_MINIBATCHES", 64)


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # dead relu examples
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_adding_or_reordering_groups_leaves_every_statistic_bit_identical(cheap_fits, loss):
    point = small_point(loss)
    groups = available_estimators()
    assert len(groups) >= 5
    # each group alone (the trained point adds ntk), then all groups in several orders
    runs = {(g,): simulate_point(point, measure=(g,)).values for g in groups}
    orders = [tuple(groups), tuple(reversed(groups)), tuple(groups[2:] + groups[:2]),
              ("directions", "per_example"), ("per_example", "directions")]
    for order in orders:
        runs[order] = simulate_point(point, measure=order).values
    owner = {s: g for g in groups for s in make_estimator(g).statistics}
    reference = {name: runs[(owner[name],)][name] for name in owner}
    spine = runs[(groups[0],)]
    checked = 0
    for measure, values in runs.items():
        assert all(np.isfinite(values["batch_loss"])), measure
        for name, value in values.items():
            if name == "wall_time":
                continue
            ref = reference[name] if name in owner else spine[name]
            assert _equal(value, ref), f"{name} differs when measuring {measure}"
            checked += 1
        for g in measure:  # every statistic of every measured group was recorded
            assert set(make_estimator(g).statistics) <= set(values), (measure, g)
    assert checked > 5 * len(owner)
    # the tracked statistics are not all-NaN (the comparison above is not vacuous)
    assert np.isfinite(reference["iterwise_kurtosis"][-1]).all()
    assert np.isfinite(reference["minibatch_dir_r_bar"]).all()
    assert np.isfinite(reference["dimwise_powerlaw_p"]).any()
    assert set(SPINE_STATISTICS) <= set(spine)


def test_update_returns_a_new_state_and_leaves_the_old_one_alone(cheap_fits):
    ctx = make_ctx(width=16, depth=1, record=(0, 1))
    est = make_estimator("distribution")
    state0 = est.init(ctx)
    assert all(not c.flags.writeable for c in state0.coords)
    state1, v1 = est.update(ctx, state0, make_snap(ctx, 0))
    assert state1 is not state0 and all(len(h) == 0 for h in state0.history)
    assert all(len(h) == 1 for h in state1.history)
    again, v1b = est.update(ctx, state0, make_snap(ctx, 0))  # same input, same output
    assert all(_equal(v1[k], v1b[k]) for k in v1)
    assert all(_equal(a[0], b[0]) for a, b in zip(again.history, state1.history, strict=True))
    state2, _ = est.update(ctx, state1, make_snap(ctx, 1))
    assert all(len(h) == 1 for h in state1.history) and all(len(h) == 2 for h in state2.history)
    assert est.init(ctx).coords[0].tolist() == state0.coords[0].tolist()  # init is pure too


def test_per_example_gram_is_formed_once_per_step(cheap_fits, monkeypatch):
    point = small_point()
    real = engine.grams
    calls: list[int] = []

    def counting(s1, s2=None, **kw):
        calls.append(s1.batch_size)
        return real(s1, s2, **kw)

    monkeypatch.setattr(engine, "grams", counting)
    simulate_point(point, measure=("per_example", "directions"))
    # minibatch Grams (16 B examples) and NTKs (20 examples) are other sizes
    assert calls.count(BATCH) == len(RECORD)


def test_step_cache_computes_each_entry_once():
    cache, n = StepCache(), []
    for _ in range(3):
        assert cache.get("x", lambda: n.append(1) or 7) == 7
    assert n == [1] and "x" in cache and "y" not in cache


def test_random_streams_are_stable_and_distinct():
    a = random_stream(123, "distribution", 0, "dimwise", 1).integers(0, 2**31, 3)
    assert a.tolist() == random_stream(123, "distribution", 0, "dimwise", 1).integers(0, 2**31, 3).tolist()
    # pinned: the same draws on every machine and numpy version (SeedSequence + PCG64)
    assert a.tolist() == PINNED_DRAWS
    others = [random_stream(124, "distribution", 0, "dimwise", 1), random_stream(123, "directions", 0),
              random_stream(123, "distribution", 1, "dimwise", 1)]
    assert all(o.integers(0, 2**31, 3).tolist() != a.tolist() for o in others)


PINNED_DRAWS = [2079514081, 801998439, 1122755499]


def test_sweep_file_names_match_the_registry():
    assert sorted(BUILTIN_ESTIMATORS) == available_estimators() == estimator_names()
    with pytest.raises(ValueError, match="already registered"):
        DE.register_estimator(DE.DISTRIBUTION)


def test_estimator_pairs_agree_whatever_comes_first(cheap_fits):
    """Per step, inside one loop: two estimators sharing a cache give what each gives alone."""
    ctx = make_ctx(width=16, depth=1, record=(0,))
    names = ["per_example", "directions", "full_batch", "ntk", "distribution"]
    alone = {}
    for name in names:
        est = make_estimator(name)
        alone[name] = est.update(ctx, est.init(ctx), make_snap(ctx))[1]
    for first, second in itertools.permutations(["per_example", "directions", "ntk"], 2):
        snap = make_snap(ctx)
        for name in (first, second):
            est = make_estimator(name)
            values = est.update(ctx, est.init(ctx), snap)[1]
            assert all(_equal(values[k], alone[name][k]) for k in values), (first, second, name)
    assert torch.is_tensor(make_snap(ctx).x)
