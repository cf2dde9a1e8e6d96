"""Theory predictions for one simulated point, computed on the worker right after the point.

`predict_record(record)` evaluates `gradstats.theory` on exactly what the run measured
(`gradstats.simulate.theory_inputs`: the recorded minibatches, outputs and readout gradients,
the step-0 network, the empirical NTK at init) and returns per-seed predictions under
registry names (``kind="prediction"`` in `gradstats.statistics`). They are stored in the
point's file next to the measurements, so `gradstats compare` and the plots only read
datasets: no torch, no JAX, no re-simulation.

This module is the only place where `simulate` output meets `theory`; neither imports the
other. A prediction that fails (e.g. a theory function missing for an activation) is left
out and its reason returned in ``notes``: the point's measurements are never lost to it.
Predictions derived for plain MLPs only (product bounds, ln chi_1, Hanin-Nica) are not computed
for residual or normalized networks, by design and without a note: `gradstats compare` marks
their rows `outside` with the reason (`gradstats.theory.validity.plain_mlp`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradstats.spec import Point


def _quadrature():
    """Kernels here use a 32-point rule: within 1e-6 relative of the 64-point default for
    tanh, gelu, sigmoid and softplus at depth 6 (measured), far below the ~1e-2 resolution of
    any comparison, and 5x faster (a tanh minibatch kernel: 0.05 s instead of 0.25 s)."""
    from gradstats.theory.activations import Quadrature

    return Quadrature(points=32)


@dataclass
class Predictions:
    """values: registry name -> array (registry dims); notes: why a prediction is missing."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def predict_record(record: Any, theory: Any = None) -> Predictions:
    """Predictions for a `gradstats.simulate.training.PointRecord` (with ``inputs``).

    ``theory``: an object with the functions of `gradstats.theory` (default: the package);
    tests pass deliberately wrong theories through it.
    """
    if theory is None:
        import gradstats.theory as theory
    out = Predictions()
    if record.inputs is None:
        out.notes.append("no theory inputs recorded")
        return out
    missing = missing_theory(record.point)
    if missing is not None:  # one reason for the whole point, not one error per part
        out.notes.append(missing)
        return out
    from threadpoolctl import threadpool_limits

    from gradstats.theory._compat import x64_scope

    enable_compilation_cache()

    # one BLAS thread, like the simulator's one torch thread per worker: multithreaded
    # OpenBLAS on a busy machine made a 512 x 512 spectral norm 20x slower (measured)
    parts = BATCH_NORM_PARTS if record.point.arch.norm == "batch" else PARTS
    skip = _outside_parts(record.point)
    import gradstats.theory as default_theory

    cacheable = theory is default_theory  # tests pass other theories: never cache those
    config = record.point.config_key()  # once: hashing a point's JSON costs ~0.3 ms
    with x64_scope(True), threadpool_limits(limits=1, user_api="blas"):
        for name, part in parts:
            if name in skip:
                continue
            key = (name, config)
            try:
                if cacheable and name in SEED_FREE_PARTS and key in _config_cache:
                    values = _config_cache[key]
                else:
                    values = part(record, theory)
                    if cacheable and name in SEED_FREE_PARTS:
                        _remember(key, values)
                out.values.update({k: np.array(v, copy=True) for k, v in values.items()})
            except Exception as err:  # a theory gap must not cost the point its measurements
                out.notes.append(f"{name}: {type(err).__name__}: {err}")
    return out


# Parts that read only the point's configuration (architecture, training, data spec), never
# its seed's measurements: computed once per configuration and process, then reused for
# every seed. JAX compilations are reused across points anyway (jit caches keyed by the
# static network spec, not by the seed).
SEED_FREE_PARTS = frozenset({"signal propagation", "finite width", "preactivation kurtosis"})
CONFIG_CACHE_SIZE = 256
_config_cache: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _remember(key: tuple[str, str], values: dict[str, np.ndarray]) -> None:
    """Keep ``values`` for ``key``, dropping the oldest entries past `CONFIG_CACHE_SIZE`."""
    _config_cache[key] = {k: np.array(v, copy=True) for k, v in values.items()}
    while len(_config_cache) > CONFIG_CACHE_SIZE:
        _config_cache.pop(next(iter(_config_cache)))


