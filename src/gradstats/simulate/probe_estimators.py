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
