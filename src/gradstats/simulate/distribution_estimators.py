"""Estimators of gradient distributions: ``distribution`` (tails) and ``directions`` (vMF).

``distribution`` looks at three samples (Xie et al. 2023):
- dimension-wise: the entries of the minibatch gradient dL/dW_l (raw W_l) at one step, per
  layer and over the whole network (all layers' weight entries concatenated);
- gradient noise: minibatch gradient minus the full-batch gradient dL_full/dW_l, where
  L_full = mean over the whole training set ``ctx.x_train`` of the per-example loss (computed
  in chunks at the same parameters); its entries are a dimension-wise sample of the noise;
  a layer whose noise is within float round-off of 0 (`noise_resolved`; e.g. identical
  examples) has NaN noise statistics: they would describe round-off. With batch
  normalization (``norm = "batch"``) the noise statistics are NaN: the loss of the whole
  training set normalized as one batch is another function than the minibatch losses, so
  its gradient is not the mean of minibatch gradients and the difference is no noise sample;
- iteration-wise: ``ITER_COORDS`` weight coordinates per layer, drawn in ``init`` from the
  estimator's own stream, tracked over the recorded steps; their statistics (over steps, per
  coordinate, then summarized over coordinates) are written at the last recorded step (NaN
  before).

Shape statistics use every entry; power-law fits use a uniform subsample of at most
``MAX_SAMPLE`` nonzero |entries| with ``N_BOOTSTRAP`` bootstrap reps and ``MAX_CANDIDATES``
xmin candidates (see `gradstats.simulate.distributions.fit_power_law`). Random draws come
from the estimator's own streams, one per (step, sample, layer) (`RunContext.stream`), so a
value depends neither on other estimators nor on whether another layer's fit ran.

``directions`` (Lee, Cho & Kang 2018) fits a von Mises-Fisher distribution to the B
per-example gradient directions (all parameters, from the step's shared per-example Gram)
and to ``MINIBATCHES`` minibatch gradient directions drawn at the current parameters (from
its own stream), each beside the uniform-direction baseline, and records norm stochasticity
(CV of gradient norms), gradient stochasticity and the decay exponent of the minibatch noise
covariance spectrum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate import distributions as dist
from gradstats.simulate.estimators import (
    Estimator,
    RunContext,
    StepSnapshot,
    Values,
    example_gram64,
    register_estimator,
    stateless,
)
from gradstats.simulate.model import MLP

MAX_SAMPLE = 2000
N_BOOTSTRAP = 100
MAX_CANDIDATES = 30
ITER_COORDS = 32
ITER_MIN_STEPS_SHAPE = 8
ITER_MIN_STEPS_POWERLAW = 50
MINIBATCHES = 16
FULL_BATCH_CHUNK = 4096
POWERLAW_LEVEL = 0.1

_LAYER_FIELDS = ("kurtosis", "skewness", "zero_fraction", "normality_p", "stable_alpha",
                 "powerlaw_alpha", "powerlaw_p", "powerlaw_n_tail", "powerlaw_lr_lognormal",
                 "powerlaw_lr_exponential")
_NET_FIELDS = ("kurtosis", "zero_fraction", "powerlaw_alpha", "powerlaw_p")
_ITER_FIELDS = ("kurtosis", "normal_reject_fraction", "powerlaw_pass_fraction")


def sample_stats(x: np.ndarray, rng: np.random.Generator, fields: tuple[str, ...]
                 ) -> dict[str, float]:
    """The ``fields`` (see `_LAYER_FIELDS`) of one dimension-wise sample ``x`` (any shape)."""
    sh = dist.shape_stats(x, tests=False)
    fit = dist.fit_power_law(x, n_bootstrap=N_BOOTSTRAP, rng=rng, max_sample=MAX_SAMPLE,
                             max_candidates=MAX_CANDIDATES)
    values = {
        "kurtosis": sh.kurtosis, "skewness": sh.skewness, "zero_fraction": sh.zero_fraction,
        "normality_p": sh.normality_p, "powerlaw_alpha": fit.alpha, "powerlaw_p": fit.p_value,
        "powerlaw_n_tail": float(fit.n_tail), "powerlaw_lr_lognormal": fit.lr_lognormal,
        "powerlaw_lr_exponential": fit.lr_exponential,
    }
    if "stable_alpha" in fields:
        values["stable_alpha"] = dist.stable_tail_index(x, rng=rng)
    return {f: values[f] for f in fields}


def iterwise_stats(series: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Summaries over coordinates of per-coordinate statistics over steps.

    series: (T, n_coords), one column per tracked coordinate. ``kurtosis``: median over
    coordinates of the Pearson kurtosis over steps; ``normal_reject_fraction``: fraction of
    coordinates whose D'Agostino-Pearson p < 0.05 (NaN for T < ITER_MIN_STEPS_SHAPE);
    ``powerlaw_pass_fraction``: `power_law_pass_fraction` of |values| at level 0.1 (NaN for
    T < ITER_MIN_STEPS_POWERLAW).
    """
    t = series.shape[0]
    out = dict.fromkeys(_ITER_FIELDS, math.nan)
    if t < ITER_MIN_STEPS_SHAPE:
        return out
    shapes = [dist.shape_stats(series[:, c], tests=False) for c in range(series.shape[1])]
    kurt = np.array([s.kurtosis for s in shapes])
    pvals = np.array([s.normality_p for s in shapes])
    out["kurtosis"] = float(np.nanmedian(kurt)) if np.isfinite(kurt).any() else math.nan
    if np.isfinite(pvals).any():
        out["normal_reject_fraction"] = float(np.mean(pvals[np.isfinite(pvals)] < 0.05))
    if t >= ITER_MIN_STEPS_POWERLAW:
        out["powerlaw_pass_fraction"] = dist.power_law_pass_fraction(
            series, level=POWERLAW_LEVEL, n_bootstrap=N_BOOTSTRAP, rng=rng,
            max_candidates=MAX_CANDIDATES)
    return out


