"""Tests and estimates of minibatch gradient noise from results datasets (numpy/scipy/xarray).

- `paired_difference_test`: per cell, does an estimate equal a reference measured on the same
  networks? E.g. the paired batch-noise slope ``full_noise_trace_unbiased`` (one minibatch)
  vs the exact ``full_noise_trace`` (whole training set) of the same network at the same step.
- `noise_scale_ratio`: the simple noise scale B_simple as a ratio of means of the unbiased
  components ``full_noise_trace_unbiased`` / ``full_grad_sq_norm_unbiased`` (consistent; the
  mean of per-step ratios has no finite expectation when ||G||^2 is not resolved), with its
  delta-method standard error. docs/noise_scale.md has the derivations and measured biases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import stats as sps

Dims = str | Sequence[str]


def _dims(dim: Dims) -> list[str]:
    return [dim] if isinstance(dim, str) else list(dim)


def paired_difference_test(estimate: xr.DataArray, reference: xr.DataArray,
                           dim: Dims = "seed") -> xr.Dataset:
    """Two-sided paired t-test of mean(estimate) == mean(reference) over ``dim``, per cell.

    ``estimate`` and ``reference`` share their dims (one value per network and step, say);
    pairs with a NaN are dropped. With d = estimate - reference and n pairs: ``difference`` =
    mean d, ``se`` = std(d, ddof 1)/sqrt(n) (NaN for n < 2), ``p_value`` from Student-t with
    n - 1 dof (1 where every d is 0, NaN for n < 2), ``estimate``/``reference`` the means
    over the pairs, ``relative_se`` = se / |reference|, and ``n``.
    """
    dims = _dims(dim)
    both = estimate.notnull() & reference.notnull()
    est, ref = estimate.where(both), reference.where(both)
    d = est - ref
    n = d.count(dims)
    mean = d.mean(dims)
    se = d.std(dims, ddof=1) / np.sqrt(n.where(n > 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = xr.where(se > 0, mean / se, xr.where(mean == 0, 0.0, np.inf)).where(n > 1)
    p = xr.apply_ufunc(lambda tt, nn: 2 * sps.t.sf(np.abs(tt), np.maximum(nn - 1, 1)), t, n)
    ref_mean = ref.mean(dims)
    return xr.Dataset({
        "estimate": est.mean(dims), "reference": ref_mean, "difference": mean, "se": se,
        "p_value": p.where(n > 1), "relative_se": se / abs(ref_mean), "n": n,
    })


def noise_scale_ratio(trace: xr.DataArray, grad_sq: xr.DataArray, dim: Dims = "seed"
                      ) -> xr.Dataset:
    """B_simple = mean(trace) / mean(grad_sq) over ``dim`` per cell, and its standard error.

    ``trace``, ``grad_sq``: the unbiased per-step estimates of tr Sigma_N and ||G||^2 (pairs
    with a NaN dropped). SE by the delta method for a ratio of means, sqrt(var(t - R g) / n)
    / |mean g| (ddof 1), which accounts for their correlation; ``b_simple`` is NaN where
    mean(grad_sq) <= 0 (||G||^2 not resolved: take more seeds or steps). Bias: O(1/n),
    measured in docs/noise_scale.md.
    """
    dims = _dims(dim)
    both = trace.notnull() & grad_sq.notnull()
    t, g = trace.where(both), grad_sq.where(both)
    n = t.count(dims)
    mean_t, mean_g = t.mean(dims), g.mean(dims)
    ratio = (mean_t / mean_g).where(mean_g > 0)
    resid = t - ratio * g
    se = (resid.std(dims, ddof=1) / np.sqrt(n.where(n > 1)) / abs(mean_g)).where(mean_g > 0)
    return xr.Dataset({"b_simple": ratio, "se": se, "trace": mean_t, "grad_sq_norm": mean_g,
                       "n": n})
