"""Shared set-up of the comparison tests: simulate points once, attach predictions from any
theory (the package's, or a deliberately wrong one), combine, compare.

Wrong theories are built outside the code under test: the package's own predictions scaled
by a known factor (`ScaledTheory`) or evaluated for another parameterization
(`ParameterizationTheory`), so a test knows the right verdict without trusting the theory.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import xarray as xr

import gradstats.theory as package_theory
from gradstats.predictions import predict_record
from gradstats.results import stats
from gradstats.results.compare import compare
from gradstats.results.io import combine
from gradstats.results.schema import record_to_dataset
from gradstats.simulate.training import PointRecord, simulate_point
from gradstats.spec import Architecture, Data, Point, Training


def make_points(seeds: int, *, width: int, depth: int, activation: str = "relu",
                sigma_w2: float = 2.0, sigma_b2: float = 0.05, parameterization: str = "ntk",
                steps: int = 0, record: tuple[int, ...] = (0,), lr: float = 0.1,
                batch_size: int = 32, n_train: int = 128, input_dim: int = 16,
                teacher: str = "network", bias: bool = True, dtype: str = "float32",
                seed_offset: int = 0, measure: tuple[str, ...] = (), residual: bool = False,
                residual_scale: float | str = 1.0, norm: str = "none") -> list[Point]:
    """``seeds`` points of one configuration (sphere data)."""
    arch = Architecture(width=width, depth=depth, activation=activation, sigma_w2=sigma_w2,
                        sigma_b2=sigma_b2, parameterization=parameterization, bias=bias,
                        input_dim=input_dim, residual=residual, residual_scale=residual_scale,
                        norm=norm)
    training = Training(batch_size=batch_size, lr=lr, steps=steps, record=record)
    data = Data(input_dim=input_dim, n_train=n_train, teacher=teacher)
    return [Point(arch=arch, training=training, data=data, seed=s + seed_offset, dtype=dtype,
                  device="cpu", measure=measure) for s in range(seeds)]


def simulate(points: list[Point]) -> list[PointRecord]:
    return [simulate_point(p) for p in points]


def to_results(records: list[PointRecord], theory=None) -> xr.Dataset:
    """The combined dataset of ``records`` with predictions from ``theory`` (default: the
    package), exactly as a sweep stores them."""
    datasets = []
    for record in records:
        values = {k: v for k, v in record.values.items() if not k.startswith("theory_")}
        copy = dataclasses.replace(record, values=values)
        copy.values.update(predict_record(copy, theory).values)
        datasets.append(record_to_dataset(copy))
    return combine(datasets)


def compared(records: list[PointRecord], theory=None, level: float = 0.01) -> xr.Dataset:
    return compare(to_results(records, theory), level=level)


def verdicts(cmp: xr.Dataset, name: str) -> np.ndarray:
    """The verdict codes of comparison ``name`` over its cells (NaN padding dropped)."""
    codes = cmp[f"{name}_verdict"].values.ravel()
    return codes[np.isfinite(codes)]


def fraction(cmp: xr.Dataset, name: str, code: int) -> float:
    codes = verdicts(cmp, name)
    return float(np.mean(codes == code)) if len(codes) else float("nan")


def count(cmp: xr.Dataset, name: str, code: int) -> int:
    return int((verdicts(cmp, name) == code).sum())


AGREE, DISAGREE, OUTSIDE, UNDETERMINED = (stats.AGREE, stats.DISAGREE, stats.OUTSIDE,
                                          stats.UNDETERMINED)


class ScaledTheory:
    """`gradstats.theory` with every prediction multiplied by ``factor`` (variances by
    factor^2, kernels by factor, the lazy learning rate by factor): wrong by construction."""

    def __init__(self, factor: float, base=package_theory) -> None:
        self.c, self.base = factor, base
        self.activations = base.activations
        self.signal_propagation = base.signal_propagation
        self.bounds = SimpleNamespace(
            product_bound=lambda *a: factor * base.bounds.product_bound(*a),
            relu_masked_bound=lambda *a: factor * base.bounds.relu_masked_bound(*a))
        self.finite_width = SimpleNamespace(  # a variance x c: the law's shape (kurtosis) kept
            ln_grad_sq_norm_variance=lambda arch: factor
            * base.finite_width.ln_grad_sq_norm_variance(arch),
            ln_grad_sq_norm_excess_kurtosis=base.finite_width.ln_grad_sq_norm_excess_kurtosis,
            # the mean log is off by ln(factor) through the scaled null mean it is added to
            ln_grad_sq_norm_mean_shift=base.finite_width.ln_grad_sq_norm_mean_shift,
            grad_sq_norm_mean_factor=base.finite_width.grad_sq_norm_mean_factor,
            preact_excess_kurtosis=lambda arch, **kw: factor
            * base.finite_width.preact_excess_kurtosis(arch, **kw),
            preact_excess_kurtosis_exact=lambda arch: factor
            * base.finite_width.preact_excess_kurtosis_exact(arch),
            preact_moments_influence_sd=base.finite_width.preact_moments_influence_sd)
        self.lazy = SimpleNamespace(
            linearized_sgd=lambda ntk, f0, y, batches, lr, record, **kw:
            base.lazy.linearized_sgd(ntk, f0, y, batches, factor * lr, record, **kw))

    def conditional_statistics(self, arch, x, g, **kw):
        return {k: self.c * np.asarray(v) for k, v in
                self.base.conditional_statistics(arch, x, g, **kw).items()}

    def predict_statistics(self, arch, x, y, **kw):
        return {k: self.c * np.asarray(v) for k, v in
                self.base.predict_statistics(arch, x, y, **kw).items()}

    def unconditional_moments(self, arch, x, y, **kw):
        return {k: (self.c * np.asarray(m), self.c**2 * np.asarray(v)) for k, (m, v) in
                self.base.unconditional_moments(arch, x, y, **kw).items()}

    def nngp(self, arch, x1, x2=None, **kw):
        return self.c * np.asarray(self.base.nngp(arch, x1, x2, **kw))

    def ntk(self, arch, x1, x2=None, **kw):
        return self.c * np.asarray(self.base.ntk(arch, x1, x2, **kw))


class ArchTheory:
    """`gradstats.theory` evaluated for a modified architecture (``change(arch)``): e.g. the
    ntk parameterization on a standard-parameterization run, or a wrong sigma_w2."""

    def __init__(self, change, base=package_theory) -> None:
        self.change, self.base = change, base
        self.activations, self.bounds, self.lazy = base.activations, base.bounds, base.lazy
        self.finite_width = base.finite_width

    def __getattr__(self, name):
        fn = getattr(self.base, name)
        return lambda arch, *a, **kw: fn(self.change(arch), *a, **kw)
