"""`gradstats show --check`: each kind of damage to a results directory is reported, and a
rerun of its sweep repairs it (recomputing only what was damaged)."""

from __future__ import annotations

import json
import shutil

import pytest

from gradstats.cli import main
from gradstats.results import io
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import run_sweep
from gradstats.sweeps.verify import check_results_dir

TINY = {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 1}
POINTS = expand(parse_sweep({"name": "t", "seeds": 2, "grid": {"width": [4, 8]}, "fixed": TINY}))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("pristine") / "out"
    run_sweep(POINTS, [], out, name="t")
    return out


@pytest.fixture
def out(tmp_path, pristine):
    shutil.copytree(pristine, tmp_path / "out")
    return tmp_path / "out"


def check(out, capsys) -> tuple[int, list[str]]:
    try:
        main(["show", "--check", str(out)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().out.splitlines()


def test_an_intact_directory_checks_ok(out, capsys):
    assert check(out, capsys) == (0, [f"{out}: 4 of 4 points ok; ok"])


def copy_over(out):
    first, second = io.point_files(out)[:2]
    shutil.copyfile(first, second)
    return second.stem


def remove_point(out):
    victim = io.point_files(out)[0]
    victim.unlink()
    return victim.stem


def truncate_point(out):
    victim = io.point_files(out)[0]
    victim.write_bytes(victim.read_bytes()[:200])
    return victim.stem


def remove_variable(out):
    shutil.rmtree(out / io.CONSOLIDATED / "grad_sq_norm")
    return "grad_sq_norm/.zarray is missing"


def change_chunk(out):
    chunk = next((out / io.CONSOLIDATED / "forward_q").glob("0*"))
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    return "has changed since it was written"


def add_stray(out):
    shutil.copyfile(io.point_files(out)[0], out / io.POINTS_DIR / "0123456789abcdef.nc")
    return "0123456789abcdef.nc: not a point of this sweep"


def drop_store(out):
    shutil.rmtree(out / io.CONSOLIDATED)
    return "sweep.zarr is missing"


def edit_manifest(out):
    manifest = json.loads((out / "sweep.json").read_text())
    manifest["points"] = manifest["points"][1:]
    (out / "sweep.json").write_text(json.dumps(manifest))
    return "sweep_id does not match"


@pytest.mark.parametrize(("damage", "expect"), [
    (copy_over, "holds point"), (remove_point, "missing (not computed yet"),
    (truncate_point, "is unreadable"), (remove_variable, None), (change_chunk, None),
    (add_stray, None), (drop_store, None), (edit_manifest, None),
])
def test_damage_is_reported_with_exit_1(out, capsys, damage, expect):
    word = damage(out)
    code, lines = check(out, capsys)
    assert code == 1
    problems = [line for line in lines if line.startswith("problem: ")]
    assert problems and lines[-1].endswith(f"{len(problems)} problems")
    detail = word if expect is None else f"{word}.nc: {expect}"
    assert any(detail in line for line in problems), (detail, problems)


@pytest.mark.parametrize("damage", [copy_over, remove_point, truncate_point, remove_variable,
                                    change_chunk, drop_store])
def test_a_rerun_repairs_the_damage(out, capsys, damage):
    damage(out)
    summary = run_sweep(POINTS, [], out, name="t")
    assert summary.computed <= 1 and not summary.failed
    assert check(out, capsys)[0] == 0
    report = check_results_dir(out)
    assert (report.points, report.ok, report.problems) == (4, 4, [])


def _raising(fails, real):
    """`simulate_ensemble` that raises for an ensemble holding a point ``fails`` names (as an
    ensemble whose member raised; the run then computes those points one by one)."""
    def flaky(points, measure=None):
        if any(fails(p) for p in points):
            raise RuntimeError("an ensemble member raised")
        return real(points, measure)

    return flaky


def test_a_failed_point_is_a_problem_until_it_succeeds(tmp_path, capsys, monkeypatch):
    import gradstats.simulate.ensemble as ensemble
    import gradstats.simulate.training as training

    real = training.simulate_point

    def flaky(point, measure=(), on_step=None):
        if point.seed == 1 and point.arch.width == 4:
            raise RuntimeError("boom")
        return real(point, measure, on_step)

    monkeypatch.setattr(training, "simulate_point", flaky)
    monkeypatch.setattr(ensemble, "simulate_ensemble", _raising(lambda p: (
        p.seed == 1 and p.arch.width == 4), ensemble.simulate_ensemble))
    run_sweep(POINTS, [], tmp_path, name="t")
    code, lines = check(tmp_path, capsys)
    assert code == 1 and any("the point failed (RuntimeError: boom)" in line for line in lines)
    monkeypatch.setattr(training, "simulate_point", real)
    run_sweep(POINTS, [], tmp_path, name="t")
    assert check(tmp_path, capsys)[0] == 0


def test_check_of_something_that_is_no_results_directory_is_an_input_error(tmp_path, capsys):
    code, _ = check(tmp_path / "nowhere", capsys)
    assert code == 2
    assert capsys.readouterr().err == ""  # printed (and captured) by check already
