"""Theory values the plots draw: chi_1 from the dataset or from `gradstats.theory`.

Plots prefer a ``chi_1`` variable in the dataset; otherwise they ask
``gradstats.theory.signal_propagation(arch).chi_1`` when that package imports, and draw no
theory line (NaN) when neither is available.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import xarray as xr

from gradstats.spec import DEPTH_SCALED, SEED_DIM, STEP_DIM, Architecture, SpecError

ARCH_FIELDS = ("width", "depth", "activation", "sigma_w2", "sigma_b2", "parameterization",
               "init", "bias", "input_dim", "residual", "residual_scale", "norm")


def arch_from(values: dict) -> Architecture | None:
    """The `Architecture` described by coordinate ``values`` (None if it is incomplete/invalid)."""
    kwargs = {k: values[k] for k in ARCH_FIELDS if k in values}
    for flag in ("bias", "residual"):
        if flag in kwargs:
            kwargs[flag] = bool(kwargs[flag])
    if "residual_scale" in kwargs and kwargs["residual_scale"] != DEPTH_SCALED:
        try:
            kwargs["residual_scale"] = float(kwargs["residual_scale"])
        except (TypeError, ValueError):
            return None
    if "width" not in kwargs or "depth" not in kwargs:
        return None
    try:
        return Architecture(**kwargs)
    except (SpecError, TypeError):
        return None


def signal_propagation_fn() -> Callable[[Architecture], object] | None:
    """``gradstats.theory.signal_propagation`` when it imports, else None."""
    try:
        from gradstats.theory import signal_propagation
    except ImportError:
        return None
    return signal_propagation


def theory_chi_1(arch: Architecture | None) -> float:
    """chi_1 of ``arch`` from `gradstats.theory` (NaN when unavailable or it fails, and for
    residual or normalized networks: chi_1 is the fixed point of a plain MLP)."""
    fn = signal_propagation_fn()
    if arch is None or fn is None or not arch.is_mlp:
        return math.nan
    try:
        return float(fn(arch).chi_1)
    except (ValueError, ArithmeticError, AttributeError, SpecError, NotImplementedError):
        return math.nan  # NotImplementedError: no per-pair kernel (batch norm)


def chi_1_at(ds: xr.Dataset, sel: dict) -> float:
    """chi_1 for the configuration ``sel`` (plus ``ds``'s fixed coords); NaN if unknown."""
    if "chi_1" in ds.data_vars:
        da = ds["chi_1"]
        da = da.sel({k: v for k, v in sel.items() if k in da.dims})
        extra = [d for d in da.dims if d in (SEED_DIM, STEP_DIM)]
        da = da.mean(extra) if extra else da
        return float(da) if da.size == 1 else math.nan
    values = {str(n): c.item() for n, c in ds.coords.items() if c.ndim == 0}
    values.update(sel)
    return theory_chi_1(arch_from(values))


def critical_curve(activation: str, sigma_b2: np.ndarray) -> np.ndarray:
    """sigma_w2 with chi_1 = 1 at each ``sigma_b2`` from ``gradstats.theory.critical_sigma_w2``
    (all NaN when theory is unavailable); cached per (activation, sigma_b2 values)."""
    values = tuple(float(b) for b in np.atleast_1d(sigma_b2))
    return np.array(_critical_curve(str(activation), values))


@functools.lru_cache(maxsize=64)
def _critical_curve(activation: str, sigma_b2: tuple[float, ...]) -> tuple[float, ...]:
    out = np.full(len(sigma_b2), np.nan)
    try:
        from gradstats.theory import critical_sigma_w2
    except ImportError:
        return tuple(out.tolist())
    for i, sb in enumerate(sigma_b2):
        try:
            out[i] = float(critical_sigma_w2(activation, float(sb)))
        except (ValueError, ArithmeticError):
            continue
    return tuple(out.tolist())
