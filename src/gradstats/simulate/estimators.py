"""What an estimator sees and how it plugs into the training loop.

An estimator is a pure ``(init, update)`` pair (optax style): ``init(ctx)`` builds its state
from the run's context once; ``update(ctx, state, snap)`` receives the state and an immutable
snapshot of one recorded step and returns a NEW state (the old one is never modified) and
the values it measured at that step.

Independence: an estimator's values depend on the point and its own name only, never on
which other estimators run or in which order. So it draws random numbers only from its own
streams, ``ctx.stream(name, *tags)`` (seeded from the point's key, the estimator's name and
the tags, e.g. the step), and it shares expensive per-step quantities (per-example signals
and Grams, the float64 copy of the network) only through the snapshot's `StepCache`, whose
entries are computed on first use, at most once per step, the same whoever asks first.

Values are numpy arrays keyed by registry name (`gradstats.statistics`), shaped by the
statistic's registry dims *without* ``step`` (the loop stacks steps): a ``("step", "layer")``
statistic returns shape ``(depth+1,)``; ``("step", "layer", "sample")`` returns
``(depth+1, batch)``; a ``()`` statistic returns a scalar and is recorded once, at the last
recorded step. Sizes of extra dims must not change between steps of one point.

Sweep files choose estimators by name in ``measure = [...]``; `ESTIMATORS` maps names to
estimators (the names, without torch, are in `gradstats.simulate.estimator_names`). The
spine's statistics are always recorded (`gradstats.simulate.training`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from gradstats.simulate import engine
from gradstats.simulate.estimator_names import BUILTIN_ESTIMATORS
from gradstats.simulate.model import MLP, Forward
from gradstats.spec import Point

T = TypeVar("T")


def random_stream(seed: int, *tags: object) -> np.random.Generator:
    """A numpy generator seeded from ``seed`` and ``tags`` (their ``str``), stable across runs
    and machines: SeedSequence of the seed and the SHA-256 words of ``"|".join(tags)``."""
    digest = hashlib.sha256("|".join(map(str, tags)).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, len(digest), 4)]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


@dataclass(frozen=True)
class RunContext:
    """One point's run: its spec, the model at init, the full training set, the seed material.

    x_train: (n_train, input_dim); y_train: (n_train, output_dim) float targets for mse,
    (n_train,) int64 class labels for cross_entropy. ``loss_fn(output, y)`` returns the
    per-example losses, shape (batch,): 0.5*||f_i - y_i||^2 (mse) or cross-entropy.
    ``seed``: the estimators' seed derived from the point's content key
    (`gradstats.simulate.training.derive_seeds`); estimators draw only via `stream`.
    """

    point: Point
    model: MLP
    device: torch.device
    dtype: torch.dtype
    x_train: torch.Tensor
    y_train: torch.Tensor
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    seed: int = 0

    def stream(self, name: str, *tags: object) -> np.random.Generator:
        """A fresh generator of estimator ``name``'s own stream ``tags`` (e.g. the step):
        the same draws for the same point, whatever else is measured."""
        return random_stream(self.seed, name, *tags)


class StepCache:
    """Per-step memo of quantities several estimators need: ``get(key, compute)`` runs
    ``compute()`` on the first request of ``key`` only. Entries must be pure functions of
    the snapshot (so it does not matter who asks first); consumers must not modify them."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def __contains__(self, key: str) -> bool:
        return key in self._values


@dataclass(frozen=True)
class StepSnapshot:
    """The state of training at one recorded step, before that step's update.

    x: (B, input_dim) minibatch; y: its targets; forward: the minibatch forward pass whose
    ``preacts[l-1].grad`` hold dL/dh_l for L = mean_i loss_i (so B * grad is the per-example
    backward signal d loss_i / d h_l,i); loss: L (0-dim tensor); weight_grads[l-1]: dL/dW_l of
    the raw parameter W_l, (fan_out, fan_in); bias_grads: likewise or None without bias.
    optimizer: the optimizer before this step's update (torch.optim.Adam / AdamW, whose
    state holds what the previous updates left, or `optimizers.SGD`), or None. cache: this
    step's shared quantities (`example_signals`, `example_grams64`, `model64`). Estimators
    must not modify the model, the optimizer or these tensors.
    """

    step: int
    model: MLP
    x: torch.Tensor
    y: torch.Tensor
    forward: Forward
    loss: torch.Tensor
    weight_grads: list[torch.Tensor]
    bias_grads: list[torch.Tensor] | None
    optimizer: Any = field(default=None, repr=False, compare=False)
    cache: StepCache = field(default_factory=StepCache, repr=False, compare=False)


