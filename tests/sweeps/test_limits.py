"""Size limits: estimated from the sweep file alone, checked against what expansion and a
real run produce (point counts exactly, memory and results sizes as upper bounds)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradstats.cli import main
from gradstats.results.io import load_results
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import run_sweep
from gradstats.sweeps.limits import Limits, check_size, estimate_size
from gradstats.sweeps.sweepfile import SweepError

TINY = {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 2, "record": 2}
SWEEPABLE = {"width": [4, 8, 12], "depth": [0, 1, 2], "lr": [0.01, 0.1, 0.2],
             "activation": ["relu", "tanh", "erf"], "batch_size": [2, 4, 8]}


@st.composite
def small_sweeps(draw):
    axes = draw(st.lists(st.sampled_from(sorted(SWEEPABLE)), unique=True, max_size=4))
    split = draw(st.integers(0, len(axes)))
    grid = {a: SWEEPABLE[a][:draw(st.integers(1, 3))] for a in axes[:split]}
    zipped = axes[split:]
    sweep = {"name": "s", "grid": grid,
             "fixed": {k: v for k, v in TINY.items() if k not in axes},
             "seeds": draw(st.integers(1, 3) | st.lists(st.integers(0, 9), min_size=1, max_size=3,
                                                         unique=True))}
    if len(zipped) >= 2:
        n = draw(st.integers(1, 3))
        sweep["zip"] = [{a: SWEEPABLE[a][:n] for a in zipped}]
    else:
        sweep["grid"].update({a: SWEEPABLE[a][:1] for a in zipped})
    return sweep


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=small_sweeps())
def test_point_count_is_what_expansion_gives(raw):
    sweep = parse_sweep(raw)
    assert estimate_size(sweep).points == len(expand(sweep))


def test_point_count_ignores_exclude_so_it_bounds_the_expansion():
    fixed = {k: v for k, v in TINY.items() if k != "depth"}
    sweep = parse_sweep({"name": "s", "grid": {"width": [4, 8], "depth": [0, 1]}, "fixed": fixed,
                         "exclude": [{"width": 8, "depth": 1}]})
    assert estimate_size(sweep).points == 4 and len(expand(sweep)) == 3


def test_each_limit_is_checked_and_the_limit_itself_is_allowed():
    sweep = parse_sweep({"name": "s", "seeds": 2, "grid": {"width": [4, 8]},
                         "fixed": {**TINY, "steps": 30, "record": 5}})
    size = check_size(sweep, Limits(points=4, seeds=2, steps=30, recorded_steps=5))
    assert (size.points, size.seeds, size.steps, size.recorded_steps) == (4, 2, 30, 5)
    for limits, field in [(Limits(points=3), "size:"), (Limits(seeds=1), "seeds:"),
                          (Limits(steps=29), "steps:"), (Limits(recorded_steps=4), "record:"),
                          (Limits(point_memory=1.0), "memory"),
                          (Limits(results_size=1.0), "combined results")]:
        with pytest.raises(SweepError, match=field):
            check_size(sweep, limits)
        with pytest.raises(SweepError, match="--no-limits"):
            expand(sweep, limits=limits)
    assert len(expand(sweep, limits=None)) == 4


def test_point_memory_covers_parameters_gradients_and_data_of_the_real_run():
    import torch

    from gradstats.simulate.data import load_data
    from gradstats.simulate.model import build_model

    raw = {"name": "m", "grid": {"width": [64, 256]},
           "fixed": {"depth": 3, "input_dim": 32, "n_train": 2000, "batch_size": 16,
                     "dtype": "float64"}}
    estimate = estimate_size(parse_sweep(raw)).point_memory
    point = max(expand(parse_sweep(raw)), key=lambda p: p.arch.width)
    model = build_model(point.arch, 0, dtype=torch.float64, device=torch.device("cpu"))
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    data = load_data(point.data, point.training.loss, 0)
    # weights and gradients, the numpy data and its torch copy: a floor of what training holds
    floor = 2 * params + 2 * (data.x.nbytes + data.y.nbytes)
    assert estimate >= floor


@pytest.mark.parametrize("measure", [[], ["per_example"]])
def test_results_size_bounds_the_combined_dataset_of_a_real_run(tmp_path, measure):
    raw = {"name": "r", "seeds": 2, "measure": measure,
           "grid": {"width": [4, 8]}, "zip": [{"depth": [1, 2], "lr": [0.05, 0.1]}],
           "fixed": {"input_dim": 4, "n_train": 16, "batch_size": 6, "steps": 3, "record": 3}}
    sweep = parse_sweep(raw)
    run_sweep(expand(sweep), sweep.measure, tmp_path, consolidate_store=False)
    combined = load_results(tmp_path)
    measured = sum(var.nbytes for var in combined.data_vars.values())
    assert estimate_size(sweep).results_size >= measured


def test_no_limits_flag_runs_a_sweep_over_the_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("gradstats.sweeps.limits.DEFAULT_LIMITS", Limits(points=1))
    (tmp_path / "s.toml").write_text('name = "s"\n[grid]\nwidth = [4, 8]\n[fixed]\n' + "".join(
        f"{k} = {v}\n" for k, v in TINY.items()))
    argv = ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out"), "-q", "--no-compare", "-w", "0"]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "--no-limits" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    main([*argv, "--no-limits"])
    assert "2 points: 2 computed" in capsys.readouterr().out


def test_docs_state_the_limits_the_code_applies():
    from pathlib import Path

    from gradstats.sweeps.limits import DEFAULT_LIMITS, GIB, OVERRIDE_FLAG

    text = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in text.splitlines() if line.startswith("| ") and line.count("|") == 4}
    assert rows["points"] == f"{DEFAULT_LIMITS.points:,}"
    assert rows["seeds"] == f"{DEFAULT_LIMITS.seeds:,}"
    assert rows["steps"] == f"{DEFAULT_LIMITS.steps:,}"
    assert rows["recorded steps"] == f"{DEFAULT_LIMITS.recorded_steps:,}"
    assert rows["point memory"] == f"{DEFAULT_LIMITS.point_memory / GIB:g} GiB"
    assert rows["combined results"] == f"{DEFAULT_LIMITS.results_size / GIB:g} GiB"
    assert f"`{OVERRIDE_FLAG}`" in text


# Sweeps whose data alone outgrows 16 GiB (QA): a d x 2d float64 teacher for d = 60000
# (53.6 GiB), and torus fields of 256 x 256 pixels (d = 65536: a 64 GiB teacher).
HUGE_DATA = [
    {"input_dim": 60000, "width": 1, "depth": 1, "n_train": 1, "batch_size": 1, "steps": 0},
    {"architecture": "cnn", "data": "torus-fields", "image_size": 256, "width": 1, "depth": 1,
     "n_train": 1, "batch_size": 1},
    {"architecture": "cnn", "data": "torus-fields", "image_size": 256},
]


@pytest.mark.parametrize("fixed", HUGE_DATA)
def test_sweeps_whose_data_outgrow_memory_are_refused_before_running(tmp_path, capsys, fixed):
    (tmp_path / "s.toml").write_text('name = "s"\n[fixed]\n' + "".join(
        f"{k} = {v!r}\n".replace("'", '"') for k, v in fixed.items()))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out"), "-q", "-w", "0"])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err, err
    assert re.search(r"size: [\d.]+ GiB of memory for one point .* exceed the limit of 16 GiB", err)
    assert not (tmp_path / "out").exists()


def test_memory_of_the_teacher_and_torus_fields_follows_their_arrays():
    teacher = estimate_size(parse_sweep({"name": "s", "fixed": HUGE_DATA[0]})).point_memory
    assert teacher == pytest.approx(16 * 60000**2, rel=0.01)  # the d x 2d float64 weights
    torus = estimate_size(parse_sweep({"name": "s", "fixed": HUGE_DATA[1]})).point_memory
    assert torus == pytest.approx(16 * 65536**2, rel=0.01)


@pytest.mark.parametrize("fixed", [
    # the teacher's weights dominate
    {"input_dim": 1500, "n_train": 200, "width": 4, "depth": 1, "batch_size": 4},
    # the torus fields' FFTs and the teacher dominate (a cnn of one channel)
    {"architecture": "cnn", "data": "torus-fields", "image_size": 24, "n_train": 256,
     "width": 1, "depth": 1, "batch_size": 4},
    # torus fields of 4 channels, linear teacher: the FFTs
    {"architecture": "cnn", "data": "torus-fields", "input_dim": 4, "image_size": 16,
     "n_train": 1000, "width": 1, "depth": 1, "batch_size": 4, "teacher": "linear"},
])
def test_point_memory_is_within_a_factor_2_of_the_measured_peak(fixed):
    """float64, so torch shares the numpy data and tracemalloc sees the large arrays."""
    import tracemalloc

    from gradstats.simulate.training import simulate_point

    sweep = parse_sweep({"name": "m", "fixed": {**fixed, "dtype": "float64", "steps": 0}})
    estimate = estimate_size(sweep).point_memory
    point = expand(sweep)[0]
    tracemalloc.start()
    try:
        simulate_point(point)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= estimate <= 2 * peak, (peak, estimate)


def test_every_preset_passes_the_limits():
    from gradstats.sweeps import resolve_sweep
    from gradstats.sweeps.presets import preset_names

    for name in preset_names():
        check_size(resolve_sweep(name))


def test_limits_constants_agree_with_the_simulator():
    from gradstats.simulate import engine_estimators, theory_inputs, training
    from gradstats.sweeps import limits

    assert limits.INIT_PROBE_ROWS == theory_inputs.PROBE_SIZE
    assert limits.LAZY_MAX_TRAIN == theory_inputs.LAZY_MAX_TRAIN
    assert limits.NTK_PROBE_ROWS == engine_estimators.NTK_PROBE_SIZE
    assert limits.FULL_DATA_CHUNK == training.FULL_BATCH_CHUNK


def test_memory_limit_message_states_both_sizes_in_binary_units():
    sweep = parse_sweep({"name": "s", "fixed": {**TINY, "width": 2**15, "depth": 2**15}})
    with pytest.raises(SweepError) as err:
        check_size(sweep)
    assert re.fullmatch(r"size: [\d.]+ TiB of memory for one point \(the largest value of every "
                        r"axis together\) exceed the limit of 16 GiB; shrink the sweep or pass "
                        r"--no-limits", str(err.value)), str(err.value)
    with pytest.raises(SweepError, match=r"size: [\d.]+ MiB of combined results .* limit of 1 KiB"):
        check_size(sweep, Limits(point_memory=float("inf"), results_size=1024))


@pytest.mark.parametrize("nbytes, text", [
    (0, "0 B"), (999, "999 B"), (1000, "0.977 KiB"), (1536, "1.5 KiB"), (16 * 2**30, "16 GiB"),
    (53.6 * 2**30, "53.6 GiB"), (3 * 2**40, "3 TiB"), (1.475740075652582e20, "1.34e+08 TiB"),
])
def test_format_bytes(nbytes, text):
    from gradstats.sweeps.limits import format_bytes

    assert format_bytes(nbytes) == text