def full_batch_weight_grads(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn,
                            chunk: int = FULL_BATCH_CHUNK) -> list[torch.Tensor]:
    """dL_full/dW_l of the raw weights, L_full = mean over all n examples of the loss.

    x: (n, input_dim); returns a list of (fan_out, fan_in) tensors; accumulated over chunks
    of ``chunk`` examples with `torch.autograd.grad` (the parameters' ``.grad`` is untouched).
    """
    params = list(model.weights)
    total = [torch.zeros_like(w) for w in params]
    n = len(x)
    with torch.enable_grad():
        for s in range(0, n, chunk):
            loss = loss_fn(model(x[s:s + chunk]), y[s:s + chunk]).sum() / n
            for acc, g in zip(total, torch.autograd.grad(loss, params), strict=True):
                acc += g
    return total


def noise_resolved(grad: np.ndarray, noise: np.ndarray, batch: int, n_train: int,
                   dtype: torch.dtype) -> bool:
    """Whether a layer's noise sample (minibatch minus full-batch gradient) exceeds round-off.

    The two gradients are float sums of B and n per-example terms in ``dtype`` (unit
    round-off u); where the exact noise is 0 (identical examples: every term equal) each
    entry of the difference carries at most (B + n) u |g| of round-off per sum (recursive
    summation bound), so a sample with max|noise| <= 2 (B + n) u max|g| is round-off only.
    """
    u = torch.finfo(dtype).eps / 2
    scale = float(np.max(np.abs(grad))) if grad.size else 0.0
    return float(np.max(np.abs(noise), initial=0.0)) > 2 * (batch + n_train) * u * scale


@dataclass(frozen=True)
class DistributionState:
    """coords[l-1]: tracked flat indices of W_l (read-only); history[l-1]: their values at each
    recorded step so far, a tuple of read-only arrays. `distribution_update` returns a new
    state; an old one is never modified."""

    coords: tuple[np.ndarray, ...]
    history: tuple[tuple[np.ndarray, ...], ...]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


