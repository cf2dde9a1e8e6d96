"""What theory needs about a run, captured while it runs, so predictions are conditioned on
the network that was measured and nothing has to be re-simulated.

Two kinds of inputs:

- recorded into the point's dataset at every recorded step (registry ``kind="input"``):
  the minibatch indices, the network outputs on the minibatch and the readout gradient
  dL/df (`step_values`);
- kept in memory for the worker's predictions (`TheoryInputs`): the training set, every
  step's minibatch indices, the step-0 network (effective weights, pre-activations) for the
  product bounds, and the empirical NTK at init on the probe and the training set (for the
  NTK comparison and the lazy-regime prediction of training).

`gradstats.predictions` turns these into predictions; `simulate` never imports `theory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from gradstats.simulate import engine
from gradstats.simulate.estimators import RunContext, StepSnapshot

PROBE_SIZE = 16  # NTK at init vs theory on the first min(16, n_train) training inputs (the
# quadrature kernels of tanh/gelu cost ~n^2: 64 inputs made this 0.7 s a point, 16 make it 0.05)
LAZY_MAX_TRAIN = 2048  # largest training set whose n x n NTK at init is kept for the lazy theory


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


@dataclass
class TheoryInputs:
    """In-memory inputs of the worker-side predictions (float64 numpy arrays).

    x_train: (n, input_dim); y_train: (n, output_dim) float targets (mse) or (n,) int labels;
    batches: (steps_taken, B) minibatch indices, row t the minibatch of step t;
    x0, y0, output0, grad_output0: the step-0 minibatch (B, ...), its outputs f and dL/df;
    weights0: effective weights W_l (fan_out, fan_in); preacts0: h_l (B, n_l); w_mult: (L,);
    probe_ntk0: (P, P) per-output empirical NTK at init on the first P = min(16, n) inputs
    ((0, 0) without per-example gradients: batch normalization);
    train_ntk0, train_output0: (n, n) per-output NTK and (n, output_dim) outputs at init on the
    whole training set (None unless `keeps_train_ntk`).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    probe_ntk0: np.ndarray
    train_ntk0: np.ndarray | None = None
    train_output0: np.ndarray | None = None
    batches: list[np.ndarray] = field(default_factory=list)
    x0: np.ndarray | None = None
    y0: np.ndarray | None = None
    output0: np.ndarray | None = None
    grad_output0: np.ndarray | None = None
    weights0: list[np.ndarray] = field(default_factory=list)
    preacts0: list[np.ndarray] = field(default_factory=list)
    w_mult: np.ndarray | None = None

    @property
    def batch_array(self) -> np.ndarray:
        """(steps_taken, B) int64 minibatch indices."""
        return np.stack(self.batches) if self.batches else np.zeros((0, 0), dtype=np.int64)


def keeps_train_ntk(point) -> bool:
    """Whether `init_inputs` forms the n x n NTK at init of the whole training set: its one
    consumer, the lazy-training prediction, is computed only for trained sgd/momentum points
    of a kernel-row parameterization (`gradstats.predictions`), and n <= `LAZY_MAX_TRAIN`.
    (On the 1797 digits it costs 1.1 s at width 128, 4.4 s at 1024: 70% of an Adam point.)"""
    from gradstats import parameterization as pz

    t = point.training
    return (t.steps > 0 and point.data.n_train <= LAZY_MAX_TRAIN
            and pz.optimizer_family(t.optimizer) == "sgd"
            and pz.get(point.arch.parameterization).kernel_row)


def init_inputs(ctx: RunContext) -> TheoryInputs:
    """The inputs available before the first update: training set and NTKs at init.

    The per-output NTK is ``classes="mean"`` (1/K sum_k Theta_kk), the kernel that multiplies
    each output's residual at infinite width; it is formed on a float64 copy of the network
    (as the `ntk` estimator), so deep or large-sigma_w2 kernels do not overflow float32.
    A network without per-example gradients (batch normalization) has no per-example NTK:
    ``probe_ntk0`` is then empty and ``train_ntk0`` None.
    """
    x_train = ctx.x_train.to(torch.float64)
    lazy = keeps_train_ntk(ctx.point) and len(x_train) <= LAZY_MAX_TRAIN
    inputs = TheoryInputs(x_train=_np(x_train), y_train=ctx.y_train.detach().cpu().numpy(),
                          probe_ntk0=np.zeros((0, 0)))
    if ctx.point.training.loss != "cross_entropy":
        inputs.y_train = inputs.y_train.astype(np.float64)
    if not ctx.model.per_example:
        return inputs
    model = engine.model_as_dtype(ctx.model, torch.float64)
    if lazy:
        theta = _np(engine.empirical_ntk_model(model, x_train, classes="mean"))
        inputs.train_ntk0 = theta
        inputs.probe_ntk0 = theta[:PROBE_SIZE, :PROBE_SIZE]
        with torch.no_grad():
            inputs.train_output0 = _np(model(x_train))
    else:
        probe = x_train[:PROBE_SIZE]
        inputs.probe_ntk0 = _np(engine.empirical_ntk_model(model, probe, classes="mean"))
    return inputs


def step_values(snap: StepSnapshot, index: np.ndarray) -> dict[str, np.ndarray]:
    """Registry ``input`` values of one recorded step: indices (B,), f and dL/df (B, out)."""
    out = snap.forward.preacts[-1]
    grad = out.grad if out.grad is not None else torch.full_like(out, float("nan"))
    return {"batch_index": np.asarray(index, dtype=np.float64),
            "batch_output": _np(out), "batch_grad_output": _np(grad)}


def capture_step0(inputs: TheoryInputs, snap: StepSnapshot, y: torch.Tensor) -> None:
    """Keep the step-0 minibatch, outputs, readout gradient and network (for the bounds)."""
    model = snap.model
    out = snap.forward.preacts[-1]
    inputs.x0 = _np(snap.x)
    inputs.y0 = y.detach().cpu().numpy()
    inputs.output0 = _np(out)
    inputs.grad_output0 = _np(out.grad) if out.grad is not None else None
    inputs.weights0 = [_np(model.effective_weight(l)) for l in range(1, model.arch.n_layers + 1)]
    inputs.preacts0 = [_np(h) for h in snap.forward.preacts]
    inputs.w_mult = np.asarray(model.w_mult, dtype=np.float64)
