"""Optimizers without torch.optim, and with a learning rate per ensemble member.

`SGD` is torch.optim.SGD's single-tensor update with the options gradstats' ``sgd`` and
``momentum`` use (dampening 0, no nesterov), for param groups with one lr each:

    g = grad (+ weight_decay * p);  buf = g (first step) or momentum * buf + g;
    p = p - lr * buf,

the same tensor operations in the same order as torch (``p.add_(buf, alpha=-lr)``), so the
numbers are torch's bit for bit (tested against torch.optim.SGD). It exists because
constructing any torch.optim optimizer imports ``torch._dynamo`` (1.7-1.9 s of every
fresh process: each ``gradstats run``, each Dask worker; `benchmarks/RESULTS_step_overhead.md`),
more than the simulation of a quickstart point.

`MemberSGD` and `MemberAdam` are the updates of torch.optim.SGD and torch.optim.Adam /
AdamW for an ensemble whose parameters are stacked over members (leading axis E) and whose
members differ in ``lr``: the lr is an (E,) tensor per parameter, and each operation that
reads it is torch's elementwise operation with the member's lr in place of the scalar, in
torch's order (``p.addcmul_(buf, -lr_e)`` for ``p.add_(buf, alpha=-lr)``;
``p.add_(m * (-lr_e / bc1) / denom)`` for ``p.addcdiv_(m, denom, value=-lr / bc1)``;
``p.mul_(1 - lr_e wd)`` for AdamW's decay), so a member's numbers do not depend on the
others (tested: a member of an lr ensemble equals the same point in an ensemble of its own
lr's seeds, which steps with torch's optimizer). Adam with one lr for every member, and the
``updates`` estimator (which reads the moments), keep torch.optim.Adam.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _per_member(p: torch.Tensor, values: Sequence[float], dtype: torch.dtype | None = None
                ) -> torch.Tensor:
    """(E, 1, ...) broadcasting against the stacked parameter ``p``: one value per member, in
    ``dtype`` (default p's: each Python float rounded as torch rounds a scalar operand)."""
    shape = (len(values),) + (1,) * (p.ndim - 1)
    return torch.tensor(values, dtype=dtype or p.dtype, device=p.device).reshape(shape)


class SGD:
    """torch.optim.SGD (dampening 0, no nesterov) over ``groups``, each a dict with
    ``"params"`` (tensors) and ``"lr"`` (float), as `training.param_groups` lists them.
    ``param_groups``, ``zero_grad`` and ``step`` as torch's."""

    def __init__(self, groups: Sequence[dict], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.param_groups = [{"params": list(g["params"]), "lr": float(g["lr"]),
                              "momentum": momentum, "weight_decay": weight_decay}
                             for g in groups]
        self.params = [p for g in self.param_groups for p in g["params"]]
        self.lrs = [g["lr"] for g in self.param_groups for _ in g["params"]]
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = False) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def _direction(self, i: int, p: torch.Tensor) -> torch.Tensor:
        """The step's direction for parameter i: its gradient with weight decay and momentum."""
        g = p.grad
        if self.weight_decay != 0:
            g = g.add(p, alpha=self.weight_decay)
        if self.momentum != 0:
            buf = self.buffers[i]
            if buf is None:
                buf = self.buffers[i] = torch.clone(g).detach()
            else:
                buf.mul_(self.momentum).add_(g)
            g = buf
        return g

    def _apply(self, i: int, p: torch.Tensor, direction: torch.Tensor) -> None:
        p.add_(direction, alpha=-self.lrs[i])

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._apply(i, p, self._direction(i, p))


class MemberSGD(SGD):
    """Per-member-lr SGD over ``params`` of the stacked model (leading axis E): for each, the
    lrs of every member's own param group (E,)."""

    def __init__(self, params: Sequence[torch.Tensor], lrs: Sequence[Sequence[float]],
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__([{"params": list(params), "lr": 0.0}], momentum, weight_decay)
        self.neg_lrs = [-_per_member(p, lr) for p, lr in zip(self.params, lrs, strict=True)]

    def _apply(self, i: int, p: torch.Tensor, direction: torch.Tensor) -> None:
        p.addcmul_(direction, self.neg_lrs[i])


class MemberAdam:
    """torch.optim.Adam (``decoupled=False``: L2 weight decay added to the gradient) or AdamW
    (``decoupled=True``) without amsgrad, over ``params`` of the stacked model, each with the
    lrs of every member's own param group (E,). ``zero_grad`` and ``step`` as torch's."""

    def __init__(self, params: Sequence[torch.Tensor], lrs: Sequence[Sequence[float]],
                 betas: tuple[float, float], eps: float, weight_decay: float = 0.0,
                 decoupled: bool = False) -> None:
        self.params = list(params)
        # float64 lrs: -lr / bias1 is then Python's double quotient, rounded to p's dtype
        self.lrs64 = [_per_member(p, lr, torch.float64) for p, lr in zip(self.params, lrs,
                                                                         strict=True)]
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay, self.decoupled = eps, weight_decay, decoupled
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0  # torch counts in a float32 tensor: exact for any realistic count
        self.decay = [_per_member(p, [1 - v * weight_decay for v in lr])
                      for p, lr in zip(self.params, lrs, strict=True)]

    zero_grad = SGD.zero_grad

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        bias1 = 1 - self.beta1 ** self.steps
        bias2_sqrt = (1 - self.beta2 ** self.steps) ** 0.5
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay != 0:
                if self.decoupled:
                    p.mul_(self.decay[i])
                else:
                    g = g.add(p, alpha=self.weight_decay)
            m, v = self.exp_avg[i], self.exp_avg_sq[i]
            m.lerp_(g, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
            denom = (v.sqrt() / bias2_sqrt).add_(self.eps)
            step_sizes = (-self.lrs64[i] / bias1).to(p.dtype)
            p.add_(m.mul(step_sizes).div_(denom))


def member_optimizer(model, trainings: Sequence) -> MemberSGD | MemberAdam | None:
    """A `MemberSGD` or `MemberAdam` for an ensemble whose members' ``trainings`` differ in
    lr, else None (the caller keeps one optimizer with one lr for all)."""
    from gradstats.simulate.training import param_groups

    if len({t.lr for t in trainings}) == 1:
        return None
    per_member = [param_groups(model, t) for t in trainings]
    params = [group["params"][0] for group in per_member[0]]
    lrs = [[groups[j]["lr"] for groups in per_member] for j in range(len(params))]
    t0 = trainings[0]
    if t0.optimizer in ("adam", "adamw"):
        return MemberAdam(params, lrs, betas=(t0.beta1, t0.beta2), eps=t0.eps,
                          weight_decay=t0.weight_decay, decoupled=t0.optimizer == "adamw")
    return MemberSGD(params, lrs, momentum=t0.momentum, weight_decay=t0.weight_decay)
