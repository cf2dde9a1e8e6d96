"""Learning-rate transfer: the loss-optimal base lr per width and how far it moves.

`lr_transfer_summary(ds)` reads a results dataset with ``lr`` and ``width`` dims (the
``lr-transfer`` preset) and returns, per group (every other varying dim: parameterization,
optimizer, ...) and width:

- the seed mean of the loss at the last recorded step per lr and its standard error;
- the loss-optimal lr (argmin of the seed mean over that group's lr grid), its distance
  from the grid's edge in grid steps and whether it sits on the edge;
- whether the optimum is resolved: the loss at each neighbouring grid lr exceeds the
  optimum's by more than t * se_diff, with se_diff = sqrt(se_opt^2 + se_neighbour^2) (seeds
  independent: each lr has its own initializations) and t the one-sided ``level`` critical
  value of Welch's t (Welch-Satterthwaite degrees of freedom). The argmin is selected as the
  smallest of the noisy means, so a loose rule finds optima in noise: on a flat loss over 8
  (13) grid lrs, a fixed 2 se calls 9% (12%) of interior argmins resolved at 3 seeds, this
  rule at level 0.05 5% (7%) (simulated, 4000 draws);
- the plausible lrs: those not significantly above the optimum by the same test, and from
  them the range of shifts the data allow;
- the shift of the optimal lr from the smallest width, in grid steps (log of the lr ratio
  over log of the grid factor; log2 for a factor-2 grid).

A group's lr grid is the set of lrs it was run at (a sweep may give each parameterization
its own grid through ``[[zip]]``; combined datasets hold NaN elsewhere, and ``diverged`` is
NaN there). A seed that diverged counts as loss = inf: the seed mean of that lr is inf, so it
never is the optimum, and it is counted in ``n_diverged``. Pure: numpy, scipy, xarray.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy import stats as sps

from gradstats.spec import SEED_DIM, STEP_DIM

LR_DIM, WIDTH_DIM = "lr", "width"
LEVEL = 0.05
# status codes of an optimum (the `status` variable holds these strings)
RESOLVED, UNRESOLVED, EDGE, ALL_DIVERGED, EMPTY = (
    "resolved", "unresolved", "edge", "diverged", "empty")


def final_loss(ds: xr.Dataset, loss: str = "full_loss", step: int | None = None
               ) -> tuple[xr.DataArray, xr.DataArray]:
    """Per point and seed: the loss at ``step`` (default: the last recorded step) with diverged
    seeds set to inf, and a run mask (False where the combination was never run).

    Returns (loss (..., seed), ran (..., seed)); no step dim.
    """
    da = ds[loss]
    if STEP_DIM in da.dims:
        da = da.sel({STEP_DIM: step}) if step is not None else da.isel({STEP_DIM: -1})
    da = da.drop_vars(STEP_DIM, errors="ignore")
    if "diverged" in ds.data_vars:
        div = ds["diverged"].broadcast_like(da)
        ran = div.notnull()
        da = xr.where(div > 0, np.inf, da)
    else:
        ran = da.notnull()
    return da.where(ran), ran


def lr_transfer_summary(ds: xr.Dataset, loss: str = "full_loss", step: int | None = None,
                        level: float = LEVEL) -> xr.Dataset:
    """Optimal lr per (group, width) and its shift with width; see the module docstring.

    ``ds``: variables ``loss`` (..., lr, width, seed[, step]) and optionally ``diverged``
    (..., lr, width, seed); ``level``: of the one-sided neighbour test. Returns a dataset
    with, for G the group dims (the other dims of ``loss``, in their order):

    - ``loss_mean``, ``loss_se``, ``n_seeds``, ``n_diverged``, ``on_grid``, ``plausible``:
      (G, width, lr); ``loss_mean`` is inf where a seed diverged, NaN off the grid;
      ``loss_se`` over the finite seeds (NaN with fewer than 2); ``plausible``: not
      significantly above the optimum by the same test (the optimum itself included);
    - ``lr_opt``, ``loss_opt``, ``loss_opt_se``, ``opt_index`` (position in the group's grid),
      ``edge_steps`` (grid steps to the nearest edge), ``on_edge``, ``resolved``, ``status``
      (resolved / unresolved / edge / diverged / empty), ``lr_low`` / ``lr_high`` (the
      smallest / largest plausible lr), ``shift_steps`` (from the smallest width): (G, width);
    - ``grid_factor`` (G): the median ratio of consecutive grid lrs; ``lr_shift`` (G): the
      shift at the largest width in grid steps; ``lr_shift_low`` / ``lr_shift_high`` (G): the
      smallest / largest shift between a plausible lr of the largest and one of the smallest
      width; ``lr_shift_resolved`` (G): both end optima resolved.
    """
    if LR_DIM not in ds.dims:
        raise ValueError(f"lr transfer needs an {LR_DIM!r} dim; the dataset has dims "
                         f"{', '.join(map(str, ds.dims))}")
    values, ran = final_loss(ds, loss, step)
    if WIDTH_DIM not in values.dims:
        values, ran = (a.expand_dims({WIDTH_DIM: [ds[WIDTH_DIM].item()]}) for a in (values, ran))
    groups = [d for d in values.dims if d not in (WIDTH_DIM, LR_DIM, SEED_DIM)]
    order = [*groups, WIDTH_DIM, LR_DIM, SEED_DIM]
    values = values.sortby(LR_DIM).sortby(WIDTH_DIM).transpose(*order)
    ran = ran.sortby(LR_DIM).sortby(WIDTH_DIM).transpose(*order)
    lrs = values[LR_DIM].values.astype(float)
    cells = _seed_stats(values.values.astype(float), ran.values.astype(bool))
    per_width = cells["mean"].shape[:-1]                  # (G..., width)
    opt = {k: np.full(per_width, np.nan) for k in OPTIMUM_FLOATS}
    opt.update(on_edge=np.zeros(per_width, bool), resolved=np.zeros(per_width, bool),
               status=np.full(per_width, EMPTY, dtype=object))
    plausible = np.zeros(cells["mean"].shape, bool)
    for idx in np.ndindex(per_width):
        found = _optimum(cells["mean"][idx], cells["se"][idx], cells["n_finite"][idx],
                         cells["on_grid"][idx], level)
        plausible[idx] = found.pop("plausible")
        for key, value in found.items():
            opt[key][idx] = value
        if found["status"] not in (EMPTY, ALL_DIVERGED):
            opt["lr_opt"][idx] = lrs[int(found["lr_index"])]
            opt["lr_low"][idx] = lrs[plausible[idx]].min()
            opt["lr_high"][idx] = lrs[plausible[idx]].max()

    factor = np.full(per_width[:-1], np.nan)
    for idx in np.ndindex(factor.shape):
        grid = lrs[cells["on_grid"][idx].any(0)]
        if grid.size > 1:
            factor[idx] = float(np.median(grid[1:] / grid[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        log_f = np.log(factor)
        shift = np.log(opt["lr_opt"] / opt["lr_opt"][..., :1]) / log_f[..., None]
        shift_low = np.log(opt["lr_low"][..., -1] / opt["lr_high"][..., 0]) / log_f
        shift_high = np.log(opt["lr_high"][..., -1] / opt["lr_low"][..., 0]) / log_f

    gdims = tuple(groups)
    wdims = (*gdims, WIDTH_DIM)
    ldims = (*wdims, LR_DIM)
    result = xr.Dataset(
        {
            "loss_mean": (ldims, cells["mean"]), "loss_se": (ldims, cells["se"]),
            "n_seeds": (ldims, cells["n_seeds"]), "n_diverged": (ldims, cells["n_diverged"]),
            "on_grid": (ldims, cells["on_grid"]), "plausible": (ldims, plausible),
            **{k: (wdims, opt[k]) for k in (*OPTIMUM_FLOATS, "on_edge", "resolved")},
            "status": (wdims, opt["status"].astype(str)), "shift_steps": (wdims, shift),
            "grid_factor": (gdims, factor), "lr_shift": (gdims, shift[..., -1]),
            "lr_shift_low": (gdims, shift_low), "lr_shift_high": (gdims, shift_high),
            "lr_shift_resolved": (gdims, opt["resolved"][..., 0] & opt["resolved"][..., -1]),
        },
        coords={d: values[d].values for d in (*groups, WIDTH_DIM, LR_DIM)},
        attrs={"loss": loss, "step": "last" if step is None else int(step), "level": level},
    )
    result = result.drop_vars("lr_index")
    result["loss_mean"].attrs = {"long_name": f"seed mean of {loss} at the last step",
                                 "units": "1"}
    result["lr_opt"].attrs = {"long_name": "loss-optimal base lr", "units": "1"}
    result["shift_steps"].attrs = {"long_name": "shift of the optimal lr from the smallest "
                                                "width", "units": "grid steps"}
    return result


OPTIMUM_FLOATS = ("lr_opt", "loss_opt", "loss_opt_se", "opt_index", "edge_steps", "lr_low",
                  "lr_high", "lr_index")


def _seed_stats(x: np.ndarray, ran: np.ndarray) -> dict[str, np.ndarray]:
    """Per cell over the last (seed) axis of ``x`` (..., seed; inf = diverged, NaN = not run
    where ``ran`` is False): n_seeds, n_diverged, n_finite, on_grid, mean (inf if a seed
    diverged, NaN off the grid) and se (finite seeds, NaN with < 2 or a diverged seed)."""
    n_seeds = ran.sum(-1)
    n_div = (np.isinf(x) & ran).sum(-1)
    finite = np.where(np.isfinite(x), x, np.nan)
    n_fin = np.isfinite(finite).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(np.nan_to_num(finite), -1) / n_fin
        var = np.nansum((finite - mean[..., None]) ** 2, -1) / (n_fin - 1)
        se = np.where(n_fin > 1, np.sqrt(var / n_fin), np.nan)
    on_grid = n_seeds > 0
    mean = np.where(on_grid, np.where(n_div > 0, np.inf, mean), np.nan)
    se = np.where(on_grid & (n_div == 0), se, np.nan)
    return {"n_seeds": n_seeds, "n_diverged": n_div, "n_finite": n_fin, "on_grid": on_grid,
            "mean": mean, "se": se}


def _optimum(mean: np.ndarray, se: np.ndarray, n: np.ndarray, on_grid: np.ndarray,
             level: float) -> dict:
    """The optimum of one (group, width) over its grid (arrays over lr): lr_index (into the
    lr coordinate), opt_index and edge_steps (in the group's grid), loss_opt(_se), on_edge,
    resolved, status and the plausible mask (over lr)."""
    plausible = np.zeros(mean.shape, bool)
    grid = np.flatnonzero(on_grid)
    if grid.size == 0 or not np.isfinite(mean[grid]).any():
        return {"status": EMPTY if grid.size == 0 else ALL_DIVERGED, "plausible": plausible}
    m, s, k = mean[grid], se[grid], n[grid]
    i = int(np.nanargmin(np.where(np.isfinite(m), m, np.nan)))
    worse = [_above(m[i], s[i], k[i], m[j], s[j], k[j], level) for j in range(grid.size)]
    plausible[grid] = ~np.asarray(worse) & np.isfinite(m)
    plausible[grid[i]] = True
    edge = min(i, grid.size - 1 - i)
    resolved = edge > 0 and worse[i - 1] and worse[i + 1]
    return {"lr_index": grid[i], "opt_index": i, "edge_steps": edge, "loss_opt": m[i],
            "loss_opt_se": s[i], "on_edge": edge == 0, "resolved": resolved,
            "status": EDGE if edge == 0 else RESOLVED if resolved else UNRESOLVED,
            "plausible": plausible}


def _above(m0: float, s0: float, n0: int, m1: float, s1: float, n1: int, level: float) -> bool:
    """Whether loss m1 (se s1 over n1 seeds) exceeds the optimum m0 (se s0, n0 seeds) by more
    than Welch's one-sided ``level`` critical value times the se of the difference; a
    diverged neighbour (inf) always does, unknown errors (NaN, one seed) never."""
    if math.isinf(m1):
        return True
    se = math.hypot(s0, s1)
    if not (np.isfinite(se) and se > 0):
        return bool(se == 0 and m1 > m0)
    dof = se**4 / (s0**4 / (n0 - 1) + s1**4 / (n1 - 1))
    return bool(m1 - m0 > sps.t.ppf(1 - level, dof) * se)
