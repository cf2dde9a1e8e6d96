"""E networks of one `Architecture` stacked into one: batched forward and per-example engine.

`EnsembleNetwork` holds the parameters of E members (E seeds of one configuration) stacked on
a leading ensemble axis: ``weights[l-1]`` is (E, fan_out, fan_in), ``biases[l-1]`` (E,
fan_out). Its forward maps x (E, B, input_dim) -- each member its own minibatch -- to
(E, B, output_dim) with batched matmuls; member e computes exactly what `Network` e computes
on x[e] (up to the summation order of the matmul). The members never mix: the gradient of
sum_e L_e with respect to member e's parameters is dL_e/dtheta_e.

The engine functions here are `gradstats.simulate.engine`'s with the ensemble axis in front
(Signals: inputs (E, B, fan_in), deltas (E, K, B, fan_out)); the per-layer Grams come out as
(E, L, B1, B2), so ``[e]`` is member e's unbatched (L, B1, B2).

Layer kinds supported: dense, activation, layer norm, residual blocks. Batch norm is not (its
batch statistics would have to be taken per member; `supports` says so).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from gradstats.layers.activation import Activation
from gradstats.layers.base import BlockTrace
from gradstats.layers.dense import Dense
from gradstats.layers.norm import LayerNorm
from gradstats.layers.residual import Residual
from gradstats.simulate.model import Forward, Network
from gradstats.spec import Architecture


def supports(arch: Architecture) -> str | None:
    """Why ``arch`` cannot be stacked into an ensemble (None if it can)."""
    if arch.norm == "batch":
        return 'norm = "batch" (batch statistics are not batched over members)'
    if arch.is_cnn:
        return ('architecture = "cnn" (the stacked ensemble network batches dense layers '
                "only; each seed of a cnn trains on its own)")
    return None


class EnsembleNetwork(nn.Module):
    """E members of one architecture, parameters stacked (module docstring).

    Built from the members (`Network`, drawn from their own seeds as in an unbatched run), so
    member e starts with exactly member e's weights.
    """

    def __init__(self, members: Sequence[Network]) -> None:
        super().__init__()
        first = members[0]
        self.arch = first.arch
        self.blocks = first.blocks
        self.phi, self.dphi = first.phi, first.dphi
        # per member and layer, Python floats as in `Network` (members may differ in
        # sigma_w^2 and sigma_b^2, which only scale the multipliers)
        self.member_w_mult = [list(m.w_mult) for m in members]
        self.member_b_mult = [list(m.b_mult) for m in members]
        self.n_members = len(members)
        self._template = list(members)  # a list: not registered as submodules
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([m.weights[i].detach() for m in members]))
            for i in range(len(first.weights)))
        self.biases = None if first.biases is None else nn.ParameterList(
            nn.Parameter(torch.stack([m.biases[i].detach() for m in members]))
            for i in range(len(first.biases)))

    per_example = True

    def _mult(self, per_member: list[list[float]], l: int) -> float | torch.Tensor:
        """Layer l's multiplier: a float when every member has the same, else (E, 1, 1) in
        the parameters' dtype (the product is then the same as with the member's float)."""
        values = [m[l - 1] for m in per_member]
        if all(v == values[0] for v in values):
            return values[0]
        w = self.weights[0]
        return torch.tensor(values, dtype=w.dtype, device=w.device)[:, None, None]

    def w_mult(self, l: int) -> float | torch.Tensor:
        """w_mult of dense layer l: float, or (E, 1, 1) when the members differ."""
        return self._mult(self.member_w_mult, l)

    def b_mult(self, l: int) -> float | torch.Tensor:
        """b_mult of dense layer l: float, or (E, 1, 1) when the members differ."""
        return self._mult(self.member_b_mult, l)

    def _apply_layer(self, layer, x: torch.Tensor, trace: BlockTrace) -> torch.Tensor:
        if isinstance(layer, Dense):
            trace.dense_input = x
            z = trace.w_mult * torch.matmul(x, trace.weight.mT)
            if trace.bias is not None:
                z = z + trace.b_mult * trace.bias[:, None, :]
            if trace.retain_grad and z.requires_grad:
                z.retain_grad()
            trace.dense_output = z
            return z
        if isinstance(layer, Residual):
            y = x
            for inner in layer.branch:
                y = self._apply_layer(inner, y, trace)
            return x + trace.alpha * y
        if isinstance(layer, Activation | LayerNorm):  # elementwise / over the last dim
            return layer.torch_apply(x, trace)
        raise ValueError(f"{type(layer).__name__} layers cannot be stacked into an ensemble")

    def forward_all(self, x: torch.Tensor, retain_preact_grad: bool = False) -> Forward:
        """`Network.forward_all` with the ensemble axis in front: x (E, B, input_dim); every
        recorded tensor is (E, B, n)."""
        inputs, preacts, streams, phi_inputs = [], [], [], []
        h = x
        for l, block in enumerate(self.blocks, start=1):
            bias = None if self.biases is None else self.biases[l - 1]
            trace = BlockTrace(self.weights[l - 1], bias, self.w_mult(l), self.b_mult(l),
                               alpha=self.arch.alpha, retain_grad=retain_preact_grad)
            for layer in block.layers:
                h = self._apply_layer(layer, h, trace)
            if retain_preact_grad and h.requires_grad and h is not trace.dense_output:
                h.retain_grad()
            inputs.append(trace.dense_input)
            preacts.append(trace.dense_output)
            streams.append(h)
            if l > 1:
                phi_inputs.append(trace.phi_input)
        return Forward(inputs=inputs, preacts=preacts, output=h, streams=streams,
                       phi_inputs=phi_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(E, B, input_dim) -> (E, B, output_dim)."""
        return self.forward_all(x).output

    def effective_weight(self, l: int) -> torch.Tensor:
        """w_mult_l * W_l of every member: (E, fan_out, fan_in)."""
        return self.w_mult(l) * self.weights[l - 1]

    def member(self, e: int) -> Network:
        """Member ``e`` as a plain `Network` holding a copy of its current parameters."""
        net = copy.deepcopy(self._template[e]).to(self.weights[0].dtype)  # without .grad
        with torch.no_grad():
            for mine, theirs in zip(net.parameters(), self.parameters(), strict=True):
                mine.copy_(theirs[e])
        return net

    def subset(self, members: slice, dtype: torch.dtype | None = None) -> EnsembleNetwork:
        """Members ``members`` as an ensemble of their own: views of this one's parameters
        (no copy, no gradients) or, with another ``dtype``, copies cast to it. What the
        full-data passes run on, chunk by chunk (`member_slices`)."""
        dtype = dtype or self.weights[0].dtype
        sub = EnsembleNetwork.__new__(EnsembleNetwork)
        nn.Module.__init__(sub)
        sub.arch, sub.blocks, sub.phi, sub.dphi = self.arch, self.blocks, self.phi, self.dphi
        sub.member_w_mult = self.member_w_mult[members]
        sub.member_b_mult = self.member_b_mult[members]
        sub._template = self._template[members]
        sub.n_members = len(sub.member_w_mult)
        sub.weights = nn.ParameterList(nn.Parameter(w.detach()[members].to(dtype))
                                       for w in self.weights)
        sub.biases = None if self.biases is None else nn.ParameterList(
            nn.Parameter(b.detach()[members].to(dtype)) for b in self.biases)
        return sub

    def as_dtype(self, dtype: torch.dtype) -> EnsembleNetwork:
        """Itself if its parameters are ``dtype``, else a copy cast to ``dtype`` (no .grad)."""
        if self.weights[0].dtype == dtype:
            return self
        templates, self._template = self._template, []
        try:
            clone = copy.deepcopy(self).to(dtype)
        finally:
            self._template = templates
        clone._template = templates  # shared, not copied: `member` casts its copy
        return clone


