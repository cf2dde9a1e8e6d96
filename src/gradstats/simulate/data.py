"""Training data: synthetic sphere data with a teacher, scikit-learn's digits, or user arrays.

All loaders return numpy arrays ``x`` (n, input_dim) float64 and ``y``: (n, output_dim)
float64 regression targets for ``mse``, (n,) int64 labels for ``cross_entropy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradstats.spec import Data, SpecError

SPHERE_CLASSES = 10
DIGITS_CLASSES = 10


@dataclass(frozen=True)
class Dataset:
    """x: (n, input_dim); y: (n, output_dim) float targets or (n,) int labels."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int | None


def load_data(data: Data, loss: str, seed: int) -> Dataset:
    """The dataset of ``data`` for ``loss``, reproducible from ``seed`` (sphere draws only)."""
    if data.name == "sphere":
        return _sphere(data, loss, np.random.default_rng(seed))
    if data.name == "digits":
        return _digits(data, loss)
    return _npz(data, loss)


def output_dim(data: Data, loss: str) -> int:
    """Width of the readout the data needs (classes for cross_entropy or one-hot digits)."""
    if data.name == "sphere":
        return SPHERE_CLASSES if loss == "cross_entropy" else 1
    if data.name == "digits":
        return DIGITS_CLASSES
    ds = _npz(data, loss)
    return ds.n_classes if loss == "cross_entropy" else ds.y.shape[1]


def data_input_dim(data: Data) -> int:
    """Input dimension the data provides (digits: 64; npz: from the file)."""
    if data.name == "sphere":
        return data.input_dim
    if data.name == "digits":
        return 64
    return _npz_arrays(data.name)[0].shape[1]


def sphere_inputs(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform on the sphere of radius sqrt(d) in R^d, so x.x/d = 1: (n, d)."""
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * np.sqrt(d)


def _sphere(data: Data, loss: str, rng: np.random.Generator) -> Dataset:
    d = data.input_dim
    x = sphere_inputs(data.n_train, d, rng)
    k = SPHERE_CLASSES if loss == "cross_entropy" else 1
    if data.teacher == "zero":
        scores = np.zeros((len(x), k))
    elif data.teacher == "linear":
        scores = x @ rng.standard_normal((d, k)) / np.sqrt(d)
    else:  # one hidden tanh layer of width 2d, output variance about 1
        hidden = np.tanh(x @ rng.standard_normal((d, 2 * d)) / np.sqrt(d))
        scores = hidden @ rng.standard_normal((2 * d, k)) / np.sqrt(2 * d * 0.4)
    if loss == "cross_entropy":
        return Dataset(x=x, y=np.argmax(scores, axis=1).astype(np.int64), n_classes=k)
    return Dataset(x=x, y=scores, n_classes=None)


def _digits(data: Data, loss: str) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float64)
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    labels = bunch.target.astype(np.int64)
    x, labels = x[: data.n_train], labels[: data.n_train]
    if loss == "cross_entropy":
        return Dataset(x=x, y=labels, n_classes=DIGITS_CLASSES)
    return Dataset(x=x, y=np.eye(DIGITS_CLASSES)[labels], n_classes=None)


def _npz_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = Path(name.removeprefix("npz:")).expanduser()
    if not path.is_file():
        raise SpecError("data", f"npz file {str(path)!r} does not exist")
    with np.load(path) as f:
        if "x" not in f or "y" not in f:
            raise SpecError("data", f"npz file {str(path)!r} must hold arrays 'x' and 'y'")
        x, y = np.asarray(f["x"], dtype=np.float64), np.asarray(f["y"])
    if x.ndim != 2 or len(y) != len(x):
        raise SpecError("data", "npz 'x' must be (n, d) and 'y' must have n rows")
    return x, y


def _npz(data: Data, loss: str) -> Dataset:
    x, y = _npz_arrays(data.name)
    x, y = x[: data.n_train], y[: data.n_train]
    if loss == "cross_entropy":
        labels = y.astype(np.int64).reshape(-1)
        return Dataset(x=x, y=labels, n_classes=int(labels.max()) + 1)
    y = y.astype(np.float64)
    return Dataset(x=x, y=y.reshape(len(y), -1), n_classes=None)
