"""`sweeptoml.dumps`: every preset, and a sweep using every section, read back by tomllib to
the same sweep; `gradstats run` stores it as DIR/sweep.toml."""

import tomllib

import pytest

from gradstats.sweeps import parse_sweep, sweeptoml
from gradstats.sweeps.presets import preset_names, preset_text, resolve_sweep

EVERY_SECTION = {
    "name": "all-sections", "description": 'quotes " and \\ and \x7f, tabs\tand ü',
    "seeds": [0, 3], "measure": ["per_example"],
    "grid": {"width": [8, 16], "activation": ["relu", "tanh"], "bias": [True, False]},
    "zip": [{"depth": [2, 3], "sigma_w2": [1.5, 2.0]}],
    "fixed": {"lr": 1e-05, "sigma_b2": 0.0, "record": [0, 2], "steps": 2},
    "exclude": [{"width": 16, "activation": "tanh"}],
}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips(name):
    sweep = resolve_sweep(name)
    text = sweeptoml.dumps(sweep)
    assert parse_sweep(tomllib.loads(text)) == parse_sweep(tomllib.loads(preset_text(name)))


def test_every_section_and_awkward_strings_round_trip():
    sweep = parse_sweep(EVERY_SECTION)
    text = sweeptoml.dumps(sweep, header="line one\n\nline three")
    assert text.startswith("# line one\n#\n# line three\nname = ")
    assert tomllib.loads(text) == EVERY_SECTION
    assert parse_sweep(tomllib.loads(text)) == sweep


def test_run_sweep_stores_the_sweep_file_and_rewrites_it_only_when_it_changes(tmp_path):
    from gradstats.sweeps import expand
    from gradstats.sweeps.execute import run_sweep

    sweep = parse_sweep({"name": "t", "seeds": 1, "grid": {"width": [4, 8]},
                         "fixed": {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4,
                                   "steps": 0}})
    text = sweeptoml.dumps(sweep)
    points = expand(sweep)
    run_sweep(points[:1], [], tmp_path, name="t", consolidate_store=False, sweep_toml=text)
    stored = tmp_path / "sweep.toml"
    assert stored.read_text() == text
    inode = stored.stat().st_ino
    run_sweep(points, [], tmp_path, name="t", consolidate_store=False, sweep_toml=text)
    assert stored.stat().st_ino == inode  # the same sweep: not rewritten
    other = text.replace('name = "t"', 'name = "t2"')
    run_sweep(points, [], tmp_path, name="t", consolidate_store=False, sweep_toml=other)
    assert stored.read_text() == other and stored.stat().st_ino != inode
