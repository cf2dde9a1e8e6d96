"""Which points may train in one seed ensemble (no torch: the sweep driver groups by it)."""

from __future__ import annotations

import hashlib
import json

from gradstats.spec import Point

# values that only scale the multipliers and the initial draws: members may differ in them
PER_MEMBER_VALUES = ("sigma_w2", "sigma_b2")
# optimizers whose lr may differ per member (`optimizers.MemberSGD`, `optimizers.MemberAdam`)
PER_MEMBER_LR_OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")


def ensemble_key(point: Point) -> str:
    """What the members of one ensemble share: the point without its seed and
    `PER_MEMBER_VALUES`, and without its lr for `PER_MEMBER_LR_OPTIMIZERS` (16 hex digits)."""
    d = point.to_dict()
    d["seed"] = None
    d["arch"] = {**d["arch"], **dict.fromkeys(PER_MEMBER_VALUES)}
    if point.training.optimizer in PER_MEMBER_LR_OPTIMIZERS:
        d["training"] = {**d["training"], "lr": None}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
