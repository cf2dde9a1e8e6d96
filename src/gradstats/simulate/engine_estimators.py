"""Estimators on the per-example engine: ``per_example`` (gradient noise), ``full_batch``
(exact full-training-set noise) and ``ntk`` (drift).

``per_example`` reuses the training step's own forward/backward (the snapshot's
pre-activation gradients times B are the per-example backward signals), so it costs only the
per-layer Gram products; it falls back to one extra forward/backward when those gradients
were not retained. Grams are formed in float64 (centered statistics cancel), once per
step, and shared with ``directions`` through the step cache
(`gradstats.simulate.estimators.example_grams64`). Besides the minibatch (plug-in) noise
statistics it records unbiased estimates of the full-data quantities and the paired
sub-batch curve (`gradstats.simulate.noise`, docs/noise_scale.md).

``full_batch`` computes the same quantities exactly over the whole training set (one
float64 forward/backward over all n_train examples per recorded step): the truths the
minibatch estimates are tested against. ``ntk`` evaluates the kernel on a float64 copy of
the network, so neither overflow nor float32 round-off limits it; ``full_batch``, ``ntk``
and the spine's precision flag share that copy (`gradstats.simulate.estimators.model64`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate import engine, noise
from gradstats.simulate.estimators import (
    Estimator,
    RunContext,
    State,
    StepSnapshot,
    Values,
    example_gram64,
    example_grams64,
    model64,
    register_estimator,
    stateless,
)
from gradstats.simulate.model import MLP

NTK_PROBE_SIZE = 64


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def noise_values(total: torch.Tensor, per_layer: torch.Tensor, n_train: int) -> Values:
    """Noise statistics of a minibatch from its float64 per-example Grams.

    total: (B, B) over all parameters; per_layer: (L, B, B). ``n_train`` is the population
    the minibatch was drawn from. Statistics that need two examples are NaN for B = 1.
    """
    batch = total.shape[-1]
    trace, layer_trace = engine.noise_trace(total), engine.noise_trace(per_layer)
    eigenvalues = engine.noise_covariance_eigenvalues(total)
    if batch == 1:  # the spread of one example is not a noise estimate
        trace, layer_trace = torch.full_like(trace, torch.nan), torch.full_like(layer_trace, torch.nan)
        eigenvalues = torch.full_like(eigenvalues, torch.nan)
    return {
        "grad_noise_trace": _np(trace),
        "noise_eigenvalues": _np(eigenvalues),
        "grad_noise_scale": _np(trace / engine.mean_grad_sq_norm(total)),
        "layer_grad_noise_trace": _np(layer_trace),
        "layer_grad_noise_scale": _np(layer_trace / engine.mean_grad_sq_norm(per_layer)),
        "full_noise_trace_unbiased": _np(noise.unbiased_noise_trace(total, n_train)),
        "full_grad_sq_norm_unbiased": _np(noise.unbiased_grad_sq_norm(total, n_train)),
        "layer_full_noise_trace_unbiased": _np(noise.unbiased_noise_trace(per_layer, n_train)),
        "layer_full_grad_sq_norm_unbiased": _np(noise.unbiased_grad_sq_norm(per_layer, n_train)),
        "subbatch_grad_sq_norm": _np(noise.subbatch_grad_sq_norm(total,
                                                                 noise.subbatch_sizes(batch))),
        "subbatch_size": noise.subbatch_sizes(batch).astype(np.float64),
    }


PER_EXAMPLE_STATISTICS = (
    "per_example_grad_sq_norm", "per_example_bias_grad_sq_norm", "grad_noise_trace",
    "noise_eigenvalues", "grad_noise_scale", "layer_grad_noise_trace",
    "layer_grad_noise_scale", "full_noise_trace_unbiased", "full_grad_sq_norm_unbiased",
    "layer_full_noise_trace_unbiased", "layer_full_grad_sq_norm_unbiased",
    "subbatch_grad_sq_norm", "subbatch_size",
)


def per_example_update(ctx: RunContext, state: State, snap: StepSnapshot) -> tuple[State, Values]:
    """Per-example gradient norms and the minibatch gradient-noise covariance Sigma.

    Sigma = 1/B sum_i (g_i - gbar)(g_i - gbar)^T over all parameters, g_i = grad l_i,
    gbar the minibatch mean gradient (the gradient of L = mean_i l_i). Uses the step's
    shared per-example Grams (`example_grams64`).
    """
    g = example_grams64(ctx, snap)
    weight, bias = g.weight_part(), g.bias_part()
    per_layer, total = example_gram64(ctx, snap)  # (L, B, B), (B, B)
    bias_sq = _np(bias.diagonal(dim1=-2, dim2=-1))
    if g.b_mult2 is None:
        bias_sq = np.full_like(bias_sq, np.nan)
    values = {
        "per_example_grad_sq_norm": _np(weight.diagonal(dim1=-2, dim2=-1)),
        "per_example_bias_grad_sq_norm": bias_sq,
    }
    values.update(noise_values(total, per_layer, len(ctx.x_train)))
    return state, values


def full_batch_update(ctx: RunContext, state: State, snap: StepSnapshot) -> tuple[State, Values]:
    """Exact ||G||^2, tr Sigma_N and tr Sigma_N / ||G||^2 over the whole training set."""
    full = noise.full_data_noise(model64(snap), ctx.x_train, ctx.y_train, ctx.loss_fn)
    return state, {
        "full_grad_sq_norm": np.asarray(full.grad_sq_norm.sum()),
        "full_noise_trace": np.asarray(full.trace),
        "full_noise_scale": np.asarray(full.noise_scale),
        "layer_full_grad_sq_norm": full.grad_sq_norm,
        "layer_full_noise_trace": full.layer_trace,
    }


def ntk_float64(model: MLP, probe: torch.Tensor) -> torch.Tensor:
    """Empirical NTK (traced over outputs) of a float64 copy of ``model`` on ``probe``."""
    return engine.empirical_ntk_model(engine.model_as_dtype(model, torch.float64),
                                      probe.to(torch.float64))


@dataclass(frozen=True)
class NtkState:
    """probe: (n_probe, input_dim) fixed inputs; theta0: (n_probe, n_probe) NTK at init."""

    probe: torch.Tensor
    theta0: torch.Tensor


def ntk_init(ctx: RunContext) -> NtkState:
    """The probe (first min(64, n_train) training inputs) and Theta_0 on it at init."""
    probe = ctx.x_train[:NTK_PROBE_SIZE].to(device=ctx.device, dtype=torch.float64)
    return NtkState(probe=probe, theta0=ntk_float64(ctx.model, probe))


def ntk_update(ctx: RunContext, state: NtkState, snap: StepSnapshot) -> tuple[NtkState, Values]:
    """Drift of the empirical NTK (traced over outputs) on the fixed probe batch, computed on
    the step's float64 copy of the network (same weights)."""
    theta = ntk_float64(model64(snap), state.probe)
    rel = torch.linalg.norm(theta - state.theta0) / torch.linalg.norm(state.theta0)
    return state, {"ntk_rel_change": _np(rel), "ntk_trace": _np(theta.trace())}


PER_EXAMPLE = Estimator("per_example", PER_EXAMPLE_STATISTICS, stateless, per_example_update)
FULL_BATCH = Estimator("full_batch", ("full_grad_sq_norm", "full_noise_trace", "full_noise_scale",
                                      "layer_full_grad_sq_norm", "layer_full_noise_trace"),
                       stateless, full_batch_update)
NTK = Estimator("ntk", ("ntk_rel_change", "ntk_trace"), ntk_init, ntk_update)

for _estimator in (PER_EXAMPLE, FULL_BATCH, NTK):
    register_estimator(_estimator)
