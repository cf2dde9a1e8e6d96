"""Infinite-width predictions of the recorded statistics at initialization.

`predict_statistics` returns, under registry names (`gradstats.statistics`), the expectation
over the random initialization of each statistic for a fixed minibatch x (B, input_dim) and
targets y, to leading order in 1/width (exact where stated). Conventions, matching
`gradstats.simulate`:

- Loss: L = (1/B) sum_i l_i with l_i = 0.5 ||f(x_i) - y_i||^2 (mse) or the cross-entropy of
  the logits f(x_i) (cross_entropy, y_i an int class label).
- ``grad_sq_norm[l-1] = E||dL/dW_l||_F^2`` wrt the RAW trainable weight W_l (so the
  parameterization matters: under ``standard`` it grows with width). Writing g_i = dl_i/df_i,
  dL/dW_l = B^-1 sum_i sum_k g_ik df_k(x_i)/dW_l, and at infinite width
  <df_k(x_i)/dW_l, df_k'(x_j)/dW_l> -> delta_kk' Theta_l^W(x_i, x_j) (layer l's weight part
  of the NTK, `gradstats.theory.ntk_per_layer`), independent of f. Hence
  ``E||dL/dW_l||^2 = B^-2 sum_ij E[g_i . g_j] Theta_l^W(x_i, x_j)``; for mse with f ~ GP(0, K)
  (K the NNGP of the batch, one per output unit) E[g_i . g_j] = sum_k (K_ij + y_ik y_jk), i.e.
  ``B^-2 sum_k [tr(Theta_l^W K) + y_k^T Theta_l^W y_k]``.
  ``bias_grad_sq_norm`` is the same with the bias part Theta_l^b (NaN without bias).
- ``forward_q[l-1] = mean_i K_l(x_i, x_i)``: mean square of layer l's pre-activations.
  Exact at any width for relu/leaky_relu/abs/linear (and always for layer 1).
- ``backward_q[l-1]``: mean over units and examples of (dl_i/dh_l,i)^2. Readout:
  E[(f_ik - y_ik)^2] = K_L(x_i, x_i) + y_ik^2 (mse); then, per example and with the gradient
  independence assumption, E[delta_l^2] = sigma_w^2 E[phi'(h_l)^2] (n_{l+1}/n_l) E[delta_{l+1}^2]
  with n_{depth+1} = output_dim (the fan-out/fan-in factor of the readout) and n_l = width.
- ``output_mean_sq = mean_i K_L(x_i, x_i)`` (mean over outputs and examples of f^2).
- ``weight_sq_norm[l-1] = fan_out_l * sigma_w^2``: E||effective W_l||_F^2, exact for both
  parameterizations and both init distributions.
- ``batch_loss = E[L]``: mse (1/(2B)) sum_ik (K_L(x_i, x_i) + y_ik^2), exact given E f^2.

Cross-entropy: the readout expectations E[g_i . g_j], E[g_ik^2] and E[l_i] have no closed form;
they are Monte Carlo averages over ``n_samples`` draws of the Gaussian process outputs
f ~ N(0, K) per class (seeded, so deterministic), everything else as above.
"""

from __future__ import annotations

import numpy as np

from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope
from gradstats.theory.kernels import diag_recursion, layer_kernels

PREDICTED = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "backward_q", "output_mean_sq",
             "weight_sq_norm", "batch_loss")


