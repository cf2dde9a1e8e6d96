"""Estimator ``xie``: the samples of Xie et al. 2023, each tested under three protocols.

At each recorded step, at the current parameters (nothing is trained while sampling):

- ``XIE_MINIBATCHES`` (T) minibatches of the run's batch size are drawn from the training set
  (stream ``("xie", step, "minibatches")``); each one's weight gradient dL/dW_l (mean loss over
  the minibatch) and the full-batch gradient (whole training set) are averages of per-example
  gradients c_l delta_i a_i^T from one forward and backward pass over the training set;
- **dimension-wise** samples: the entries of one minibatch gradient of layer l (``dimwise``),
  of all layers together (``net``) and of its noise g - g_full (``noise``), for the first
  ``XIE_DIM_SAMPLES`` (D) minibatches;
- **iteration-wise** samples: ``XIE_COORDS`` (K) weight coordinates per layer (drawn once in
  ``init``), each one's T values over the minibatches (``iterwise``) and the same minus the
  full-batch value (``iterwise_noise``, the gradient noise of that coordinate);
- every sample goes through `gradstats.simulate.protocols`: ``paper`` (free-xmin KS fit,
  d_KS <= 1.358/sqrt(n_tail)), ``paper_n`` (the same with sqrt(n) of the whole sample),
  ``strict`` (tail >= 10%, CSN bootstrap p >= 0.1) and ``gaussian`` (KS vs the fitted
  normal); ``xie_<sample>_pass_<protocol>`` is the fraction of the D (or K) samples passing;
- **covariance spectrum**: the eigenvalues of the per-example gradient-noise covariance of
  ``XIE_SPECTRUM_EXAMPLES`` examples (all parameters, from their Gram: `engine`), its
  rank-plot exponent s (lambda_k ~ k^-s over the upper half) and the ``paper`` / ``paper_n``
  power-law tests of the eigenvalues themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate import distributions as dist
from gradstats.simulate import protocols
from gradstats.simulate.distribution_estimators import minibatch_indices, per_example_gram64
from gradstats.simulate.estimators import (
    Estimator,
    RunContext,
    StepSnapshot,
    Values,
    register_estimator,
)

XIE_MINIBATCHES = 1000
XIE_DIM_SAMPLES = 8
XIE_COORDS = 16
XIE_SPECTRUM_EXAMPLES = 512
PROTOCOL_NAMES = ("paper", "paper_n", "strict", "gaussian")
LAYER_SAMPLES = ("dimwise", "noise", "iterwise", "iterwise_noise")

XIE_STATISTICS = (
    tuple(f"xie_{s}_pass_{p}" for s in (*LAYER_SAMPLES, "net") for p in PROTOCOL_NAMES)
    + ("xie_dimwise_tests", "xie_iterwise_tests", "xie_spectrum_s", "xie_spectrum_s_stderr",
       "xie_spectrum_pass_paper", "xie_spectrum_pass_paper_n", "xie_spectrum_alpha")
)


@dataclass(frozen=True)
class XieState:
    """coords[l-1]: the K tracked flat indices of W_l (read-only)."""

    coords: tuple[np.ndarray, ...]


def xie_init(ctx: RunContext) -> XieState:
    rng = ctx.stream("xie", "coords")
    coords = []
    for w in ctx.model.weights:
        c = np.sort(rng.choice(w.numel(), size=min(XIE_COORDS, w.numel()), replace=False))
        c.setflags(write=False)
        coords.append(c)
    return XieState(coords=tuple(coords))


def pass_fractions(samples: list[np.ndarray], rng: np.random.Generator) -> dict[str, float]:
    """Fraction of ``samples`` each protocol of `PROTOCOL_NAMES` passes (NaN without samples)."""
    if not samples:
        return dict.fromkeys(PROTOCOL_NAMES, math.nan)
    return {p: float(np.mean([protocols.PROTOCOLS[p](s, rng).passes for s in samples]))
            for p in PROTOCOL_NAMES}


def layer_signals(model, x: torch.Tensor, y: torch.Tensor, loss_fn
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Per-example inputs a_{l-1} (n, fan_in), loss signals delta_l (n, fan_out) and weight
    multipliers c_l of every layer, float64: example i's gradient of the raw W_l is
    c_l delta_{l,i} a_{l-1,i}^T (one forward and one backward pass, `engine.signals`)."""
    from gradstats.simulate.engine import signals

    sig = signals(model, x, y, loss_fn, chunk_size=4096)
    inputs = [a.double().cpu().numpy() for a in sig.inputs]
    deltas = [d[0].double().cpu().numpy() for d in sig.deltas]
    return inputs, deltas, [math.sqrt(float(m)) for m in sig.w_mult2]


def minibatch_weight_grad(a: np.ndarray, delta: np.ndarray, mult: float, rows: np.ndarray
                          ) -> np.ndarray:
    """dL/dW_l of L = mean loss over the examples ``rows``: c_l delta[rows]^T a[rows] / |rows|."""
    return mult * delta[rows].T @ a[rows] / len(rows)


