"""SGD and momentum with a learning rate per ensemble member (lr ensembles).

torch.optim.SGD keeps one lr per param group; an ensemble's parameters are stacked over
members (leading axis E), so members whose points differ in ``lr`` need the lr as an (E,)
tensor. `MemberSGD` is torch.optim.SGD's update (dampening 0, no nesterov: what gradstats'
``sgd`` and ``momentum`` use) with that one change, elementwise like torch's, so a member's
numbers do not depend on the others:

    g = grad (+ weight_decay * p);  buf = g (first step) or momentum * buf + g;
    p = p - lr_e * buf.

torch computes ``p.add_(buf, alpha=-lr)``, this ``p.addcmul_(buf, -lr_e)``: the same fused
multiply-add, bit for bit (tested: a member of an lr ensemble equals the same point in an
ensemble of its own lr's seeds).
Adam and AdamW are not ensembled across lr (their members differ only in seed and sigma).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class MemberSGD:
    """Per-member-lr SGD over ``groups``: for each param group of the stacked model (as
    `training.param_groups` lists them), its parameter and the lrs of every member's own
    param group (E,). ``zero_grad`` and ``step`` as torch.optim.SGD's."""

    def __init__(self, params: Sequence[torch.Tensor], lrs: Sequence[Sequence[float]],
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        self.neg_lrs = []
        for p, lr in zip(self.params, lrs, strict=True):
            shape = (len(lr),) + (1,) * (p.ndim - 1)
            self.neg_lrs.append(-torch.tensor(lr, dtype=p.dtype, device=p.device).reshape(shape))
        self.momentum, self.weight_decay = momentum, weight_decay
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = False) -> None:
        for p in self.params:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
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
            p.addcmul_(g, self.neg_lrs[i])


def member_optimizer(model, trainings: Sequence) -> MemberSGD | None:
    """A `MemberSGD` for an ensemble whose members' ``trainings`` differ in lr (sgd family
    only), else None (the caller keeps torch's optimizer: one lr for all)."""
    from gradstats.simulate.training import param_groups

    if len({t.lr for t in trainings}) == 1:
        return None
    per_member = [param_groups(model, t) for t in trainings]
    params = [group["params"][0] for group in per_member[0]]
    lrs = [[groups[j]["lr"] for groups in per_member] for j in range(len(params))]
    t0 = trainings[0]
    return MemberSGD(params, lrs, momentum=t0.momentum, weight_decay=t0.weight_decay)
