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
}


def estimator_names() -> list[str]:
    """Names accepted in ``measure``: the built-in ones plus any registered so far."""
    registry = sys.modules.get("gradstats.simulate.estimators")
    registered = getattr(registry, "ESTIMATORS", {}) if registry is not None else {}
    return sorted(set(BUILTIN_ESTIMATORS) | set(registered))