# Where JAX keeps compiled kernels between processes (each Dask worker, each rerun): without
# it every process recompiles each configuration's kernels, about 1-2 s each (more than the
# simulation of a quickstart point). GRADSTATS_JAX_CACHE=off disables it; a directory there,
# or JAX's own JAX_COMPILATION_CACHE_DIR, moves it.
JAX_CACHE_ENV = "GRADSTATS_JAX_CACHE"


@functools.cache
def enable_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache (once per process); the directory used,
    or None when disabled or already configured by the user."""
    import os
    from pathlib import Path

    import jax

    choice = os.environ.get(JAX_CACHE_ENV, "")
    if choice.lower() in ("off", "0", "no", "false") or jax.config.jax_compilation_cache_dir:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = Path(choice) if choice else base / "gradstats" / "jax"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile in memory as before
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(directory)


CONV_THEORY_MODULE = "gradstats.theory.conv.layer_maps"


def missing_theory(point) -> str | None:
    """Why no prediction can be computed for ``point`` at all (None when theory exists): a
    cnn needs the convolutional kernel maps (`CONV_THEORY_MODULE`), which the layer kinds of
    `gradstats.layers.conv` delegate to."""
    if not point.arch.is_cnn:
        return None
    import importlib.util

    try:
        found = importlib.util.find_spec(CONV_THEORY_MODULE) is not None
    except ModuleNotFoundError:  # a parent package is missing
        found = False
    if found:
        return None
    return (f'predictions skipped: architecture = "cnn" needs the convolutional kernels of '
            f"{CONV_THEORY_MODULE}, which this installation does not have")


def _outside_parts(point) -> set[str]:
    """Parts whose every comparison is outside for ``point`` (not computed): the kernel parts
    for a parameterization outside the kernel recursions (mup, mean_field), the linearized-SGD
    part for adam/adamw (`gradstats.theory.validity`)."""
    from gradstats import parameterization as pz

    skip = set()
    if not pz.get(point.arch.parameterization).kernel_row:
        skip |= {"conditional", "at init", "null moments", "NNGP outputs", "signal propagation",
                 "NTK at init", "finite width", "preactivation kurtosis", "lazy training"}
    if point.training.optimizer not in ("sgd", "momentum"):
        skip.add("lazy training")
    return skip


# --- the parts -------------------------------------------------------------------------------

def _steps(record) -> np.ndarray:
    return np.asarray(record.steps)


def conditional(record, theory) -> dict[str, np.ndarray]:
    """Per recorded step: gradient norms and backward signals given the measured readout
    gradient on that step's minibatch (kernel at init: the lazy prediction at step > 0)."""
    point: Point = record.point
    inputs = record.inputs
    n_steps, n_layers = len(_steps(record)), point.arch.n_layers
    names = ("grad_sq_norm", "bias_grad_sq_norm", "backward_q")
    out = {f"theory_{n}": np.full((n_steps, n_layers), np.nan) for n in names}
    from gradstats.theory.validity import LAZY_NTK_CHANGE_MAX

    index = record.values["batch_index"]
    grad_output = record.values["batch_grad_output"]
    change = record.values.get("ntk_rel_change", np.zeros(n_steps))
    steps = _steps(record)
    for i in range(n_steps):
        g = grad_output[i]
        if not np.all(np.isfinite(g)) or not np.all(np.isfinite(index[i])):
            continue
        if steps[i] > 0 and not change[i] <= LAZY_NTK_CHANGE_MAX:  # outside the lazy domain:
            continue  # untested (compare marks the cell outside from the same NTK change)
        x = inputs.x_train[index[i].astype(np.int64)]
        pred = theory.conditional_statistics(point.arch, x, g, quadrature=_quadrature())
        for n in names:
            out[f"theory_{n}"][i] = np.asarray(pred[n], dtype=float)
    return out


def at_init(record, theory) -> dict[str, np.ndarray]:
    """Unconditional predictions on the step-0 minibatch: forward_q and weight norms."""
    point: Point = record.point
    inputs = record.inputs
    arch = point.arch
    pred = theory.predict_statistics(arch, inputs.x0, inputs.y0, loss=point.training.loss,
                                     quadrature=_quadrature())
    return {"theory_forward_q": np.asarray(pred["forward_q"], dtype=float),
            "theory_weight_sq_norm": np.asarray(pred["weight_sq_norm"], dtype=float)}


