"""Minibatch gradient noise: unbiased estimates, sub-batch (paired) curves, full-data truths.

Notation (docs/noise_scale.md has the derivations): the training set has N examples with
per-example gradients g_i (over all parameters, or one layer's), full-data mean gradient
G = mean_i g_i and covariance Sigma_N = (1/N) sum_i (g_i - G)(g_i - G)^T. The simulator's
minibatches of B examples are drawn without replacement when B <= N (shuffled epochs) and
with replacement when B > N (`gradstats.simulate.training._BatchSampler`). For the mean
gradient g_b of b such examples,

    E ||g_b||^2 = ||G||^2 + c_b tr Sigma_N,   c_b = (N - b) / (b (N - 1))  (without replacement)
                                              c_b = 1 / b                  (with replacement).

From one minibatch's per-example Gram G_ij = <g_i, g_j> (B x B), with m2 = mean_i G_ii and
p = mean_{i != j} G_ij:

- S^2 = m2 - p = 1/(B-1) sum_i ||g_i - gbar||^2 has E S^2 = N/(N-1) tr Sigma_N without
  replacement (tr Sigma_N with replacement), so `unbiased_noise_trace` = (N-1)/N S^2 (or S^2);
- `unbiased_grad_sq_norm` = ||gbar||^2 - c_B tr Sigma_hat is unbiased for ||G||^2;
- `subbatch_grad_sq_norm`: the mean of ||g_S||^2 over all sub-batches S of size b of the
  minibatch is exactly m2 / b + (1 - 1/b) p, unbiased for E ||g_b||^2 at every b <= B on the
  same network; it is linear in c_b with slope `unbiased_noise_trace` and intercept
  `unbiased_grad_sq_norm`.

Everything takes the Gram as a torch tensor with any leading dims (layers) and returns
float64 tensors; a minibatch of one example (B = 1) gives NaN for what needs B >= 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gradstats.simulate import engine
from gradstats.simulate.model import MLP

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
FULL_DATA_CHUNK = 1024
# Examples per pass for a cnn: its patches hold P * k^d times a layer's activations
# (64 examples of 8x8 images at 128 channels, k = 3: 38 MB of float64 patches per layer).
CNN_FULL_DATA_CHUNK = 64


def without_replacement(batch: int, n_population: int) -> bool:
    """Whether the simulator draws a minibatch of ``batch`` from ``n_population`` examples
    without replacement (batch <= N) or with replacement (batch > N)."""
    return batch <= n_population


def noise_factor(b: np.ndarray | float, n_population: int, replace: bool = False) -> np.ndarray:
    """c_b in E ||g_b||^2 = ||G||^2 + c_b tr Sigma_N: (N-b)/(b(N-1)) without replacement
    (0 at b = N, and for N = 1), 1/b with replacement. Same shape as ``b``."""
    b = np.asarray(b, dtype=np.float64)
    if replace:
        return 1.0 / b
    if n_population == 1:
        return np.zeros_like(b)
    return (n_population - b) / (b * (n_population - 1))


def _moments(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(m2, p, B): mean diagonal and mean off-diagonal entry (NaN for B = 1), float64."""
    g = gram.to(torch.float64)
    b = g.shape[-1]
    diag_sum = g.diagonal(dim1=-2, dim2=-1).sum(-1)
    m2 = diag_sum / b
    if b == 1:
        return m2, torch.full_like(m2, torch.nan), b
    return m2, (g.sum((-1, -2)) - diag_sum) / (b * (b - 1)), b


def unbiased_noise_trace(gram: torch.Tensor, n_population: int) -> torch.Tensor:
    """Unbiased estimate of tr Sigma_N from a minibatch Gram (..., B, B): (...).

    (N-1)/N * B/(B-1) * tr Sigma_B without replacement, B/(B-1) * tr Sigma_B with
    replacement, tr Sigma_B = `engine.noise_trace` (round-off floored); NaN for B = 1.
    """
    b = gram.shape[-1]
    trace = engine.noise_trace(gram.to(torch.float64))
    if b == 1:
        return torch.full_like(trace, torch.nan)
    factor = b / (b - 1)
    if without_replacement(b, n_population):
        factor *= (n_population - 1) / n_population
    return factor * trace


