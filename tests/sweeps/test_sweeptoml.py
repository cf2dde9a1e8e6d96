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
