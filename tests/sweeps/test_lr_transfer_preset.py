"""The lr-transfer preset parses and expands to its lr x width grid per parameterization."""

from __future__ import annotations

import math
from collections import defaultdict

from gradstats.sweeps import expand, resolve_sweep


def test_lr_transfer_expands_to_a_factor_2_lr_grid_per_parameterization_over_8x_width():
    sweep = resolve_sweep("lr-transfer")
    points = expand(sweep)
    widths = sorted({p.arch.width for p in points})
    assert widths == [128, 256, 512, 1024]
    lrs: dict[str, set[float]] = defaultdict(set)
    for p in points:
        lrs[p.arch.parameterization].add(p.training.lr)
    assert set(lrs) == {"standard", "mup"}
    for grid in lrs.values():
        steps = sorted(math.log2(lr) for lr in grid)
        assert steps == list(range(int(steps[0]), int(steps[-1]) + 1)), steps
    assert len(lrs["standard"]) == 9 and len(lrs["mup"]) == 6
    seeds = sorted({p.seed for p in points})
    assert seeds == [0, 1, 2]
    assert len(points) == len(widths) * (len(lrs["standard"]) + len(lrs["mup"])) * len(seeds)
    assert len({p.key() for p in points}) == len(points)
    for p in points:
        t = p.training
        assert (t.optimizer, t.loss, t.steps, t.record) == ("adam", "cross_entropy", 100, (0, 100))
        assert (p.data.name, p.data.n_train, p.arch.depth, p.arch.activation) == (
            "digits", 1797, 2, "relu")
        assert (p.arch.input_dim, p.arch.output_dim) == (64, 10)
