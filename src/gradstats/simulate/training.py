"""Train the network of one point (SGD, momentum, Adam, AdamW) and record statistics at the scheduled steps.

`simulate_point(point, measure)` is the simulator's one entry: it returns a `PointRecord`
of plain numpy arrays keyed by registry name; `gradstats.results` turns it into a dataset.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from gradstats import statistics
from gradstats.simulate.data import load_data
from gradstats.simulate.estimators import RunContext, StepSnapshot, make_estimator
from gradstats.simulate.model import MLP, build_model, resolve_device
from gradstats.simulate.optimizers import SGD
from gradstats.simulate.precision import all_finite, precision_loss
from gradstats.simulate.theory_inputs import TheoryInputs, capture_step0, init_inputs, step_values
from gradstats.spec import Point

SPINE_STATISTICS = (
    "grad_sq_norm", "bias_grad_sq_norm", "forward_q", "forward_m4", "backward_q", "active_fraction",
    "weight_sq_norm", "batch_loss", "full_loss", "accuracy", "output_mean_sq", "precision_loss",
)
ACTIVE_THRESHOLD = 1e-6
FULL_BATCH_CHUNK = 4096


@dataclass
class PointRecord:
    """What one point's run measured.

    steps: the recorded steps, (n_steps,). values[name]: array with the registry dims of
    ``name`` in order (``step`` first when present); ``layer`` has length depth+1.
    ``inputs``: what the worker-side predictions need beyond ``values`` (in memory only).
    """

    point: Point
    steps: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    device: str = "cpu"
    inputs: TheoryInputs | None = None


@dataclass(frozen=True)
class Seeds:
    """Independent seeds of one point, all derived from its content key.

    ``estimators`` is the seed material of every estimator's own streams
    (`gradstats.simulate.estimators.RunContext.stream`).
    """

    init: int
    batches: int
    estimators: int
    data: int


def derive_seeds(point: Point) -> Seeds:
    """Seeds from the point's key (SeedSequence), so a point's numbers never depend on order.

    The data seed depends on the data spec and seed index only, so every architecture of
    a sweep sees the same data at the same seed index.
    """
    children = np.random.SeedSequence(int(point.key(), 16)).generate_state(3, dtype=np.uint64)
    size = "" if point.data.image_size == 8 else f"|image_size={point.data.image_size}"
    data_tag = f"{point.data}{size}|{point.training.loss}|{point.seed}".encode()
    data_entropy = int.from_bytes(hashlib.sha256(data_tag).digest()[:8], "big")
    return Seeds(init=int(children[0] >> 1), batches=int(children[1] >> 1),
                 estimators=int(children[2] >> 1), data=data_entropy)


def per_example_loss_fn(loss: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss_i: mse 0.5 * ||f_i - y_i||^2; cross_entropy CE(f_i, y_i). Returns (batch,)."""
    if loss == "mse":
        return lambda out, y: 0.5 * ((out - y) ** 2).sum(dim=1)
    return lambda out, y: torch.nn.functional.cross_entropy(out, y, reduction="none")


