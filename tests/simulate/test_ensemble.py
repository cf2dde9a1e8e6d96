"""Seed ensembles are an execution strategy: each member's record equals its unbatched run.

The reference is `simulate_point` of each seed alone (same seeds, same data, same
minibatches); the ensemble is `simulate_ensemble` of all seeds at once. float64 agrees to
1e-12 relative (to each statistic's largest magnitude), float32 to `FLOAT32_RTOL`.
"""

import numpy as np
import pytest
import torch

from gradstats.simulate import ensemble as ens
from gradstats.simulate.ensemble import ensemble_refusal, ensemble_size, simulate_ensemble
from gradstats.simulate.training import simulate_point
from gradstats.spec import Architecture, Data, Point, Training

FLOAT64_RTOL = 1e-12
# float32: batched and unbatched matmuls sum in different orders (~1e-7 per product); after
# 12 training steps the largest difference seen is 4e-7 of a statistic's largest magnitude
FLOAT32_RTOL = 1e-5
INPUT_FIELDS = ("x_train", "y_train", "probe_ntk0", "train_ntk0", "train_output0", "x0", "y0",
                "output0", "grad_output0", "w_mult", "batch_array")


def _points(seeds=3, dtype="float64", measure=(), arch=None, data=None, **training):
    arch = arch or {}
    outputs = 10 if training.get("loss") == "cross_entropy" else 1
    arch = Architecture(width=arch.pop("width", 16), depth=arch.pop("depth", 3),
                        input_dim=arch.pop("input_dim", 8), output_dim=outputs, **arch)
    data = Data(input_dim=arch.input_dim, n_train=64, **(data or {}))
    training = {"batch_size": 16, "steps": 12, "record": (0, 3, 6, 12), **training}
    return [Point(arch=arch, data=data, seed=s, dtype=dtype, measure=tuple(measure),
                  training=Training(**training)) for s in range(seeds)]


