"""The ``updates`` estimator: how far training has moved the network (coord-check statistics).

State (explicit, never modified in place): the probe batch (min(64, n_train) training inputs
drawn from the estimator's own stream), the dense-layer outputs, the readout's input and the
effective readout weight on it at init, and the effective weights and step of the previous
recorded step. Each recorded step reads the float64 copy of the network from the step cache
(`estimators.model64`).

The output change splits exactly into two parts, f(t) - f(0) = W_out(0) (a_L(t) - a_L(0)) +
[(W_out(t) - W_out(0)) a_L(t) + m_b (b(t) - b(0))]: the features moving under the initial
readout (``output_change_feature_rms``) and the readout's own update
(``output_change_readout_rms``); the coord-check derivation predicts one exponent for each.

Under Adam/AdamW the step about to be taken is read from the optimizer's moments and the
step's raw gradient (`adam_direction`), and compared with that gradient.
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
POWER_RTOL = 1e-10  # on ||m^T m v||, i.e. ~5e-11 on the norm
STATISTICS = ("preact_change_rms", "output_change_rms", "output_change_feature_rms",
              "output_change_readout_rms", "update_fro_sq", "update_op_norm", "weight_op_norm",
              "update_alignment", "adam_update_ratio", "adam_sign_agreement",
              "adam_second_moment_median", "adam_second_moment_log_sd")
ADAM_STATISTICS = STATISTICS[-4:]


@dataclass(frozen=True)
class UpdateState:
    probe: torch.Tensor                  # (P, input_dim), float64
    preacts0: tuple[torch.Tensor, ...]   # z_l(0) on the probe, float64
    features0: torch.Tensor              # a_L(0), the readout's input on the probe, (P, n_L)
    readout0: torch.Tensor               # effective readout weight at init, (out, n_L)
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
    preacts0, inputs0 = _preacts(model, probe)
    readout0 = model.effective_weight(model.arch.n_layers).detach().clone()
    return UpdateState(probe=probe, preacts0=preacts0, features0=inputs0[-1],
                       readout0=readout0, weights=(), step=-1)


def op_norm(m: torch.Tensor, rng: np.random.Generator, rounds: int = POWER_ROUNDS,
            rtol: float = POWER_RTOL) -> float:
    """||m||_op by power iteration on m^T m from a Gaussian start (a lower bound): at most
    ``rounds`` rounds, fewer once the estimate grows by less than ``rtol`` (relative) in a
    round (a low-rank update converges in a few)."""
    if not torch.any(m):
        return 0.0
    v = torch.as_tensor(rng.standard_normal(m.shape[1]), dtype=m.dtype, device=m.device)
    v = v / v.norm()
    estimate = 0.0
    for _ in range(rounds):
        w = m.T @ (m @ v)
        norm = float(w.norm())
        if norm == 0:
            return 0.0
        v = w / norm
        if abs(norm - estimate) <= rtol * norm:
            break
        estimate = norm
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
    feature = (inputs[-1] - state.features0) @ state.readout0.T
    readout = (preacts[-1] - state.preacts0[-1]) - feature
    values = {
        "preact_change_rms": np.array(change), "output_change_rms": np.asarray(change[-1]),
        "output_change_feature_rms": np.asarray(_rms(feature)),
        "output_change_readout_rms": np.asarray(_rms(readout)),
        "update_fro_sq": np.array(fro), "update_op_norm": np.array(upd_op),
        "weight_op_norm": np.array(w_op), "update_alignment": np.array(align),
        **adam_values(snap),
    }
    new = UpdateState(state.probe, state.preacts0, state.features0, state.readout0, weights,
                      snap.step)
    return new, values


def _rms(t: torch.Tensor) -> float:
    return float((t ** 2).mean().sqrt())


def adam_direction(optimizer: torch.optim.Optimizer, param: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(u, v_hat) of the Adam/AdamW step about to be taken on ``param`` from its ``.grad``:
    the update is param -= lr u (after AdamW's decoupled decay), float64, param's shape.
    torch.optim.Adam's algorithm (no amsgrad): g (+ wd param for Adam), m and v advanced by
    one step, bias-corrected, u = m_hat / (sqrt(v_hat) + eps). None for other optimizers."""
    if not isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return None
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    beta1, beta2 = group["betas"]
    g = param.grad.detach().double()
    decoupled = group.get("decoupled_weight_decay", isinstance(optimizer, torch.optim.AdamW))
    if group["weight_decay"] and not decoupled:
        g = g + group["weight_decay"] * param.detach().double()
    state = optimizer.state.get(param, {})
    if "exp_avg" in state:
        m, v, t = state["exp_avg"].double(), state["exp_avg_sq"].double(), int(state["step"])
    else:
        m, v, t = torch.zeros_like(g), torch.zeros_like(g), 0
    t += 1
    m_hat = (beta1 * m + (1 - beta1) * g).div_(1 - beta1 ** t)
    v_hat = (beta2 * v).addcmul_(g, g, value=1 - beta2).div_(1 - beta2 ** t)
    return m_hat.div_(v_hat.sqrt().add_(group["eps"])), v_hat


def adam_values(snap: StepSnapshot) -> dict[str, np.ndarray]:
    """Per layer, the Adam step about to be taken vs the raw minibatch gradient of the weight:
    ||u||_F / ||g||_F, the fraction of entries (g != 0) where sign u = sign g, and the median and
    the standard deviation of ln sqrt(v_hat) over entries (sqrt(v_hat) divides the step: its
    spread is how far Adam is from a rescaled SGD). NaN unless the optimizer is Adam/AdamW."""
    n = snap.model.arch.n_layers
    out = {name: np.full(n, math.nan) for name in ADAM_STATISTICS}
    if snap.optimizer is None:
        return out
    for l, weight in enumerate(snap.model.weights):
        found = adam_direction(snap.optimizer, weight)
        if found is None:
            return out
        u, v_hat = found
        g = weight.grad.detach().double()
        nonzero = g != 0
        count = int(nonzero.sum())
        g_norm = float(g.norm())
        out["adam_update_ratio"][l] = float(u.norm()) / g_norm if g_norm > 0 else math.nan
        if count:
            agree = (torch.sign(u) == torch.sign(g)) & nonzero
            out["adam_sign_agreement"][l] = float(agree.sum()) / count
        scale = v_hat.sqrt_()
        out["adam_second_moment_median"][l] = float(np.median(scale.cpu().numpy()))
        positive = scale > 0
        k = int(positive.sum())
        if k > 1:  # std over the positive entries, without copying them out
            logs = torch.where(positive, scale, 1.0).log_()
            mean = float(logs.sum()) / k
            sq = float(torch.where(positive, logs - mean, 0.0).square_().sum())
            out["adam_second_moment_log_sd"][l] = math.sqrt(sq / (k - 1))
    return out


register_estimator(Estimator(NAME, STATISTICS, init, update))