def coordinate_values(a: np.ndarray, delta: np.ndarray, mult: float, coords: np.ndarray
                      ) -> np.ndarray:
    """Per-example gradients of the flat coordinates ``coords`` of W_l (fan_out, fan_in):
    (n, K) with entry (i, k) = c_l delta_{i,r_k} a_{i,c_k}, (r_k, c_k) = divmod(coords_k, fan_in)."""
    r, c = np.divmod(coords, a.shape[1])
    return mult * delta[:, r] * a[:, c]


def spectrum_values(ctx: RunContext, model, step: int) -> Values:
    """Covariance-spectrum statistics of ``XIE_SPECTRUM_EXAMPLES`` per-example gradients."""
    from gradstats.simulate.engine import noise_covariance_eigenvalues

    rng = ctx.stream("xie", step, "spectrum")
    n = len(ctx.x_train)
    idx = torch.as_tensor(rng.choice(n, size=min(XIE_SPECTRUM_EXAMPLES, n), replace=False),
                          device=ctx.x_train.device)
    gram = per_example_gram64(model, ctx.x_train[idx], ctx.y_train[idx], ctx.loss_fn)
    eig = noise_covariance_eigenvalues(gram).cpu().numpy()
    eig = eig[np.isfinite(eig) & (eig > 0)]
    out = {k: math.nan for k in ("xie_spectrum_s", "xie_spectrum_s_stderr", "xie_spectrum_alpha",
                                 "xie_spectrum_pass_paper", "xie_spectrum_pass_paper_n")}
    if eig.size >= 6:
        fit = dist.spectrum_exponent(eig)
        paper = protocols.xie_power_law_test(eig, tail="right")
        out.update({"xie_spectrum_s": fit.s, "xie_spectrum_s_stderr": fit.stderr,
                    "xie_spectrum_alpha": paper.alpha,
                    "xie_spectrum_pass_paper": float(paper.passes),
                    "xie_spectrum_pass_paper_n": float(protocols.xie_power_law_test(
                        eig, tail="right", critical_n="sample").passes)})
    return {k: np.asarray(v) for k, v in out.items()}


def xie_update(ctx: RunContext, state: XieState, snap: StepSnapshot) -> tuple[XieState, Values]:
    """Pass fractions of every sample kind and protocol, and the covariance spectrum.

    Every minibatch gradient comes from the per-example signals of the whole training set at
    this step (`layer_signals`): the T minibatches cost one forward and one backward pass.
    """
    model = snap.model
    if not model.per_example:
        raise ValueError("xie needs per-example gradients, which batch normalization does "
                         "not define")
    from gradstats.simulate.estimators import model64

    inputs, deltas, mults = layer_signals(model64(snap), ctx.x_train.double(), ctx.y_train,
                                          ctx.loss_fn)
    n, batch = len(ctx.x_train), snap.x.shape[0]
    idx = minibatch_indices(ctx.stream("xie", snap.step, "minibatches"), n, batch,
                            XIE_MINIBATCHES)
    values: dict[str, np.ndarray] = {}
    per_layer: dict[str, list[dict[str, float]]] = {s: [] for s in LAYER_SAMPLES}
    net_samples: list[list[np.ndarray]] = [[] for _ in range(XIE_DIM_SAMPLES)]
    everyone = np.arange(n)
    for l, (a, d, c) in enumerate(zip(inputs, deltas, mults, strict=True)):
        full = minibatch_weight_grad(a, d, c, everyone).ravel()
        grads = [minibatch_weight_grad(a, d, c, idx[t]).ravel() for t in range(XIE_DIM_SAMPLES)]
        for t, g in enumerate(grads):
            net_samples[t].append(g)
        per_ex = coordinate_values(a, d, c, state.coords[l])          # (n, K)
        series = per_ex[idx].mean(axis=1)                              # (T, K)
        full_c = per_ex.mean(axis=0)
        samples = {"dimwise": grads, "noise": [g - full for g in grads],
                   "iterwise": list(series.T), "iterwise_noise": list((series - full_c).T)}
        for kind in LAYER_SAMPLES:
            per_layer[kind].append(pass_fractions(samples[kind],
                                                  ctx.stream("xie", snap.step, kind, l + 1)))
    for kind, rows in per_layer.items():
        for p in PROTOCOL_NAMES:
            values[f"xie_{kind}_pass_{p}"] = np.asarray([r[p] for r in rows])
    net = pass_fractions([np.concatenate(parts) for parts in net_samples],
                         ctx.stream("xie", snap.step, "net"))
    values.update({f"xie_net_pass_{p}": np.asarray(v) for p, v in net.items()})
    values["xie_dimwise_tests"] = np.asarray(float(XIE_DIM_SAMPLES))
    values["xie_iterwise_tests"] = np.asarray(float(len(state.coords[0])))
    values.update(spectrum_values(ctx, model, snap.step))
    return state, values


XIE = Estimator("xie", XIE_STATISTICS, xie_init, xie_update)
register_estimator(XIE)
