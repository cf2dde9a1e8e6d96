"""Tiled CNN kernels: any tiling gives the kernels of the one-shot recursion, the measured
working set of the chosen tile meets the budget, and the Zarr store holds the same numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gradstats import Architecture
from gradstats.layers import hyper, network_spec
from gradstats.theory import activations as act
from gradstats.theory._compat import enable_x64
from gradstats.theory.conv import tiled

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(7, 2, 5, 4))
X2 = RNG.normal(size=(5, 2, 5, 4))
ARCH = Architecture(width=8, depth=2, activation="erf", sigma_w2=1.6, sigma_b2=0.2,
                    architecture="cnn", readout="gap", padding="CIRCULAR")


def _one_shot(arch, x1, x2, mode):
    """The recursion on all image pairs at once (no tiles)."""
    import jax.numpy as jnp

    from gradstats.theory.kernels import _recursion

    arch = arch.with_image(x1.shape[1:])
    with enable_x64():
        out = _recursion(jnp.asarray(x1), jnp.asarray(x1 if x2 is None else x2), hyper(arch),
                         net=network_spec(arch), same=x2 is None, mode=mode,
                         quad=act.DEFAULT_QUADRATURE)
    out = (out,) if mode == "nngp" else out
    return dict(zip(tiled.OUTPUTS[mode], (np.asarray(a) for a in out), strict=True))


@pytest.mark.parametrize("x2", [None, X2], ids=["symmetric", "rectangular"])
@pytest.mark.parametrize("tile", [(1, 1), (3, 2), (7, 5)])
def test_tiles_reproduce_the_one_shot_kernels(x2, tile):
    want = _one_shot(ARCH, X1, x2, "layers")
    got = tiled.cnn_kernels(ARCH, X1, x2, mode="layers", tile=tile, x64=True)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, atol=1e-14, err_msg=name)


def test_budget_is_met_by_the_measured_tile_and_too_small_a_budget_is_refused():
    arch = ARCH.with_image(X1.shape[1:])
    with enable_x64():
        plan = tiled.plan_tiles(arch, 40, 40, X1.shape[1:], mode="ntk", memory_budget=600_000)
        assert 0 < plan.tile_bytes <= 600_000
        assert plan.b1 * plan.b2 < 40 * 40  # the budget forced tiles
        with pytest.raises(ValueError, match="memory_budget"):
            tiled.plan_tiles(arch, 40, 40, X1.shape[1:], mode="ntk", memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget"):
        tiled.cnn_kernels(ARCH, X1, memory_budget=0)
    with pytest.raises(ValueError, match="architecture"):
        tiled.cnn_kernels(dataclasses.replace(ARCH, architecture="mlp"), X1)


@pytest.mark.parametrize("workers", [0, 2])
def test_zarr_store_holds_the_kernels(tmp_path, workers):
    import zarr

    want = _one_shot(ARCH, X1, None, "ntk")
    plan = tiled.cnn_kernels_to_zarr(ARCH, X1, str(tmp_path / "k.zarr"), mode="ntk",
                                     tile=(3, 3), dask_workers=workers, x64=True)
    group = zarr.open_group(str(tmp_path / "k.zarr"), mode="r")
    for name in ("nngp", "ntk"):
        np.testing.assert_allclose(group[name][:], want[name], rtol=1e-12, err_msg=name)
    assert group.attrs["tile"] == [plan.b1, plan.b2] == [3, 3]
