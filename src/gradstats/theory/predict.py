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
- ``weight_sq_norm[l-1] = fan_out_l * sigma_w^2 * fan_in^(1-2(a+b))``: E||effective W_l||_F^2
  from the abc row (the factor is 1 for ntk and standard), exact for every row and both
  init distributions.
- ``batch_loss = E[L]``: mse (1/(2B)) sum_ik (K_L(x_i, x_i) + y_ik^2), exact given E f^2.

Cross-entropy: the readout expectations E[g_i . g_j], E[g_ik^2] and E[l_i] have no closed form;
they are Monte Carlo averages over ``n_samples`` draws of the Gaussian process outputs
f ~ N(0, K) per class (seeded, so deterministic), everything else as above.

Two companions share these conventions:

- `conditional_statistics`: the prediction for the network that was measured, given its
  measured readout gradient g = dL/df at step 0: ``grad_sq_norm[l-1] = sum_k g_k^T Theta_l^W g_k``.
  Per seed, measured/conditional is concentrated (relative spread O(sqrt(depth/width))), while
  measured/unconditional spreads like a chi^2 variable (the outputs share a few modes).
- `unconditional_moments`: the mean AND the variance over f ~ GP(0, K) of one seed's
  statistic: its null distribution at infinite width (Theta deterministic).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from gradstats import parameterization as pz
from gradstats.spec import LAYER_DIM, Architecture, SpecError
from gradstats.theory import activations as act
from gradstats.theory._compat import x64_scope
from gradstats.theory.kernels import diag_recursion, layer_kernels

if TYPE_CHECKING:
    import xarray as xr

MOMENT_DIM = "moment"
PREDICTED = ("grad_sq_norm", "bias_grad_sq_norm", "forward_q", "backward_q", "output_mean_sq",
             "weight_sq_norm", "batch_loss")


