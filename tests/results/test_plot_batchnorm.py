"""The batch-norm plot draws the dataset's seed mean of ln grad_sq_norm and a line of slope
-ln lambda over exactly the layers the compare row fits (expected values computed here)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gradstats.comparisons import by_name
from gradstats.results import plots
from gradstats.results.plots import common

DEPTH = 12
LAYERS = np.arange(1, DEPTH + 2)
RATES = {8: 0.58, 32: 0.42}


def bn_dataset() -> xr.Dataset:
    rng = np.random.default_rng(1)
    batch = list(RATES)
    rate = np.array([RATES[b] for b in batch])
    shape = (len(batch), 4, 1, len(LAYERS))
    ln = 3.0 - rate[:, None, None, None] * LAYERS + 0.05 * rng.standard_normal(shape)
    coords = {"batch_size": batch, "seed": np.arange(4), "step": [0], "layer": LAYERS}
    ds = xr.Dataset({"grad_sq_norm": (list(coords), np.exp(ln)),
                     "theory_bn_ln_growth": (["batch_size", "seed"],
                                             np.repeat(rate[:, None], 4, axis=1))},
                    coords=coords)
    return ds.assign_coords(depth=DEPTH, activation="relu", norm="batch")


def test_the_batchnorm_kind_is_available_and_draws_the_predicted_slope(tmp_path):
    ds = bn_dataset()
    assert "batchnorm" in plots.kinds_available(ds)
    assert "batchnorm" not in plots.kinds_available(ds.drop_vars("theory_bn_ln_growth"))
    fig = plots.render(ds, "batchnorm")
    row = by_name("bn_grad_sq_norm_rate")
    window = np.arange(row.first_layer, DEPTH + 1 - row.readout_gap)
    measured = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "measured"]
    theory = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "theory"]
    assert len(measured) == len(theory) == 2
    for b, m_line, t_line in zip(RATES, measured, theory, strict=True):
        mean_ln = np.log(ds.grad_sq_norm.sel(batch_size=b)).mean("seed").values[0]
        assert np.allclose(m_line.get_ydata(), mean_ln)
        x, y = np.asarray(t_line.get_xdata()), np.asarray(t_line.get_ydata())
        assert np.array_equal(x, window)
        assert np.allclose(np.diff(y), -RATES[b])
        assert np.isclose(y.mean(), mean_ln[window - 1].mean())
    path = common.save(fig, tmp_path / "bn.png", dpi=60)
    assert path.stat().st_size > 5000


def test_the_batchnorm_kind_names_what_it_needs():
    with pytest.raises(plots.MissingVariables, match="theory_bn_ln_growth"):
        plots.render(bn_dataset().drop_vars("theory_bn_ln_growth"), "batchnorm")
