"""Training data: synthetic sphere data with a teacher, scikit-learn's digits, or user arrays.

All loaders return numpy arrays ``x`` (n, input_dim) float64 and ``y``: (n, output_dim)
float64 regression targets for ``mse``, (n,) int64 labels for ``cross_entropy``.

Image data (for ``architecture = "cnn"``) is channel-first, ``x`` (n, C, H, W) or (n, C, W):
``digits-images`` (the standardized digits as (n, 1, 8, 8)), ``torus-fields`` (smooth
random fields on a torus, `torus_fields`) and npz files whose ``x`` is 3-D or 4-D.
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradstats.spec import Data, SpecError

SPHERE_CLASSES = 10
DIGITS_CLASSES = 10
# scikit-learn's digits: 1797 images of 8x8 pixels (tests check these against load_digits).
DIGITS_ROWS, DIGITS_FEATURES = 1797, 64
DIGITS_IMAGE = (8, 8)
# Correlation length (pixels) of the Gaussian filter that smooths the torus fields' noise.
TORUS_LENGTH_SCALE = 1.5
# More classes than this in an npz file's labels is taken for a mistake (readout width).
MAX_CLASSES = 100_000


@dataclass(frozen=True)
class Dataset:
    """x: (n, input_dim) or images (n, C, *spatial); y: (n, output_dim) float targets or (n,)
    int labels."""

    x: np.ndarray
    y: np.ndarray
    n_classes: int | None


def load_data(data: Data, loss: str, seed: int) -> Dataset:
    """The dataset of ``data`` for ``loss``, reproducible from ``seed`` (sphere draws only)."""
    if data.name == "sphere":
        return _sphere(data, loss, np.random.default_rng(seed))
    if data.name == "digits":
        return _digits(data, loss)
    if data.name == "digits-images":
        ds = _digits(data, loss)
        return Dataset(x=ds.x.reshape(len(ds.x), 1, *DIGITS_IMAGE), y=ds.y, n_classes=ds.n_classes)
    if data.name == "torus-fields":
        return _torus(data, loss, np.random.default_rng(seed))
    return _npz(data, loss)


def output_dim(data: Data, loss: str) -> int:
    """Width of the readout the data needs (classes for cross_entropy or one-hot digits)."""
    if data.name in ("sphere", "torus-fields"):
        return SPHERE_CLASSES if loss == "cross_entropy" else 1
    if data.name in ("digits", "digits-images"):
        return DIGITS_CLASSES
    ds = _npz(data, loss)
    return ds.n_classes if loss == "cross_entropy" else ds.y.shape[1]


def data_shape(data: Data) -> tuple[int, int] | None:
    """(rows, features) of a data set read from somewhere (digits, npz); None for synthetic
    data (sphere, torus-fields). Image data has ``features`` = its channels C.

    An npz file is read and validated here (`SpecError` naming the file and the problem).
    """
    if data.name == "digits":
        return DIGITS_ROWS, DIGITS_FEATURES
    if data.name == "digits-images":
        return DIGITS_ROWS, 1
    if data.name in ("sphere", "torus-fields"):
        return None
    x = _npz_arrays(data.name)[0]
    return x.shape[0], x.shape[1]


def data_image_shape(data: Data) -> tuple[int, ...] | None:
    """Spatial shape of image data, (H, W) or (W,); None for (n, features) data."""
    shape = data.builtin_image_shape()
    if shape is not None or not data.name.startswith("npz:"):
        return shape
    x = _npz_arrays(data.name)[0]
    return tuple(x.shape[2:]) if x.ndim > 2 else None


def data_input_dim(data: Data) -> int:
    """Input dimension the data provides (digits: 64; npz: from the file)."""
    shape = data_shape(data)
    return data.input_dim if shape is None else shape[1]


def sphere_inputs(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform on the sphere of radius sqrt(d) in R^d, so x.x/d = 1: (n, d)."""
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * np.sqrt(d)


def _sphere(data: Data, loss: str, rng: np.random.Generator) -> Dataset:
    x = sphere_inputs(data.n_train, data.input_dim, rng)
    return _teacher(x, data.teacher, loss, rng)


def torus_fields(n: int, channels: int, size: int, rng: np.random.Generator,
                 length_scale: float = TORUS_LENGTH_SCALE) -> np.ndarray:
    """n smooth random fields on a size x size torus: (n, channels, size, size).

    White Gaussian noise filtered by a Gaussian of ``length_scale`` pixels (a product with
    exp(-2 pi^2 l^2 |k|^2) in Fourier space, so the boundary is circular), then normalized per
    image: mean 0 and mean square 1 over its channels and pixels (x.x / (C H W) = 1).
    """
    noise = rng.standard_normal((n, channels, size, size))
    freq = np.fft.fftfreq(size)
    k2 = freq[:, None] ** 2 + freq[None, :] ** 2
    filt = np.exp(-2.0 * np.pi**2 * length_scale**2 * k2)
    x = np.real(np.fft.ifft2(np.fft.fft2(noise) * filt))
    x -= x.mean(axis=(1, 2, 3), keepdims=True)
    return x / np.sqrt((x**2).mean(axis=(1, 2, 3), keepdims=True))