DISTRIBUTION_STATISTICS = (
    tuple(f"{p}_{f}" for p in ("dimwise", "noise") for f in _LAYER_FIELDS)
    + tuple(f"dimwise_net_{f}" for f in _NET_FIELDS)
    + tuple(f"iterwise_{f}" for f in _ITER_FIELDS) + ("iterwise_n_steps",)
)


def distribution_init(ctx: RunContext) -> DistributionState:
    """Draw the tracked coordinates of every layer (stream ``("distribution", "coords")``)."""
    rng = ctx.stream("distribution", "coords")
    coords = tuple(_frozen(np.sort(rng.choice(w.numel(), size=min(ITER_COORDS, w.numel()),
                                              replace=False))) for w in ctx.model.weights)
    return DistributionState(coords=coords, history=tuple(() for _ in coords))


def distribution_update(ctx: RunContext, state: DistributionState, snap: StepSnapshot
                        ) -> tuple[DistributionState, Values]:
    """Dimension-wise, gradient-noise and iteration-wise gradient distributions per layer."""
    grads = [g.detach().double().cpu().numpy() for g in snap.weight_grads]
    batch, n_train = snap.x.shape[0], len(ctx.x_train)
    if snap.model.per_example:
        full = full_batch_weight_grads(snap.model, ctx.x_train, ctx.y_train, ctx.loss_fn)
        noise = [g - f.detach().double().cpu().numpy() for g, f in zip(grads, full, strict=True)]
        resolved = [noise_resolved(g, e, batch, n_train, snap.weight_grads[0].dtype)
                    for g, e in zip(grads, noise, strict=True)]
    else:  # batch norm: the full-data gradient is not the mean of minibatch gradients
        noise, resolved = [np.zeros_like(g) for g in grads], [False] * len(grads)
    out: dict[str, list[float]] = {}
    for prefix, sample in (("dimwise", grads), ("noise", noise)):
        for l, layer in enumerate(sample):
            if prefix == "noise" and not resolved[l]:
                stats_l = dict.fromkeys(_LAYER_FIELDS, math.nan)
            else:
                rng = ctx.stream("distribution", snap.step, prefix, l + 1)
                stats_l = sample_stats(layer, rng, _LAYER_FIELDS)
            for f, v in stats_l.items():
                out.setdefault(f"{prefix}_{f}", []).append(v)
    values: Values = {k: np.asarray(v) for k, v in out.items()}
    net = sample_stats(np.concatenate([g.ravel() for g in grads]),
                       ctx.stream("distribution", snap.step, "net"), _NET_FIELDS)
    values.update({f"dimwise_net_{f}": np.asarray(v) for f, v in net.items()})
    history = tuple((*hist, _frozen(g.ravel()[c]))
                    for hist, c, g in zip(state.history, state.coords, grads, strict=True))
    new_state = DistributionState(coords=state.coords, history=history)
    values.update(_iterwise(ctx, new_state, snap))
    return new_state, values


def _iterwise(ctx: RunContext, state: DistributionState, snap: StepSnapshot) -> Values:
    """Iteration-wise statistics (layer,) at the last recorded step; NaN placeholders before."""
    n_layers = len(state.coords)
    t = len(state.history[0])
    out = {f"iterwise_{f}": np.full(n_layers, np.nan) for f in _ITER_FIELDS}
    out["iterwise_n_steps"] = np.asarray(float(t))
    if snap.step != ctx.point.training.record[-1]:
        return out
    for l, hist in enumerate(state.history):
        rng = ctx.stream("distribution", snap.step, "iterwise", l + 1)
        for f, v in iterwise_stats(np.stack(hist), rng).items():
            out[f"iterwise_{f}"][l] = v
    return out


def minibatch_indices(rng: np.random.Generator, n: int, batch: int, count: int) -> np.ndarray:
    """(count, batch) training-set indices: each row a minibatch without replacement (with
    replacement when batch > n), rows independent."""
    if batch > n:
        return rng.integers(0, n, size=(count, batch))
    return rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1)[:, :batch]


