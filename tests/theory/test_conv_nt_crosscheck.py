"""CNN-GP / CNTK against neural-tangents' ``stax`` kernel_fn (run in the nt environment):

    PYTHONPATH=src .venv-nt/bin/python -m pytest -m nt tests/theory

Flatten and GlobalAvgPool readouts, depths 1-8, relu and erf, ntk and standard
parameterization, in float64, 1e-6 relative; the paddings, 1-D / 2-D images and x2 = x1 /
x2 given are cycled over the depths so that every combination of readout, activation and
parameterization meets each padding and both spatial ranks. Images are channel-first here
and NHWC for nt.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

nt = pytest.importorskip("neural_tangents")

from gradstats import Architecture, theory  # noqa: E402

pytestmark = pytest.mark.nt

RNG = np.random.default_rng(0)
IMAGES = {1: (RNG.normal(size=(3, 2, 20)), RNG.normal(size=(2, 2, 20))),
          2: (RNG.normal(size=(3, 2, 10, 9)) * 0.8, RNG.normal(size=(2, 2, 10, 9)) * 0.8)}
PADDINGS = ("SAME", "VALID", "CIRCULAR")


def _stax(arch: Architecture, d: int):
    from neural_tangents import stax

    w = math.sqrt(arch.sigma_w2)
    b = math.sqrt(arch.sigma_b2) if arch.bias else None
    phi = {"relu": stax.Relu, "erf": stax.Erf}[arch.activation]()

    def conv():
        return stax.Conv(arch.width, (arch.kernel_size,) * d, padding=arch.padding, W_std=w,
                         b_std=b, parameterization=arch.parameterization)

    layers = [conv()]
    for _ in range(arch.depth - 1):
        layers += [phi, conv()]
    pool = stax.Flatten() if arch.readout == "flatten" else stax.GlobalAvgPool()
    layers += [phi, pool, stax.Dense(1, W_std=w, b_std=b, parameterization=arch.parameterization)]
    return stax.serial(*layers)[2]


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.mark.parametrize("readout", ["flatten", "gap"])
@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_cnn_kernels_match_neural_tangents(readout, activation, parameterization):
    import jax

    from gradstats.theory._compat import enable_x64

    for depth in range(1, 9):
        d = 1 + depth % 2
        padding = PADDINGS[depth % 3]
        if padding == "VALID" and depth > 3:  # VALID shrinks 10x9 images by 2 per layer
            padding = "CIRCULAR"
        arch = Architecture(width=8, depth=depth, activation=activation, sigma_w2=1.6,
                            sigma_b2=0.1, parameterization=parameterization, architecture="cnn",
                            kernel_size=3, padding=padding, readout=readout,
                            bias=depth != 4)
        x1, x2 = IMAGES[d]
        kernel_fn = _stax(arch, d)
        other = None if depth % 2 else x2  # x2 = x1 and x2 given, alternately
        with enable_x64():
            ref = kernel_fn(np.moveaxis(x1, 1, -1),
                            None if other is None else np.moveaxis(other, 1, -1),
                            ("nngp", "ntk"))
            ref = jax.tree_util.tree_map(np.asarray, (ref.nngp, ref.ntk))
        k, t = theory.nngp_and_ntk(arch, x1, other, x64=True)
        where = (depth, d, padding, other is None)
        assert _rel(k, ref[0]) < 1e-6, where
        assert _rel(t, ref[1]) < 1e-6, where
        if depth == 8:  # the per-layer split (reverse mode) sums to nt's NTK
            out = theory.layer_kernels(arch, x1, other, x64=True)
            split = out["ntk_weight"].sum(axis=0) + out["ntk_bias"].sum(axis=0)
            assert _rel(split, ref[1]) < 1e-6, where


def test_a_wrong_convention_is_caught():
    """The comparison can fail: nt's kernel with the other padding differs by far more than
    the 1e-6 tolerance (so agreement above is not vacuous)."""
    from gradstats.theory._compat import enable_x64

    x1, _ = IMAGES[2]
    arch = Architecture(width=8, depth=3, activation="relu", sigma_w2=1.6, sigma_b2=0.1,
                        architecture="cnn", padding="SAME", readout="gap")
    wrong = Architecture(**{**arch.__dict__, "padding": "CIRCULAR"})
    with enable_x64():
        ref = np.asarray(_stax(wrong, 2)(np.moveaxis(x1, 1, -1), None, "ntk"))
    assert _rel(theory.ntk(arch, x1, x64=True), ref) > 1e-3
