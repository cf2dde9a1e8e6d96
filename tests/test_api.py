"""The Python API's own contracts that need no sweep: overrides, bad input, input_dim
inference, keyword signal propagation, labelled predictions (the sweep-running parts are
tested with the README in tests/test_readme_snippets.py)."""

from __future__ import annotations

import numpy as np
import pytest

import gradstats
from gradstats import Architecture, theory
from gradstats.api import _override_strings
from gradstats.errors import InputError
from gradstats.spec import SpecError


def test_overrides_become_the_clis_set_strings():
    assert _override_strings({"width": [64, 128], "bias": False, "lr": 0.05, "seeds": 4}) == [
        "width=64,128", "bias=false", "lr=0.05", "seeds=4"]
    assert _override_strings(["width=8"]) == ["width=8"]


def test_a_bad_sweep_names_the_field_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="width"):
        gradstats.run_sweep({"name": "bad", "grid": {"width": [0]}}, out=out)
    with pytest.raises(InputError, match="^set: expected AXIS=VALUE"):
        gradstats.run_sweep("quickstart", out=out, set=["width"])
    assert not out.exists()


def test_run_sweep_errors_name_its_arguments_not_the_clis_options(tmp_path):
    """The size, override and directory checks are the CLI's; through the API they name
    run_sweep's arguments (``set``, ``out``, ``limits=False``)."""
    (tmp_path / "file").write_text("not a directory")
    huge = {"name": "huge", "grid": {"width": list(range(1, 101)), "depth": list(range(1, 11))},
            "seeds": 200}
    cases = [
        (dict(sweep="quickstart", set={"widht": 8}, out=tmp_path / "a"), "^set widht: unknown axis"),
        (dict(sweep="quickstart", out=tmp_path / "file"), "^out: "),
        (dict(sweep=huge, out=tmp_path / "b"), "pass limits=False$"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message) as err:
            gradstats.run_sweep(**kwargs)
        assert "--" not in str(err.value), err.value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_run_sweep_stores_the_sweep_as_run_and_a_command_that_reruns_it(tmp_path):
    """Like ``gradstats run``: DIR/sweep.toml holds the sweep with the overrides applied, and
    the recorded command, run again, resumes the directory (no point file rewritten)."""
    from gradstats.sweeps import expand
    from gradstats.sweeps.sweepfile import load_sweep

    sweep = {"name": "api", "seeds": 1, "grid": {"width": [4, 8]},
             "fixed": {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 2}}
    out = tmp_path / "out"
    ds = gradstats.run_sweep(sweep, out=out, set={"record": [0, 2], "width": [4]})
    stored = expand(load_sweep(out / "sweep.toml"))
    assert [(p.arch.width, p.training.record) for p in stored] == [(4, (0, 2))]
    command = ds.attrs["command"]
    assert command == f"gradstats.run_sweep({str(out / 'sweep.toml')!r}, out={str(out)!r})"
    files = {f: f.stat().st_mtime_ns for f in (out / "points").iterdir()}
    again = gradstats.run_sweep(out / "sweep.toml", out=out)
    assert again.sizes == ds.sizes
    assert {f: f.stat().st_mtime_ns for f in (out / "points").iterdir()} == files


def test_compare_checks_its_level():
    with pytest.raises(SpecError, match="level"):
        gradstats.compare("nowhere", level=2.0)
    with pytest.raises(SpecError, match="level"):
        gradstats.compare("nowhere", level="0.01")


def test_compare_refuses_what_is_not_a_whole_results_dataset_naming_the_argument(tmp_path):
    """A comparison, a number, one seed's selection, an out that is no .nc file: one
    InputError naming ``results`` / ``out`` before any work, not a library traceback."""
    import xarray as xr

    sweep = {"name": "api", "seeds": 2, "grid": {"width": [4]},
             "fixed": {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 1}}
    ds = gradstats.run_sweep(sweep, out=tmp_path / "r", lazy=False)
    cmp = gradstats.compare(ds)
    for bad, word in ((cmp, "comparison"), (cmp.cells, "comparison"), (42, "int"),
                      (ds.isel(seed=0), "seed")):
        with pytest.raises(InputError, match=f"results: .*{word}"):
            gradstats.compare(bad)
    for out, word in ((tmp_path, "is a directory"), (tmp_path / "c.csv", "should end in .nc")):
        with pytest.raises(InputError, match=f"out: .*{word}"):
            gradstats.compare(ds, out=out)
    assert isinstance(cmp.cells, xr.Dataset) and not list(tmp_path.glob("*.csv"))
    # the plots and load_results say the same, and take a path as the CLI does
    from gradstats.results import plots
    from gradstats.results.io import load_results

    with pytest.raises(InputError, match="is a comparison"):
        plots.render(cmp.cells, "layers")
    with pytest.raises(TypeError, match="Comparison"):
        plots.render(cmp, "layers")
    with pytest.raises(InputError, match="already a dataset"):
        load_results(ds)
    figure = plots.render(tmp_path / "r", "layers")
    assert figure.axes


def test_input_dim_is_taken_from_the_inputs():
    x = np.random.default_rng(0).normal(size=(5, 7))
    free = Architecture(width=32, depth=2, activation="relu")
    fixed = Architecture(width=32, depth=2, activation="relu", input_dim=7)
    np.testing.assert_allclose(theory.nngp(free, x), theory.nngp(fixed, x))
    # relu layer 1: K_1 = sigma_w^2 x.x'/d + sigma_b^2 with d = 7
    assert theory.layer_kernels(free, x)["nngp"].shape == (5, 5)
    with pytest.raises(SpecError, match="input_dim") as err:
        theory.ntk(Architecture(width=32, depth=2, input_dim=3), x)
    assert err.value.field == "input_dim"
    with pytest.raises(SpecError, match="input_dim"):
        theory.predict_statistics(Architecture(width=32, depth=2, input_dim=3), x, np.ones(5))


def test_empirical_ntk_infers_input_dim_and_names_it_when_wrong():
    from gradstats.simulate import empirical_ntk
    from gradstats.simulate.model import build_model

    x = np.random.default_rng(1).normal(size=(4, 6))
    theta = empirical_ntk(Architecture(width=16, depth=1), x)
    assert theta.shape == (4, 4)
    with pytest.raises(SpecError, match="input_dim=64 but x has 6 features"):
        empirical_ntk(Architecture(width=16, depth=1, input_dim=64), x)
    with pytest.raises(SpecError, match="input_dim: not set"):
        build_model(Architecture(width=16, depth=1), seed=0)


def test_signal_propagation_needs_no_width():
    # relu: chi_1 = sigma_w^2 E[step(z)] = sigma_w^2 / 2 at any q*
    sp = theory.signal_propagation(activation="relu", sigma_w2=1.5, sigma_b2=0.1, depth=4)
    assert sp.chi_1 == pytest.approx(0.75, rel=1e-9) and len(sp.q_l) == 5
    same = theory.signal_propagation(Architecture(width=999, depth=4, activation="relu",
                                                  sigma_w2=1.5, sigma_b2=0.1))
    np.testing.assert_allclose(sp.q_l, same.q_l)
    with pytest.raises(SpecError, match="sigma_w2"):
        theory.signal_propagation(activation="relu")


def test_predictions_are_labelled_by_layer():
    x = np.random.default_rng(2).normal(size=(6, 5))
    arch = Architecture(width=64, depth=2, activation="tanh", sigma_w2=1.5)
    pred = theory.predict_statistics(arch, x, np.zeros(6))
    assert list(pred.layer.values) == [1, 2, 3]
    assert pred.grad_sq_norm.dims == ("layer",) and pred.batch_loss.dims == ()
    assert pred.grad_sq_norm.attrs["long_name"] == "squared norm of weight gradient"
    # E||effective W_l||_F^2: fan_in * fan_out entries of variance sigma_w^2 / fan_in
    np.testing.assert_allclose(pred.weight_sq_norm.values, [64 * 1.5, 64 * 1.5, 1 * 1.5])
    mean, var = theory.unconditional_moments(arch, x, np.zeros(6))["grad_sq_norm"]
    np.testing.assert_allclose(mean.values, pred.grad_sq_norm.values, rtol=1e-10)
    assert np.all(var.values > 0)
