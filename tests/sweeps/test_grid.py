"""Grid expansion: products, zip groups, exclusions, overrides, named schemes, record steps."""

import numpy as np
import pytest

from gradstats.sweeps import SweepError, apply_overrides, expand, parse_sweep
from gradstats.sweeps.grid import count_points, record_steps
from gradstats.sweeps.presets import preset_names, resolve_sweep


def _sweep(**extra):
    return parse_sweep({"name": "t", "seeds": 2, **extra})


def test_product_of_grid_axes_times_seeds():
    points = expand(_sweep(grid={"width": [8, 16, 32], "activation": ["relu", "tanh"]}))
    assert len(points) == 3 * 2 * 2
    combos = {(p.arch.width, p.arch.activation, p.seed) for p in points}
    assert len(combos) == 12
    assert len({p.key() for p in points}) == 12


def test_zip_moves_axes_together_and_crosses_with_grid():
    points = expand(_sweep(grid={"activation": ["relu", "tanh"]},
                           zip=[{"depth": [4, 8], "width": [128, 256]}]))
    assert len(points) == 2 * 2 * 2
    assert {(p.arch.depth, p.arch.width) for p in points} == {(4, 128), (8, 256)}


def test_exclude_drops_matching_points():
    points = expand(_sweep(grid={"width": [8, 16], "depth": [1, 2]},
                           exclude=[{"width": 16, "depth": 2}]))
    assert {(p.arch.width, p.arch.depth) for p in points} == {(8, 1), (8, 2), (16, 1)}


@pytest.mark.parametrize("name", ["exclude+zip", *preset_names()])
def test_count_points_is_the_number_expand_builds(name):
    sweep = (_sweep(grid={"width": [8, 16], "depth": [1, 2]}, zip=[{"lr": [0.1, 0.2, 0.3]}],
                    exclude=[{"width": 16, "depth": 2}, {"lr": 0.2, "depth": 1}])
             if name == "exclude+zip" else resolve_sweep(name))
    assert count_points(sweep) == len(expand(sweep))


def test_excluding_everything_is_an_error():
    with pytest.raises(SweepError, match="exclude"):
        expand(_sweep(grid={"width": [8]}, exclude=[{"width": 8}]))


def test_named_init_scheme_sets_sigma_w2():
    (point, _) = expand(_sweep(fixed={"init": "he"}))
    assert point.arch.sigma_w2 == 2.0 and point.arch.init == "gaussian"


def test_digits_sets_input_and_output_dims():
    (point, _) = expand(_sweep(fixed={"data": "digits", "loss": "cross_entropy"}))
    assert point.arch.input_dim == 64 and point.arch.output_dim == 10


def test_missing_npz_names_data_field(tmp_path):
    with pytest.raises(SweepError, match="^data: .*does not exist"):
        expand(_sweep(fixed={"data": f"npz:{tmp_path / 'none.npz'}"}))


def test_npz_data(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((10, 5)), y=np.zeros((10, 2)))
    (point, _) = expand(_sweep(fixed={"data": f"npz:{path}"}))
    assert point.arch.input_dim == 5 and point.arch.output_dim == 2


def test_overrides_replace_and_sweep_axes():
    sweep = apply_overrides(_sweep(fixed={"width": 8, "depth": 2}), ["width=64,128", "depth=3"])
    points = expand(sweep)
    assert {p.arch.width for p in points} == {64, 128}
    assert {p.arch.depth for p in points} == {3}


def test_record_override_takes_a_list_of_steps_with_step_0_as_the_sweep_file_does():
    in_file = expand(_sweep(fixed={"steps": 4, "record": [0, 2, 4]}))
    overridden = expand(apply_overrides(_sweep(fixed={"steps": 4}), ["record=0,2,4"]))
    assert [p.training.record for p in overridden] == [p.training.record for p in in_file]
    assert overridden[0].training.record == (0, 2, 4)
    with pytest.raises(SweepError, match="--set record"):
        apply_overrides(_sweep(fixed={"steps": 4}), ["record=0,-2"])


def test_override_of_unknown_axis_is_rejected():
    with pytest.raises(SweepError, match="colour"):
        apply_overrides(_sweep(), ["colour=1"])


@pytest.mark.parametrize("record, steps, expected", [
    (None, 0, (0,)),
    ([0, 5, 10], 10, (0, 5, 10)),
    (4, 1000, None),
])
def test_record_steps(record, steps, expected):
    got = record_steps(record, steps)
    if expected is not None:
        assert got == expected
    else:
        assert got[0] == 0 and got[-1] == steps and len(got) == 4
        ratios = np.diff(np.log(np.array(got[1:]) + 1))
        assert np.allclose(ratios, ratios[0], rtol=0.1)  # log-spaced


def test_measure_is_part_of_the_point_key():
    plain = expand(_sweep())
    measured = expand(_sweep(measure=["per_example"]))
    assert measured[0].measure == ("per_example",)
    assert {p.key() for p in plain}.isdisjoint(p.key() for p in measured)


def test_data_from_a_file_fixes_input_dim_and_bounds_n_train(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((10, 5)), y=np.zeros(10))
    (point, _) = expand(_sweep(fixed={"data": f"npz:{path}"}))  # neither given: the data's
    assert (point.arch.input_dim, point.data.input_dim, point.data.n_train) == (5, 5, 10)
    (point, _) = expand(_sweep(fixed={"data": f"npz:{path}", "n_train": 6, "input_dim": 5}))
    assert (point.arch.input_dim, point.data.n_train) == (5, 6)
    with pytest.raises(SweepError, match="^n_train: data npz:.* has 10 rows; n_train = 11"):
        expand(_sweep(fixed={"data": f"npz:{path}", "n_train": 11}))
    with pytest.raises(SweepError, match="^input_dim: data npz:.* has 5 features, input_dim = 4"):
        expand(_sweep(fixed={"data": f"npz:{path}", "input_dim": 4}))


def test_digits_records_the_rows_it_uses():
    (point, _) = expand(_sweep(fixed={"data": "digits", "n_train": 1797}))
    assert point.data.n_train == 1797 and point.arch.input_dim == 64
    with pytest.raises(SweepError, match="^n_train: data digits has 1797 rows"):
        expand(_sweep(fixed={"data": "digits", "n_train": 1798}))
