"""Paired batch noise at the ``batch-noise`` preset's settings (relu, width 128, depth 3,
sphere n_train 256, batch sizes 8..128, 4 seeds; here at init, step 0).

E||g_B||^2 = ||G||^2 + c_B tr Sigma_N. Across batch sizes each point is a different network,
so the unpaired slope of ||g_B||^2 vs c_B (OLS over the 20 networks, as `compare`'s
``batch_noise`` does) carries the network-to-network spread of ||G||^2. The paired estimate,
the slope of each network's own sub-batch curve (``full_noise_trace_unbiased``), is tested
against that network's exact ``full_noise_trace`` (``full_batch``). "Resolves" means a
relative standard error below 1/4, i.e. the noise term is detected at 4 SE.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from gradstats.results.batch_noise import paired_difference_test
from gradstats.simulate import noise
from gradstats.simulate.training import simulate_point
from gradstats.spec import Architecture, Data, Point, Training

BATCH_SIZES = (8, 16, 32, 64, 128)
SEEDS = 4
N_TRAIN = 256


def run_preset_at_init() -> dict[str, xr.DataArray]:
    arch = Architecture(width=128, depth=3, activation="relu", input_dim=64)
    names = ("full_noise_trace_unbiased", "full_noise_trace")
    out = {k: np.zeros((len(BATCH_SIZES), SEEDS)) for k in (*names, "minibatch_sq_norm")}
    for i, b in enumerate(BATCH_SIZES):
        for s in range(SEEDS):
            point = Point(arch=arch, data=Data(n_train=N_TRAIN), seed=s,
                          measure=("per_example", "full_batch"),
                          training=Training(batch_size=b, lr=0.05, steps=0, record=(0,)))
            v = simulate_point(point).values
            for k in names:
                out[k][i, s] = v[k][0]
            # the minibatch gradient itself (autograd), weights and biases of every layer
            out["minibatch_sq_norm"][i, s] = (v["grad_sq_norm"][0].sum()
                                              + v["bias_grad_sq_norm"][0].sum())
            # the sub-batch curve (Gram, float64) ends at the minibatch, b = 2^j = B: equal to
            # the autograd gradient up to its float32 round-off
            np.testing.assert_allclose(v["subbatch_grad_sq_norm"][0][-1],
                                       out["minibatch_sq_norm"][i, s], rtol=1e-5)
    coords = {"batch_size": list(BATCH_SIZES)}
    return {k: xr.DataArray(a, dims=("batch_size", "seed"), coords=coords) for k, a in out.items()}


def test_paired_slope_resolves_the_noise_trace_where_the_unpaired_fit_does_not():
    ds = run_preset_at_init()
    trace = ds["full_noise_trace"]
    c = noise.noise_factor(np.asarray(BATCH_SIZES, float), N_TRAIN)
    unpaired = stats.linregress(np.repeat(c, SEEDS), ds["minibatch_sq_norm"].values.ravel())
    unpaired_rel_se = unpaired.stderr / float(trace.mean())
    assert unpaired_rel_se > 0.5  # unresolved
    assert abs(unpaired.slope) < 2 * unpaired.stderr  # not even told from 0 at 2 SE
    paired = paired_difference_test(ds["full_noise_trace_unbiased"], trace,
                                    dim=("batch_size", "seed"))
    assert float(paired["relative_se"]) < 0.25  # resolved
    assert float(paired["p_value"]) > 0.01  # and it is tr Sigma_N
    per_b = paired_difference_test(ds["full_noise_trace_unbiased"], trace)
    assert per_b.sizes["batch_size"] == len(BATCH_SIZES)
    assert np.all(per_b["p_value"].values > 0.01)
