"""What an estimator sees and how it plugs into the training loop.

An estimator is a pure ``(init, update)`` pair (optax style): ``init`` builds its state from
the run's context once, ``update`` receives the state and an immutable snapshot of one
recorded step and returns the new state and the values it measured at that step.

Values are numpy arrays keyed by registry name (`gradstats.statistics`), shaped by the
statistic's registry dims *without* ``step`` (the loop stacks steps): a ``("step", "layer")``
statistic returns shape ``(depth+1,)``; ``("step", "layer", "sample")`` returns
``(depth+1, batch)``; a ``()`` statistic returns a scalar and is recorded once, at the last
recorded step. Sizes of extra dims must not change between steps of one point.

Sweep files choose estimators by name in ``measure = [...]``; `ESTIMATORS` maps names to
factories. The spine's statistics are always recorded (`gradstats.simulate.training`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from gradstats.simulate.model import MLP, Forward
from gradstats.spec import Point


@dataclass(frozen=True)
class RunContext:
    """One point's run: its spec, the model at init, the full training set, a seeded rng.

    x_train: (n_train, input_dim); y_train: (n_train, output_dim) float targets for mse,
    (n_train,) int64 class labels for cross_entropy. ``loss_fn(output, y)`` returns the
    per-example losses, shape (batch,): 0.5*||f_i - y_i||^2 (mse) or cross-entropy.
    ``rng`` is derived from the point's content key (same point -> same draws).
    """

    point: Point
    model: MLP
    device: torch.device
    dtype: torch.dtype
    x_train: torch.Tensor
    y_train: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    rng: np.random.Generator


@dataclass(frozen=True)
class StepSnapshot:
    """The state of training at one recorded step, before that step's update.

    x: (B, input_dim) minibatch; y: its targets; forward: the minibatch forward pass whose
    ``preacts[l-1].grad`` hold dL/dh_l for L = mean_i loss_i (so B * grad is the per-example
    backward signal d loss_i / d h_l,i); loss: L (0-dim tensor); weight_grads[l-1]: dL/dW_l of
    the raw parameter W_l, (fan_out, fan_in); bias_grads: likewise or None without bias.
    Estimators must not modify the model or these tensors.
    """

    step: int
    model: MLP
    x: torch.Tensor
    y: torch.Tensor
    forward: Forward
    loss: torch.Tensor
    weight_grads: list[torch.Tensor]
    bias_grads: list[torch.Tensor] | None


State = Any
Values = dict[str, np.ndarray]


class Estimator(Protocol):
    """A named group of statistics measured at recorded steps."""

    name: str
    statistics: tuple[str, ...]

    def init(self, ctx: RunContext) -> State: ...

    def update(self, ctx: RunContext, state: State, snap: StepSnapshot) -> tuple[State, Values]: ...


ESTIMATORS: dict[str, Callable[[], Estimator]] = {}


def register_estimator(name: str, factory: Callable[[], Estimator]) -> None:
    """Make ``measure = [name]`` in a sweep file use ``factory()``."""
    if name in ESTIMATORS:
        raise ValueError(f"estimator {name!r} is already registered")
    ESTIMATORS[name] = factory


def available_estimators() -> list[str]:
    """Names accepted in a sweep file's ``measure`` list."""
    _load_builtin_estimators()
    return sorted(ESTIMATORS)


def make_estimator(name: str) -> Estimator:
    """A fresh estimator by name (KeyError naming the known ones otherwise)."""
    _load_builtin_estimators()
    try:
        return ESTIMATORS[name]()
    except KeyError:
        raise KeyError(f"unknown estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}") from None


def _load_builtin_estimators() -> None:
    """Import the modules that register the built-in estimators (each registers on import)."""
    import importlib

    for module in BUILTIN_ESTIMATOR_MODULES:
        importlib.import_module(module)


# Modules whose import registers estimators; add yours here.
BUILTIN_ESTIMATOR_MODULES: list[str] = ["gradstats.simulate.engine_estimators",
                                         "gradstats.simulate.distribution_estimators"]
