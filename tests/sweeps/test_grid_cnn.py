"""Sweep keys of convolutional networks: channels (alias of width), kernel_size, padding,
readout, image data; one-line errors naming the field."""

from __future__ import annotations

import numpy as np
import pytest

from gradstats.sweeps.grid import expand
from gradstats.sweeps.sweepfile import SweepError, parse_sweep


def sweep(fixed=None, grid=None, **top):
    return parse_sweep({"name": "c", "fixed": fixed or {}, "grid": grid or {}, **top})


def test_channels_is_width_and_the_image_comes_from_the_data():
    points = expand(sweep({"architecture": "cnn", "data": "digits-images", "n_train": 64},
                          {"channels": [8, 16], "readout": ["flatten", "gap"]}, seeds=2))
    assert len(points) == 8
    assert sorted({p.arch.width for p in points}) == [8, 16]
    p = points[0]
    assert p.arch.is_cnn and p.arch.image_shape == (8, 8) and p.arch.input_dim == 1
    assert p.arch.output_dim == 10 and p.axis_values()["width"] == 8
    assert p.axis_values()["architecture"] == "cnn:k3:SAME:flatten"


def test_npz_images_set_the_image_shape(tmp_path):
    path = tmp_path / "sig.npz"
    np.savez(path, x=np.ones((10, 3, 12)), y=np.zeros(10))
    p = expand(sweep({"architecture": "cnn", "data": f"npz:{path}", "n_train": 10}))[0]
    assert p.arch.image_shape == (12,) and p.arch.input_dim == 3
    with pytest.raises(SweepError, match="^data: .* holds images of shape"):
        expand(sweep({"data": f"npz:{path}", "n_train": 10}))


def test_torus_fields_channels_default_to_one():
    p = expand(sweep({"architecture": "cnn", "data": "torus-fields", "image_size": 6}))[0]
    assert p.arch.input_dim == 1 and p.arch.image_shape == (6, 6)
    p3 = expand(sweep({"architecture": "cnn", "data": "torus-fields", "input_dim": 3}))[0]
    assert p3.arch.input_dim == 3 and p3.data.input_dim == 3


@pytest.mark.parametrize(("fixed", "field"), [
    ({"channels": 8}, "channels"),  # an MLP
    ({"architecture": "cnn", "data": "digits-images", "channels": 8, "width": 4}, "channels"),
    ({"architecture": "cnn", "data": "digits"}, "data"),
    ({"architecture": "cnn", "data": "digits-images", "padding": "VALID", "kernel_size": 5},
     "kernel_size"),
    ({"architecture": "cnn", "data": "digits-images", "readout": "avg"}, "readout"),
    ({"architecture": "cnn", "data": "digits-images", "measure_me": 1}, "measure_me"),
])
def test_bad_cnn_sweeps_are_one_line_naming_the_field(fixed, field):
    with pytest.raises(SweepError) as err:
        expand(sweep(fixed))
    line = str(err.value)
    assert "\n" not in line and field in line.split(":")[0]


def test_unsupported_measure_is_refused_for_cnn():
    with pytest.raises(SweepError, match=r'^measure\[0\]: updates is not available for '
                                         r'architecture = "cnn"'):
        expand(sweep({"architecture": "cnn", "data": "digits-images"}, measure=["updates"]))
    ok = expand(sweep({"architecture": "cnn", "data": "digits-images"},
                      measure=["per_example", "full_batch", "ntk"]))
    assert ok[0].measure == ("per_example", "full_batch", "ntk")


def test_cnn_settings_give_distinct_result_coordinates():
    """kernel_size, padding, readout live in the `architecture` label and the torus size in
    the `data` label: every point of a sweep over them has its own coordinates."""
    points = expand(sweep({"architecture": "cnn", "data": "torus-fields"},
                          {"kernel_size": [3, 5], "padding": ["SAME", "CIRCULAR"],
                           "readout": ["flatten", "gap"], "image_size": [8, 12]}))
    coords = {tuple(sorted(p.axis_values().items())) for p in points}
    assert len(coords) == len(points) == 16
    assert {p.axis_values()["data"] for p in points} == {"torus-fields:8x8", "torus-fields:12x12"}
    mlp = expand(sweep())[0].axis_values()
    assert mlp["architecture"] == "mlp" and mlp["data"] == "sphere"
