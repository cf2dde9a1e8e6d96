"""`run_sweep` with seed ensembles (the default) against ``ensemble=False``: the same point
files, value for value (float64 to 1e-12), resumable point by point."""

import numpy as np
import pytest

from gradstats.results import io
from gradstats.simulate import ensemble as ens
from gradstats.sweeps import execute as ex
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import COMPUTE_LOG_ENV, Task, ensembles, group_tasks, run_sweep

SMALL = {"depth": 2, "input_dim": 8, "n_train": 32, "batch_size": 8, "steps": 6, "record": 3,
         "dtype": "float64"}


def small_points(seeds=4, widths=(8, 16), **fixed):
    return expand(parse_sweep({"name": "e", "seeds": seeds, "grid": {"width": list(widths)},
                               "fixed": {**SMALL, **fixed}}))


def _values(out_dir, point):
    ds = io.load_point(io.point_path(out_dir, point), point.key())
    assert ds is not None, f"no readable file for seed {point.seed}"
    return {name: np.asarray(ds[name].values, dtype=np.float64) for name in ds.data_vars
            if ds[name].dtype.kind in "fiu" and name != "wall_time"}


def test_ensemble_sweep_writes_the_same_point_files(tmp_path, monkeypatch):
    points = small_points()
    calls = []
    real = ens.simulate_ensemble
    monkeypatch.setattr(ens, "simulate_ensemble", lambda pts, measure=None: (
        calls.append(len(pts)), real(pts, measure))[1])
    batched = run_sweep(points, [], tmp_path / "ens", workers=0, consolidate_store=False)
    one_by_one = run_sweep(points, [], tmp_path / "one", workers=0, consolidate_store=False,
                           ensemble=False)
    assert calls == [4, 4]  # one ensemble per width, none in the one-by-one run
    assert batched.computed == one_by_one.computed == len(points) and not batched.failed
    for point in points:
        a, b = _values(tmp_path / "ens", point), _values(tmp_path / "one", point)
        assert set(a) == set(b)
        for name in a:
            scale = np.nanmax(np.abs(a[name]), initial=0.0)
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-12 * scale + 1e-300,
                                       err_msg=name)


def test_resume_stays_per_point(tmp_path, monkeypatch):
    points = small_points(seeds=3, widths=(8,))
    run_sweep(points[:1], [], tmp_path / "out", workers=0, consolidate_store=False)
    log = tmp_path / "computed.log"
    monkeypatch.setenv(COMPUTE_LOG_ENV, str(log))
    summary = run_sweep(points, [], tmp_path / "out", workers=0, consolidate_store=False)
    assert summary.skipped == 1 and summary.computed == 2
    computed = {line.split()[0] for line in log.read_text().splitlines()}
    assert computed == {p.key() for p in points[1:]}


def test_a_failing_ensemble_falls_back_to_one_by_one(tmp_path, monkeypatch):
    def broken(points, measure=None):
        raise RuntimeError("ensemble broke")

    monkeypatch.setattr(ens, "simulate_ensemble", broken)
    points = small_points(seeds=2, widths=(8,))
    summary = run_sweep(points, [], tmp_path / "out", workers=0, consolidate_store=False)
    assert summary.computed == 2 and not summary.failed


def test_ensembles_group_by_configuration_and_measure_and_respect_refusals(monkeypatch):
    points = small_points(seeds=5, widths=(8, 16))
    tasks = [Task(p, ()) for p in points] + [Task(points[0], ("updates",))]
    groups = ensembles(tasks, max_members=2)
    assert sorted(len(g) for g in groups) == [1, 1, 1, 2, 2, 2, 2]
    assert groups[-1][0].measure == ("updates",)  # refused: alone
    for group in groups:
        assert len({(t.point.config_key(), t.measure) for t in group}) == 1
    batch_norm = [Task(p, ()) for p in small_points(seeds=3, widths=(8,), norm="batch")]
    assert [len(g) for g in ensembles(batch_norm)] == [1, 1, 1]
    monkeypatch.setattr(ex, "ensemble_members", lambda point, n: 4)
    width8 = [t for t in tasks[:10] if t.point.arch.width == 8]
    assert [len(g) for g in ensembles(width8)] == [3, 2]  # balanced, not 4 + 1


def test_configurations_differing_in_sigma_share_an_ensemble():
    points = expand(parse_sweep({"name": "s", "seeds": 2, "grid": {
        "sigma_w2": [1.5, 2.0], "sigma_b2": [0.0, 0.1], "width": [8, 16]}, "fixed": SMALL}))
    groups = ensembles([Task(p, ()) for p in points])
    assert sorted(len(g) for g in groups) == [8, 8]  # one per width: 2 x 2 sigmas x 2 seeds
    assert all(len({t.point.arch.width for t in g}) == 1 for g in groups)
    dask_groups = group_tasks([Task(p, ()) for p in points], 1e9, ensemble=True)
    assert sorted(len(g) for g in dask_groups) == [8, 8]


def test_group_tasks_with_ensembles_shares_the_per_step_cost():
    points = small_points(seeds=64, widths=(8,), steps=100)
    tasks = [Task(p, ()) for p in points]
    alone = group_tasks(tasks, target_seconds=1.0)
    shared = group_tasks(tasks, target_seconds=1.0, ensemble=True)
    assert len(shared[0]) > len(alone[0])


def test_compute_tasks_keeps_the_order_of_its_tasks():
    points = small_points(seeds=3, widths=(8, 16))
    order = [points[4], points[0], points[3], points[1]]
    outcomes = ex.compute_tasks([Task(p, ()) for p in order])
    assert [o.point for o in outcomes] == order and all(o.ok for o in outcomes)


@pytest.mark.parametrize("flag", ["--no-ensemble", "--ensemble"])
def test_cli_flag_is_accepted(flag, tmp_path):
    from typer.testing import CliRunner

    from gradstats.cli import app

    result = CliRunner().invoke(app, [
        "run", "quickstart", "-o", str(tmp_path / "q"), "--set", "seeds=2", "--set",
        "width=8", "--set", "activation=relu", "--set", "steps=2", "--set", "n_train=16",
        "--workers", "0", "--no-compare", "-q", flag])
    assert result.exit_code == 0, result.output
