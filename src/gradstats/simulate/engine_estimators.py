"""Estimators on the per-example engine: ``per_example`` (gradient noise) and ``ntk`` (drift).

``per_example`` reuses the training step's own forward/backward (the snapshot's
pre-activation gradients times B are the per-example backward signals), so it costs only the
per-layer Gram products; it falls back to one extra forward/backward when those gradients
were not retained. Grams are formed in float64 (centered statistics cancel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate import engine
from gradstats.simulate.estimators import (
    RunContext,
    State,
    StepSnapshot,
    Values,
    register_estimator,
)

NTK_PROBE_SIZE = 64


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


class PerExampleEstimator:
    """Per-example gradient norms and the minibatch gradient-noise covariance Sigma.

    Sigma = 1/B sum_i (g_i - gbar)(g_i - gbar)^T over all parameters, g_i = grad l_i,
    gbar the minibatch mean gradient (the gradient of L = mean_i l_i).
    """

    name = "per_example"
    statistics = (
        "per_example_grad_sq_norm", "per_example_bias_grad_sq_norm", "grad_noise_trace",
        "noise_eigenvalues", "grad_noise_scale", "layer_grad_noise_trace",
        "layer_grad_noise_scale",
    )

    def init(self, ctx: RunContext) -> State:
        return None

    def update(self, ctx: RunContext, state: State, snap: StepSnapshot) -> tuple[State, Values]:
        batch = snap.x.shape[0]
        sig = engine.signals_from_forward(snap.model, snap.forward, scale=float(batch))
        if sig is None:
            sig = engine.signals(snap.model, snap.x, snap.y, ctx.loss_fn)
        g = engine.grams(sig, dtype=torch.float64)
        weight, bias = g.weight_part(), g.bias_part()
        per_layer = weight + bias  # (L, B, B)
        total = per_layer.sum(0)  # (B, B)
        bias_sq = _np(bias.diagonal(dim1=-2, dim2=-1))
        if g.b_mult2 is None:
            bias_sq = np.full_like(bias_sq, np.nan)
        trace = engine.noise_trace(total)
        layer_trace = engine.noise_trace(per_layer)
        values = {
            "per_example_grad_sq_norm": _np(weight.diagonal(dim1=-2, dim2=-1)),
            "per_example_bias_grad_sq_norm": bias_sq,
            "grad_noise_trace": _np(trace),
            "noise_eigenvalues": _np(engine.noise_covariance_eigenvalues(total)),
            "grad_noise_scale": _np(trace / engine.mean_grad_sq_norm(total)),
            "layer_grad_noise_trace": _np(layer_trace),
            "layer_grad_noise_scale": _np(layer_trace / engine.mean_grad_sq_norm(per_layer)),
        }
        return state, values


@dataclass(frozen=True)
class NtkState:
    """probe: (n_probe, input_dim) fixed inputs; theta0: (n_probe, n_probe) NTK at init."""

    probe: torch.Tensor
    theta0: torch.Tensor


class NtkEstimator:
    """Drift of the empirical NTK (traced over outputs) on a fixed probe batch.

    The probe is the first min(64, n_train) training inputs; Theta_0 is taken in `init`.
    """

    name = "ntk"
    statistics = ("ntk_rel_change", "ntk_trace")

    def init(self, ctx: RunContext) -> State:
        probe = ctx.x_train[:NTK_PROBE_SIZE].to(device=ctx.device, dtype=ctx.dtype)
        theta0 = engine.empirical_ntk_model(ctx.model, probe).to(torch.float64)
        return NtkState(probe=probe, theta0=theta0)

    def update(self, ctx: RunContext, state: State, snap: StepSnapshot) -> tuple[State, Values]:
        theta = engine.empirical_ntk_model(snap.model, state.probe).to(torch.float64)
        rel = torch.linalg.norm(theta - state.theta0) / torch.linalg.norm(state.theta0)
        return state, {"ntk_rel_change": _np(rel), "ntk_trace": _np(theta.trace())}


register_estimator("per_example", PerExampleEstimator)
register_estimator("ntk", NtkEstimator)