def null_moments(record, theory) -> dict[str, np.ndarray]:
    """Mean and variance over f ~ GP(0, K) of the chi^2-like statistics at init."""
    point: Point = record.point
    inputs = record.inputs
    moments = theory.unconditional_moments(point.arch, inputs.x0, inputs.y0,
                                           loss=point.training.loss, quadrature=_quadrature())
    out = {}
    for name in ("grad_sq_norm", "output_mean_sq", "batch_loss"):
        mean, var = moments[name]
        out[f"theory_{name}_null_mean"] = np.asarray(mean, dtype=float)
        out[f"theory_{name}_null_var"] = np.asarray(var, dtype=float)
    return out


def nngp_outputs(record, theory) -> dict[str, np.ndarray]:
    """Step-0 outputs whitened by the NNGP kernel of the minibatch: (B, output_dim), NaN rows
    beyond the resolvable eigen-directions."""
    from gradstats.theory.validity import whitening_rcond

    inputs = record.inputs
    k = np.asarray(theory.nngp(record.point.arch, inputs.x0, quadrature=_quadrature()),
                   dtype=float)
    z = whiten(k, inputs.output0, rcond=whitening_rcond(record.point))
    padded = np.full(inputs.output0.shape, np.nan)
    padded[: len(z)] = z
    return {"theory_nngp_whitened_output": padded}


def whiten(k: np.ndarray, f: np.ndarray, rcond: float) -> np.ndarray:
    """z = Lambda^-1/2 V^T f over the eigenpairs of K with eigenvalue > rcond * max:
    f (n, outputs) -> z (kept, outputs), iid N(0, 1) when f ~ N(0, K) per output."""
    evals, evecs = np.linalg.eigh(0.5 * (k + k.T))
    keep = evals > rcond * evals.max()
    return (evecs[:, keep].T @ f) / np.sqrt(evals[keep])[:, None]


def signal(record, theory) -> dict[str, np.ndarray]:
    """ln chi_1 of the architecture (fixed-point decay rate per layer); plain MLPs only: the
    mean-field fixed point of h_l = W phi(h_{l-1}) is no rate of a residual or normalized
    network (its per-layer curve is in theory_backward_q)."""
    if not record.point.arch.is_mlp:
        return {}
    chi_1 = float(theory.signal_propagation(record.point.arch).chi_1)
    return {"theory_ln_chi1": np.asarray(math.log(chi_1) if chi_1 > 0 else np.nan)}


def ntk_at_init(record, theory) -> dict[str, np.ndarray]:
    """Relative Frobenius error of the empirical per-output NTK at init on the probe."""
    inputs = record.inputs
    probe = inputs.x_train[: len(inputs.probe_ntk0)]
    theta = np.asarray(theory.ntk(record.point.arch, probe, quadrature=_quadrature()), dtype=float)
    err = np.linalg.norm(inputs.probe_ntk0 - theta) / np.linalg.norm(theta)
    return {"theory_ntk_init_rel_err": np.asarray(err)}


def bounds(record, theory) -> dict[str, np.ndarray]:
    """Product bounds on ||dL/dW_l||_F of the step-0 network, at the raw-weight scale; plain
    MLPs only (derived for h_l = W_l phi(h_{l-1}): a residual or normalized network is
    `outside` their domain, `gradstats.theory.validity.plain_mlp`, and they are not computed)."""
    inputs, arch = record.inputs, record.point.arch
    if inputs.grad_output0 is None or not arch.is_mlp:
        return {}
    args = (inputs.weights0, inputs.preacts0, inputs.grad_output0, inputs.x0)
    out = {"theory_product_bound": np.asarray(
        theory.bounds.product_bound(*args, arch.activation), dtype=float) * inputs.w_mult}
    if arch.activation == "relu":
        out["theory_relu_masked_bound"] = np.asarray(
            theory.bounds.relu_masked_bound(*args), dtype=float) * inputs.w_mult
    return out


