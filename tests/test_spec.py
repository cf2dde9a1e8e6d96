"""Frozen spec: validation and the stability of content keys."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from gradstats.spec import Architecture, Data, Point, SpecError, Training


def _point(**arch) -> Point:
    return Point(arch=Architecture(width=64, depth=2, **arch), training=Training(steps=10, record=(0, 10)))


def test_key_is_sha256_of_canonical_json():
    p = _point()
    canonical = json.dumps(p.to_dict(), sort_keys=True, separators=(",", ":"))
    assert p.key() == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_key_is_stable_across_processes_and_hash_seeds():
    code = ("from gradstats.spec import *; print(Point(arch=Architecture(width=64, depth=2),"
            " training=Training(steps=10, record=(0, 10))).key())")
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout.strip()
            for seed in (0, 1)}
    assert keys == {_point().key()}


@pytest.mark.parametrize("change", [
    {"arch": Architecture(width=65, depth=2)}, {"seed": 1}, {"dtype": "float64"},
    {"training": Training(steps=10, record=(0, 5, 10))}, {"data": Data(n_train=100)},
])
def test_key_changes_with_any_field(change):
    p = _point()
    assert replace(p, **change).key() != p.key()
    assert replace(p, **change).config_key() != p.config_key() or "seed" in change


def test_json_round_trip():
    p = _point(activation="tanh", sigma_b2=0.1)
    assert Point.from_json(p.to_json()) == p


@pytest.mark.parametrize("kwargs, field", [
    ({"width": 0, "depth": 1}, "width"),
    ({"width": 4, "depth": -1}, "depth"),
    ({"width": 4, "depth": 1, "activation": "swish"}, "activation"),
    ({"width": 4, "depth": 1, "sigma_w2": 0.0}, "sigma_w2"),
    ({"width": 4, "depth": 1, "parameterization": "mup2"}, "parameterization"),
])
def test_invalid_architecture_names_field(kwargs, field):
    with pytest.raises(SpecError) as err:
        Architecture(**kwargs)
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}:")


def test_record_steps_must_lie_in_range():
    with pytest.raises(SpecError, match="record"):
        Training(steps=5, record=(0, 6))
