"""Image data for cnns: digits-images, torus-fields and image-shaped npz files."""

from __future__ import annotations

import numpy as np
import pytest

from gradstats.simulate import data
from gradstats.spec import Data, SpecError


def test_digits_images_are_the_standardized_digits_as_1x8x8():
    img = data.load_data(Data(name="digits-images", n_train=100), "mse", 0)
    flat = data.load_data(Data(name="digits", n_train=100), "mse", 0)
    assert img.x.shape == (100, 1, 8, 8)
    np.testing.assert_array_equal(img.x.reshape(100, 64), flat.x)  # pixel (r, c) = feature 8r+c
    np.testing.assert_array_equal(img.y, flat.y)
    from sklearn.datasets import load_digits

    raw = load_digits().images[:100]  # (n, 8, 8): the same pixel layout before scaling
    corr = np.corrcoef(img.x[:, 0, 3, 2], raw[:, 3, 2])[0, 1]
    assert corr > 0.999
    labels = data.load_data(Data(name="digits-images", n_train=50), "cross_entropy", 0)
    assert labels.n_classes == 10 and labels.y.shape == (50,)
    assert data.data_shape(Data(name="digits-images")) == (1797, 1)
    assert data.data_image_shape(Data(name="digits-images")) == (8, 8)


def test_torus_fields_shape_normalization_and_seed():
    d = Data(name="torus-fields", input_dim=3, n_train=20, image_size=12)
    a = data.load_data(d, "mse", 5)
    assert a.x.shape == (20, 3, 12, 12) and a.y.shape == (20, 1)
    np.testing.assert_allclose(a.x.mean(axis=(1, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((a.x**2).mean(axis=(1, 2, 3)), 1, rtol=1e-12)
    np.testing.assert_array_equal(data.load_data(d, "mse", 5).x, a.x)  # same seed, same data
    assert not np.allclose(data.load_data(d, "mse", 6).x, a.x)
    ce = data.load_data(d, "cross_entropy", 5)
    assert ce.n_classes == 10 and ce.y.dtype == np.int64
    assert data.data_image_shape(d) == (12, 12) and data.data_shape(d) is None


def test_torus_fields_are_smooth_and_periodic():
    """Neighbouring pixels correlate as the Gaussian filter says, across the wrap-around too:
    the filter exp(-2 pi^2 l^2 k^2) gives correlation exp(-1 / (4 l^2)) at distance 1 (on an
    infinite grid; the 32-pixel torus changes it by < 1e-6)."""
    x = data.torus_fields(400, 1, 32, np.random.default_rng(0))[:, 0]
    ell = data.TORUS_LENGTH_SCALE
    expected = np.exp(-1 / (4 * ell**2))
    inner = np.mean(x[:, :, 3] * x[:, :, 4])
    wrap = np.mean(x[:, :, -1] * x[:, :, 0])  # across the boundary
    # Monte Carlo: 400 images x 32 rows of unit-variance products: sd ~ 1/sqrt(12800) ~ 0.01
    assert abs(inner - expected) < 0.04 and abs(wrap - expected) < 0.04
    far = np.mean(x[:, :, 0] * x[:, :, 16])
    assert abs(far) < 0.04


def test_image_npz_loads_with_its_shape(tmp_path):
    path = tmp_path / "img.npz"
    x = np.random.default_rng(0).standard_normal((6, 2, 5, 4))
    np.savez(path, x=x, y=np.arange(6) % 2)
    d = Data(name=f"npz:{path}", n_train=4)
    assert data.data_shape(d) == (6, 2) and data.data_image_shape(d) == (5, 4)
    loaded = data.load_data(d, "cross_entropy", 0)
    np.testing.assert_array_equal(loaded.x, x[:4])
    path1 = tmp_path / "sig.npz"
    np.savez(path1, x=x[:, :, 0], y=np.zeros(6))
    assert data.data_image_shape(Data(name=f"npz:{path1}", n_train=1)) == (4,)


def test_npz_with_five_dims_is_refused(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, x=np.ones((2, 1, 2, 2, 2)), y=np.zeros(2))
    with pytest.raises(SpecError, match="'x' must be 2-D"):
        data.data_shape(Data(name=f"npz:{path}", n_train=1))
