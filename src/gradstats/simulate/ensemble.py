"""Seeds of one configuration trained as one batched network: an execution strategy.

`simulate_ensemble(points)` returns, for E points that differ only in their seed (and in
sigma_w^2, sigma_b^2: values that scale the multipliers and the draws; and in lr,
`optimizers.MemberSGD` / `optimizers.MemberAdam`), the same
`PointRecord` s as ``[simulate_point(p) for p in points]`` -- same seeds, same data, same
minibatches, the same numbers up to the summation order of batched matmuls -- in one
training loop over an `EnsembleNetwork` (parameters stacked on a leading member axis): one
forward, one backward and one optimizer step per training step for all members.

Batched over the members: the training step (SGD, momentum, Adam, AdamW: all elementwise in
the parameters, so one optimizer over stacked parameters updates each member as its own
would; members' lrs as an (E,) tensor), the divergence check, the spine statistics,
the theory inputs (step-0 capture, the empirical NTK at init on the probe / training set)
and the ``ntk`` estimator (per-example engine over the member axis, `ensemble_model`).

Batched in part: the per-example Grams of the minibatch (``per_example``'s input, shared with
``directions``) are formed for all members from the batched pass and handed to each member's
step cache; ``per_example``'s noise statistics are then reduced member by member.

One member at a time, inside the ensemble run: every other estimator (``full_batch``,
``distribution``, ``directions``) at a recorded step, on that member's own snapshot (its
network, minibatch forward and backward recomputed unbatched), and the float64
recomputation of ``precision_loss`` where a float32 step underflowed.

Not ensembled at all (`ensemble_refusal` says why; the caller runs them one by one): batch
normalization, ``measure`` naming ``updates`` (it reads the optimizer's per-parameter state
of one network), a single point.

Ensemble size (`ensemble_size`): as many members as fit in `MEMORY_FRACTION` of the memory
available now (free RAM on CPU, free GPU memory on CUDA) at `member_bytes` each, at most
`MAX_MEMBERS`; on a CPU only for networks small enough that per-step Python overhead, which
the ensemble shares, is a sizeable part of a step (`worth_batching`), else 1.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from gradstats import statistics
from gradstats.simulate import ensemble_model as em
from gradstats.simulate.data import load_data
from gradstats.simulate.ensemble_key import ensemble_key
from gradstats.simulate.estimators import RunContext, StepSnapshot, make_estimator
from gradstats.simulate.model import build_model, resolve_device
from gradstats.simulate.optimizers import member_optimizer
from gradstats.simulate.precision import precision_loss
from gradstats.simulate.theory_inputs import PROBE_SIZE, TheoryInputs, keeps_train_ntk
from gradstats.simulate.training import (
    ACTIVE_THRESHOLD,
    FULL_BATCH_CHUNK,
    PointRecord,
    _BatchSampler,
    _pad_steps,
    derive_seeds,
    make_optimizer,
    per_example_loss_fn,
)
from gradstats.spec import Point

MEMORY_FRACTION = 0.25
MAX_MEMBERS = 256
FALLBACK_AVAILABLE_BYTES = 4 * 2**30
CPU_FLOPS = 2e10
STEP_OVERHEAD_SECONDS_PER_LAYER = 1e-4
CPU_MAX_COMPUTE_RATIO = 8.0
NOT_ENSEMBLED = {"updates": "it reads one network's optimizer state per parameter"}
BATCHED_ESTIMATORS = ("ntk",)
# estimators that need nothing of a member's snapshot beyond the step cache's per-example
# Grams (prefilled from the batched pass): no unbatched recomputation for them alone
GRAMS_ONLY_ESTIMATORS = ("per_example",)
USES_EXAMPLE_GRAMS = ("per_example", "directions")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def ensemble_refusal(point: Point, measure: Sequence[str]) -> str | None:
    """Why ``point`` measuring ``measure`` cannot run in an ensemble (None if it can)."""
    reason = em.supports(point.arch)
    if reason is not None:
        return reason
    for name in measure:
        if name in NOT_ENSEMBLED:
            return f"measure {name!r}: {NOT_ENSEMBLED[name]}"
    return None


def member_bytes(point: Point) -> float:
    """Rough bytes one member needs in an ensemble: parameters with their gradients,
    optimizer state and float64 copies; minibatch activations; full-data passes (loss,
    NTK signals); the n x n NTK at init when kept; the data."""
    a, t, d = point.arch, point.training, point.data
    item = 8 if point.dtype == "float64" else 4
    widths = [a.input_dim or d.input_dim] + [a.width] * a.depth + [a.output_dim]
    params = sum(m * n + n for m, n in zip(widths[:-1], widths[1:], strict=True))
    units = sum(widths[1:])
    rows = min(d.n_train, FULL_BATCH_CHUNK)
    ntk_rows = d.n_train if keeps_train_ntk(point) else 64
    train_ntk = d.n_train ** 2 * 8 if keeps_train_ntk(point) else 0
    data = d.n_train * (widths[0] + widths[-1]) * (8 + item) * 2
    return float(params * (4 * item + 16) + t.batch_size * units * item * 6
                 + rows * units * item * 3 + ntk_rows * units * 8 * 3 * widths[-1]
                 + train_ntk + data)


def available_bytes(device: torch.device) -> float:
    """Memory free now: GPU memory on CUDA; on CPU Linux's MemAvailable (free RAM plus what
    the page cache would give back), else free pages, else `FALLBACK_AVAILABLE_BYTES`."""
    if device.type == "cuda":
        return float(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return float(FALLBACK_AVAILABLE_BYTES)


def memory_members(point: Point, n_seeds: int) -> int:
    """Members that fit: min(n_seeds, `MAX_MEMBERS`, MEMORY_FRACTION * available /
    `member_bytes`), at least 1."""
    fit = math.floor(MEMORY_FRACTION * available_bytes(resolve_device(point.device))
                     / member_bytes(point))
    return max(1, min(n_seeds, MAX_MEMBERS, fit))


def worth_batching(point: Point) -> bool:
    """Whether stacking pays on ``point``'s device. On a GPU always (one kernel instead of E).
    On a CPU the ensemble saves the per-step Python overhead (about
    `STEP_OVERHEAD_SECONDS_PER_LAYER` per layer and step) but not the arithmetic, and its
    larger working set costs cache: it is used while a member's training-step arithmetic
    (6 B P flop at `CPU_FLOPS`) is at most `CPU_MAX_COMPUTE_RATIO` times that overhead
    (relu MLP, depth 4, batch 32: widths up to about 300; measured in
    benchmarks/RESULTS_ensemble.md: 1.5x at width 256, none at 512)."""
    if resolve_device(point.device).type != "cpu":
        return True
    a, d = point.arch, point.data
    widths = [a.input_dim or d.input_dim] + [a.width] * a.depth + [a.output_dim]
    params = sum(m * n + n for m, n in zip(widths[:-1], widths[1:], strict=True))
    compute = 6 * point.training.batch_size * params / CPU_FLOPS
    return compute <= CPU_MAX_COMPUTE_RATIO * STEP_OVERHEAD_SECONDS_PER_LAYER * a.n_layers


def ensemble_size(point: Point, n_seeds: int) -> int:
    """Members per ensemble for ``n_seeds`` seeds of ``point``'s configuration: 1 (one by
    one) where stacking does not pay (`worth_batching`), else what fits in memory
    (`memory_members`)."""
    return memory_members(point, n_seeds) if worth_batching(point) else 1


class _Member:
    """One member's bookkeeping: its context, estimators' states, what it recorded."""

    def __init__(self, point: Point, ctx: RunContext, seeds, inputs: TheoryInputs) -> None:
        self.point, self.ctx, self.inputs = point, ctx, inputs
        self.batches = _BatchSampler(len(ctx.x_train), point.training.batch_size, seeds.batches)
        self.recorded: dict[str, list[np.ndarray]] = {}
        self.scalars: dict[str, np.ndarray] = {}
        self.states: list = []
        self.diverged_step = -1
        self.alive = True

    def add(self, values: dict[str, np.ndarray]) -> None:
        for name, value in values.items():
            dims = statistics.get(name).dims
            if dims and dims[0] == "step":
                self.recorded.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
            else:
                self.scalars[name] = np.asarray(value, dtype=np.float64)


def _check_same_config(points: Sequence[Point]) -> None:
    keys = {ensemble_key(p) for p in points}
    if len(keys) != 1:
        raise ValueError("simulate_ensemble: the points must differ only in seed, sigma_w2, "
                         "sigma_b2 and lr")
    if len({p.key() for p in points}) != len(points):
        raise ValueError("simulate_ensemble: the points must be distinct")


def simulate_ensemble(points: Sequence[Point], measure: Sequence[str] | None = None,
                      on_step: Callable[[int], None] | None = None) -> list[PointRecord]:
    """`simulate_point` of every point of ``points`` (seeds of one configuration, or of
    configurations differing only in sigma_w2/sigma_b2 and lr:
    `ensemble_key`), trained as one
    ensemble; records in the order of ``points``. ``measure`` as `simulate_point`
    (default: the points' own). ValueError when the points are not seeds of one
    configuration or cannot be ensembled (`ensemble_refusal`). ``wall_time`` of each record
    is the ensemble's wall time divided by the number of members. A member's numbers do not
    depend on the other members, bit for bit (per-member reductions and powers; a single
    point runs with a spare member: `_needs_spare`)."""
    _check_same_config(points)
    point0 = points[0]
    measure = tuple(point0.measure if measure is None else measure)
    reason = ensemble_refusal(point0, measure)
    if reason is not None:
        raise ValueError(f"simulate_ensemble: {reason}")
    if point0.training.steps > 0 and "ntk" not in measure:
        measure = (*measure, "ntk")
    started = time.perf_counter()
    device = resolve_device(point0.device)
    dtype = torch.float64 if point0.dtype == "float64" else torch.float32
    training = point0.training
    loss_fn = per_example_loss_fn(training.loss)
    y_dtype = torch.int64 if training.loss == "cross_entropy" else dtype
    asked = len(points)
    points = list(points)
    if _needs_spare(point0, asked):
        points.append(points[-1])
    members, nets = [], []
    for point in points:
        seeds = derive_seeds(point)
        dataset = load_data(point.data, training.loss, seeds.data)
        x_train = torch.as_tensor(dataset.x, dtype=dtype, device=device)
        y_train = torch.as_tensor(dataset.y, dtype=y_dtype, device=device)
        net = build_model(point.arch, seeds.init, dtype=dtype, device=device)
        ctx = RunContext(point=point, model=net, device=device, dtype=dtype, x_train=x_train,
                         y_train=y_train, loss_fn=loss_fn, seed=seeds.estimators)
        inputs = TheoryInputs(x_train=_np(ctx.x_train), y_train=y_train.detach().cpu().numpy(),
                              probe_ntk0=np.zeros((0, 0)))
        if training.loss != "cross_entropy":
            inputs.y_train = inputs.y_train.astype(np.float64)
        members.append(_Member(point, ctx, seeds, inputs))
        nets.append(net)
    model = em.EnsembleNetwork(nets)
    x_all = torch.stack([m.ctx.x_train for m in members])  # (E, n, d)
    y_all = torch.stack([m.ctx.y_train for m in members])
    n_members = len(members)
    member_index = torch.arange(n_members, device=device)[:, None]

    batched = [name for name in measure if name in BATCHED_ESTIMATORS]
    one_by_one = [name for name in measure if name not in BATCHED_ESTIMATORS]
    estimators = [make_estimator(name) for name in one_by_one]
    for m in members:
        m.states = [est.init(m.ctx) for est in estimators]
    _init_inputs(model, members, x_all)
    ntk_probe = x_all[:, :64].to(torch.float64) if "ntk" in batched else None
    ntk_theta0 = em.chunked_ntk(model, ntk_probe) if ntk_probe is not None else None

    optimizer = (member_optimizer(model, [m.point.training for m in members])
                 or make_optimizer(model, training))
    record = set(training.record)
    shares_grams = any(name in USES_EXAMPLE_GRAMS for name in one_by_one)
    light = all(name in GRAMS_ONLY_ESTIMATORS for name in one_by_one)

    for step in range(training.steps + 1):
        index_np = np.stack([m.batches.next() for m in members])  # (E, B)
        is_recorded = step in record
        if not is_recorded and step == training.steps:
            break
        for e, m in enumerate(members):
            if m.alive:
                m.inputs.batches.append(index_np[e])
        index = torch.as_tensor(index_np, device=device)
        xb, yb = x_all[member_index, index], y_all[member_index, index]
        retain = is_recorded or step == 0
        fwd = model.forward_all(xb, retain_preact_grad=retain)
        losses = _member_losses(loss_fn, fwd.output, yb)  # (E,)
        optimizer.zero_grad(set_to_none=False)
        losses.sum().backward()
        finite = _finite_members(losses, model)
        if step == 0:
            _capture_step0(model, members, xb, yb, fwd)
        if is_recorded:
            spine = _spine_values(model, members, fwd, xb, yb, losses, x_all, y_all, loss_fn)
            theta = None
            if ntk_theta0 is not None and any(finite):
                theta = em.chunked_ntk(model, ntk_probe)
                rel = _mean(theta - ntk_theta0, torch.linalg.norm) / \
                    _mean(ntk_theta0, torch.linalg.norm)
                ntk_rel, ntk_trace = _np(rel), _np(_mean(theta, torch.trace))
            grams = (em.minibatch_grams64(model, fwd) if shares_grams and any(finite)
                     else None)
            out = fwd.preacts[-1]
            out_np = _np(out)
            grad_np = _np(out.grad) if out.grad is not None else np.full_like(out_np, np.nan)
            for e, m in enumerate(members):
                if not m.alive:
                    continue
                values = {name: v[e] for name, v in spine.items()}
                values["precision_loss"] = _precision_loss(model, m, e, step, xb, yb, fwd,
                                                          values.pop("_precision"))
                values.update({"batch_index": index_np[e].astype(np.float64),
                               "batch_output": out_np[e], "batch_grad_output": grad_np[e]})
                if finite[e]:
                    if theta is not None:
                        values.update({"ntk_rel_change": ntk_rel[e], "ntk_trace": ntk_trace[e]})
                    if estimators:
                        snap = (_light_snapshot(model, e, step, xb[e], yb[e], fwd, losses)
                                if light else _member_snapshot(model, m, e, step, xb[e], yb[e]))
                        if grams is not None:
                            snap.cache.get("example_grams64", lambda g=grams[e]: g)
                        for i, est in enumerate(estimators):
                            m.states[i], est_values = est.update(m.ctx, m.states[i], snap)
                            values.update(est_values)
                m.add(values)
            if on_step is not None:
                on_step(step)
        for e, m in enumerate(members):
            if m.alive and not finite[e]:
                m.diverged_step, m.alive = step, False
        if not any(m.alive for m in members):
            break
        if step < training.steps:
            optimizer.step()

    wall = (time.perf_counter() - started) / n_members
    members = members[:asked]
    records = []
    steps = np.asarray(list(training.record), dtype=np.int64)
    for m in members:
        out = {name: _pad_steps(rows, len(steps)) for name, rows in m.recorded.items()}
        out.update(m.scalars)
        out["diverged"] = np.asarray(float(m.diverged_step >= 0))
        out["diverged_step"] = np.asarray(float(m.diverged_step))
        out["wall_time"] = np.asarray(wall)
        records.append(PointRecord(point=m.point, steps=steps, values=out, device=str(device),
                                   inputs=m.inputs))
    return records


def _needs_spare(point: Point, n_members: int) -> bool:
    """Whether the ensemble gets a spare last member (a copy of the last, its results
    dropped) so that a member's bits never depend on who else is in its ensemble: a single
    member, because bmm of one (B, n) x (n, 1) product takes another kernel (last bit)."""
    return n_members == 1


def _member_losses(loss_fn, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(E,) each member's mean minibatch loss from output (E, B, K) and targets (E, B, ...)."""
    e, b = output.shape[:2]
    per_example = loss_fn(output.reshape(e * b, -1), y.reshape(e * b, *y.shape[2:]))
    return _mean(per_example.reshape(e, b))


def _finite_members(losses: torch.Tensor, model: em.EnsembleNetwork) -> list[bool]:
    """Per member: loss and every gradient finite (`training._all_finite` of each member).
    A member's largest and smallest entries are finite exactly when all its entries are
    (`precision.all_finite`), far cheaper than a boolean pass over every gradient."""
    grads = [p.grad.flatten(1) for p in model.parameters() if p.grad is not None]
    ends = [g.amax(1) for g in grads] + [g.amin(1) for g in grads]
    return (torch.isfinite(losses) & torch.isfinite(torch.stack(ends, 1)).all(1)).tolist()


def _sq(t: torch.Tensor) -> torch.Tensor:
    """(E,) squared Frobenius norms of each member's slice, in float64."""
    return _mean((t.detach().double() ** 2), torch.sum)


def _mean(t: torch.Tensor, reduce=torch.mean) -> torch.Tensor:
    """(E,) ``reduce`` of each member's slice, one reduction per member: a reduction over
    dim 1 of (E, N) may sum in an order that depends on E, and a member's bits must not
    depend on who else is in its ensemble."""
    return torch.stack([reduce(row) for row in t])


def _mean4(t: torch.Tensor) -> torch.Tensor:
    return torch.mean(t ** 4)


def _spine_values(model: em.EnsembleNetwork, members, fwd, xb, yb, losses, x_all, y_all,
                  loss_fn) -> dict[str, np.ndarray]:
    """`training.spine_values` of every member: each value (E, ...); ``_precision`` holds
    (E, 3) flags (non-finite gradient, subnormal value, zero layer gradient) for
    `_precision_loss`."""
    n = model.arch.n_layers
    batch = xb.shape[1]
    n_members = xb.shape[0]
    with torch.no_grad():
        grads = [w.grad for w in model.weights]
        bias_grads = None if model.biases is None else [b.grad for b in model.biases]
        grad_sq = torch.stack([_sq(g) for g in grads], 1)
        bias_sq = (torch.stack([_sq(g) for g in bias_grads], 1) if bias_grads
                   else torch.full((n_members, n), math.nan, dtype=torch.float64))
        streams = fwd.streams
        forward_q = torch.stack([_mean(h.detach().double() ** 2) for h in streams], 1)
        # pow member by member: a vectorized pow and its scalar tail differ in the last bit
        forward_m4 = torch.stack([_mean(h.detach().double(), _mean4) for h in streams], 1)
        nan = torch.full((n_members,), math.nan, dtype=torch.float64, device=xb.device)
        backward_q = torch.stack([
            _mean((batch * h.grad.double()) ** 2) if h.grad is not None else nan
            for h in streams], 1)
        active = torch.stack([
            _mean((model.dphi(h.detach()).abs() > ACTIVE_THRESHOLD).double())
            for h in fwd.phi_inputs] + [torch.ones_like(nan)], 1)
        weight_sq = torch.stack([_sq(model.effective_weight(l)) for l in range(1, n + 1)], 1)
        out = fwd.output.detach()
        if members[0].point.training.loss == "cross_entropy":
            accuracy = _mean((out.argmax(dim=-1) == yb).double())
        else:
            accuracy = nan
        full_loss = _full_loss(model, x_all, y_all, loss_fn)
        output_mean_sq = _mean(out.double() ** 2)
        precision = _precision_flags(model, fwd, grads, bias_grads)
    values = {
        "grad_sq_norm": grad_sq, "bias_grad_sq_norm": bias_sq, "forward_q": forward_q,
        "forward_m4": forward_m4, "backward_q": backward_q, "active_fraction": active,
        "weight_sq_norm": weight_sq, "batch_loss": losses.detach().double(),
        "full_loss": full_loss, "accuracy": accuracy, "output_mean_sq": output_mean_sq,
        "_precision": precision,
    }
    return {name: _np(v) for name, v in values.items()}


def _full_loss(model: em.EnsembleNetwork, x_all: torch.Tensor, y_all: torch.Tensor,
               loss_fn) -> torch.Tensor:
    """(E,) mean loss of each member over its whole training set, chunked as unbatched."""
    n = x_all.shape[1]
    item = x_all.element_size()
    slices = em.member_slices(model.n_members, em.pass_bytes(  # / 2: no autograd, no Gram
        model.arch, min(n, FULL_BATCH_CHUNK), item) / 2, device=x_all.device)
    totals = []
    for members in slices:  # chunks of members, so each pass stays in cache
        sub = model.subset(members)
        total = torch.zeros(sub.n_members, dtype=torch.float64, device=x_all.device)
        for start in range(0, n, FULL_BATCH_CHUNK):
            xs = x_all[members, start:start + FULL_BATCH_CHUNK]
            ys = y_all[members, start:start + FULL_BATCH_CHUNK]
            e, b = xs.shape[:2]
            out = sub(xs)
            losses = loss_fn(out.reshape(e * b, -1), ys.reshape(e * b, *ys.shape[2:]))
            # one reduction per member: its bits do not depend on who else is in the ensemble
            total = total + torch.stack([row.sum() for row in losses.double().reshape(e, b)])
        totals.append(total)
    return torch.cat(totals) / n


def _subnormal(t: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(t.dtype).tiny
    return ((t != 0) & (t.abs() < tiny)).flatten(1).any(1)


def _precision_flags(model, fwd, grads, bias_grads) -> torch.Tensor:
    """(E, 3) booleans per member: some gradient non-finite, some value subnormal, some
    layer's weight gradient exactly 0 (`gradstats.simulate.precision`'s tests)."""
    all_grads = [*grads, *(bias_grads or [])]
    nonfinite = ~torch.stack([torch.isfinite(g).flatten(1).all(1) for g in all_grads]).all(0)
    tensors = [*fwd.inputs, *[h.detach() for h in fwd.preacts],
               *[h.grad for h in fwd.preacts if h.grad is not None], *all_grads]
    subnormal = torch.stack([_subnormal(t) for t in tensors]).any(0)
    zero = torch.stack([~g.flatten(1).any(1) for g in grads]).any(0)
    return torch.stack([nonfinite, subnormal, zero], 1)


def _precision_loss(model, m: _Member, e: int, step: int, xb, yb, fwd, flags: np.ndarray
                    ) -> np.ndarray:
    """`precision.precision_loss` of member ``e``: decided from the batched flags; the float64
    recomputation (a float32 step that underflowed) runs on the member's own snapshot."""
    n = model.arch.n_layers
    nonfinite, subnormal, zero = (bool(f) for f in flags)
    if nonfinite:
        return np.full(n, np.nan)
    if model.weights[0].dtype == torch.float64:
        return np.full(n, np.nan) if subnormal else np.zeros(n)
    if not (subnormal or zero):
        return np.zeros(n)
    return precision_loss(_member_snapshot(model, m, e, step, xb[e], yb[e]), m.ctx)


def _member_snapshot(model: em.EnsembleNetwork, m: _Member, e: int, step: int,
                     x: torch.Tensor, y: torch.Tensor) -> StepSnapshot:
    """Member ``e``'s unbatched snapshot of this step: its network now, and the minibatch
    forward and backward recomputed on it exactly as `simulate_point` runs them."""
    net = model.member(e)
    fwd = net.forward_all(x, retain_preact_grad=True)
    loss = m.ctx.loss_fn(fwd.output, y).mean()
    loss.backward()
    return StepSnapshot(step=step, model=net, x=x, y=y, forward=fwd, loss=loss.detach(),
                        weight_grads=[w.grad for w in net.weights],
                        bias_grads=None if net.biases is None else [b.grad for b in net.biases],
                        optimizer=None)


def _light_snapshot(model: em.EnsembleNetwork, e: int, step: int, x: torch.Tensor,
                    y: torch.Tensor, fwd, losses: torch.Tensor) -> StepSnapshot:
    """Member ``e``'s snapshot as slices of the batched pass, for estimators that read only
    the step cache (`GRAMS_ONLY_ESTIMATORS`): no gradients retained on its tensors."""
    from gradstats.simulate.model import Forward

    member_fwd = Forward(inputs=[a[e] for a in fwd.inputs],
                         preacts=[h.detach()[e] for h in fwd.preacts],
                         output=fwd.output.detach()[e])
    return StepSnapshot(step=step, model=model.member(e), x=x, y=y, forward=member_fwd,
                        loss=losses.detach()[e],
                        weight_grads=[w.grad[e] for w in model.weights],
                        bias_grads=None if model.biases is None else
                        [b.grad[e] for b in model.biases], optimizer=None)


def _capture_step0(model: em.EnsembleNetwork, members, xb, yb, fwd) -> None:
    """`theory_inputs.capture_step0` of every member from the batched step-0 pass."""
    out = fwd.preacts[-1]
    x_np, out_np = _np(xb), _np(out)
    grad_np = _np(out.grad) if out.grad is not None else None
    weights = [_np(model.effective_weight(l)) for l in range(1, model.arch.n_layers + 1)]
    preacts = [_np(h) for h in fwd.preacts]
    y_np = yb.detach().cpu().numpy()
    for e, m in enumerate(members):
        w_mult = np.asarray(model.member_w_mult[e], dtype=np.float64)
        m.inputs.x0, m.inputs.y0, m.inputs.output0 = x_np[e], y_np[e], out_np[e]
        m.inputs.grad_output0 = None if grad_np is None else grad_np[e]
        m.inputs.weights0 = [w[e] for w in weights]
        m.inputs.preacts0 = [h[e] for h in preacts]
        m.inputs.w_mult = w_mult


def _init_inputs(model: em.EnsembleNetwork, members, x_all: torch.Tensor) -> None:
    """`theory_inputs.init_inputs` of every member: the NTK at init (classes mean) on the
    probe, or on the whole training set with its outputs when the lazy theory needs it."""
    point = members[0].point
    lazy = keeps_train_ntk(point)
    x64 = x_all.to(torch.float64)
    if lazy:
        theta = _np(em.chunked_ntk(model, x64, classes="mean"))
        rows = min(x64.shape[1], FULL_BATCH_CHUNK)
        with torch.no_grad():
            output0 = _np(torch.cat([model.subset(s, torch.float64)(x64[s]) for s in
                                     em.member_slices(model.n_members,
                                                      em.pass_bytes(model.arch, rows),
                                                      device=x64.device)]))
        for e, m in enumerate(members):
            m.inputs.train_ntk0 = theta[e]
            m.inputs.probe_ntk0 = theta[e][:PROBE_SIZE, :PROBE_SIZE]
            m.inputs.train_output0 = output0[e]
    else:
        theta = _np(em.chunked_ntk(model, x64[:, :PROBE_SIZE], classes="mean"))
        for e, m in enumerate(members):
            m.inputs.probe_ntk0 = theta[e]