def per_example_gram64(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn) -> torch.Tensor:
    """<grad l_i, grad l_j> over all parameters, (B, B), products accumulated in float64."""
    from gradstats.simulate.engine import grams, signals

    return grams(signals(model, x, y, loss_fn), dtype=torch.float64).total().detach()


def minibatch_gram(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn, idx: np.ndarray
                   ) -> np.ndarray:
    """Gram <g_a, g_b> of the minibatch gradients g_a = mean_{i in idx[a]} grad l_i (all
    parameters): P G P^T with G the per-example Gram of all count*batch drawn examples and
    P the (count, count*batch) averaging matrix; one engine call instead of count backward
    passes. Returns (count, count) float64.
    """
    count, batch = idx.shape
    flat = torch.as_tensor(idx.reshape(-1), device=x.device)
    g = per_example_gram64(model, x[flat], y[flat], loss_fn).cpu().numpy()
    p = np.kron(np.eye(count), np.full((1, batch), 1.0 / batch))
    return p @ g @ p.T


def _vmf_values(prefix: str, fit: dist.VMFFit) -> Values:
    return {f"{prefix}_r_bar": np.asarray(fit.r_bar), f"{prefix}_kappa": np.asarray(fit.kappa),
            f"{prefix}_kappa_banerjee": np.asarray(fit.kappa_banerjee),
            f"{prefix}_r_bar_uniform": np.asarray(fit.r_bar_uniform),
            f"{prefix}_kappa_uniform": np.asarray(fit.kappa_uniform)}


_VMF = ("r_bar", "kappa", "kappa_banerjee", "r_bar_uniform", "kappa_uniform")
DIRECTIONS_STATISTICS = (
    tuple(f"example_dir_{f}" for f in _VMF) + tuple(f"minibatch_dir_{f}" for f in _VMF)
    + ("example_norm_cv", "minibatch_norm_cv", "gradient_stochasticity",
       "noise_spectrum_exponent", "noise_spectrum_exponent_stderr")
)


def directions_update(ctx: RunContext, state: None, snap: StepSnapshot) -> tuple[None, Values]:
    """vMF concentration of per-example and minibatch gradient directions, norm CVs.

    The per-example Gram is the step's shared one (`example_gram64`, also used by
    ``per_example``); the minibatches come from stream ``("directions", step, "minibatches")``.
    """
    from gradstats.simulate.engine import noise_covariance_eigenvalues

    model = snap.model
    dim = sum(p.numel() for p in model.parameters())
    _, gram = example_gram64(ctx, snap)
    g = gram.cpu().numpy()
    values = _vmf_values("example_dir", dist.vmf_from_gram(g, dim))
    values["example_norm_cv"] = np.asarray(dist.norm_cv(np.sqrt(np.diag(g))))
    eig = noise_covariance_eigenvalues(gram).cpu().numpy()
    s, se = math.nan, math.nan
    try:
        fit = dist.spectrum_exponent(eig[: len(eig) - 1])
        s, se = fit.s, fit.stderr
    except ValueError:
        pass
    values["noise_spectrum_exponent"] = np.asarray(s)
    values["noise_spectrum_exponent_stderr"] = np.asarray(se)
    idx = minibatch_indices(ctx.stream("directions", snap.step, "minibatches"),
                            len(ctx.x_train), snap.x.shape[0], MINIBATCHES)
    mb_gram = minibatch_gram(model, ctx.x_train, ctx.y_train, ctx.loss_fn, idx)
    values.update(_vmf_values("minibatch_dir", dist.vmf_from_gram(mb_gram, dim)))
    values["minibatch_norm_cv"] = np.asarray(dist.norm_cv(np.sqrt(np.diag(mb_gram))))
    values["gradient_stochasticity"] = np.asarray(dist.gradient_stochasticity(mb_gram))
    return None, values


DISTRIBUTION = Estimator("distribution", DISTRIBUTION_STATISTICS, distribution_init,
                         distribution_update)
DIRECTIONS = Estimator("directions", DIRECTIONS_STATISTICS, stateless, directions_update)

register_estimator(DISTRIBUTION)
register_estimator(DIRECTIONS)