def simulate_point(point: Point, measure: Sequence[str] | None = None,
                   on_step: Callable[[int], None] | None = None) -> PointRecord:
    """Train ``point``'s network and record the spine statistics plus those of ``measure``
    (default: the point's own ``measure``), and the inputs theory needs (`theory_inputs`).

    A trained point (steps > 0) always runs the ``ntk`` estimator too: the lazy-regime
    comparisons are valid only while the measured NTK change is small. Not with batch
    normalization (``norm = "batch"``): its examples are coupled, so it has no per-example
    gradients and no per-example empirical NTK; ``measure`` groups that need them are refused
    (ValueError, `gradstats.simulate.estimator_names.batch_norm_refusal`) and nothing is
    recorded for the NTK (the lazy-regime rows of ``compare`` are outside there).
    """
    from gradstats.simulate.estimator_names import batch_norm_refusal

    measure = tuple(point.measure if measure is None else measure)
    if point.arch.is_cnn:
        from gradstats.simulate.estimator_names import cnn_refusal

        for name in measure:
            reason = cnn_refusal(name)
            if reason is not None:
                raise ValueError(f"measure: {reason}")
    per_example = point.arch.norm != "batch"
    if not per_example:
        for name in measure:
            reason = batch_norm_refusal(name)
            if reason is not None:
                raise ValueError(f"measure: {reason}")
    if point.training.steps > 0 and "ntk" not in measure and per_example:
        measure = (*measure, "ntk")
    started = time.perf_counter()
    device = resolve_device(point.device)
    dtype = torch.float64 if point.dtype == "float64" else torch.float32
    seeds = derive_seeds(point)
    arch, training = point.arch, point.training
    dataset = load_data(point.data, training.loss, seeds.data)
    x_train = torch.as_tensor(dataset.x, dtype=dtype, device=device)
    y_dtype = torch.int64 if training.loss == "cross_entropy" else dtype
    y_train = torch.as_tensor(dataset.y, dtype=y_dtype, device=device)
    model = build_model(arch, seeds.init, dtype=dtype, device=device)
    loss_fn = per_example_loss_fn(training.loss)
    ctx = RunContext(point=point, model=model, device=device, dtype=dtype, x_train=x_train,
                     y_train=y_train, loss_fn=loss_fn, seed=seeds.estimators)
    estimators = [make_estimator(name) for name in measure]
    states = [est.init(ctx) for est in estimators]
    inputs = init_inputs(ctx)
    optimizer = make_optimizer(model, training)
    batches = _BatchSampler(len(x_train), training.batch_size, seeds.batches)

    record_steps = list(training.record)
    recorded: dict[str, list[np.ndarray]] = {}
    scalars: dict[str, np.ndarray] = {}
    diverged_step = -1
    for step in range(training.steps + 1):
        index_np = batches.next()
        index = torch.as_tensor(index_np, device=device)
        xb, yb = x_train[index], y_train[index]
        is_recorded = step in training.record
        if not is_recorded and step == training.steps:
            break
        inputs.batches.append(index_np)
        fwd = model.forward_all(xb, retain_preact_grad=is_recorded or step == 0)
        loss = loss_fn(fwd.output, yb).mean()
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        finite = _all_finite(loss, model)
        if is_recorded or step == 0:
            snap = StepSnapshot(
                step=step, model=model, x=xb, y=yb, forward=fwd, loss=loss.detach(),
                weight_grads=[w.grad for w in model.weights],
                bias_grads=None if model.biases is None else [b.grad for b in model.biases],
                optimizer=optimizer)
        if step == 0:
            capture_step0(inputs, snap, yb)
        if is_recorded:
            values = spine_values(snap, ctx)
            values.update(step_values(snap, index_np))
            # estimators see finite steps only: a diverged step's values are NaN (padding)
            for i, est in enumerate(estimators if finite else []):
                states[i], est_values = est.update(ctx, states[i], snap)
                values.update(est_values)
            for name, value in values.items():
                if statistics.get(name).dims and statistics.get(name).dims[0] == "step":
                    recorded.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
                else:
                    scalars[name] = np.asarray(value, dtype=np.float64)
            if on_step is not None:
                on_step(step)
        if not finite:
            diverged_step = step
            break
        if step < training.steps:
            optimizer.step()

    steps = np.asarray(record_steps, dtype=np.int64)
    out = {name: _pad_steps(rows, len(steps)) for name, rows in recorded.items()}
    out.update(scalars)
    out["diverged"] = np.asarray(float(diverged_step >= 0))
    out["diverged_step"] = np.asarray(float(diverged_step))
    out["wall_time"] = np.asarray(time.perf_counter() - started)
    return PointRecord(point=point, steps=steps, values=out, device=str(device), inputs=inputs)


def param_groups(model: MLP, training) -> list[dict]:
    """One torch param group per weight and per bias: ``lr`` times the row's per-layer scale
    (`gradstats.parameterization.Parameterization.lr_scale` / ``bias_lr_scale``) for the
    training's optimizer family; layers in order, weight before bias."""
    from gradstats import parameterization as pz

    arch = model.arch
    row = pz.get(arch.parameterization)
    groups = []
    for l in range(1, arch.n_layers + 1):
        fan_in, fan_out = arch.fan_in(l), arch.fan_out(l)
        role = pz.role(l, arch.n_layers)
        groups.append({"params": [model.weights[l - 1]], "lr": training.lr * row.lr_scale(
            role, fan_in, fan_out, training.optimizer)})
        if model.biases is not None:
            groups.append({"params": [model.biases[l - 1]], "lr": training.lr * row.bias_lr_scale(
                fan_out, training.optimizer)})
    return groups


