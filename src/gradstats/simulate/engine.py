"""Per-example gradient Gram matrices of an `MLP` without materializing per-example gradients.

For dense layer l (h_l = w_mult_l a_{l-1} W_l^T + b_mult_l b_l) the gradient of a per-example
quantity l_i with respect to the raw parameters is an outer product:

    d l_i / d W_l = w_mult_l * delta_{l,i} a_{l-1,i}^T,   d l_i / d b_l = b_mult_l * delta_{l,i},

with ``delta_{l,i} = d l_i / d h_{l,i}`` the backward signal. Hence the Gram of per-example
gradients of layer l is

    G_l[i, j] = w_mult_l^2 (a_{l-1,i} . a_{l-1,j}) (delta_{l,i} . delta_{l,j})
              + b_mult_l^2 (delta_{l,i} . delta_{l,j})                  [bias term],

computed from one forward pass and one backward pass (to the pre-activations only) plus
O(B^2 sum_l n_l) work; a (B, P) tensor of per-example gradients is never formed.

Targets: ``"loss"`` uses per-example losses l_i = loss_fn(f, y)_i (one backward of sum_i l_i:
l_i depends on example i only); ``"output"`` uses the network outputs f_{i,k} (the empirical
NTK), one batched backward over the K output units.

Conv layers (``architecture = "cnn"``) have no outer-product factorization: their Grams
come from unfolded patches or per-example materialization, whichever is cheaper per layer
(`gradstats.simulate.conv_engine`, cost formulas there); their bias part is the
Gram of the pixel-summed signals, as above.

Everything is device-agnostic (the model's device and dtype); numpy appears only in
`empirical_ntk`, the convenience wrapper returning numpy arrays.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from gradstats.simulate import conv_engine
from gradstats.simulate.model import MLP, Forward
from gradstats.spec import Architecture

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Target = Literal["loss", "output"]
Classes = Literal["trace", "mean", "full"]
Part = Literal["weight", "bias", "total"]


@dataclass(frozen=True)
class Signals:
    """Per-layer inputs and backward signals of a batch, detached (lists indexed l-1).

    inputs[l-1]: a_{l-1}, (B, fan_in). deltas[l-1]: (K, B, fan_out), delta^k_{l,i} =
    d t_{i,k} / d h_{l,i} for the K targets t (K = 1 for the loss, K = output_dim for the
    outputs). A conv layer l has inputs[l-1] its unfolded patches (B, P, C_in k^d) and
    deltas[l-1] (K, B, P, C_out) (P output pixels; `gradstats.simulate.conv_engine`).
    w_mult2, b_mult2: (L,) squared multipliers of raw W_l and b_l (b_mult2 None without bias).
    """

    inputs: list[torch.Tensor]
    deltas: list[torch.Tensor]
    w_mult2: torch.Tensor
    b_mult2: torch.Tensor | None

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[0]


@dataclass(frozen=True)
class LayerGrams:
    """Per-layer factors of per-example gradient Grams between two batches (B1 and B2 examples).

    input_grams: (L, B1, B2), a_{l-1,i} . a_{l-1,j} (NaN for conv layers, whose weight Gram
    does not factor). signal_grams: (L, B1, B2) with the K targets traced (sum_k delta^k_i .
    delta^k_j; divided by K for ``classes="mean"``), or (L, B1, B2, K, K) per target pair
    (``classes="full"``); for a conv layer, of the pixel-summed signals (its bias part).
    w_mult2, b_mult2: (L,) squared parameter multipliers (b None without bias).
    weight_grams: like signal_grams, <dt_i/dW_l, dt_j/dW_l> / w_mult_l^2 of every layer, or
    None for input_grams * signal_grams (dense layers only).
    """

    input_grams: torch.Tensor
    signal_grams: torch.Tensor
    w_mult2: torch.Tensor
    b_mult2: torch.Tensor | None
    weight_grams: torch.Tensor | None = None

    def _mult(self, m: torch.Tensor) -> torch.Tensor:
        return m.reshape((-1,) + (1,) * (self.signal_grams.ndim - 1))

    def weight_part(self) -> torch.Tensor:
        """<dt_i/dW_l, dt_j/dW_l>: (L, B1, B2) (or (L, B1, B2, K, K))."""
        if self.weight_grams is not None:
            return self._mult(self.w_mult2) * self.weight_grams
        a = self.input_grams
        if self.signal_grams.ndim == 5:
            a = a[..., None, None]
        return self._mult(self.w_mult2) * a * self.signal_grams

    def bias_part(self) -> torch.Tensor:
        """<dt_i/db_l, dt_j/db_l>: like `weight_part`; zeros without bias."""
        if self.b_mult2 is None:
            return torch.zeros_like(self.signal_grams)
        return self._mult(self.b_mult2) * self.signal_grams

    def per_layer(self) -> torch.Tensor:
        """Gram of layer l's parameters (weight + bias): (L, B1, B2) (or (L, B1, B2, K, K))."""
        return self.weight_part() + self.bias_part()

    def total(self) -> torch.Tensor:
        """Gram of all parameters, the sum over layers: (B1, B2) (or (B1, B2, K, K))."""
        return self.per_layer().sum(0)


