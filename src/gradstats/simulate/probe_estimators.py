"""Probes of a point's initial state, re-created exactly from its spec (for `results.compare`).

A point's numbers depend only on its spec (`gradstats.simulate.training.derive_seeds`), so
the training data, the step-0 minibatch and the network at init can be rebuilt after the
run: theory is then evaluated on exactly the inputs the simulator used, without recording
them. These are functions, not estimators: nothing here runs inside the training loop.
"""

from __future__ import annotations

import numpy as np
import torch

from gradstats.simulate.data import load_data
from gradstats.simulate.engine import empirical_ntk_model
from gradstats.simulate.model import build_model
from gradstats.simulate.training import _BatchSampler, derive_seeds
from gradstats.spec import Point

NTK_PROBE_SIZE = 64  # the `ntk` estimator's probe: the first min(64, n_train) training inputs


def _dtype(point: Point) -> torch.dtype:
    return torch.float64 if point.dtype == "float64" else torch.float32


def init_batch(point: Point) -> tuple[np.ndarray, np.ndarray]:
    """The step-0 minibatch of ``point``: x (B, input_dim) and y, (B, output_dim) float
    targets for mse or (B,) int labels for cross_entropy."""
    seeds = derive_seeds(point)
    data = load_data(point.data, point.training.loss, seeds.data)
    index = _BatchSampler(len(data.x), point.training.batch_size, seeds.batches).next()
    return data.x[index], data.y[index]


def probe_inputs(point: Point, size: int = NTK_PROBE_SIZE) -> np.ndarray:
    """The first min(size, n_train) training inputs of ``point``: (n, input_dim)."""
    data = load_data(point.data, point.training.loss, derive_seeds(point).data)
    return data.x[:size]


def init_outputs(point: Point, x: np.ndarray) -> np.ndarray:
    """Outputs f(x) of ``point``'s network at init: (n, output_dim) float64."""
    model = build_model(point.arch, derive_seeds(point).init, dtype=_dtype(point))
    with torch.no_grad():
        out = model(torch.as_tensor(x, dtype=_dtype(point)))
    return out.double().numpy()


def init_ntk(point: Point, x: np.ndarray) -> np.ndarray:
    """Empirical NTK at init of ``point``'s network on x (traced over outputs): (n, n)."""
    model = build_model(point.arch, derive_seeds(point).init, dtype=_dtype(point))
    theta = empirical_ntk_model(model, torch.as_tensor(x, dtype=_dtype(point)))
    return theta.detach().double().numpy()


def init_bound_inputs(point: Point) -> dict[str, object]:
    """What `gradstats.theory.bounds` needs for ``point``'s network at init on its step-0
    minibatch, re-created exactly as the simulator ran it (same derived seeds, batch sampler,
    dtype and per-example loss, minibatch loss L = mean_i l_i):

    ``weights``: effective weights W_l = w_mult_l * W_raw_l, (fan_out, fan_in) per layer;
    ``preacts``: h_l (B, n_l) per layer; ``x``: (B, input_dim); ``grad_output``: dL/df
    (B, output_dim), carrying the 1/B of the mean loss; ``w_mult``: (L,) multipliers
    (dL/dW_raw = w_mult * dL/dW_eff, `bounds.raw_scale`). Arrays are float64 numpy.
    """
    from gradstats.simulate.training import per_example_loss_fn

    dtype = _dtype(point)
    x, y = init_batch(point)
    model = build_model(point.arch, derive_seeds(point).init, dtype=dtype)
    xt = torch.as_tensor(x, dtype=dtype)
    yt = torch.as_tensor(y, dtype=torch.int64 if point.training.loss == "cross_entropy"
                         else dtype)
    with torch.no_grad():
        fwd = model.forward_all(xt)
    out = fwd.output.detach().clone().requires_grad_(True)
    loss = per_example_loss_fn(point.training.loss)(out, yt).mean()
    (grad_output,) = torch.autograd.grad(loss, out)
    n = point.arch.n_layers
    return {
        "weights": [model.effective_weight(l).detach().double().numpy() for l in range(1, n + 1)],
        "preacts": [h.double().numpy() for h in fwd.preacts],
        "x": xt.double().numpy(),
        "grad_output": grad_output.double().numpy(),
        "w_mult": np.asarray(model.w_mult, dtype=float),
    }
