"""SGD and momentum without torch.optim, and with a learning rate per ensemble member.

`SGD` is torch.optim.SGD's single-tensor update with the options gradstats' ``sgd`` and
``momentum`` use (dampening 0, no nesterov), for param groups with one lr each:

    g = grad (+ weight_decay * p);  buf = g (first step) or momentum * buf + g;
    p = p - lr * buf,

the same tensor operations in the same order as torch (``p.add_(buf, alpha=-lr)``), so the
numbers are torch's bit for bit (tested against torch.optim.SGD). It exists because
constructing any torch.optim optimizer imports ``torch._dynamo`` (1.9 s of every fresh
process: each ``gradstats run``, each Dask worker; `benchmarks/bench_step_overhead.py`),
more than the simulation of a quickstart point.

`MemberSGD` is the same update for an ensemble whose parameters are stacked over members
(leading axis E) and whose members differ in ``lr``: the lr is an (E,) tensor per parameter
and the update ``p.addcmul_(buf, -lr_e)``, the same fused multiply-add as torch's
``add_(alpha=-lr)`` elementwise, so a member's numbers do not depend on the others (tested: a
member of an lr ensemble equals the same point in an ensemble of its own lr's seeds).
Adam and AdamW stay torch's (the ``updates`` estimator reads their moments) and are not
ensembled across lr (their members differ only in seed and sigma).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SGD:
    """torch.optim.SGD (dampening 0, no nesterov) over ``groups``, each a dict with
    ``"params"`` (tensors) and ``"lr"`` (float), as `training.param_groups` lists them.
    ``zero_grad`` and ``step`` as torch's."""

    def __init__(self, groups: Sequence[dict], momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        self.params = [p for g in groups for p in g["params"]]
        self.lrs = [float(g["lr"]) for g in groups for _ in g["params"]]
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
        self.neg_lrs = []
        for p, lr in zip(self.params, lrs, strict=True):
            shape = (len(lr),) + (1,) * (p.ndim - 1)
            self.neg_lrs.append(-torch.tensor(lr, dtype=p.dtype, device=p.device).reshape(shape))

    def _apply(self, i: int, p: torch.Tensor, direction: torch.Tensor) -> None:
        p.addcmul_(direction, self.neg_lrs[i])


def member_optimizer(model, trainings: Sequence) -> MemberSGD | None:
    """A `MemberSGD` for an ensemble whose members' ``trainings`` differ in lr (sgd family
    only), else None (the caller keeps one optimizer with one lr for all)."""
    from gradstats.simulate.training import param_groups

    if len({t.lr for t in trainings}) == 1:
        return None
    per_member = [param_groups(model, t) for t in trainings]
    params = [group["params"][0] for group in per_member[0]]
    lrs = [[groups[j]["lr"] for groups in per_member] for j in range(len(params))]
    t0 = trainings[0]
    return MemberSGD(params, lrs, momentum=t0.momentum, weight_decay=t0.weight_decay)
