"""The estimators a sweep file may name in ``measure``, without importing torch.

`BUILTIN_ESTIMATORS` maps each name to the module that registers it
(`gradstats.simulate.estimators.register_estimator` refuses names not declared here), so a
sweep file is validated without building anything; add a new estimator's name here.
"""

from __future__ import annotations

import sys

BUILTIN_ESTIMATORS: dict[str, str] = {
    "per_example": "gradstats.simulate.engine_estimators",
    "full_batch": "gradstats.simulate.engine_estimators",
    "ntk": "gradstats.simulate.engine_estimators",
    "distribution": "gradstats.simulate.distribution_estimators",
    "directions": "gradstats.simulate.distribution_estimators",
    "updates": "gradstats.simulate.update_estimators",
    "xie": "gradstats.simulate.paper_estimators",
}


# Groups that need the gradient of each example's own loss (or output) with respect to the
# parameters. With batch normalization (norm = "batch") example i's output depends on the whole
# batch through the batch statistics, so these per-example gradients are not defined: a sweep
# naming one of them for a batch-normalized network is refused (`batch_norm_refusal`).
NEEDS_PER_EXAMPLE: dict[str, str] = {
    "per_example": "per-example gradients",
    "full_batch": "per-example gradients (over the whole training set)",
    "directions": "per-example gradients (their directions and minibatch Grams)",
    "ntk": "per-example gradients (the empirical NTK's per-example Jacobians)",
    "xie": "per-example gradients (the gradient-noise covariance spectrum) and a full-batch "
           "gradient",
}


def batch_norm_refusal(name: str) -> str | None:
    """Why estimator ``name`` cannot run on a batch-normalized network (None if it can)."""
    need = NEEDS_PER_EXAMPLE.get(name)
    if need is None:
        return None
    return f'{name} needs {need}, which batch normalization (norm = "batch") does not define'


# Groups not implemented for convolutional networks (architecture = "cnn"), with the reason:
# they read dense (fan_out, fan_in) weight matrices or (B, features) inputs. per_example,
# full_batch and ntk run on conv layers (`gradstats.simulate.conv_engine`).
CNN_UNSUPPORTED: dict[str, str] = {
    "distribution": "its per-coordinate gradient tests are written for dense weight matrices",
    "directions": "its direction statistics read dense per-example outer products",
    "updates": "its operator norms and probe features are written for dense (fan_out, fan_in) "
               "weights",
    "xie": "its noise-spectrum protocol materializes dense-layer per-example gradients",
}


def cnn_refusal(name: str) -> str | None:
    """Why estimator ``name`` cannot run on a cnn (None if it can)."""
    reason = CNN_UNSUPPORTED.get(name)
    return None if reason is None else f'{name} is not available for architecture = "cnn": {reason}'


def estimator_names() -> list[str]:
    """Names accepted in ``measure``: the built-in ones plus any registered so far."""
    registry = sys.modules.get("gradstats.simulate.estimators")
    registered = getattr(registry, "ESTIMATORS", {}) if registry is not None else {}
    return sorted(set(BUILTIN_ESTIMATORS) | set(registered))