# --- quantities shared through the step cache ----------------------------------------------

def example_signals(ctx: RunContext, snap: StepSnapshot) -> engine.Signals:
    """Per-example inputs and backward signals of the minibatch: B * the step's retained
    ``h_l.grad`` (no extra pass), else one extra forward/backward (`engine.signals`)."""
    def compute() -> engine.Signals:
        sig = engine.signals_from_forward(snap.model, snap.forward, scale=float(snap.x.shape[0]))
        return sig if sig is not None else engine.signals(snap.model, snap.x, snap.y, ctx.loss_fn)

    return snap.cache.get("example_signals", compute)


def example_grams64(ctx: RunContext, snap: StepSnapshot) -> engine.LayerGrams:
    """Per-layer Gram factors of the per-example loss gradients, formed in float64."""
    return snap.cache.get("example_grams64",
                          lambda: engine.grams(example_signals(ctx, snap), dtype=torch.float64))


def example_gram64(ctx: RunContext, snap: StepSnapshot) -> tuple[torch.Tensor, torch.Tensor]:
    """(per_layer (L, B, B), total (B, B)) float64 Grams <grad_l_i, grad_l_j> of each layer's
    parameters (weight + bias) and of all parameters."""
    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        g = example_grams64(ctx, snap)
        per_layer = g.weight_part() + g.bias_part()
        return per_layer, per_layer.sum(0)

    return snap.cache.get("example_gram64", compute)


def model64(snap: StepSnapshot) -> MLP:
    """The network at this step as float64 (a copy of a float32 one: the same weights exactly)."""
    return snap.cache.get("model64", lambda: engine.model_as_dtype(snap.model, torch.float64))


# --- the registry ----------------------------------------------------------------------------

State = Any
Values = dict[str, np.ndarray]


@dataclass(frozen=True)
class Estimator:
    """A named group of statistics measured at recorded steps: a pure ``(init, update)`` pair.

    init(ctx) -> state; update(ctx, state, snap) -> (new state, values). Random draws come
    from ``ctx.stream(name, ...)`` only; shared per-step quantities from ``snap.cache``.
    """

    name: str
    statistics: tuple[str, ...]
    init: Callable[[RunContext], State]
    update: Callable[[RunContext, State, StepSnapshot], tuple[State, Values]]


def stateless(ctx: RunContext) -> None:
    """``init`` of an estimator that keeps no state across steps."""
    return None


ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(estimator: Estimator) -> None:
    """Make ``measure = [estimator.name]`` in a sweep file use ``estimator``; the name must be
    declared in `gradstats.simulate.estimator_names` (sweep files are checked against it)."""
    if estimator.name in ESTIMATORS:
        raise ValueError(f"estimator {estimator.name!r} is already registered")
    if estimator.name not in BUILTIN_ESTIMATORS:
        raise ValueError(f"estimator {estimator.name!r}: declare it in "
                         "gradstats.simulate.estimator_names.BUILTIN_ESTIMATORS")
    ESTIMATORS[estimator.name] = estimator


def available_estimators() -> list[str]:
    """Names accepted in a sweep file's ``measure`` list (registers the built-in ones)."""
    _load_builtin_estimators()
    return sorted(ESTIMATORS)


def make_estimator(name: str) -> Estimator:
    """The estimator called ``name`` (KeyError naming the known ones otherwise)."""
    _load_builtin_estimators()
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise KeyError(f"unknown estimator {name!r}; known: {', '.join(sorted(ESTIMATORS))}") from None


def _load_builtin_estimators() -> None:
    """Import the modules that register the built-in estimators (each registers on import)."""
    for module in dict.fromkeys(BUILTIN_ESTIMATORS.values()):
        importlib.import_module(module)