def _ce_readout_chunks(k: np.ndarray, labels: np.ndarray, n_classes: int, n_samples: int,
                       seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Seeded draws f ~ N(0, K) i.i.d. per class, in chunks of at most 4096 draws.

    Yields (g, logp), each (s, B, n_classes): g = softmax(f) - onehot(y) = dl_i/df_i and the
    log-softmax of f. The same (k, labels, n_samples, seed) always gives the same draws.
    """
    rng = np.random.default_rng(seed)
    evals, evecs = np.linalg.eigh(0.5 * (k + k.T))
    root = evecs * np.sqrt(np.clip(evals, 0, None))  # K = root root^T
    onehot = np.eye(n_classes)[labels]
    done = 0
    while done < n_samples:
        s = min(4096, n_samples - done)
        z = rng.standard_normal((s, k.shape[0], n_classes))
        f = np.matmul(root, z)  # (s, B, C); BLAS, ~10x faster than einsum here
        f = f - f.max(axis=-1, keepdims=True)
        logp = f - np.log(np.exp(f).sum(axis=-1, keepdims=True))
        yield np.exp(logp) - onehot, logp
        done += s


def _readout_moments_ce(k: np.ndarray, labels: np.ndarray, n_classes: int, n_samples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monte Carlo over f ~ N(0, K) i.i.d. per class: E[g_i.g_j] (B,B), E[g_ik^2] mean over k (B,),
    E[l_i] (B,), with g = softmax(f) - onehot(y)."""
    b = k.shape[0]
    gg = np.zeros((b, b))
    g2 = np.zeros(b)
    loss = np.zeros(b)
    onehot = np.eye(n_classes)[labels]
    for g, logp in _ce_readout_chunks(k, labels, n_classes, n_samples, seed):
        flat = g.transpose(1, 0, 2).reshape(b, -1)  # (B, s*C)
        gg += flat @ flat.T
        g2 += (g * g).mean(axis=-1).sum(axis=0)
        loss += -(logp * onehot).sum(axis=-1).sum(axis=0)
    return gg / n_samples, g2 / n_samples, loss / n_samples


def _check_x(arch: Architecture, x) -> tuple[Architecture, np.ndarray]:
    """(arch with its input_dim from x, the minibatch as a float (B, input_dim) array; for a
    cnn, images (B, C, *spatial) with input_dim = C)."""
    x = np.asarray(x, dtype=float)
    if getattr(arch, "architecture", "mlp") == "cnn":
        from gradstats.theory.conv.inputs import check_images

        check_images(x)
        if arch.input_dim is not None and x.shape[1] != arch.input_dim:
            raise SpecError("input_dim", f"x must have {arch.input_dim} channels for input_dim="
                            f"{arch.input_dim}, got shape {x.shape}")
        return arch.with_image(x.shape[1:]), x
    if x.ndim != 2:
        raise ValueError(f"x must be (B, input_dim), got shape {x.shape}")
    if arch.input_dim is not None and x.shape[1] != arch.input_dim:
        raise SpecError("input_dim", f"x must be (B, {arch.input_dim}) for input_dim="
                        f"{arch.input_dim}, got shape {x.shape}; leave input_dim out (None) to "
                        "take it from x")
    return arch.with_input_dim(x.shape[1]), x


def _diag(arch: Architecture, x: np.ndarray, quadrature: act.Quadrature | None
          ) -> dict[str, np.ndarray]:
    """`diag_recursion` of the minibatch (for a cnn, its per-pixel version on the images)."""
    if getattr(arch, "architecture", "mlp") == "cnn":
        from gradstats.theory.conv.diag import diag_recursion as conv_diag_recursion

        return conv_diag_recursion(arch, x, quadrature=quadrature)
    return diag_recursion(arch, np.sum(x * x, axis=1) / arch.input_dim, quadrature=quadrature)


def _check_targets(arch: Architecture, y, loss: str, b: int) -> np.ndarray:
    """mse: (B, output_dim) floats ((B,) accepted when output_dim = 1); cross_entropy: (B,) ints."""
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
    return y


def _backward_chain(arch: Architecture, backward: np.ndarray, readout_bq: np.ndarray
                    ) -> np.ndarray:
    """Per-example backward signal of every layer's stream, (L, B), from the readout's, (B,).

    E[delta_l^2] (mean over the n_l units) = backward_l (n_L / n_l) E[delta_L^2], with
    ``backward`` (L, B) from `diag_recursion` (sum over units of (df/dh_l)^2 per readout
    unit; sigma_w^2 E[phi'(h_l)^2] per layer in an MLP), n_L = output_dim, n_l = width.
    """
    fan = np.array([arch.fan_out(l) for l in range(1, arch.n_layers + 1)], dtype=float)
    return backward * (arch.output_dim / fan)[:, None] * readout_bq[None, :]


def predict_statistics(arch: Architecture, x, y, loss: str = "mse", *,
                       x64: bool | None = True, n_samples: int = 65536, seed: int = 0,
                       quadrature: act.Quadrature | None = None) -> xr.Dataset:
    """Expected statistics at initialization for minibatch ``x`` (B, input_dim).

    ``y``: (B, output_dim) float targets (mse; a (B,) vector is accepted when output_dim = 1)
    or (B,) int labels (cross_entropy). Returns an xarray Dataset of registry-named variables
    (``long_name``, ``units`` from `gradstats.statistics`): grad_sq_norm, bias_grad_sq_norm,
    forward_q, backward_q, weight_sq_norm on ``layer`` (1..depth+1), output_mean_sq and
    batch_loss (scalars). See the module docstring for the conventions.
    """
    arch, x = _check_x(arch, x)
    b = x.shape[0]
    n_out = arch.output_dim
    y = _check_targets(arch, y, loss, b)

    with x64_scope(x64):
        kern = layer_kernels(arch, x, quadrature=quadrature)
        rec = _diag(arch, x, quadrature)
    k = kern["nngp"]  # (B, B)
    tw, tb = kern["ntk_weight"], kern["ntk_bias"]  # (L, B, B)
    q, backward = rec["q"], rec["backward"]  # (L, B)
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

    bq = _backward_chain(arch, backward, readout_bq)

    return labelled(arch, {
        "grad_sq_norm": grad,
        "bias_grad_sq_norm": bias_grad,
        "forward_q": q.mean(axis=1),
        "backward_q": bq.mean(axis=1),
        "output_mean_sq": np.asarray(kdiag.mean()),
        "weight_sq_norm": weight_sq_norm(arch),
        "batch_loss": np.asarray(exp_loss),
    }, "infinite-width expectation over the initialization (predict_statistics)", loss=loss)


def weight_sq_norm(arch: Architecture) -> np.ndarray:
    """E||effective W_l||_F^2 = fan_out_l sigma_w^2 fan_in^(1-2(a+b)) at init, (depth+1,): the
    factor from the abc row is 1 for ntk and standard; exact for every row, both init
    distributions and any composition (no kernel needed)."""
    return np.array([arch.fan_out(l) * float(arch.sigma_w2) * _variance_ratio(arch, l)
                     for l in range(1, arch.n_layers + 1)])


def conditional_statistics(arch: Architecture, x, grad_output, *, x64: bool | None = True,
                           quadrature: act.Quadrature | None = None) -> xr.Dataset:
    """Infinite-width prediction for the network that was measured, given its readout gradient.

    ``x``: (B, input_dim) step-0 minibatch; ``grad_output``: (B, output_dim) the measured
    g = dL/df at step 0 (any loss; it carries the 1/B of the mean loss; (B,) is accepted when
    output_dim = 1). Since <df_k(x_i)/dW_l, df_k'(x_j)/dW_l> -> delta_kk' Theta_l^W(x_i, x_j)
    independently of f, ``dL/dW_l = sum_ik g_ik df_k(x_i)/dW_l`` has squared norm
    ``sum_k g_k^T Theta_l^W g_k`` given g. Returns an xarray Dataset, each variable on
    ``layer`` (1..depth+1):

    - ``grad_sq_norm``: that quadratic form with layer l's weight NTK term (raw-weight
      convention of `predict_statistics`);
    - ``bias_grad_sq_norm``: the same with the bias term Theta_l^b (NaN without bias);
    - ``backward_q``: readout entry = mean over examples and outputs of (B g_ik)^2, the measured
      per-example readout signal itself (equal to the measurement by construction, so it is no
      test of the theory); hidden layers propagate it per example as `predict_statistics` does
      (sigma_w^2 E[phi'(h_l)^2] (n_{l+1}/n_l) per layer) and then average over examples.
    """
    arch, x = _check_x(arch, x)
    b, n_out = x.shape[0], arch.output_dim
    g = np.asarray(grad_output, dtype=float)
    if g.ndim == 1 and n_out == 1:
        g = g[:, None]
    if g.shape != (b, n_out):
        raise ValueError(f"grad_output must be (B, output_dim) = {(b, n_out)}, got {g.shape}")
    with x64_scope(x64):
        kern = layer_kernels(arch, x, quadrature=quadrature)
        backward = _diag(arch, x, quadrature)["backward"]  # (L, B)
    gg = g @ g.T  # sum_k g_ik g_jk, (B, B)
    grad = np.einsum("lij,ij->l", kern["ntk_weight"], gg)
    bias_grad = (np.einsum("lij,ij->l", kern["ntk_bias"], gg) if arch.bias
                 else np.full(arch.n_layers, np.nan))
    readout_bq = np.mean((b * g) ** 2, axis=1)  # (B,)
    return labelled(arch, {
        "grad_sq_norm": grad, "bias_grad_sq_norm": bias_grad,
        "backward_q": _backward_chain(arch, backward, readout_bq).mean(axis=1)},
        "infinite-width prediction given the measured readout gradient (conditional_statistics)")


def _quadratic_moments(a: np.ndarray, k: np.ndarray, shift: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of m = sum_k (f_k - s_k)^T A (f_k - s_k), f_k ~ N(0, K) i.i.d. over k.

    a: (..., B, B) symmetric; k: (B, B); shift s: (B, n_out). With z_k = f_k - s_k ~ N(-s_k, K):
    E m = n_out tr(AK) + sum_k s_k^T A s_k, Var m = sum_k [2 tr(AKAK) + 4 s_k^T A K A s_k].
    Returns (mean, var), each of shape (...).
    """
    n_out = shift.shape[1]
    ak = a @ k
    a_shift = a @ shift  # (..., B, n_out)
    mean = n_out * np.trace(ak, axis1=-2, axis2=-1) + np.einsum("ik,...ik->...", shift, a_shift)
    var = (2 * n_out * np.einsum("...ij,...ji->...", ak, ak)
           + 4 * np.einsum("...ik,ij,...jk->...", a_shift, k, a_shift))
    return mean, var


def unconditional_moments(arch: Architecture, x, y, loss: str = "mse", *, n_samples: int = 65536,
                          seed: int = 0, x64: bool | None = True,
                          quadrature: act.Quadrature | None = None
                          ) -> xr.Dataset:
    """Mean and variance of one seed's statistic over the infinite-width outputs f ~ GP(0, K).

    f is i.i.d. over output units with K the NNGP of the batch ``x`` (B, input_dim); the per-layer
    NTK terms are deterministic. ``y`` as in `predict_statistics`. Returns an xarray Dataset
    with ``grad_sq_norm`` and ``bias_grad_sq_norm`` on (``moment``, ``layer``) (NaN without
    bias), ``output_mean_sq`` and ``batch_loss`` on (``moment``,); ``moment`` is
    ("mean", "var"), first, so ``mean, var = out[name]`` unpacks a variable. The means equal
    `predict_statistics`.

    mse: every statistic is a Gaussian quadratic form sum_k (f_k - s_k)^T A (f_k - s_k) with
    closed-form moments (`_quadratic_moments`): grad_sq_norm A = Theta_l^W / B^2, s = y (g = (f - y)/B);
    bias_grad_sq_norm A = Theta_l^b / B^2, s = y; output_mean_sq A = I / (B n_out), s = 0;
    batch_loss A = I / (2B), s = y. cross_entropy: output_mean_sq as for mse; the others are the
    sample mean and variance (ddof=1) over the ``n_samples`` seeded draws of f that
    `predict_statistics` uses (same ``seed``, so the means agree to round-off).
    """
    arch, x = _check_x(arch, x)
    b, n_out = x.shape[0], arch.output_dim
    y = _check_targets(arch, y, loss, b)
    with x64_scope(x64):
        kern = layer_kernels(arch, x, quadrature=quadrature)
    k, tw, tb = kern["nngp"], kern["ntk_weight"], kern["ntk_bias"]
    eye = np.eye(b)
    nan_layers = (np.full(arch.n_layers, np.nan), np.full(arch.n_layers, np.nan))
    out_sq = _quadratic_moments(eye / (b * n_out), k, np.zeros((b, n_out)))
    if loss == "mse":
        return _labelled_moments(arch, {
            "grad_sq_norm": _quadratic_moments(tw / b**2, k, y),
            "bias_grad_sq_norm": _quadratic_moments(tb / b**2, k, y) if arch.bias else nan_layers,
            "output_mean_sq": out_sq,
            "batch_loss": _quadratic_moments(eye / (2 * b), k, y)}, loss)

    grads, bias_grads, losses = [], [], []
    onehot = np.eye(n_out)[y]
    for g, logp in _ce_readout_chunks(k, y, n_out, n_samples, seed):
        gg = (g @ g.transpose(0, 2, 1)).reshape(len(g), -1) / b**2  # per draw, (s, B*B)
        grads.append(gg @ tw.reshape(len(tw), -1).T)
        bias_grads.append(gg @ tb.reshape(len(tb), -1).T)
        losses.append(-(logp * onehot).sum(axis=-1).mean(axis=-1))

    def moments(chunks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        values = np.concatenate(chunks)
        return values.mean(axis=0), values.var(axis=0, ddof=1)

    return _labelled_moments(arch, {
        "grad_sq_norm": moments(grads),
        "bias_grad_sq_norm": moments(bias_grads) if arch.bias else nan_layers,
        "output_mean_sq": out_sq, "batch_loss": moments(losses)}, loss)


def labelled(arch: Architecture, values: dict[str, np.ndarray], prediction: str,
             lead: tuple[str, ...] = (), **attrs) -> xr.Dataset:
    """Predictions as a Dataset: per-layer arrays ((*lead, depth+1)) on ``layer`` = 1..depth+1,
    the rest on ``lead``; each variable with its registry ``long_name`` and ``units``."""
    import xarray as xr

    from gradstats.statistics import REGISTRY

    data = {}
    for name, value in values.items():
        value = np.asarray(value, dtype=float)
        dims = (*lead, LAYER_DIM) if value.ndim > len(lead) else lead
        stat = REGISTRY.get(name)
        data[name] = (dims, value, {} if stat is None else {"long_name": stat.long_name,
                                                              "units": stat.units})
    ds = xr.Dataset(data, coords={LAYER_DIM: np.arange(1, arch.n_layers + 1)})
    ds.attrs = {"prediction": prediction, "arch": json.dumps(dataclasses.asdict(arch),
                                                            sort_keys=True), **attrs}
    return ds


def _labelled_moments(arch: Architecture, moments: dict[str, tuple[np.ndarray, np.ndarray]],
                      loss: str) -> xr.Dataset:
    ds = labelled(arch, {name: np.stack([np.asarray(m, float), np.asarray(v, float)])
                         for name, (m, v) in moments.items()},
                  "mean and variance over the infinite-width outputs (unconditional_moments)",
                  lead=(MOMENT_DIM,), loss=loss)
    return ds.assign_coords({MOMENT_DIM: ["mean", "var"]})


def _variance_ratio(arch: Architecture, layer: int) -> float:
    """fan_in Var(m W) / sigma_w^2 = fan_in^(1 - 2(a + b)) from the abc row (exactly 1 for the
    kernel rows ntk and standard; 1/n for the mu-P and mean-field readouts)."""
    row, role = pz.get(arch.parameterization), pz.role(layer, arch.n_layers)
    exponent = 1.0 - 2.0 * (row.a.of(role) + row.b.of(role))
    return 1.0 if exponent == 0 else float(arch.fan_in(layer)) ** exponent
