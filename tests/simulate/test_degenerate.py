"""Degenerate inputs: NaN where a statistic is undefined, exact 0 where round-off gave -1e-16.

Each case runs through `simulate_point` in float32 and, as the reference, in float64: the
undefined statistics are NaN in both (so NaN is the definition, not lost precision), the
statistics that are exactly 0 are 0 in both, and every statistic of the noise, direction and
NTK estimators is NaN in the float32 run exactly where it is NaN in the float64 run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gradstats.simulate.estimators import make_estimator
from gradstats.simulate.training import SPINE_STATISTICS, simulate_point
from gradstats.spec import Architecture, Data, Point, Training

D_IN = 8
MEASURE = ("per_example", "directions", "ntk", "distribution")
NOISE_TRACES = ("grad_noise_trace", "layer_grad_noise_trace", "full_noise_trace_unbiased",
                "layer_full_noise_trace_unbiased")
MINIBATCH_NOISE = (*NOISE_TRACES, "noise_eigenvalues", "grad_noise_scale",
                   "layer_grad_noise_scale", "full_grad_sq_norm_unbiased",
                   "layer_full_grad_sq_norm_unbiased")
EXAMPLE_DIRECTIONS = tuple(f"example_dir_{f}" for f in (
    "r_bar", "kappa", "kappa_banerjee", "r_bar_uniform", "kappa_uniform")) + ("example_norm_cv",)
NOISE_SAMPLE = ("noise_kurtosis", "noise_skewness", "noise_zero_fraction", "noise_normality_p",
                "noise_stable_alpha", "noise_powerlaw_alpha", "noise_powerlaw_p")
ZERO_GRADIENT_RATIOS = ("grad_noise_scale", "layer_grad_noise_scale", "example_dir_r_bar",
                        "example_dir_kappa", "example_dir_kappa_banerjee", "example_norm_cv",
                        "minibatch_dir_r_bar", "minibatch_dir_kappa",
                        "minibatch_dir_kappa_banerjee", "minibatch_norm_cv",
                        "gradient_stochasticity", "ntk_rel_change", "dimwise_stable_alpha",
                        "dimwise_kurtosis", "noise_spectrum_exponent")


def _npz(tmp_path, name: str, x: np.ndarray, y: np.ndarray) -> str:
    path = tmp_path / f"{name}.npz"
    np.savez(path, x=x, y=y)
    return f"npz:{path}"


def degenerate_point(case: str, tmp_path) -> Point:
    rng = np.random.default_rng(0)
    arch = Architecture(width=16, depth=2, activation="tanh", sigma_b2=0.1, input_dim=D_IN)
    data, batch = Data(input_dim=D_IN, n_train=32), 8
    if case == "batch_size_1":
        batch = 1
    elif case == "identical_examples":
        x, y = np.repeat(rng.normal(size=(1, D_IN)), 32, 0), np.ones((32, 1))
        data = Data(name=_npz(tmp_path, case, x, y), input_dim=D_IN, n_train=32)
    elif case == "one_example_resampled":  # batch 8 > n_train 1: drawn with replacement
        data = Data(input_dim=D_IN, n_train=1)
    elif case == "zero_inputs_no_bias":
        arch = dataclasses.replace(arch, bias=False)
        x, y = np.zeros((32, D_IN)), rng.normal(size=(32, 1))
        data = Data(name=_npz(tmp_path, case, x, y), input_dim=D_IN, n_train=32)
    return Point(arch=arch, data=data, measure=MEASURE,
                 training=Training(batch_size=batch, steps=1, record=(0, 1)))


UNDEFINED = {
    "batch_size_1": MINIBATCH_NOISE + EXAMPLE_DIRECTIONS,
    "identical_examples": NOISE_SAMPLE + ("noise_spectrum_exponent",),
    "one_example_resampled": NOISE_SAMPLE + ("noise_spectrum_exponent",),
    "zero_inputs_no_bias": ZERO_GRADIENT_RATIOS + NOISE_SAMPLE,
}
EXACT_ZERO = {
    "identical_examples": NOISE_TRACES + ("noise_eigenvalues", "gradient_stochasticity"),
    "one_example_resampled": NOISE_TRACES + ("noise_eigenvalues", "gradient_stochasticity"),
    "zero_inputs_no_bias": (*NOISE_TRACES, "noise_eigenvalues", "grad_sq_norm",
                            "full_grad_sq_norm_unbiased", "ntk_trace"),
}
COMPARED = set(SPINE_STATISTICS) | {s for m in ("per_example", "directions", "ntk")
                                    for s in make_estimator(m).statistics}


@pytest.mark.parametrize("case", list(UNDEFINED))
def test_degenerate_inputs_give_nan_or_exact_zero_as_in_float64(case, tmp_path):
    point = degenerate_point(case, tmp_path)
    runs = {dtype: simulate_point(dataclasses.replace(point, dtype=dtype)).values
            for dtype in ("float32", "float64")}
    for dtype, values in runs.items():
        assert values["diverged"] == 0
        for name in UNDEFINED[case]:
            assert np.all(np.isnan(values[name])), (dtype, name, values[name])
        for name in EXACT_ZERO.get(case, ()):
            assert np.all(values[name] == 0.0), (dtype, name, values[name])
        assert np.all(values["precision_loss"] < 1e-4)
    for name in COMPARED:
        np.testing.assert_array_equal(np.isnan(runs["float32"][name]),
                                      np.isnan(runs["float64"][name]), err_msg=name)
