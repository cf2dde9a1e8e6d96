"""Quality flag of a recorded step: how much float32 underflow changed each layer's values.

In a float32 run, pre-activations, backward signals or gradients smaller than the smallest
normal float32 (1.2e-38; e.g. sigma_w2 = 0.02 at depth ~40) become subnormal (fewer
significant bits) or flush to 0, and the recorded statistics can be wrong by up to 100%
with nothing else to show for it. `precision_loss` measures that error: when any value of
the step is subnormal or any layer's gradient is exactly 0 (the signs of underflow), the
minibatch forward/backward is recomputed on a float64 copy of the network (the same
weights exactly), and for each layer l

    precision_loss_l = max(rel(h_l), rel(delta_l), rel(dL/dW_l), rel(dL/db_l)),
    rel(v) = ||v32 - v64|| / ||v64||  (0 when both are 0),

over the pre-activations h_l, the backward signals delta_l = dL/dh_l and the gradients of
layer l's weight and bias; a squared norm such as grad_sq_norm is then off by at most
2 rel + rel^2 (relative). Otherwise no value
underflowed and precision_loss_l = 0 (float32 round-off alone gives rel ~ depth * 6e-8,
i.e. < 1e-4 below ~1000 layers: values above `PRECISION_LOSS_THRESHOLD` mean the layer lost
precision). A float64 run has no wider reference: its flag is NaN when a value is subnormal
(float64 underflows below 2.2e-308), else 0. A non-finite step gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from gradstats.simulate.estimators import RunContext, StepSnapshot, model64

PRECISION_LOSS_THRESHOLD = 1e-4


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every entry of every tensor is finite: its largest and smallest entries are
    (amax/amin propagate NaN; +inf is a largest, -inf a smallest entry), exactly the answer
    of ``isfinite(t).all()`` per tensor, one synchronization for all, at a fraction of its
    cost (width 512, depth 6: about 11x cheaper, `benchmarks/RESULTS_step_overhead.md`)."""
    if not tensors:
        return True
    ends = [t.amax() for t in tensors] + [t.amin() for t in tensors]
    return bool(torch.isfinite(torch.stack(ends)).all())


def _has_subnormal(t: torch.Tensor) -> bool:
    tiny = torch.finfo(t.dtype).tiny
    return bool(((t != 0) & (t.abs() < tiny)).any())


def has_subnormal(snap: StepSnapshot) -> bool:
    """Whether any input, pre-activation, backward signal or gradient of the step is subnormal."""
    tensors = [*snap.forward.inputs, *[h.detach() for h in snap.forward.preacts],
               *[h.grad for h in snap.forward.preacts if h.grad is not None],
               *snap.weight_grads, *(snap.bias_grads or [])]
    return any(_has_subnormal(t) for t in tensors)


def has_zero_layer_gradient(snap: StepSnapshot) -> bool:
    """Whether some layer's weight gradient is exactly 0 (flushed to 0, or structurally 0)."""
    return any(not bool(g.any()) for g in snap.weight_grads)


def _rel(v32: torch.Tensor, v64: torch.Tensor) -> float:
    ref = float(torch.linalg.vector_norm(v64))
    diff = float(torch.linalg.vector_norm(v32.to(torch.float64) - v64))
    if ref == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / ref


def precision_loss(snap: StepSnapshot, ctx: RunContext) -> np.ndarray:
    """(L,) relative change of each layer's values recomputed in float64 (module docstring)."""
    model = snap.model
    n = model.arch.n_layers
    grads32 = [*snap.weight_grads, *(snap.bias_grads or [])]
    if not all_finite(grads32):
        return np.full(n, np.nan)
    subnormal = has_subnormal(snap)
    if snap.weight_grads[0].dtype == torch.float64:
        return np.full(n, np.nan) if subnormal else np.zeros(n)
    if not (subnormal or has_zero_layer_gradient(snap)):
        return np.zeros(n)
    net64 = model64(snap)  # the step's shared float64 copy
    y = snap.y.to(torch.float64) if snap.y.is_floating_point() else snap.y
    with torch.enable_grad():
        fwd = net64.forward_all(snap.x.to(torch.float64))
        loss = ctx.loss_fn(fwd.output, y).mean()
        params = list(net64.weights) + (list(net64.biases) if net64.biases is not None else [])
        grads = torch.autograd.grad(loss, params + fwd.preacts)
    grads64, deltas64 = grads[:len(params)], grads[len(params):]
    out = np.zeros(n)
    for l in range(n):
        h32 = snap.forward.preacts[l]
        parts = [_rel(h32.detach(), fwd.preacts[l].detach()), _rel(grads32[l], grads64[l])]
        if snap.bias_grads is not None:
            parts.append(_rel(grads32[n + l], grads64[n + l]))
        if h32.grad is not None:
            parts.append(_rel(h32.grad, deltas64[l]))
        out[l] = max(parts)
    return out