def unbiased_grad_sq_norm(gram: torch.Tensor, n_population: int) -> torch.Tensor:
    """Unbiased estimate of ||G||^2 from a minibatch Gram (..., B, B): (...).

    ||gbar||^2 - c_B * `unbiased_noise_trace`; exact (= ||gbar||^2) at B = N without
    replacement; NaN for B = 1 < N. Can be negative when the noise dominates.
    """
    b = gram.shape[-1]
    c = float(noise_factor(b, n_population, replace=not without_replacement(b, n_population)))
    mean_sq = engine.mean_grad_sq_norm(gram.to(torch.float64))
    if c == 0.0:
        return mean_sq
    return mean_sq - c * unbiased_noise_trace(gram, n_population)


def subbatch_sizes(batch: int) -> np.ndarray:
    """Sub-batch sizes of the paired curve: the powers of two 1, 2, 4, ... <= ``batch``."""
    return 2 ** np.arange(int(np.log2(batch)) + 1)


def subbatch_grad_sq_norm(gram: torch.Tensor, sizes: np.ndarray) -> torch.Tensor:
    """Mean of ||g_S||^2 over all sub-batches S of each size b of the minibatch: (..., len(sizes)).

    Exactly m2 / b + (1 - 1/b) p (U-statistic; docs/noise_scale.md); NaN for b > B.
    """
    m2, p, b = _moments(gram)
    out = []
    for size in np.asarray(sizes):
        if size > b:
            out.append(torch.full_like(m2, torch.nan))
        elif size == 1:
            out.append(m2)
        else:
            out.append(m2 / size + (1.0 - 1.0 / size) * p)
    return torch.stack(out, -1)


@dataclass(frozen=True)
class FullDataNoise:
    """Exact noise statistics of the whole training set at the current parameters.

    grad_sq_norm[l-1] = ||G_l||^2 and mean_sq_norm[l-1] = mean_i ||g_{i,l}||^2 for layer l's
    parameters (weight and bias), (L,) float64; g_i = grad of the per-example loss.
    """

    grad_sq_norm: np.ndarray
    mean_sq_norm: np.ndarray
    n: int

    @property
    def layer_trace(self) -> np.ndarray:
        """tr Sigma_N of each layer's parameters, (L,)."""
        return self.mean_sq_norm - self.grad_sq_norm

    @property
    def trace(self) -> float:
        """tr Sigma_N over all parameters."""
        return float(self.layer_trace.sum())

    @property
    def noise_scale(self) -> float:
        """The true simple noise scale tr Sigma_N / ||G||^2 (NaN when ||G|| = 0)."""
        g2 = float(self.grad_sq_norm.sum())
        return self.trace / g2 if g2 > 0 else float("nan")


def full_data_noise(model: MLP, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn,
                    chunk: int = FULL_DATA_CHUNK) -> FullDataNoise:
    """`FullDataNoise` of ``model`` on all n examples ``x`` (n, input_dim), in float64.

    The model is evaluated as a float64 copy (its float32 weights are exact in float64), in
    chunks of ``chunk`` examples: per-example squared norms from the engine's signals and the
    full gradient G_l = (1/n) sum_i g_{i,l} accumulated from the same signals. Memory is
    O(chunk * sum of layer widths + parameters).
    """
    if model.arch.is_cnn:  # conv features are patches, (chunk, P, C_in k^d) per layer
        chunk = min(chunk, CNN_FULL_DATA_CHUNK)
    model64 = engine.model_as_dtype(model, torch.float64)
    x64 = x.to(torch.float64)
    y64 = y.to(torch.float64) if y.is_floating_point() else y
    n_layers = model.arch.n_layers
    sum_sq = torch.zeros(n_layers, dtype=torch.float64, device=x.device)
    grad_w: list[torch.Tensor | float] = [0.0] * n_layers
    grad_b: list[torch.Tensor | float] = [0.0] * n_layers
    for start in range(0, len(x64), chunk):
        sig = engine.signals(model64, x64[start:start + chunk], y64[start:start + chunk], loss_fn)
        sum_sq += engine.sq_norms(sig, "total").sum(-1)
        for l, (a, d) in enumerate(zip(sig.inputs, sig.deltas, strict=True)):
            gw, gb = engine.batch_grads(a, d)
            grad_w[l] = grad_w[l] + gw
            grad_b[l] = grad_b[l] + gb
    n = len(x64)
    g2 = []
    for l in range(n_layers):
        w = float(sig.w_mult2[l]) * float((grad_w[l] ** 2).sum()) / n**2
        b = 0.0 if sig.b_mult2 is None else float(sig.b_mult2[l]) * float((grad_b[l] ** 2).sum()) / n**2
        g2.append(w + b)
    return FullDataNoise(grad_sq_norm=np.asarray(g2),
                         mean_sq_norm=sum_sq.cpu().numpy() / n, n=n)
