"""Sweep-file parsing and validation: every error names its field in one line."""

import pytest

from gradstats.sweeps import SweepError, load_sweep, parse_sweep

EXAMPLE = """
name = "tanh-depth"
seeds = 3
[grid]
width = [256, 512]
sigma_w2 = [1.2, 2.5]
[fixed]
depth = 12
activation = "tanh"
sigma_b2 = 0.1
batch_size = 32
data = "sphere"
input_dim = 64
steps = 0
"""


def test_documented_example_parses(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(EXAMPLE)
    sweep = load_sweep(path)
    assert sweep.name == "tanh-depth"
    assert sweep.seed_list == [0, 1, 2]
    assert sweep.grid == {"width": [256, 512], "sigma_w2": [1.2, 2.5]}


BASE = {"name": "t", "fixed": {"depth": 1}}


@pytest.mark.parametrize("raw, field", [
    ({"name": "t", "colour": 1}, "colour"),
    ({"fixed": {}}, "name"),
    ({**BASE, "grid": {"width": []}}, "grid.width"),
    ({**BASE, "grid": {"width": [64, 0]}}, "grid.width[1]"),
    ({**BASE, "grid": {"width": [64.5]}}, "grid.width[0]"),
    ({**BASE, "grid": {"activation": ["relu", "swish"]}}, "grid.activation[1]"),
    ({**BASE, "grid": {"lr": [-0.1]}}, "grid.lr[0]"),
    ({**BASE, "grid": {"colour": [1]}}, "grid.colour"),
    ({"name": "t", "fixed": {"depth": "deep"}}, "fixed.depth"),
    ({"name": "t", "fixed": {"sigma_w2": -1.0}}, "fixed.sigma_w2"),
    ({"name": "t", "grid": {"depth": [1, 2]}, "fixed": {"depth": 3}}, "fixed.depth"),
    ({**BASE, "zip": [{"width": [1, 2], "lr": [0.1]}]}, "zip[0]"),
    ({**BASE, "grid": {"width": [8]}, "exclude": [{"lr": 0.1}]}, "exclude[0].lr"),
    ({**BASE, "seeds": 0}, "seeds"),
    ({**BASE, "seeds": -2}, "seeds"),
    ({**BASE, "measure": ["nonsense"]}, "measure[0]"),
    ({**BASE, "grid": {"record": [[0, 1]]}}, "grid.record"),
    ({"name": "t", "fixed": {"init": "he", "sigma_w2": 1.0}}, "init"),
    ({"name": "bad name!", "fixed": {}}, "name"),
])
def test_errors_name_the_field(raw, field):
    with pytest.raises(SweepError) as err:
        parse_sweep(raw)
    message = str(err.value)
    assert message.startswith(field), message
    assert "\n" not in message


def test_invalid_toml_is_one_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("name = 'x'\n[grid\nwidth = 1")
    with pytest.raises(SweepError) as err:
        load_sweep(path)
    assert str(err.value).startswith("sweep file:")


def test_missing_file(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "nope.toml")


@pytest.mark.parametrize("raw", [
    {**BASE, "grid": {"width": [16, 32]}, "exclude": [{"width": 17}]},  # a typo
    {**BASE, "grid": {"width": [16, 32]}, "exclude": [{"width": 16}, {"width": 33}]},
    {"name": "t", "grid": {"width": [16, 32]}, "fixed": {"depth": 1},
     "exclude": [{"width": 16, "depth": 2}]},  # the fixed value differs
    # each value is in its zip group, but no row has both
    {**BASE, "zip": [{"width": [16, 32], "lr": [0.1, 0.2]}], "exclude": [{"width": 16, "lr": 0.2}]},
])
def test_exclude_rule_matching_no_point_is_refused(raw):
    with pytest.raises(SweepError) as err:
        parse_sweep(raw)
    index = len(raw["exclude"]) - 1
    assert str(err.value).startswith(f"exclude[{index}]: matches no point"), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("exclude", [
    [{"width": 32}], [{"width": 16, "lr": 0.1}], [{"lr": 0.2, "sigma_w2": 1.5}],
    [{"width": 32, "lr": 0.2, "sigma_w2": 1.5, "depth": 1}], [{"sigma_w2": 2}],
])
def test_exclude_rules_matching_a_point_are_accepted(exclude):
    from gradstats.sweeps import expand

    raw = {"name": "t", "grid": {"width": [16, 32]}, "zip": [{"lr": [0.1, 0.2], "sigma_w2": [2.0, 1.5]}],
           "fixed": {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4}, "exclude": exclude}
    assert len(expand(parse_sweep(raw))) < 4  # the rule drops at least one of the 4 points


def test_set_override_drops_an_exclude_rule_it_leaves_matching_nothing():
    from gradstats.sweeps import apply_overrides, resolve_sweep

    validity = resolve_sweep("validity")  # excludes width = 256 at depths 8 and 16
    assert apply_overrides(validity, ["width=64"]).exclude == []
    assert apply_overrides(validity, ["depth=8"]).exclude == [{"width": 256, "depth": 8}]
    assert apply_overrides(validity, ["input_dim=8"]).exclude == validity.exclude