def _torus(data: Data, loss: str, rng: np.random.Generator) -> Dataset:
    x = torus_fields(data.n_train, data.input_dim, data.image_size, rng)
    ds = _teacher(x.reshape(len(x), -1), data.teacher, loss, rng)
    return Dataset(x=x, y=ds.y, n_classes=ds.n_classes)


def _teacher(x: np.ndarray, teacher: str, loss: str, rng: np.random.Generator) -> Dataset:
    """Targets of inputs x (n, d) from a fixed random ``teacher`` drawn from ``rng``."""
    d = x.shape[1]
    k = SPHERE_CLASSES if loss == "cross_entropy" else 1
    if teacher == "zero":
        scores = np.zeros((len(x), k))
    elif teacher == "linear":
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
    _check_rows("digits", data.n_train, len(x))
    x, labels = x[: data.n_train], labels[: data.n_train]
    if loss == "cross_entropy":
        return Dataset(x=x, y=labels, n_classes=DIGITS_CLASSES)
    return Dataset(x=x, y=np.eye(DIGITS_CLASSES)[labels], n_classes=None)


def npz_path(name: str) -> Path:
    """The file a data name ``npz:PATH`` reads (``~`` expanded; relative to the working
    directory)."""
    return Path(name.removeprefix("npz:")).expanduser()


def _npz_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The validated arrays ``x`` (n, d) float64 and ``y`` (n,) or (n, k) of ``npz:PATH``
    (read-only; cached while the file is unchanged)."""
    path = npz_path(name)
    try:
        stat = path.stat()
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" in the current directory {Path.cwd()}"
        raise SpecError("data", f"npz file {str(path)!r} does not exist{where}") from None
    except OSError as err:
        raise SpecError("data", f"npz file {str(path)!r}: cannot read ({err.strerror})") from None
    if not path.is_file():
        raise SpecError("data", f"npz file {str(path)!r} is not a file")
    return _read_npz(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_npz(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`_npz_arrays` for one version of the file (``mtime_ns``, ``size`` key the cache)."""
    def bad(problem: str) -> SpecError:
        return SpecError("data", f"npz file {path!r}: {problem}")

    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"not an .npz archive of arrays ({type(err).__name__})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise bad("holds a single array (.npy); save x and y with numpy.savez") from None
    with f:
        if "x" not in f.files or "y" not in f.files:
            found = ", ".join(repr(k) for k in f.files) or "none"
            raise bad(f"must hold arrays 'x' and 'y' (found {found})")
        try:
            x, y = f["x"], f["y"]
        except ValueError as err:
            problem = "holds Python objects (dtype object); save numeric arrays" if (
                "allow_pickle" in str(err)) else f"cannot read its arrays ({err})"
            raise bad(problem) from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
            raise bad(f"is damaged ({type(err).__name__}: {err})") from None
    for key, array in (("x", x), ("y", y)):
        if not isinstance(array, np.ndarray):  # a member that is no .npy comes back as bytes
            raise bad(f"'{key}' is not a numpy array")
        if array.dtype.kind not in "biuf":
            raise bad(f"'{key}' must be numeric, got dtype {array.dtype}")
    if x.ndim not in (2, 3, 4):
        raise bad(f"'x' must be 2-D (rows, features) or images (rows, C, W) / (rows, C, H, W), "
                  f"got shape {x.shape}")
    if 0 in x.shape:
        raise bad(f"'x' has shape {x.shape}; it needs at least one row and one feature")
    if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] == 0):
        raise bad(f"'y' must be (rows,) or (rows, outputs), got shape {y.shape}")
    if len(y) != len(x):
        raise bad(f"'y' has {len(y)} rows but 'x' has {len(x)}")
    for key, array in (("x", x), ("y", y)):
        finite = np.isfinite(array)
        if not finite.all():
            row = int(np.argwhere(~finite)[0][0])
            raise bad(f"'{key}' holds {int((~finite).sum())} NaN/inf values (first in row {row})")
    x = x.astype(np.float64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _check_rows(name: str, n_train: int, rows: int) -> None:
    if n_train > rows:
        raise SpecError("n_train", f"data {name} has {rows} rows; n_train = {n_train} asks for "
                                   f"more (set n_train <= {rows})")


def _npz(data: Data, loss: str) -> Dataset:
    x, y = _npz_arrays(data.name)
    _check_rows(data.name, data.n_train, len(x))
    x, y = np.array(x[: data.n_train]), np.array(y[: data.n_train])
    if loss == "cross_entropy":
        if y.ndim == 2 and y.shape[1] != 1:
            raise SpecError("data", f"{data.name}: cross_entropy needs one class label per row "
                                    f"in 'y', got shape {y.shape}")
        labels = y.reshape(-1)
        if (labels < 0).any() or (labels != np.round(labels)).any() or labels.max() >= MAX_CLASSES:
            raise SpecError("data", f"{data.name}: cross_entropy needs whole-number class labels "
                                    f"in 0..{MAX_CLASSES - 1} in 'y'")
        labels = labels.astype(np.int64)
        return Dataset(x=x, y=labels, n_classes=int(labels.max()) + 1)
    y = y.astype(np.float64)
    return Dataset(x=x, y=y.reshape(len(y), -1), n_classes=None)