def _readout_moments_ce(k: np.ndarray, labels: np.ndarray, n_classes: int, n_samples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte Carlo over f ~ N(0, K) i.i.d. per class: E[g_i.g_j] (B,B), E[g_ik^2] mean over k (B,),
    E[l_i] (B,), with g = softmax(f) - onehot(y)."""
    b = k.shape[0]
    rng = np.random.default_rng(seed)
    evals, evecs = np.linalg.eigh(0.5 * (k + k.T))
    root = evecs * np.sqrt(np.clip(evals, 0, None))  # K = root root^T
    gg = np.zeros((b, b))
    g2 = np.zeros(b)
    loss = np.zeros(b)
    onehot = np.eye(n_classes)[labels]
    done = 0
    while done < n_samples:
        s = min(4096, n_samples - done)
        z = rng.standard_normal((s, b, n_classes))
        f = np.einsum("ij,sjc->sic", root, z)
        f = f - f.max(axis=-1, keepdims=True)
        logp = f - np.log(np.exp(f).sum(axis=-1, keepdims=True))
        g = np.exp(logp) - onehot
        gg += np.einsum("sic,sjc->ij", g, g)
        g2 += (g * g).mean(axis=-1).sum(axis=0)
        loss += -(logp * onehot).sum(axis=-1).sum(axis=0)
        done += s
    return gg / n_samples, g2 / n_samples, loss / n_samples


def predict_statistics(arch: Architecture, x, y, loss: str = "mse", *,
                       x64: bool | None = True, n_samples: int = 65536, seed: int = 0,
                       quadrature: act.Quadrature | None = None) -> dict[str, np.ndarray]:
    """Expected statistics at initialization for minibatch ``x`` (B, input_dim).

    ``y``: (B, output_dim) float targets (mse; a (B,) vector is accepted when output_dim = 1)
    or (B,) int labels (cross_entropy). Returns numpy arrays keyed by registry name:
    grad_sq_norm, bias_grad_sq_norm, forward_q, backward_q, weight_sq_norm (each (depth+1,)),
    output_mean_sq and batch_loss (scalars). See the module docstring for the conventions.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != arch.input_dim:
        raise ValueError(f"x must be (B, {arch.input_dim}), got shape {x.shape}")
    b = x.shape[0]
    n_out = arch.output_dim
    if loss == "mse":
        y = np.asarray(y, dtype=float)
        if y.ndim == 1 and n_out == 1:
            y = y[:, None]
        if y.shape != (b, n_out):
            raise ValueError(f"mse targets must be (B, output_dim) = {(b, n_out)}, got {y.shape}")
    elif loss == "cross_entropy":
        y = np.asarray(y)
        if y.shape != (b,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"cross_entropy targets must be (B,) int labels, got {y.shape}")
        if y.min() < 0 or y.max() >= n_out:
            raise ValueError(f"labels must lie in 0..{n_out - 1}")
    else:
        raise ValueError(f"unknown loss {loss!r}; choose mse or cross_entropy")

    with x64_scope(x64):
        kern = layer_kernels(arch, x, quadrature=quadrature)
        rec = diag_recursion(arch, np.sum(x * x, axis=1) / arch.input_dim, quadrature=quadrature)
    k = kern["nngp"]  # (B, B)
    tw, tb = kern["ntk_weight"], kern["ntk_bias"]  # (L, B, B)
    q, dphi2 = rec["q"], rec["dphi2"]  # (L, B)
    kdiag = q[-1]

    if loss == "mse":
        gg = n_out * k + y @ y.T  # sum_k (K_ij + y_ik y_jk)
        readout_bq = kdiag + np.mean(y * y, axis=1)  # mean over outputs of E[(f - y)^2]
        exp_loss = 0.5 * np.mean(n_out * kdiag + np.sum(y * y, axis=1))
    else:
        gg, readout_bq, li = _readout_moments_ce(k, y, n_out, n_samples, seed)
        exp_loss = float(np.mean(li))

    grad = np.einsum("lij,ij->l", tw, gg) / b**2
    bias_grad = np.einsum("lij,ij->l", tb, gg) / b**2 if arch.bias else np.full(arch.n_layers, np.nan)

    n_layers = arch.n_layers
    sw2 = float(arch.sigma_w2)
    bq = np.empty((n_layers, b))
    bq[-1] = readout_bq
    for l in range(n_layers - 1, 0, -1):  # 1-based layer l = n_layers-1 .. 1
        fan_ratio = arch.fan_out(l + 1) / arch.fan_out(l)
        bq[l - 1] = sw2 * dphi2[l - 1] * fan_ratio * bq[l]

    return {
        "grad_sq_norm": grad,
        "bias_grad_sq_norm": bias_grad,
        "forward_q": q.mean(axis=1),
        "backward_q": bq.mean(axis=1),
        "output_mean_sq": np.asarray(kdiag.mean()),
        "weight_sq_norm": np.array([arch.fan_out(l) * sw2 for l in range(1, n_layers + 1)]),
        "batch_loss": np.asarray(exp_loss),
    }