# --- the per-example engine over the ensemble axis --------------------------------------------

def _multipliers(model: EnsembleNetwork, like: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(E, L) squared multipliers of each member (squared as Python floats, then cast to
    ``like``'s dtype, as `engine` does for one network)."""
    def squared(per_member: list[list[float]]) -> torch.Tensor:
        return torch.tensor([[v * v for v in m] for m in per_member], dtype=like.dtype,
                            device=like.device)

    w2 = squared(model.member_w_mult)
    return w2, None if model.biases is None else squared(model.member_b_mult)


def output_signals(model: EnsembleNetwork, x: torch.Tensor
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs (E, n, fan_in) and output signals (E, K, n, fan_out) of x (E, n, input_dim):
    delta^k_{l,i} = d f_{i,k} / d z_{l,i} (`engine.signals` with ``target="output"``)."""
    with torch.enable_grad():
        fwd = model.forward_all(x)
        k = fwd.output.shape[-1]
        if k == 1:
            grads = torch.autograd.grad(fwd.output.sum(), fwd.preacts)
            deltas = [d.unsqueeze(1) for d in grads]
        else:
            eye = torch.eye(k, dtype=fwd.output.dtype, device=fwd.output.device)
            seeds = eye[:, None, None, :].expand(k, *fwd.output.shape)
            grads = torch.autograd.grad(fwd.output, fwd.preacts, grad_outputs=seeds,
                                        is_grads_batched=True)
            deltas = [d.transpose(0, 1) for d in grads]  # (K, E, n, m) -> (E, K, n, m)
    return [a.detach() for a in fwd.inputs], [d.detach() for d in deltas]


def _flat_targets(d: torch.Tensor) -> torch.Tensor:
    """(E, K, B, n) -> (E, B, K*n) so that one product traces over the K targets."""
    return d[:, 0] if d.shape[1] == 1 else d.permute(0, 2, 1, 3).reshape(d.shape[0], d.shape[2], -1)


def per_layer_grams(model: EnsembleNetwork, inputs: Sequence[torch.Tensor],
                    deltas: Sequence[torch.Tensor], classes: str = "trace") -> torch.Tensor:
    """Gram of each layer's parameters (weight + bias) between the examples: (E, L, B, B).

    inputs[l-1] (E, B, fan_in), deltas[l-1] (E, K, B, fan_out); ``classes`` ``"trace"``
    sums over the K targets, ``"mean"`` averages them (as `engine.grams`).
    """
    w2, b2 = _multipliers(model, inputs[0])
    out = []
    for l, (a, d) in enumerate(zip(inputs, deltas, strict=True)):
        d_gram = torch.matmul(_flat_targets(d), _flat_targets(d).mT)
        if classes == "mean":
            d_gram = d_gram / d.shape[1]
        layer = w2[:, l, None, None] * torch.matmul(a, a.mT) * d_gram
        if b2 is not None:
            layer = layer + b2[:, l, None, None] * d_gram
        out.append(layer)
    return torch.stack(out, dim=1)


def total_gram(model: EnsembleNetwork, inputs: Sequence[torch.Tensor],
               deltas: Sequence[torch.Tensor], classes: str = "trace") -> torch.Tensor:
    """`per_layer_grams` summed over the layers, (E, B, B), without forming the (E, L, B, B)
    stack: member by member and in place, so the working set of a large B stays in cache
    (sum_l (w_l^2 A_l + b_l^2) D_l, D_l divided by K for ``"mean"``)."""
    w2, b2 = _multipliers(model, inputs[0])
    n_members, batch = inputs[0].shape[:2]
    total = inputs[0].new_zeros((n_members, batch, batch))
    for e in range(n_members):
        acc = total[e]
        for l, (a, d) in enumerate(zip(inputs, deltas, strict=True)):
            f = _flat_targets(d[e:e + 1])[0]
            gram = torch.mm(a[e], a[e].T).mul_(w2[e, l])
            if b2 is not None:
                gram.add_(b2[e, l])
            gram.mul_(torch.mm(f, f.T))
            if classes == "mean":
                gram.div_(d.shape[1])
            acc.add_(gram)
    return total


def empirical_ntk(model: EnsembleNetwork, x: torch.Tensor, classes: str = "trace"
                  ) -> torch.Tensor:
    """Empirical NTK of every member on its own inputs x (E, n, input_dim): (E, n, n)
    (`engine.empirical_ntk_model` of each member)."""
    inputs, deltas = output_signals(model, x)
    return total_gram(model, inputs, deltas, classes)


# Working set of one chunk of members in a full-data pass (activations, signals and Grams of
# every member of the chunk): about half this CPU's 2 MB L2 cache per core times a few, so a
# chunk stays cache-resident instead of streaming E x n x width arrays through memory.
WORKING_SET_BYTES = 8 * 2**20


def pass_bytes(arch: Architecture, rows: int, itemsize: int = 8) -> float:
    """Rough bytes one member needs in a pass over ``rows`` inputs: its activations,
    pre-activations, signals and autograd's saved tensors (about 4 per unit and row) and an
    n x n Gram with its temporaries (3)."""
    units = (arch.input_dim or 0) + arch.width * arch.depth + arch.output_dim
    return float(rows * units * itemsize * 4 + 3 * rows * rows * itemsize)


def member_slices(n_members: int, bytes_per_member: float, budget: float | None = None,
                  device: torch.device | None = None) -> list[slice]:
    """Consecutive, near-equal chunks of the members whose working set fits ``budget``
    (default: `WORKING_SET_BYTES` on a CPU, no limit on a GPU, whose kernels want every
    member at once), each of at least 2 members (a batched product of one member takes
    another kernel, and a member's bits must not depend on who else shares its chunk); one
    chunk of all when there are fewer than 4."""
    if budget is None:
        cpu = device is None or device.type == "cpu"
        budget = WORKING_SET_BYTES if cpu else math.inf
    fit = budget / max(bytes_per_member, 1.0)
    size = n_members if math.isinf(fit) else max(2, math.floor(fit))
    n_chunks = max(1, n_members // size)
    bounds = [round(i * n_members / n_chunks) for i in range(n_chunks + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def chunked_ntk(model: EnsembleNetwork, x: torch.Tensor, classes: str = "trace",
                budget: float | None = None) -> torch.Tensor:
    """`empirical_ntk` of a float64 copy of every member on x (E, n, input_dim) (cast to
    float64 first), chunk by chunk of members (`member_slices`): (E, n, n) float64. Each
    member's kernel is the one `empirical_ntk` gives it, bit for bit."""
    x = x.to(torch.float64)
    slices = member_slices(model.n_members, pass_bytes(model.arch, x.shape[1]), budget,
                           x.device)
    out = []
    for members in slices:
        sub = model.subset(members, torch.float64)
        out.append(empirical_ntk(sub, x[members], classes))
    return out[0] if len(out) == 1 else torch.cat(out)


def minibatch_grams64(model: EnsembleNetwork, forward: Forward) -> list:
    """Each member's `engine.LayerGrams` of its minibatch's per-example loss gradients in
    float64, from the training step's own pass (pre-activation gradients retained): what
    `gradstats.simulate.estimators.example_grams64` forms for one network, formed here for
    all members with batched products. The signals are B * h_l.grad in the model's dtype,
    then cast (as `engine.signals_from_forward` and `engine.grams` do)."""
    from gradstats.simulate.engine import LayerGrams

    batch = forward.inputs[0].shape[1]
    a_grams, d_grams = [], []
    for a, h in zip(forward.inputs, forward.preacts, strict=True):
        a64 = a.detach().to(torch.float64)
        d64 = (float(batch) * h.grad).to(torch.float64)
        a_grams.append(torch.matmul(a64, a64.mT))
        d_grams.append(torch.matmul(d64, d64.mT))
    a_all, d_all = torch.stack(a_grams, 1), torch.stack(d_grams, 1)  # (E, L, B, B)
    w2, b2 = _multipliers(model, forward.inputs[0])
    w2 = w2.to(torch.float64)
    b2 = None if b2 is None else b2.to(torch.float64)
    return [LayerGrams(a_all[e], d_all[e], w2[e], None if b2 is None else b2[e])
            for e in range(a_all.shape[0])]
