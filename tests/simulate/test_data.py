"""Training data inputs: npz files are validated (one `SpecError` naming the file and the
problem, never another exception), digits' size is what scikit-learn ships."""

from __future__ import annotations

import io
import itertools
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradstats.simulate import data
from gradstats.spec import Data, SpecError

FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
_names = itertools.count()


def npz_data(tmp_path, **arrays) -> Data:
    path = tmp_path / f"d{next(_names)}.npz"
    np.savez(path, **arrays)
    return Data(name=f"npz:{path}", n_train=1)


def test_digits_constants_are_scikit_learns():
    from sklearn.datasets import load_digits

    assert load_digits().data.shape == (data.DIGITS_ROWS, data.DIGITS_FEATURES)


def test_digits_refuse_more_rows_than_they_have():
    with pytest.raises(SpecError, match="^n_train: data digits has 1797 rows"):
        data.load_data(Data(name="digits", n_train=1798), "mse", 0)
    assert data.load_data(Data(name="digits", n_train=1797), "mse", 0).x.shape == (1797, 64)


def test_a_good_npz_loads_as_float64_copies(tmp_path):
    d = npz_data(tmp_path, x=np.arange(12, dtype=np.int32).reshape(6, 2), y=np.arange(6) % 3)
    assert data.data_shape(d) == (6, 2)
    loaded = data.load_data(Data(name=d.name, n_train=4), "cross_entropy", 0)
    assert loaded.x.dtype == np.float64 and loaded.x.shape == (4, 2) and loaded.n_classes == 3
    loaded.x[0, 0] = 99.0  # a copy: the cached arrays stay as read
    assert data.load_data(Data(name=d.name, n_train=4), "mse", 0).x[0, 0] == 0.0


def test_a_changed_file_is_read_again(tmp_path):
    d = npz_data(tmp_path, x=np.ones((6, 2)), y=np.zeros(6))
    path = d.name.removeprefix("npz:")
    assert data.data_shape(d) == (6, 2)
    np.savez(path, x=np.ones((7, 3)), y=np.zeros(7))
    assert data.data_shape(d) == (7, 3)


@pytest.mark.parametrize(("arrays", "problem"), [
    ({"x": np.ones((4, 2)), "y": np.full(4, np.nan)}, "'y' holds 4 NaN/inf values (first in row 0)"),
    ({"x": np.array([[1.0, np.inf]] * 4), "y": np.zeros(4)},
     "'x' holds 4 NaN/inf values (first in row 0)"),
    ({"x": np.ones((4, 2)), "y": np.zeros((4, 0))},
     "'y' must be (rows,) or (rows, outputs), got shape (4, 0)"),
    ({"x": np.ones((4, 2)), "y": np.array(["a"] * 4)}, "'y' must be numeric, got dtype <U1"),
    ({"x": np.ones((4, 2)), "z": np.zeros(4)}, "must hold arrays 'x' and 'y' (found 'x', 'z')"),
])
def test_each_problem_is_named_with_the_file(tmp_path, arrays, problem):
    d = npz_data(tmp_path, **arrays)
    with pytest.raises(SpecError) as err:
        data.data_shape(d)
    assert str(err.value) == f"data: npz file {d.name.removeprefix('npz:')!r}: {problem}"


def test_a_damaged_member_is_reported(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.ones((50, 4)), y=np.zeros(50))
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF  # inside x's data: the zip's CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(SpecError, match="damaged|not an .npz"):
        data.data_shape(Data(name=f"npz:{path}"))


# --- hypothesis ----------------------------------------------------------------------------
DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.uint8, np.bool_,
                          np.complex64, np.dtype("U2"), np.dtype("S2"), np.dtype("M8[s]")])
arrays = DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3,
                                                                    min_side=0, max_side=5)))


@FUZZ
@given(x=arrays, y=arrays, keys=st.sampled_from([("x", "y"), ("x", "t"), ("a", "y")]),
       loss=st.sampled_from(["mse", "cross_entropy"]))
def test_any_npz_either_loads_or_is_one_spec_error(tmp_path, x, y, keys, loss):
    d = npz_data(tmp_path, **{keys[0]: x, keys[1]: y})
    try:
        rows, features = data.data_shape(d)
        out = data.output_dim(Data(name=d.name, n_train=rows), loss)
        loaded = data.load_data(Data(name=d.name, n_train=rows), loss, 0)
    except SpecError as err:
        assert str(err).startswith("data: ") or str(err).startswith("n_train: ")
        assert "\n" not in str(err)
        return
    # whatever loads is usable: finite float inputs, one row per target, a readout width
    assert loaded.x.shape == (rows, features) and np.isfinite(loaded.x).all()
    assert len(loaded.y) == rows and out >= 1


@FUZZ
@given(content=st.binary(max_size=300) | st.builds(
    lambda body, cut: body[:cut], st.just(b""), st.integers(0, 10)))
def test_any_bytes_as_an_npz_are_one_spec_error_or_load(tmp_path, content):
    path = tmp_path / f"b{next(_names)}.npz"
    path.write_bytes(content)
    with pytest.raises(SpecError, match="^data: npz file"):
        data.data_shape(Data(name=f"npz:{path}"))


@FUZZ
@given(cut=st.integers(0, 2000), flip=st.integers(0, 2000))
def test_a_truncated_or_flipped_npz_is_one_spec_error_or_loads_intact(tmp_path, cut, flip):
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(40.0).reshape(20, 2), y=np.arange(20.0))
    raw = bytearray(buffer.getvalue())
    raw = raw[: max(cut, 1)] if cut < len(raw) else raw
    if flip < len(raw):
        raw[flip] ^= 0x01
    path = tmp_path / f"t{next(_names)}.npz"
    path.write_bytes(bytes(raw))
    try:
        shape = data.data_shape(Data(name=f"npz:{path}"))
    except SpecError as err:
        assert str(err).startswith("data: npz file") and "\n" not in str(err)
        return
    # it loaded: the bit flip hit something unchecked (a zip header field): values intact
    assert shape == (20, 2)


def test_zip_without_npy_members_is_refused(tmp_path):
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x.npy", b"not an npy")
        zf.writestr("y.npy", b"not an npy")
    with pytest.raises(SpecError, match="^data: npz file"):
        data.data_shape(Data(name=f"npz:{path}"))
