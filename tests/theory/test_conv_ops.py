"""Pixel-covariance maps of `gradstats.theory.conv.ops` against explicit loops over pixel
pairs and filter offsets (the definition: padded images, i.i.d. filter weights)."""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from gradstats.theory._compat import enable_x64
from gradstats.theory.conv import ops


def _source(n: int, size: int, o: int, padding: str) -> np.ndarray:
    """Input pixel read by each output pixel of a dim at filter offset o (-1: padding)."""
    lo = 0 if padding == "VALID" else (size - 1) // 2
    j = np.arange(ops.out_size(n, size, padding)) + o - lo
    if padding == "CIRCULAR":
        return j % n
    return np.where((j >= 0) & (j < n), j, -1)


def _slow_full(k: np.ndarray, size: int, padding: str) -> np.ndarray:
    """K'(p, p') = size^-d sum_o K(p + o, p' + o) for one image pair, K: (*S, *S), zero
    where p + o or p' + o is a padded pixel."""
    d = k.ndim // 2
    shape = k.shape[:d]
    total = 0.0
    for o in itertools.product(range(size), repeat=d):
        src = [_source(shape[i], size, o[i], padding) for i in range(d)]
        index = np.ix_(*src, *src)
        valid = np.ones(tuple(len(s) for s in src) * 2, bool)
        for axis, s in enumerate(src + src):
            shape_b = [1] * (2 * d)
            shape_b[axis] = len(s)
            valid &= (s >= 0).reshape(shape_b)
        total = total + np.where(valid, k[index], 0.0)
    return total / size**d


@pytest.mark.parametrize("padding", ["SAME", "VALID", "CIRCULAR"])
@pytest.mark.parametrize("shape,size", [((7,), 3), ((6,), 4), ((5, 4), 3), ((4, 5), 2)])
def test_conv_full_and_diag_match_the_definition(padding, shape, size):
    rng = np.random.default_rng(0)
    d = len(shape)
    k = rng.normal(size=(2, 3) + shape + shape)
    with enable_x64():
        got = np.asarray(jax.jit(ops.conv_full, static_argnums=(1, 2))(k, (size,) * d, padding))
        diag = np.asarray(jax.jit(lambda a: ops.conv_diag(ops.pixel_diagonal(a, d), (size,) * d,
                                                          padding))(k))
    for i, j in itertools.product(range(2), range(3)):
        want = _slow_full(k[i, j], size, padding)
        np.testing.assert_allclose(got[i, j], want, rtol=1e-13, atol=1e-13)
        want_diag = np.asarray([want[p + p] for p in itertools.product(
            *(range(m) for m in want.shape[:d]))]).reshape(want.shape[:d])
        np.testing.assert_allclose(diag[i, j], want_diag, rtol=1e-13, atol=1e-13)


def test_input_kernel_is_the_channel_mean_of_pixel_products():
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(3, 2, 4, 3)), rng.normal(size=(2, 2, 4, 3))
    with enable_x64():
        full = np.asarray(ops.input_kernel(x1, x2, full=True))
        diag = np.asarray(ops.input_kernel(x1, x2, full=False))
        q = np.asarray(ops.input_variances(x1))
    for i, j, h, w, g, v in itertools.product(range(3), range(2), range(4), range(3), range(4),
                                              range(3)):
        want = sum(x1[i, c, h, w] * x2[j, c, g, v] for c in range(2)) / 2
        assert full[i, j, h, w, g, v] == pytest.approx(want, abs=1e-14)
        if (h, w) == (g, v):
            assert diag[i, j, h, w] == pytest.approx(want, abs=1e-14)
    np.testing.assert_allclose(q, np.mean(x1**2, axis=1), rtol=1e-14)


def test_valid_filter_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match="kernel_size 5 exceeds the spatial size 4"):
        ops.conv_diag(np.ones((1, 1, 4)), (5,), "VALID")
    with pytest.raises(ValueError, match="unknown padding"):
        ops.check_padding("same")
