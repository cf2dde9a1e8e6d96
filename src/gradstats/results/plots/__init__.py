"""Matplotlib figures of results datasets (Agg backend; PNG, PDF or SVG). Plots only read.

Each plot function takes a dataset (or arrays), draws into ``ax=`` (one-panel figures) or
``fig=`` (a Figure or SubFigure, multi-panel ones) when given, and returns the
`matplotlib.figure.Figure`; one style (`gradstats.results.plots.style`). `KINDS` maps the
names of ``gradstats plot --kind`` to a renderer of a results dataset and the variables it
needs. ``render(ds, kind)`` raises `MissingVariables` naming what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import xarray as xr
from matplotlib.figure import Figure

from gradstats.results.plots import batchnorm, common, directions, layers, ntk, phase, style
from gradstats.results.plots.batchnorm import plot_batchnorm
from gradstats.results.plots.common import MissingVariables, save
from gradstats.results.plots.directions import plot_directions
from gradstats.results.plots.layers import plot_layer_norms, plot_signals
from gradstats.results.plots.ntk import plot_ntk, plot_ntk_width
from gradstats.results.plots.overview import available_panels, plot_summary
from gradstats.results.plots.phase import plot_phase
from gradstats.results.plots.spectrum import plot_spectrum
from gradstats.results.plots.tails import plot_tails

__all__ = ["KINDS", "Kind", "MissingVariables", "common", "kinds_available", "plot_batchnorm",
           "plot_directions", "plot_layer_norms", "plot_ntk", "plot_ntk_width", "plot_phase", "plot_signals",
           "plot_spectrum", "plot_summary", "plot_tails", "render", "save", "style"]

# Sample variables the 'tails' kind reads: panel title -> variable (dims ..., sample).
TAIL_SAMPLE_VARS: dict[str, str] = {"per-example gradient norms": "per_example_grad_sq_norm"}


@dataclass(frozen=True)
class Kind:
    """A plot kind: what it shows and how to draw it from a results dataset."""

    name: str
    description: str
    draw: Callable[[xr.Dataset], Figure]


def _tails(ds: xr.Dataset) -> Figure:
    from gradstats.results.plots.tails import plot_tail_configs

    present = {title: var for title, var in TAIL_SAMPLE_VARS.items() if var in ds.data_vars}
    if not present:
        raise MissingVariables("plot 'tails' needs one of " + ", ".join(TAIL_SAMPLE_VARS.values()))
    return plot_tail_configs(ds, present)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("summary", "one-page summary of whatever variables exist", plot_summary),
    Kind("layers", "per-layer gradient norm vs layer beside the prediction compare tests",
         plot_layer_norms),
    Kind("signals", "forward_q, backward_q and grad_sq_norm vs layer beside their predictions",
         plot_signals),
    Kind("phase", "backward-signal rate per layer over sigma_w2 x sigma_b2 (or vs sigma_w2) "
         "with the chi_1 = 1 curve", plot_phase),
    Kind("ntk", "NTK errors vs width, compare's fitted exponent and the -1/2 reference",
         plot_ntk),
    Kind("tails", "survival functions of gradient samples with fitted tails", _tails),
    Kind("spectrum", "gradient-noise covariance spectrum rank plot", plot_spectrum),
    Kind("directions", "vMF kappa and R_bar over training vs uniform", plot_directions),
    Kind("batchnorm", "ln gradient norm vs layer per batch size with the batch-norm slope",
         plot_batchnorm),
    Kind("coord", "coord check: change since init vs width per layer group, theory slopes",
         lambda ds: _coord(ds)),
    Kind("lr-transfer", "final loss vs base lr per width, the loss-optimal lr of each width",
         lambda ds: _lr_transfer(ds)),
    Kind("validity", "validity map: error vs theory over (width, depth), vs beta", lambda ds: __import__("gradstats.results.plots.validity", fromlist=["x"]).plot_validity_results(ds)),  # noqa: E501
)}


def _coord(ds: xr.Dataset) -> Figure:
    from gradstats.results.plots.coord import plot_coord_check

    return plot_coord_check(ds)


def _lr_transfer(ds: xr.Dataset) -> Figure:
    from gradstats.results.plots.lr_transfer import plot_lr_transfer

    return plot_lr_transfer(ds)


def render(ds: xr.Dataset | str | os.PathLike, kind: str) -> Figure:
    """The figure of plot ``kind`` for ``ds``: a results dataset, or a path `load_results`
    reads (KeyError for an unknown kind; one kind at a time, ``gradstats plot --kind all``
    draws them all). A comparison (`gradstats.compare`'s) is refused: it is not results."""
    from gradstats.results.io import ResultsError, is_comparison, load_results

    if kind not in KINDS:
        raise KeyError(f"unknown plot kind {kind!r}; choose from {', '.join(KINDS)}")
    if isinstance(ds, str | os.PathLike):
        ds = load_results(ds)
    elif not isinstance(ds, xr.Dataset):
        raise TypeError(f"render needs a results dataset or path, got {type(ds).__name__}")
    if is_comparison(ds):
        raise ResultsError("this is a comparison (gradstats compare's cells), not results; "
                           "plot the results dataset it was made from")
    return KINDS[kind].draw(ds)


def kinds_available(ds: xr.Dataset) -> list[str]:
    """The kinds whose required variables ``ds`` has (a cheap check; drawing may still fail)."""
    checks = {
        "summary": lambda: bool(available_panels(ds)),
        "layers": lambda: "grad_sq_norm" in ds and "layer" in ds.dims,
        "signals": lambda: all(v in ds for v in layers.SIGNALS) and "layer" in ds.dims,
        "phase": lambda: "backward_q" in ds and "sigma_w2" in ds.dims
                         and ds.sizes.get("layer", 0) >= 3 and not phase._is_batch_norm(ds),
        "ntk": lambda: any(v in ds and "width" in ds[v].dims and ds.sizes["width"] >= 3
                           for v, _ in ntk.ROWS.values()),
        "tails": lambda: any(v in ds for v in TAIL_SAMPLE_VARS.values()),
        "spectrum": lambda: "noise_eigenvalues" in ds,
        "directions": lambda: all(v in ds for v in directions.REQUIRES),
        "batchnorm": lambda: all(v in ds for v in batchnorm.REQUIRES) and "layer" in ds.dims,
        "coord": lambda: "preact_change_rms" in ds and "output_change_rms" in ds
                         and "width" in ds.dims,
        "lr-transfer": lambda: "full_loss" in ds and "lr" in ds.dims and ds.sizes["lr"] >= 3
                               and "width" in ds.dims,  # a scan: not coord-check's zipped lr
        "validity": lambda: "theory_forward_q" in ds and all(
            d in ds.dims for d in ("seed", "width", "depth")),  # a map over (width, depth)
    }
    return [k for k in KINDS if checks[k]()]

