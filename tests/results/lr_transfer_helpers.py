"""Synthetic lr-transfer sweeps whose optimum is known by construction."""

from __future__ import annotations

import numpy as np
import xarray as xr

WIDTHS = [128, 256, 512, 1024]
LOG2_LR = np.arange(-12, 1)            # 13 grid lrs, factor 2
SEEDS = 4


def parabola_dataset(best: dict[str, list[float]], curvature: float = 0.1, noise: float = 0.01,
                     seed: int = 0) -> xr.Dataset:
    """full_loss (parameterization, width, lr, seed, step) = 0.05 + curvature (log2 lr -
    best[pz][width])^2 + noise at the last step (2.3 at step 0); diverged all 0."""
    rng = np.random.default_rng(seed)
    pzs = list(best)
    centre = np.array([best[p] for p in pzs], dtype=float)[:, :, None, None]
    shape = (len(pzs), len(WIDTHS), len(LOG2_LR), SEEDS)
    last = (0.05 + curvature * (LOG2_LR[None, None, :, None] - centre) ** 2
            + noise * rng.standard_normal(shape))
    loss = np.stack([np.full(shape, 2.3), last], axis=-1)
    coords = {"parameterization": pzs, "width": WIDTHS, "lr": 2.0 ** LOG2_LR,
              "seed": np.arange(SEEDS), "step": [0, 100]}
    dims = list(coords)
    return xr.Dataset({"full_loss": (dims, loss),
                       "diverged": (dims[:-1], np.zeros(shape))}, coords=coords).assign_coords(
        optimizer="adam", depth=2)
