"""Size limits: estimated from the sweep file alone, checked against what expansion and a
real run produce (point counts exactly, memory and results sizes as upper bounds)."""

from __future__ import annotations

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