def finite_width(record, theory) -> dict[str, np.ndarray]:
    """Hanin-Nica law of ln grad_sq_norm per layer (variance, mean shift, the mean's finite-
    width factor), inside its setting only."""
    from gradstats.theory.validity import hanin_nica

    point = record.point
    if hanin_nica(point) is not None:
        return {}
    arch = point.arch
    fw = theory.finite_width
    var = np.broadcast_to(np.asarray(fw.ln_grad_sq_norm_variance(arch), dtype=float),
                          (arch.n_layers,)).copy()
    kurtosis = np.broadcast_to(np.asarray(fw.ln_grad_sq_norm_excess_kurtosis(arch), dtype=float),
                               (arch.n_layers,)).copy()
    out = {"theory_ln_grad_sq_norm_var": var,
           "theory_ln_grad_sq_norm_mean_shift": np.asarray(fw.ln_grad_sq_norm_mean_shift(arch),
                                                            dtype=float),
           "theory_grad_sq_norm_mean_factor": np.asarray(fw.grad_sq_norm_mean_factor(arch),
                                                          dtype=float),
           "theory_ln_grad_sq_norm_kurtosis": kurtosis}
    return out


def preact_kurtosis(record, theory) -> dict[str, np.ndarray]:
    """Excess kurtosis of one pre-activation unit per layer over networks, on sphere data
    (q0 = 1) for plain Gaussian MLPs: exact (with the exact per-seed standard deviation of
    the test's influence values) for homogeneous activations without bias at batch_size 1,
    else the leading-order recursion alone (`gradstats.theory.validity.preact_kurtosis`)."""
    from gradstats.theory import validity

    point = record.point
    if validity.preact_kurtosis_setting(point) is not None:
        return {}
    fw = theory.finite_width
    if validity.preact_kurtosis(point) is None:  # the exact setting of the comparison
        return {"theory_preact_kurtosis":
                np.asarray(fw.preact_excess_kurtosis_exact(point.arch), dtype=float),
                "theory_preact_kurtosis_sd":
                np.asarray(fw.preact_moments_influence_sd(point.arch), dtype=float)}
    return {"theory_preact_kurtosis":
            np.asarray(fw.preact_excess_kurtosis(point.arch, q0=1.0), dtype=float)}


def lazy(record, theory) -> dict[str, np.ndarray]:
    """Training loss of the network's linearization at init (same minibatches, lr, momentum)."""
    point, inputs = record.point, record.inputs
    t = point.training
    if t.steps == 0 or inputs.train_ntk0 is None:
        return {}
    steps = _steps(record)
    batches = inputs.batch_array[: t.steps]
    reachable = steps[steps <= len(batches)]  # a diverged run stops early
    if len(reachable) == 0:
        return {}
    record_steps = np.union1d([0], reachable)
    pred = theory.lazy.linearized_sgd(inputs.train_ntk0, inputs.train_output0, inputs.y_train,
                                      batches, t.lr, record_steps, momentum=t.momentum, loss=t.loss)
    loss = np.asarray(pred["full_loss"], dtype=float)
    out = np.full(len(steps), np.nan)
    out[: len(reachable)] = loss[np.searchsorted(record_steps, reachable)]
    return {"theory_full_loss_lazy": out, "theory_full_loss_lazy_init": np.asarray(loss[0])}


PARTS = (("conditional", conditional), ("at init", at_init), ("null moments", null_moments),
         ("NNGP outputs", nngp_outputs),
         ("signal propagation", signal), ("NTK at init", ntk_at_init), ("bounds", bounds),
         ("finite width", finite_width), ("preactivation kurtosis", preact_kurtosis),
         ("lazy training", lazy))


# --- batch normalization ----------------------------------------------------------------------
# A batch-normalized network (norm = "batch") couples the examples of a minibatch: there is no
# per-pair kernel map, per-example NTK or MLP product bound, so the parts above do not apply.
# Its predictions are the batch-level mean field of Yang et al. (2019) and the exact weight norms.

def weight_norms(record, theory) -> dict[str, np.ndarray]:
    """E||effective W_l||_F^2 at init (exact for any composition)."""
    return {"theory_weight_sq_norm": np.asarray(theory.predict.weight_sq_norm(record.point.arch),
                                                dtype=float)}


def batch_norm_growth(record, theory) -> dict[str, np.ndarray]:
    """ln lambda(B): the per-layer growth of ||dL/dW_l||^2 toward the input (B >= 4)."""
    from gradstats.theory.batchnorm import MIN_BATCH

    point = record.point
    if point.training.batch_size < MIN_BATCH:
        return {}
    rate = theory.batchnorm.bn_gradient_growth_rate(point.arch.activation,
                                                    point.training.batch_size)
    return {"theory_bn_ln_growth": np.asarray(math.log(rate))}


BATCH_NORM_PARTS = (("weight norms", weight_norms), ("batch-norm growth rate", batch_norm_growth))