def require_per_example(model: MLP, what: str = "per-example gradients") -> None:
    """ValueError unless ``model``'s per-example gradients are defined: with batch
    normalization (``norm = "batch"``) example i's output depends on the whole batch, so
    d loss_i / d theta and the per-example Jacobians of the outputs (the empirical NTK) are not
    those of one example, and the outer-product Grams of this module would be wrong."""
    if not getattr(model, "per_example", True):
        raise ValueError(f"{what}: needs per-example gradients, which batch normalization "
                         f"(norm = {model.arch.norm!r}) does not define: examples are coupled "
                         "through the batch statistics")


def _multipliers(model: MLP, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    w2 = torch.tensor([m * m for m in model.w_mult], dtype=like.dtype, device=like.device)
    if model.biases is None:
        return w2, None
    b2 = torch.tensor([m * m for m in model.b_mult], dtype=like.dtype, device=like.device)
    return w2, b2


def _chunk_signals(model: MLP, x: torch.Tensor, y: torch.Tensor | None, loss_fn: LossFn | None,
                   target: Target) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Inputs (B, fan_in) and deltas (K, B, fan_out) of one chunk, one forward + one backward."""
    with torch.enable_grad():
        fwd = model.forward_all(x)
        if target == "loss":
            if loss_fn is None or y is None:
                raise ValueError("target='loss' needs y and loss_fn")
            losses = loss_fn(fwd.output, y)
            deltas = [d.unsqueeze(0) for d in torch.autograd.grad(losses.sum(), fwd.preacts)]
        elif target == "output":
            k = fwd.output.shape[1]
            if k == 1:
                grads = torch.autograd.grad(fwd.output.sum(), fwd.preacts)
                deltas = [d.unsqueeze(0) for d in grads]
            else:
                # one vmapped backward over the K output units: seeds e_k for every example
                eye = torch.eye(k, dtype=fwd.output.dtype, device=fwd.output.device)
                seeds = eye[:, None, :].expand(k, fwd.output.shape[0], k)
                deltas = list(torch.autograd.grad(fwd.output, fwd.preacts, grad_outputs=seeds,
                                                  is_grads_batched=True))
        else:
            raise ValueError(f"unknown target {target!r}; choose 'loss' or 'output'")
    return layer_features(model, fwd.inputs, deltas)


def layer_features(model: MLP, inputs: list[torch.Tensor], deltas: list[torch.Tensor]
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Detached engine features of each layer: dense (B, fan_in) inputs and (K, B, fan_out)
    signals as they are; conv inputs unfolded to patches (B, P, C_in k^d) and signals
    (K, B, C_out, *spatial) made pixel-major (K, B, P, C_out)."""
    ins, dels = [], []
    for l, (a, d) in enumerate(zip(inputs, deltas, strict=True), start=1):
        if _is_conv(model, l):
            ins.append(model.ops[l - 1].patches(a.detach()))
            dels.append(conv_engine.to_pixel_major(d.detach()))
        else:
            ins.append(a.detach())
            dels.append(d.detach())
    return ins, dels


def _is_conv(model: MLP, l: int) -> bool:
    return getattr(model, "is_conv", None) is not None and model.is_conv(l)


def signals(model: MLP, x: torch.Tensor, y: torch.Tensor | None = None,
            loss_fn: LossFn | None = None, target: Target = "loss",
            chunk_size: int | None = None) -> Signals:
    """Per-layer inputs and backward signals of batch ``x`` (B, input_dim), chunked over B.

    ``chunk_size`` bounds the autograd graph (examples per forward/backward); the returned
    features (B x sum_l n_l per target) are kept whole. The model's parameters are untouched
    (no ``.grad`` is written). ValueError for a network without per-example gradients
    (batch normalization: `require_per_example`).
    """
    require_per_example(model, "engine.signals (per-example Grams, the empirical NTK)")
    n = x.shape[0]
    step = n if chunk_size is None else max(1, int(chunk_size))
    ins: list[list[torch.Tensor]] = []
    dels: list[list[torch.Tensor]] = []
    for start in range(0, n, step):
        yc = None if y is None else y[start:start + step]
        a, d = _chunk_signals(model, x[start:start + step], yc, loss_fn, target)
        ins.append(a)
        dels.append(d)
    if len(ins) == 1:
        inputs, deltas = ins[0], dels[0]
    else:
        inputs = [torch.cat(parts, 0) for parts in zip(*ins, strict=True)]
        deltas = [torch.cat(parts, 1) for parts in zip(*dels, strict=True)]
    w2, b2 = _multipliers(model, inputs[0])
    return Signals(inputs=inputs, deltas=deltas, w_mult2=w2, b_mult2=b2)


def signals_from_forward(model: MLP, forward: Forward, scale: float) -> Signals | None:
    """Signals from a forward pass whose pre-activations hold ``.grad`` (after backward).

    With L = mean_i l_i the per-example signal is ``scale * h_l.grad`` with ``scale = B``.
    Returns None when a pre-activation has no retained gradient. ValueError for a network
    without per-example gradients (batch normalization).
    """
    require_per_example(model, "engine.signals_from_forward (per-example signals)")
    if any(not h.retains_grad or h.grad is None for h in forward.preacts):
        return None
    inputs, deltas = layer_features(model, forward.inputs,
                                    [(scale * h.grad).unsqueeze(0) for h in forward.preacts])
    w2, b2 = _multipliers(model, inputs[0])
    return Signals(inputs=inputs, deltas=deltas, w_mult2=w2, b_mult2=b2)


def _flat_targets(d: torch.Tensor) -> torch.Tensor:
    """(K, B, n) -> (B, K*n) so that a plain product traces over the K targets."""
    return d[0] if d.shape[0] == 1 else d.permute(1, 0, 2).reshape(d.shape[1], -1)


def grams(s1: Signals, s2: Signals | None = None, classes: Classes = "trace",
          dtype: torch.dtype | None = None) -> LayerGrams:
    """Layer Gram factors between the examples of ``s1`` (B1) and ``s2`` (B2; s1 if None).

    ``classes="trace"`` sums over the K targets, ``"mean"`` averages them (trace / K),
    ``"full"`` keeps the (K, K) target pairs.
    ``dtype`` optionally casts the features first (e.g. float64 for centered statistics).
    Conv layers (3-D inputs: patches) take `conv_engine.weight_gram` (the cheaper route).
    """
    same = s2 is None
    s2 = s1 if s2 is None else s2

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t if dtype is None else t.to(dtype)

    if classes not in ("trace", "mean", "full"):
        raise ValueError(f"unknown classes {classes!r}; choose 'trace', 'mean' or 'full'")
    a_grams, d_grams, w_grams = [], [], []
    for l in range(len(s1.inputs)):
        a1, d1 = s1.inputs[l], s1.deltas[l]
        a2, d2 = (a1, d1) if same else (s2.inputs[l], s2.deltas[l])
        if a1.ndim == 3:  # conv: patches (B, P, F), signals (K, B, P, C)
            w = conv_engine.weight_gram(a1, d1, a2, d2, full=classes == "full", dtype=dtype)
            w_grams.append(w / d1.shape[0] if classes == "mean" else w)
            a_grams.append(torch.full((a1.shape[0], a2.shape[0]), torch.nan, dtype=w.dtype,
                                      device=a1.device))
            d1 = cast(conv_engine.pixel_sum(d1))
            d2 = d1 if same else cast(conv_engine.pixel_sum(d2))
        else:
            a1, d1 = cast(a1), cast(d1)
            a2, d2 = (a1, d1) if same else (cast(a2), cast(d2))
            a_grams.append(a1 @ a2.T)
            w_grams.append(None)
        if classes in ("trace", "mean"):
            f1 = _flat_targets(d1)
            f2 = f1 if same else _flat_targets(d2)
            gram = f1 @ f2.T
            d_grams.append(gram / d1.shape[0] if classes == "mean" else gram)
        else:
            d_grams.append(torch.einsum("kin,mjn->ijkm", d1, d2))
    ref = a_grams[0]
    w2 = s1.w_mult2.to(ref.dtype)
    b2 = None if s1.b_mult2 is None else s1.b_mult2.to(ref.dtype)
    weight = None
    if any(w is not None for w in w_grams):
        weight = torch.stack([w if w is not None else _outer_part(a, d)
                              for w, a, d in zip(w_grams, a_grams, d_grams, strict=True)])
    return LayerGrams(torch.stack(a_grams), torch.stack(d_grams), w2, b2, weight)


def _outer_part(a_gram: torch.Tensor, d_gram: torch.Tensor) -> torch.Tensor:
    """A dense layer's weight Gram factor (input Gram times signal Gram)."""
    return (a_gram[..., None, None] if d_gram.ndim == 4 else a_gram) * d_gram


def sq_norms(s: Signals, part: Part = "weight") -> torch.Tensor:
    """Per-example squared gradient norms per layer, (L, B), in O(B sum n_l) (no Gram).

    ``part``: ``weight`` ||d t_i / d W_l||_F^2, ``bias`` ||d t_i / d b_l||^2 (zeros without
    bias) or ``total`` (both), traced over the K targets.
    """
    out = []
    for l, (a, d) in enumerate(zip(s.inputs, s.deltas, strict=True)):
        if a.ndim == 3:  # conv: patches and pixel-major signals
            w = s.w_mult2[l] * conv_engine.weight_sq_norms(a, d)
            d = conv_engine.pixel_sum(d)
            dd = (d * d).sum(dim=(0, 2))
            b = torch.zeros_like(dd) if s.b_mult2 is None else s.b_mult2[l] * dd
            out.append({"weight": w, "bias": b, "total": w + b}[part])
            continue
        dd = (d * d).sum(dim=(0, 2))
        w = s.w_mult2[l] * (a * a).sum(1) * dd
        b = torch.zeros_like(dd) if s.b_mult2 is None else s.b_mult2[l] * dd
        out.append({"weight": w, "bias": b, "total": w + b}[part])
    return torch.stack(out)


def model_as_dtype(model: MLP, dtype: torch.dtype) -> MLP:
    """``model`` itself if its parameters are ``dtype``, else a copy cast to ``dtype``.

    A float64 copy of a float32 network holds exactly the same weights (float32 values are
    exact in float64), so statistics of the copy are those of the network at float64
    precision. The copy has no ``.grad``; the original is untouched.
    """
    if model.weights[0].dtype == dtype:
        return model
    clone = copy.deepcopy(model)  # Parameter.__deepcopy__ does not copy .grad
    return clone.to(dtype)


# --- public entry points ------------------------------------------------------------------

def layer_grams(model: MLP, x: torch.Tensor, y: torch.Tensor | None = None,
                loss_fn: LossFn | None = None, target: Target = "loss",
                chunk_size: int | None = None, classes: Classes = "trace") -> LayerGrams:
    """Per-layer Gram factors of the batch ``x`` (B, input_dim) with itself.

    ``target="loss"``: gradients of per-example losses ``loss_fn(f, y)`` (B,);
    ``target="output"``: gradients of the outputs (the empirical NTK; traced over the K
    outputs unless ``classes="full"``).
    """
    s = signals(model, x, y, loss_fn, target, chunk_size)
    return grams(s, classes=classes)


def per_example_gram(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
                     per_layer: bool = False, chunk_size: int | None = None) -> torch.Tensor:
    """<grad l_i, grad l_j> over all parameters: (B, B), or per layer (L, B, B)."""
    g = layer_grams(model, x, y, loss_fn, "loss", chunk_size)
    return g.per_layer() if per_layer else g.total()


def per_example_grad_sq_norm(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
                             part: Part = "weight", chunk_size: int | None = None) -> torch.Tensor:
    """(L, B) per-example squared gradient norms of layer l.

    Default ``part="weight"``: ||d l_i / d W_l||_F^2 wrt the raw W_l (the per-example
    version of the ``grad_sq_norm`` statistic); ``"bias"``: ||d l_i / d b_l||^2;
    ``"total"``: both (the full gradient of layer l).
    """
    return sq_norms(signals(model, x, y, loss_fn, "loss", chunk_size), part)


def centering_roundoff(gram: torch.Tensor) -> torch.Tensor:
    """Round-off bound of statistics of Sigma = C G C / B computed from a Gram: (...), float64.

    ``gram``: (..., B, B) in float32 or float64 (eps its machine epsilon). Centering subtracts
    means of B (row/column) or B^2 (total) entries, each at most M = max_i G_ii in magnitude
    (G is PSD), so by the recursive-summation bound every entry of C G C / B, its trace and
    (Weyl) its eigenvalues carry an absolute error of at most about B^2 eps M. Values below
    this cannot be told from 0.
    """
    b = gram.shape[-1]
    diag = gram.diagonal(dim1=-2, dim2=-1).to(torch.float64).abs()
    return b * b * torch.finfo(gram.dtype).eps * diag.amax(-1)


def noise_covariance_eigenvalues(gram: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of Sigma = 1/B sum_i (g_i - gbar)(g_i - gbar)^T, descending, (..., B).

    ``gram``: (..., B, B) per-example gradient Gram <g_i, g_j>. The nonzero eigenvalues of
    Sigma equal those of C G C / B with C = I - 11^T/B; all B are returned (rank <= B-1,
    so at least the last is zero up to round-off). Eigenvalues at or below the round-off
    bound `centering_roundoff` (negatives included) are set to 0; a Gram with inf/nan
    entries gives NaN eigenvalues. Computed in float64.
    """
    g = gram.to(torch.float64)
    b = g.shape[-1]
    floor = centering_roundoff(gram)
    finite = torch.isfinite(g).all(-1).all(-1)
    g = torch.where(finite[..., None, None], g, torch.zeros_like(g))
    c = g - g.mean(-1, keepdim=True)
    c = c - c.mean(-2, keepdim=True)
    c = 0.5 * (c + c.transpose(-1, -2)) / b
    ev = torch.linalg.eigvalsh(c).flip(-1)
    ev = torch.where(ev <= floor[..., None], torch.zeros_like(ev), ev)
    return torch.where(finite[..., None], ev, torch.full_like(ev, torch.nan))


def noise_trace(gram: torch.Tensor) -> torch.Tensor:
    """tr Sigma = (1/B) sum_i G_ii - (1/B^2) sum_ij G_ij from a (..., B, B) Gram: (...).

    Values at or below the round-off bound `centering_roundoff` (e.g. -1e-16 for identical
    examples, whose exact value is 0) are set to 0.
    """
    b = gram.shape[-1]
    trace = gram.diagonal(dim1=-2, dim2=-1).mean(-1) - gram.sum((-1, -2)) / b**2
    return torch.where(trace <= centering_roundoff(gram).to(trace.dtype),
                       torch.zeros_like(trace), trace)


def mean_grad_sq_norm(gram: torch.Tensor) -> torch.Tensor:
    """||gbar||^2 = (1/B^2) sum_ij G_ij, gbar the minibatch mean gradient: (...)."""
    return gram.mean((-1, -2))


def empirical_ntk_model(model: MLP, x1: torch.Tensor, x2: torch.Tensor | None = None,
                        per_layer: bool = False, classes: Classes = "trace",
                        chunk_size: int | None = None) -> torch.Tensor:
    """Empirical NTK Theta(x1, x2) = J(x1) J(x2)^T of ``model`` as it is now.

    x1: (n1, input_dim), x2: (n2, input_dim) (x1 if None). Returns (n1, n2), or (L, n1, n2)
    per layer (weights + bias of layer l; they sum to the total). With output_dim K > 1,
    ``classes="trace"`` gives sum_k Theta_kk; ``classes="mean"`` gives (1/K) sum_k Theta_kk,
    which is neural-tangents' ``trace_axes=(-1,)`` and, at infinite width (Theta_kk' =
    Theta delta_kk'), the scalar analytic NTK; ``classes="full"`` the per-class kernel,
    (n1, n2, K, K) (neural-tangents' layout with ``trace_axes=()``), or (L, n1, n2, K, K).
    One batched backward over the K outputs (``is_grads_batched``) gives all K signals.
    """
    s1 = signals(model, x1, target="output", chunk_size=chunk_size)
    s2 = None if x2 is None else signals(model, x2, target="output", chunk_size=chunk_size)
    g = grams(s1, s2, classes=classes)
    return g.per_layer() if per_layer else g.total()


def slow_per_example_grads(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
                           ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Materialized per-example gradients by torch.func ``vmap(grad)`` (tests and fallback).

    Returns (weight_grads, bias_grads): weight_grads[l-1] (B, fan_out, fan_in) = d l_i / d W_l,
    bias_grads[l-1] (B, fan_out) or None without bias. Memory O(B P).
    """
    from torch.func import functional_call, grad, vmap

    require_per_example(model, "slow_per_example_grads")
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0)).sum()

    g = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    n = model.arch.n_layers
    weights = [g[f"weights.{i}"] for i in range(n)]
    biases = None if model.biases is None else [g[f"biases.{i}"] for i in range(n)]
    return weights, biases


def batch_grads(a: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-summed raw gradients of one layer without multipliers, for the first target:
    (sum_i d_i a_i^T, sum_i d_i); conv layers sum over pixels too (`conv_engine.summed_grads`)."""
    if a.ndim == 3:
        return conv_engine.summed_grads(a, d)
    return d[0].T @ a, d[0].sum(0)


def empirical_ntk(arch: Architecture, x: np.ndarray | torch.Tensor, seed: int = 0,
                  per_layer: bool = False, classes: Classes = "trace", dtype: str = "float32",
                  device: str = "cpu") -> np.ndarray:
    """Empirical NTK of ``build_model(arch, seed)`` at init on inputs ``x`` (n, input_dim).

    ``x``: numpy array or torch tensor; ``arch.input_dim`` None takes ``x.shape[1]`` (a set
    one that differs is a `SpecError` naming ``input_dim``). Returns a numpy array: (n, n),
    (L, n, n) per layer,
    or with ``classes="full"`` (n, n, K, K) / (L, n, n, K, K); ``classes`` as in
    `empirical_ntk_model` (``"mean"`` compares with the scalar analytic NTK). ``dtype`` ("float32" as the
    simulator's default, or "float64") sets the model's dtype, which also sets its draws.
    """
    from gradstats.simulate.model import build_model

    tdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    xt = torch.as_tensor(x).to(device=device, dtype=tdtype)
    if arch.is_cnn:
        arch = arch.with_image(tuple(xt.shape[1:]))
    elif xt.ndim != 2:
        raise ValueError(f"x must be (n, input_dim), got shape {tuple(xt.shape)}")
    else:
        arch = arch.with_input_dim(xt.shape[1])
    model = build_model(arch, seed, dtype=tdtype, device=device)
    theta = empirical_ntk_model(model, xt, per_layer=per_layer, classes=classes)
    return theta.detach().cpu().numpy()