def _assert_close(a, b, rtol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    finite = np.isfinite(a)
    np.testing.assert_array_equal(finite, np.isfinite(b), err_msg=f"{what}: NaN/inf pattern")
    np.testing.assert_array_equal(a[~finite], b[~finite], err_msg=f"{what}: non-finite values")
    if finite.any():
        scale = np.abs(a[finite]).max()
        err = np.abs(a[finite] - b[finite]).max()
        assert err <= rtol * scale, f"{what}: max difference {err:.3g} of scale {scale:.3g}"


def _assert_records_equal(points, rtol, loose=None):
    reference = [simulate_point(p) for p in points]
    batched = simulate_ensemble(points)
    assert [r.point for r in batched] == list(points)
    for ref, got in zip(reference, batched, strict=True):
        assert set(ref.values) == set(got.values)
        np.testing.assert_array_equal(ref.steps, got.steps)
        for name, value in ref.values.items():
            if name != "wall_time":
                _assert_close(value, got.values[name], (loose or {}).get(name, rtol),
                              f"seed {ref.point.seed} {name}")
        for name in INPUT_FIELDS:
            a, b = getattr(ref.inputs, name), getattr(got.inputs, name)
            assert (a is None) == (b is None), name
            if a is not None:
                _assert_close(a, b, rtol, f"inputs.{name}")
        for name in ("weights0", "preacts0"):
            for a, b in zip(getattr(ref.inputs, name), getattr(got.inputs, name), strict=True):
                _assert_close(a, b, rtol, f"inputs.{name}")
    return reference, batched


CONFIGS = {
    "mse-sgd": {},
    "cross-entropy-adam": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01},
    "adamw-tanh-no-bias": {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.1,
                             "arch": {"bias": False, "activation": "tanh"}},
    "residual-layernorm-momentum": {"optimizer": "momentum", "momentum": 0.9,
                                    "arch": {"residual": True, "norm": "layer"}},
    "mup-orthogonal": {"arch": {"parameterization": "mup", "init": "orthogonal"}},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_float64_members_equal_unbatched_runs(name):
    config = dict(CONFIGS[name])
    arch = config.pop("arch", {})
    _assert_records_equal(_points(arch=dict(arch), **config), FLOAT64_RTOL)


def _sigma_points(dtype="float64", parameterization="ntk", measure=()):
    return [p for sw, sb in ((1.5, 0.0), (2.0, 0.05), (2.5, 0.2))
            for p in _points(seeds=2, dtype=dtype, measure=measure,
                             arch={"sigma_w2": sw, "sigma_b2": sb,
                                   "parameterization": parameterization})]


@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_members_differing_in_sigma_match_their_own_runs(parameterization):
    """sigma_w2 and sigma_b2 only scale the multipliers (ntk) or the draws (standard):
    configurations that differ in them train in one ensemble, per-example Grams included."""
    points = _sigma_points(parameterization=parameterization, measure=("per_example",))
    _assert_records_equal(points, FLOAT64_RTOL)
    _assert_records_equal(_sigma_points(dtype="float32"), FLOAT32_RTOL)


def test_members_diverging_at_different_steps_match_their_own_runs():
    """Each member stops recording where its own run diverges; the others train on. (An
    exploding trajectory amplifies one-ulp differences step after step: here values reach
    1e295 and still agree to 4e-14; other seeds can exceed 1e-12 on the way to overflow.)"""
    points = _points(seeds=6, arch={"sigma_w2": 4.0}, lr=4.0)
    reference, _ = _assert_records_equal(points, FLOAT64_RTOL)
    steps = sorted(float(r.values["diverged_step"]) for r in reference)
    assert steps[0] == -1 and len(set(steps)) >= 3  # some never, others at different steps


def test_estimators_run_member_by_member_match():
    points = _points(measure=("per_example", "full_batch", "directions"), steps=4,
                     record=(0, 4))
    _assert_records_equal(points, FLOAT64_RTOL)


@pytest.mark.slow
def test_distribution_estimator_member_by_member():
    """Every distribution statistic agrees to 1e-12 but the lognormal likelihood ratios: their
    lognormal is fitted by Nelder-Mead to xatol 1e-6, so a one-ulp change of the gradients
    moves them by up to ~1e-6 (seen: 1.1e-6); they are held to 1e-4."""
    points = _points(seeds=2, measure=("distribution",), steps=4, record=(0, 4))
    loose = {"noise_powerlaw_lr_lognormal": 1e-4, "dimwise_powerlaw_lr_lognormal": 1e-4}
    _assert_records_equal(points, FLOAT64_RTOL, loose)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_per_example_grams_batched_over_members_match(dtype, monkeypatch):
    """``per_example`` alone reads the batched Grams from each member's step cache, with no
    unbatched recomputation of the member's step."""
    monkeypatch.setattr(ens, "_member_snapshot", None)  # would raise if called
    points = _points(dtype=dtype, measure=("per_example",), batch_size=8)
    _assert_records_equal(points, FLOAT64_RTOL if dtype == "float64" else FLOAT32_RTOL)


def test_float32_members_agree_within_stated_tolerance():
    _assert_records_equal(_points(dtype="float32"), FLOAT32_RTOL)
    _assert_records_equal(_points(dtype="float32", loss="cross_entropy", optimizer="adam",
                                  lr=0.01), FLOAT32_RTOL)


def test_float32_underflow_flag_recomputed_per_member():
    """sigma_w2 = 0.02 at depth 24 underflows float32: precision_loss is recomputed in
    float64 on each member's own snapshot and matches the unbatched flag."""
    points = _points(seeds=2, dtype="float32", steps=0, record=(0,),
                     arch={"bias": False, "sigma_w2": 0.02, "depth": 41, "width": 64, "input_dim": 16})
    reference, _ = _assert_records_equal(points, FLOAT32_RTOL)
    assert np.nanmax(reference[0].values["precision_loss"]) > 0


def test_refusals_name_the_reason():
    assert "batch" in ensemble_refusal(_points(arch={"norm": "batch"})[0], ())
    assert "updates" in ensemble_refusal(_points()[0], ("updates",))
    assert ensemble_refusal(_points()[0], ("per_example", "ntk")) is None
    with pytest.raises(ValueError, match="differ only in seed"):
        simulate_ensemble([_points()[0], _points(batch_size=8)[1]])
    with pytest.raises(ValueError, match="distinct"):
        simulate_ensemble([_points()[0], _points()[0]])
    with pytest.raises(ValueError, match="batch"):
        simulate_ensemble(_points(arch={"norm": "batch"}))


def test_ensemble_size_follows_the_memory_rule(monkeypatch):
    point = _points()[0]
    per_member = ens.member_bytes(point)
    big = _points(arch={"width": 512})[0]
    assert ens.member_bytes(big) > 100 * per_member  # parameters grow as width^2
    monkeypatch.setattr(ens, "available_bytes", lambda device: 40 * per_member)
    assert ensemble_size(point, 64) == 10  # a quarter of 40 members' worth
    assert ensemble_size(point, 3) == 3
    monkeypatch.setattr(ens, "available_bytes", lambda device: 0.0)
    assert ensemble_size(point, 64) == 1
    monkeypatch.setattr(ens, "available_bytes", lambda device: 1e18)
    assert ensemble_size(point, 1000) == ens.MAX_MEMBERS


def test_cpu_ensembles_only_where_step_overhead_matters(monkeypatch):
    """6 B P flop at 2e10 flop/s vs 8 x 1e-4 s per layer: depth 4, batch 32, input 64 gives
    P = 4160 + 3 * 16512 + 257 at width 128 (0.56 ms <= 4 ms) and about 830k at width 512
    (8 ms > 4 ms)."""
    def point(width):
        return _points(seeds=1, batch_size=32, arch={"width": width, "depth": 4,
                                                     "input_dim": 64})[0]

    assert ens.worth_batching(point(128)) and not ens.worth_batching(point(512))
    assert ensemble_size(point(512), 64) == 1
    monkeypatch.setattr(ens, "resolve_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(ens, "available_bytes", lambda device: 1e12)
    assert ens.worth_batching(point(512)) and ensemble_size(point(512), 64) == 64


@pytest.mark.parametrize("dtype, config", [
    ("float64", {}), ("float32", {}),
    # blocks that are not whole SIMD vectors (elementwise kernels' tails)
    ("float32", {"batch_size": 5, "arch": {"width": 13, "activation": "tanh"}}),
    ("float64", {"batch_size": 3, "arch": {"width": 7, "activation": "gelu"}})])
def test_members_are_bit_for_bit_independent_of_who_else_is_in_the_ensemble(dtype, config):
    """So a resumed sweep, whose pending seeds form other ensembles, gives the same bits."""
    config = dict(config)
    points = _points(seeds=4, dtype=dtype, measure=("per_example",),
                     arch=dict(config.pop("arch", {})), **config)
    together = simulate_ensemble(points)
    apart = simulate_ensemble(points[1:3]) + simulate_ensemble([points[3]])
    for a, b in zip(apart, together[1:], strict=True):
        for name, value in a.values.items():
            if name != "wall_time":
                np.testing.assert_array_equal(value, b.values[name], err_msg=name)
        np.testing.assert_array_equal(a.inputs.train_ntk0, b.inputs.train_ntk0)


def test_member_slices_are_balanced_chunks_of_at_least_two():
    from gradstats.simulate.ensemble_model import member_slices

    assert member_slices(64, 1.0, budget=1e9) == [slice(0, 64)]
    chunks = member_slices(64, 1.0, budget=20.0)  # 20 members fit: 3 chunks of 21-22
    assert [c.stop - c.start for c in chunks] == [21, 22, 21]
    assert chunks[0].start == 0 and chunks[-1].stop == 64
    assert all(a.stop == b.start for a, b in zip(chunks[:-1], chunks[1:], strict=True))
    for n in range(2, 12):  # never a chunk of one member, however small the budget
        assert min(c.stop - c.start for c in member_slices(n, 1.0, budget=0.0)) >= 2
    huge = 1e12  # bytes per member: chunks of 2 on a CPU, all at once on a GPU
    assert len(member_slices(64, huge)) == 32
    assert member_slices(64, huge, device=torch.device("cuda")) == [slice(0, 64)]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_full_data_passes_chunked_over_members_give_the_same_bits(dtype, monkeypatch):
    """The NTKs at init and on the probe, the outputs at init and the full-data loss run on
    chunks of members (to stay in cache); a member's numbers must not change with the chunks."""
    from gradstats.simulate import ensemble_model as em

    points = _points(seeds=5, dtype=dtype)
    whole = simulate_ensemble(points)
    monkeypatch.setattr(em, "WORKING_SET_BYTES", 1.0)  # chunks of 2 and 3 members
    assert len(em.member_slices(5, 1e3)) == 2
    chunked = simulate_ensemble(points)
    for a, b in zip(whole, chunked, strict=True):
        for name, value in a.values.items():
            if name != "wall_time":
                np.testing.assert_array_equal(value, b.values[name], err_msg=name)
        for name in ("train_ntk0", "probe_ntk0", "train_output0"):
            np.testing.assert_array_equal(getattr(a.inputs, name), getattr(b.inputs, name))


def _lr_points(dtype="float64", optimizer="sgd", parameterization="ntk", lrs=(0.05, 0.2, 0.8),
              **training):
    return [p for lr in lrs
            for p in _points(seeds=2, dtype=dtype, optimizer=optimizer, lr=lr,
                             arch={"parameterization": parameterization}, **training)]


ADAM_LRS = (0.001, 0.004, 0.02)


@pytest.mark.parametrize("optimizer,parameterization,extra", [
    ("sgd", "ntk", {}), ("sgd", "mup", {}),
    ("momentum", "standard", {"momentum": 0.9, "weight_decay": 0.01, "lrs": (0.002, 0.01, 0.05)}),
    ("adam", "mup", {"weight_decay": 0.01, "lrs": ADAM_LRS}),
    ("adamw", "standard", {"weight_decay": 0.1, "lrs": ADAM_LRS})])
def test_members_differing_in_lr_match_their_own_runs(optimizer, parameterization, extra):
    """Points that differ in lr train in one ensemble (`MemberSGD`, `MemberAdam`: the lr per
    member and per layer, mup's per-layer rates included), per-example Grams too.
    (Standard momentum at lr 0.8 is chaotic: float32 round-off then grows step by step, as
    in the divergence test; its lrs here are those of a stable run.)"""
    points = _lr_points(optimizer=optimizer, parameterization=parameterization,
                        measure=("per_example",), **extra)
    assert len({ens.ensemble_key(p) for p in points}) == 1
    _assert_records_equal(points, FLOAT64_RTOL)
    _assert_records_equal(_lr_points(dtype="float32", optimizer=optimizer,
                                     parameterization=parameterization, **extra), FLOAT32_RTOL)


def test_points_differing_in_more_than_lr_are_not_one_ensemble():
    points = _lr_points(optimizer="adam") + _lr_points(optimizer="adam", beta1=0.8)
    assert len({ens.ensemble_key(p) for p in points}) == 2
    with pytest.raises(ValueError, match="differ only in seed"):
        simulate_ensemble(points)


@pytest.mark.parametrize("optimizer,extra", [
    ("momentum", {"momentum": 0.9, "weight_decay": 0.01, "lrs": (0.05, 0.2, 0.8)}),
    ("adam", {"weight_decay": 0.01, "lrs": (0.001, 0.02, 0.05)}),
    ("adamw", {"weight_decay": 0.1, "lrs": (0.001, 0.02, 0.05)})])
def test_an_lr_member_is_bit_identical_to_its_seeds_only_ensemble(optimizer, extra):
    """`MemberSGD` and `MemberAdam` update as torch.optim.SGD and Adam/AdamW, bit for bit: a
    member of an ensemble over lrs equals the same point in an ensemble of its own lr's
    seeds (which steps with one lr: `optimizers.SGD`, torch's SGD bit for bit as
    tests/simulate/test_optimizers.py checks, or torch.optim.Adam / AdamW itself)."""
    extra = dict(extra)
    lrs = extra.pop("lrs")
    points = _lr_points(dtype="float32", optimizer=optimizer, parameterization="standard",
                        lrs=lrs, **extra)
    mixed = simulate_ensemble(points)
    for lr in lrs[:2]:
        alone = simulate_ensemble([p for p in points if p.training.lr == lr])
        for a, b in zip([r for r in mixed if r.point.training.lr == lr], alone, strict=True):
            for name, value in b.values.items():
                if name != "wall_time":
                    np.testing.assert_array_equal(np.asarray(a.values[name]),
                                                  np.asarray(value), err_msg=name)
