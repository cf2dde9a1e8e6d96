"""The ``updates`` estimator: how far training has moved the network (coord-check statistics).

State (explicit, never modified in place): the probe batch (min(64, n_train) training inputs
drawn from the estimator's own stream), the dense-layer outputs and network output on it at
init, and the effective weights and step of the previous recorded step. Each recorded step
reads the float64 copy of the network from the step cache (`estimators.model64`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate.estimators import (
    Estimator,
    RunContext,
    StepSnapshot,
    model64,
    register_estimator,
)

NAME = "updates"
PROBE_SIZE = 64
POWER_ROUNDS = 64
STATISTICS = ("preact_change_rms", "output_change_rms", "update_fro_sq", "update_op_norm",
              "weight_op_norm", "update_alignment")


@dataclass(frozen=True)
class UpdateState:
    probe: torch.Tensor                  # (P, input_dim), float64
    preacts0: tuple[torch.Tensor, ...]   # z_l(0) on the probe, float64
    weights: tuple[torch.Tensor, ...]    # effective weights at the previous recorded step
    step: int                            # that step (-1 before the first)


def probe_indices(ctx: RunContext) -> np.ndarray:
    """The probe batch: min(64, n_train) distinct training rows from the own stream."""
    n = len(ctx.x_train)
    rng = ctx.stream(NAME, "probe")
    return np.sort(rng.choice(n, size=min(PROBE_SIZE, n), replace=False))


def _effective(model) -> tuple[torch.Tensor, ...]:
    return tuple(model.effective_weight(l).detach().clone()
                 for l in range(1, model.arch.n_layers + 1))


def _preacts(model, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        fwd = model.forward_all(x)
    return tuple(z.detach() for z in fwd.preacts), tuple(a.detach() for a in fwd.inputs)


def init(ctx: RunContext) -> UpdateState:
    from gradstats.simulate.engine import model_as_dtype

    model = model_as_dtype(ctx.model, torch.float64)
    probe = ctx.x_train[torch.as_tensor(probe_indices(ctx), device=ctx.x_train.device)]
    probe = probe.to(torch.float64)
    preacts0, _ = _preacts(model, probe)
    return UpdateState(probe=probe, preacts0=preacts0, weights=(), step=-1)


def op_norm(m: torch.Tensor, rng: np.random.Generator, rounds: int = POWER_ROUNDS) -> float:
    """||m||_op by power iteration on m^T m from a Gaussian start (a lower bound)."""
    if not torch.any(m):
        return 0.0
    v = torch.as_tensor(rng.standard_normal(m.shape[1]), dtype=m.dtype, device=m.device)
    v = v / v.norm()
    for _ in range(rounds):
        w = m.T @ (m @ v)
        norm = w.norm()
        if norm == 0:
            return 0.0
        v = w / norm
    return float((m @ v).norm())


def update(ctx: RunContext, state: UpdateState, snap: StepSnapshot):
    model = model64(snap)
    n = model.arch.n_layers
    preacts, inputs = _preacts(model, state.probe)
    change = [float(((z - z0) ** 2).mean().sqrt()) for z, z0 in zip(preacts, state.preacts0,
                                                                     strict=True)]
    weights = _effective(model)
    fro, upd_op, w_op, align = ([math.nan] * n for _ in range(4))
    for l in range(n):
        w_op[l] = op_norm(weights[l], ctx.stream(NAME, "weight", snap.step, l + 1))
        if state.weights:
            dw = weights[l] - state.weights[l]
            fro[l] = float((dw ** 2).sum())
            upd_op[l] = op_norm(dw, ctx.stream(NAME, "update", snap.step, l + 1))
            a = inputs[l]
            denom = upd_op[l] * float(a.norm())
            align[l] = float((a @ dw.T).norm()) / denom if denom > 0 else math.nan
    values = {
        "preact_change_rms": np.array(change), "output_change_rms": np.asarray(change[-1]),
        "update_fro_sq": np.array(fro), "update_op_norm": np.array(upd_op),
        "weight_op_norm": np.array(w_op), "update_alignment": np.array(align),
    }
    return UpdateState(state.probe, state.preacts0, weights, snap.step), values


register_estimator(Estimator(NAME, STATISTICS, init, update))