def make_optimizer(model: MLP, training) -> SGD | torch.optim.Optimizer:
    """The optimizer of ``training`` over the per-layer param groups: `optimizers.SGD` (torch's
    update bit for bit, without torch.optim's import of torch._dynamo) for sgd and momentum,
    torch's Adam / AdamW."""
    groups = param_groups(model, training)
    wd = training.weight_decay
    if training.optimizer in ("sgd", "momentum"):
        return SGD(groups, momentum=training.momentum, weight_decay=wd)
    cls = torch.optim.Adam if training.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=training.lr, betas=(training.beta1, training.beta2),
               eps=training.eps, weight_decay=wd)


def spine_values(snap: StepSnapshot, ctx: RunContext) -> dict[str, np.ndarray]:
    """The statistics every point records at a recorded step (see `SPINE_STATISTICS`)."""
    model: MLP = snap.model
    batch = snap.x.shape[0]
    n = model.arch.n_layers
    with torch.no_grad():
        grad_sq = [_sq(g) for g in snap.weight_grads]
        bias_sq = [_sq(g) for g in snap.bias_grads] if snap.bias_grads else [math.nan] * n
        streams = snap.forward.streams
        forward_q = [float((h.detach().double() ** 2).mean()) for h in streams]
        forward_m4 = [float((h.detach().double() ** 4).mean()) for h in streams]
        backward_q = [
            float(((batch * h.grad.double()) ** 2).mean()) if h.grad is not None else math.nan
            for h in streams]
        active = [float((model.dphi(h.detach()).abs() > ACTIVE_THRESHOLD).double().mean())
                  for h in snap.forward.phi_inputs] + [1.0]
        weight_sq = [_sq(model.effective_weight(l)) for l in range(1, n + 1)]
        out = snap.forward.output.detach()
        accuracy = math.nan
        if ctx.point.training.loss == "cross_entropy":
            accuracy = float((out.argmax(dim=1) == snap.y).double().mean())
        full_loss = _full_loss(model, ctx)
    return {
        "grad_sq_norm": np.array(grad_sq), "bias_grad_sq_norm": np.array(bias_sq),
        "forward_q": np.array(forward_q), "forward_m4": np.array(forward_m4),
        "backward_q": np.array(backward_q),
        "active_fraction": np.array(active), "weight_sq_norm": np.array(weight_sq),
        "batch_loss": np.asarray(float(snap.loss)), "full_loss": np.asarray(full_loss),
        "accuracy": np.asarray(accuracy),
        "output_mean_sq": np.asarray(float((out.double() ** 2).mean())),
        "precision_loss": precision_loss(snap, ctx),
    }


class _BatchSampler:
    """Minibatch indices: shuffled epochs without replacement, from a seeded generator."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = np.empty(0, dtype=np.int64)

    def next(self) -> np.ndarray:
        """(batch_size,) indices into the training set (with replacement if batch > n)."""
        if self.batch_size > self.n:
            return self.rng.integers(0, self.n, self.batch_size)
        if len(self.order) < self.batch_size:
            self.order = np.concatenate([self.order, self.rng.permutation(self.n)])
        idx, self.order = self.order[: self.batch_size], self.order[self.batch_size:]
        return idx


def _sq(t: torch.Tensor) -> float:
    """Squared Frobenius norm accumulated in float64."""
    return float((t.detach().double() ** 2).sum())


def _full_loss(model: MLP, ctx: RunContext) -> float:
    total = 0.0
    for start in range(0, len(ctx.x_train), FULL_BATCH_CHUNK):
        xs = ctx.x_train[start:start + FULL_BATCH_CHUNK]
        ys = ctx.y_train[start:start + FULL_BATCH_CHUNK]
        total += float(ctx.loss_fn(model(xs), ys).double().sum())
    return total / len(ctx.x_train)


def _all_finite(loss: torch.Tensor, model: MLP) -> bool:
    return all_finite([loss.reshape(()), *(p.grad for p in model.parameters()
                                           if p.grad is not None)])


def _pad_steps(rows: list[np.ndarray], n_steps: int) -> np.ndarray:
    """Stack per-step arrays; steps never reached (after divergence) are NaN."""
    arr = np.stack(rows)
    if len(rows) < n_steps:
        pad = np.full((n_steps - len(rows), *arr.shape[1:]), np.nan)
        arr = np.concatenate([arr, pad])
    return arr
