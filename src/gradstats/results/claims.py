"""Seed-paper claims as `compare` rows (test ``"claim"``): does the paper's statement hold here?

A claim row reads measured variables only (no theory) and states, per cell, whether the
paper's claim is consistent with these results. H0 is "the claim holds"; a cell *disagrees*
when the data reject it at the row's Holm level, *agrees* when they do not and the test could
have seen a violation of ``max_detectable`` with 80% power, and is *undetermined* otherwise.

- pass-rate claims (Xie et al. 2023): per cell (configuration x recorded step) the samples
  of every layer and seed that a protocol passes, k of n (``xie_*_pass_*`` fractions times
  ``xie_*_tests``). "Usually a power law" is H0: pass rate >= 1/2, rejected by the one-sided
  binomial p = P(X <= k | n, 1/2); "usually not" is H0: rate <= 1/2, p = P(X >= k). Samples
  of one network are pooled as if independent (layers and minibatches of one run are not
  quite). detectable: the distance from 1/2 seen with 80% power, (z_(1-a) + z_0.8) / (2 sqrt n).
- trend claims (Lee et al. 2018): a per-seed effect e_s (``effect`` below), one-sided
  Student t across seeds; detectable (t_(1-a) + t_0.8) se.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats as sps

from gradstats.spec import LAYER_DIM, SEED_DIM, STEP_DIM

POWER = 0.8


@dataclass(frozen=True)
class RateClaim:
    """The pass fraction ``measured`` (x ``trials`` samples per seed) is above/below 1/2."""

    trials: str
    direction: str  # "above": usually passes; "below": usually fails


@dataclass(frozen=True)
class TrendClaim:
    """A per-seed effect (``effect(ds) -> DataArray`` over axes and seed) is above/below 0."""

    effect: Callable[[xr.Dataset], xr.DataArray]
    direction: str
    needs: tuple[str, ...]


def _first_last(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    steps = da[STEP_DIM].values
    return da.sel({STEP_DIM: steps[0]}, drop=True), da.sel({STEP_DIM: steps[-1]}, drop=True)


def kappa_log_change(ds: xr.Dataset) -> xr.DataArray:
    """ln(kappa(last step) / kappa(first step)) of the minibatch directions, per seed."""
    first, last = _first_last(ds["minibatch_dir_kappa"])
    return np.log(last / first)


def _corr(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    return xr.corr(a, b, dim=STEP_DIM)


def stochasticity_direction_margin(ds: xr.Dataset) -> xr.DataArray:
    """corr(GS, 1/kappa) - corr(GS, norm CV) over the recorded steps, per seed (GS: gradient
    stochasticity of the minibatch gradients, kappa their vMF concentration)."""
    gs = ds["gradient_stochasticity"]
    return _corr(gs, 1.0 / ds["minibatch_dir_kappa"]) - _corr(gs, ds["minibatch_norm_cv"])


CLAIMS: dict[str, RateClaim | TrendClaim] = {
    "xie_dimwise_power_law": RateClaim("xie_dimwise_tests", "above"),
    "xie_iterwise_not_power_law": RateClaim("xie_iterwise_tests", "below"),
    "xie_noise_not_power_law": RateClaim("xie_iterwise_tests", "below"),
    "xie_dimwise_power_law_strict": RateClaim("xie_dimwise_tests", "above"),
    "xie_dimwise_power_law_n": RateClaim("xie_dimwise_tests", "above"),
    "xie_iterwise_not_power_law_n": RateClaim("xie_iterwise_tests", "below"),
    "lee_directions_uniformize": TrendClaim(kappa_log_change, "below", ("minibatch_dir_kappa",)),
    "lee_stochasticity_follows_directions": TrendClaim(
        stochasticity_direction_margin, "above",
        ("gradient_stochasticity", "minibatch_dir_kappa", "minibatch_norm_cv")),
}


def _rate_cells(ds: xr.Dataset, measured: str, claim: RateClaim):
    frac = ds[measured]
    trials = ds[claim.trials].broadcast_like(frac)
    pooled = [d for d in (LAYER_DIM, SEED_DIM) if d in frac.dims]
    k = (frac * trials).fillna(0.0).sum(pooled).round()
    n = trials.where(frac.notnull()).fillna(0.0).sum(pooled)
    kv, nv = k.values, n.values
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(nv > 0, kv / np.maximum(nv, 1), np.nan)
        if claim.direction == "above":
            p = sps.binom.cdf(kv, nv, 0.5)
        else:
            p = sps.binom.sf(kv - 1, nv, 0.5)
    p = np.where(nv > 0, p, np.nan)

    def power(level: float) -> np.ndarray:
        z = sps.norm.ppf(1 - level) + sps.norm.ppf(POWER)
        with np.errstate(divide="ignore"):
            return np.where(nv > 0, z / (2 * np.sqrt(np.maximum(nv, 1))), np.nan)

    template = xr.full_like(k, np.nan, dtype=float)
    return template, {"estimate": rate, "n_values": nv, "p": p}, power


def _trend_cells(ds: xr.Dataset, claim: TrendClaim):
    effect = claim.effect(ds)
    if STEP_DIM in effect.dims:
        effect = effect.isel({STEP_DIM: -1}, drop=True)
    e = effect.transpose(..., SEED_DIM).values
    n = np.isfinite(e).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(np.isfinite(e), e, np.nan), axis=-1)
        sd = np.nanstd(np.where(np.isfinite(e), e, np.nan), axis=-1, ddof=1)
        se = sd / np.sqrt(n)
        t = mean / se
        df = np.maximum(n - 1, 1)
        # H0 (the claim): mean <= 0 ("below") or >= 0 ("above"); reject in the other tail
        p = sps.t.sf(t, df) if claim.direction == "below" else sps.t.cdf(t, df)
    p = np.where(n >= 2, p, np.nan)

    def power(level: float) -> np.ndarray:
        return (sps.t.ppf(1 - level, df) + sps.t.ppf(POWER, df)) * se

    template = xr.full_like(effect.isel({SEED_DIM: 0}, drop=True), np.nan, dtype=float)
    return template, {"estimate": mean, "se": se, "p": p}, power


def run_claim(ctx, comparison) -> dict[str, xr.DataArray]:
    """The `compare` runner of ``test = "claim"`` rows (see the module docstring)."""
    from gradstats.results.compare import _package

    claim = CLAIMS[comparison.name]
    needs = ((comparison.measured, claim.trials) if isinstance(claim, RateClaim)
             else claim.needs)
    if any(v not in ctx.ds for v in needs):
        ctx.note(f"{comparison.name}: needs {comparison.needs}")
        return {}
    if isinstance(claim, RateClaim):
        template, values, power = _rate_cells(ctx.ds, comparison.measured, claim)
    else:
        if STEP_DIM not in ctx.ds[comparison.measured].dims or ctx.ds.sizes[STEP_DIM] < 3:
            ctx.note(f"{comparison.name}: needs {comparison.needs}")
            return {}
        template, values, power = _trend_cells(ctx.ds, claim)
    reasons = xr.full_like(template, "", dtype=object)
    return _package(ctx, comparison, template, values, reasons,
                    f"claim test; {comparison.title}", power=power)
