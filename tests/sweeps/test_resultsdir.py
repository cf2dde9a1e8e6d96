"""A results directory belongs to one sweep: the same sweep resumes, a sweep containing it
extends it, any other is refused before anything is written; sweep.json changes only when
the sweep does."""

from __future__ import annotations

import json
import os

import pytest

from gradstats.errors import InputError
from gradstats.results import io
from gradstats.sweeps import expand, parse_sweep, resultsdir
from gradstats.sweeps.execute import run_sweep

TINY = {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 1}


def points(widths=(4, 8), seeds=1, measure=()):
    return expand(parse_sweep({"name": "t", "seeds": seeds, "measure": list(measure),
                               "grid": {"width": list(widths)}, "fixed": TINY}))


def tree(root):
    """Every path under ``root`` with its inode, size and modification time."""
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_size,
                                             p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_a_rerun_with_nothing_to_compute_touches_nothing(tmp_path):
    run_sweep(points(), [], tmp_path, name="t", command="gradstats run t.toml")
    before = tree(tmp_path)
    summary = run_sweep(points(), [], tmp_path, name="t", command="gradstats run t.toml -q")
    assert (summary.computed, summary.skipped) == (0, 2)
    assert tree(tmp_path) == before  # sweep.json, points, store, locks: all as they were


def test_the_manifest_names_the_sweep_by_content(tmp_path):
    run_sweep(points(), [], tmp_path, name="t", command="gradstats run t.toml")
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    keys = sorted(p.key() for p in points())
    assert sorted(e["key"] for e in manifest["points"]) == keys
    assert manifest["sweep_id"] == resultsdir.sweep_id(keys) == resultsdir.sweep_id(keys[::-1])
    assert manifest["command"] == "gradstats run t.toml"


def test_a_sweep_containing_the_one_there_extends_it(tmp_path):
    run_sweep(points(seeds=1), [], tmp_path, name="t")
    first = {f.name: f.stat().st_mtime_ns for f in io.point_files(tmp_path)}
    summary = run_sweep(points(seeds=2), [], tmp_path, name="t")
    assert (summary.computed, summary.skipped) == (2, 2)
    assert {f.name: f.stat().st_mtime_ns for f in io.point_files(tmp_path) if f.name in first} == first
    manifest = json.loads((tmp_path / "sweep.json").read_text())
    assert manifest["sweep_id"] == resultsdir.sweep_id([p.key() for p in points(seeds=2)])


@pytest.mark.parametrize("other", [
    {"widths": (16,)},                  # disjoint
    {"widths": (4,)},                   # a part of it
    {"measure": ("per_example",)},      # the same networks measured differently
])
def test_another_sweep_is_refused_and_nothing_changes(tmp_path, other):
    run_sweep(points(), [], tmp_path, name="t")
    before = tree(tmp_path)
    with pytest.raises(InputError, match="holds another sweep .'t', 2 points"):
        run_sweep(points(**other), [], tmp_path, name="t")
    assert tree(tmp_path) == before


def test_the_refusal_names_the_files_that_are_not_of_the_sweep(tmp_path):
    run_sweep(points(), [], tmp_path, name="t")
    (tmp_path / "points" / "foo.nc").write_bytes(b"stray")
    with pytest.raises(InputError, match="not of this sweep: points/foo.nc.*move those files"):
        run_sweep(points(), [], tmp_path, name="t")


def test_point_files_without_a_manifest_still_count(tmp_path):
    run_sweep(points(), [], tmp_path, name="t")
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(InputError, match="holds another sweep \\(2 points, 1 of them"):
        run_sweep(points(widths=(4,)), [], tmp_path, name="t")
    summary = run_sweep(points(), [], tmp_path, name="t")  # its own sweep: the manifest returns
    assert summary.computed == 0 and (tmp_path / "sweep.json").exists()


def test_an_aborted_extension_leaves_the_original_sweep_free_to_resume(tmp_path):
    """An extension killed before its first new point leaves a manifest naming points that
    never existed: they do not lock the original sweep out (its files are all there)."""
    run_sweep(points(), [], tmp_path, name="t")
    bigger = resultsdir.make_manifest("t", points(seeds=3), [])
    resultsdir.write_manifest(tmp_path, bigger)  # what the aborted run had written
    summary = run_sweep(points(), [], tmp_path, name="t")
    assert (summary.computed, summary.skipped) == (0, 2)
    assert json.loads((tmp_path / "sweep.json").read_text())["sweep_id"] == \
        resultsdir.sweep_id([p.key() for p in points()])


def test_a_live_runs_manifest_still_reserves_its_points(tmp_path):
    """While the run that wrote sweep.json holds `locks.hold_running`, its points count even
    before their files exist: a different sweep is refused."""
    from gradstats.sweeps import locks

    run_sweep(points(), [], tmp_path, name="t")
    resultsdir.write_manifest(tmp_path, resultsdir.make_manifest("t", points(seeds=3), []))
    held = locks.hold_running(tmp_path)
    try:
        assert locks.run_is_live(tmp_path)  # as another run would see it
        with pytest.raises(InputError, match="holds another sweep .'t', 6 points, 4 of them"):
            run_sweep(points(), [], tmp_path, name="t")
    finally:
        held.release()
    assert not locks.run_is_live(tmp_path)
    assert not (tmp_path / locks.LOCKS_DIR / "running.lock").exists()  # the last one out


def _npz_points(path, seeds):
    return expand(parse_sweep({"name": "n", "seeds": seeds, "grid": {"width": [4]},
                               "fixed": {**TINY, "data": f"npz:{path}"}}))


def test_changed_npz_data_is_refused_until_the_file_is_restored(tmp_path):
    """Point keys name an npz file by its path: its content is recorded in sweep.json, and
    points computed from other content would mix with those there."""
    import numpy as np

    from gradstats.sweeps.execute import run_sweep as run

    data, out = tmp_path / "d.npz", tmp_path / "out"
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal(8)
    np.savez(data, x=x, y=y)
    original = data.read_bytes()
    run(_npz_points(data, 2), [], out, name="n")
    np.savez(data, x=100 * x, y=y)
    for seeds in (2, 3):  # resume, extend
        with pytest.raises(InputError, match=f"^data: npz:{data} has changed since the points"):
            run(_npz_points(data, seeds), [], out, name="n")
    data.write_bytes(original)
    assert run(_npz_points(data, 3), [], out, name="n").computed == 1


def test_an_empty_or_new_directory_is_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        assert run_sweep(points(), [], out, name="t").computed == 2


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        run_sweep(points(), [], tmp_path / "out", name="t")
    finally:
        os.umask(old)
    out = tmp_path / "out"
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in out.rglob("*")
             if ".locks" not in p.parts}
    assert modes["sweep.json"] == 0o640 and modes["sweep.zarr"] == 0o750
    assert all(mode == 0o640 for name, mode in modes.items()
               if name.startswith("points/") and name.endswith(".nc"))
    assert all(mode in (0o640, 0o750) for mode in modes.values())
