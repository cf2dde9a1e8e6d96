"""Bad input of every kind: one line on stderr naming the field, exit code 2, nothing written.

Hypothesis breaks a valid sweep file in one place (unknown key or axis, wrong type,
out-of-range value, empty axis, unequal zip lengths, missing data file) and runs it through
`gradstats.cli.main` in this process; a few cases also run as real subprocesses.
"""

import contextlib
import io as stdio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradstats.cli import main
from gradstats.sweeps.sweepfile import AXIS_TYPES, SweepError

VALID = {"name": "ok", "seeds": 1,
         "grid": {"width": [4, 8]},
         "fixed": {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 1}}
TOP_KEYS = {"name", "description", "seeds", "measure", "grid", "fixed", "zip", "exclude"}
INT_AXES = ["width", "depth", "input_dim", "n_train", "batch_size", "steps"]
FLOAT_AXES = ["sigma_w2", "sigma_b2", "lr", "momentum"]
CHOICE_AXES = ["activation", "parameterization", "init", "teacher", "loss", "optimizer",
               "dtype", "device"]
# (axis, value out of its range): each must be rejected.
OUT_OF_RANGE = [("width", 0), ("width", -3), ("depth", -1), ("batch_size", 0), ("n_train", 0),
                ("input_dim", 0), ("steps", -5), ("lr", -0.1), ("sigma_w2", 0.0),
                ("sigma_w2", -1.0), ("sigma_b2", -0.5), ("momentum", 1.0), ("momentum", -0.2),
                ("lr", float("inf")), ("sigma_w2", float("nan"))]
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


def to_toml(sweep: dict) -> str:
    """A minimal TOML writer for sweep dicts (scalars, lists, [table], [[array of tables]])."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, float):
            return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return str(v)

    lines = [f"{k} = {value(v)}" for k, v in sweep.items() if not isinstance(v, dict | list)
             or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for k, v in sweep.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{a} = {value(x)}" for a, x in v.items()]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for table in v:
                lines += [f"[[{k}]]"] + [f"{a} = {value(x)}" for a, x in table.items()]
    return "\n".join(lines) + "\n"


def copy_valid() -> dict:
    return json.loads(json.dumps(VALID))


@st.composite
def broken_sweeps(draw):
    """(sweep dict broken in one place, a word the error line must contain)."""
    sweep = copy_valid()
    section = draw(st.sampled_from(["grid", "fixed"]))

    def put(axis, v):
        sweep["grid"].pop(axis, None)
        sweep["fixed"].pop(axis, None)
        sweep[section][axis] = [v] if section == "grid" else v

    kind = draw(st.sampled_from(["top_key", "axis", "int_type", "float_type", "choice",
                                 "range", "empty", "zip", "data", "seeds", "record"]))
    if kind == "top_key":
        key = draw(names.filter(lambda k: k not in TOP_KEYS))
        sweep = {key: draw(st.integers() | names), **sweep}
        return sweep, key
    if kind == "axis":
        axis = draw(names.filter(lambda k: k not in AXIS_TYPES))
        put(axis, draw(st.integers(1, 5)))
        return sweep, axis
    if kind == "int_type":
        axis = draw(st.sampled_from(INT_AXES))
        put(axis, draw(st.floats(0.5, 100).filter(lambda x: x != int(x)) | names | st.booleans()))
        return sweep, axis
    if kind == "float_type":
        axis = draw(st.sampled_from(FLOAT_AXES))
        put(axis, draw(names | st.booleans() | st.lists(st.integers(0, 1), min_size=1, max_size=2)))
        return sweep, axis
    if kind == "choice":
        axis = draw(st.sampled_from(CHOICE_AXES))
        put(axis, draw(names.map(lambda s: s + "_x") | st.integers(0, 3)))
        return sweep, axis
    if kind == "range":
        axis, bad = draw(st.sampled_from(OUT_OF_RANGE))
        put(axis, bad)
        return sweep, axis
    if kind == "empty":
        axis = draw(st.sampled_from(INT_AXES + FLOAT_AXES + CHOICE_AXES))
        sweep["fixed"].pop(axis, None)
        sweep["grid"][axis] = []
        return sweep, axis
    if kind == "zip":
        n = draw(st.integers(1, 3))
        sweep["zip"] = [{"depth": [1] * n, "sigma_w2": [1.0] * (n + draw(st.integers(1, 2)))}]
        sweep["fixed"].pop("depth")
        return sweep, "zip"
    if kind == "data":
        put("data", "npz:" + draw(names) + "/missing.npz")
        return sweep, "data"
    if kind == "seeds":
        sweep["seeds"] = draw(st.sampled_from([0, -1, 1.5, "three", [], [-2]]))
        return sweep, "seeds"
    sweep["fixed"]["record"] = draw(st.sampled_from([0, [5], [-1], "all"]))
    return sweep, "record"


def run_main(argv: list[str]) -> tuple[int, str]:
    err = stdio.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(stdio.StringIO()):
        try:
            main(argv)
        except SystemExit as exit_:
            return exit_.code, err.getvalue()
    return 0, err.getvalue()


def assert_one_line_error(code: int, err: str, field: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and field in lines[0], (field, lines[0])
    assert "Traceback" not in err


def test_the_valid_base_sweep_runs(tmp_path):
    (tmp_path / "s.toml").write_text(to_toml(VALID))
    code, err = run_main(["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "out"),
                          "-w", "0", "-q"])
    assert code == 0, err
    assert (tmp_path / "out" / "sweep.zarr").is_dir()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(case=broken_sweeps())
def test_broken_sweep_file_exits_2_with_one_line_naming_the_field(tmp_path, case):
    sweep, field = case
    path = tmp_path / "broken.toml"
    path.write_text(to_toml(sweep))
    out = tmp_path / uuid.uuid4().hex
    code, err = run_main(["run", str(path), "--out", str(out), "-w", "0", "-q"])
    assert_one_line_error(code, err, field)
    assert not out.exists()


@pytest.mark.parametrize(("argv", "field"), [
    (["--workers", "-1"], "--workers"),
    (["--workers", "two"], "--workers"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    (["--set", "width=0"], "width"),
    (["--set", "lr=-1"], "lr"),
    (["--set", "activation=swish"], "activation"),
    (["--set", "bogus=3"], "bogus"),
    (["--set", "width"], "--set"),
    (["--set", "widht=16"], "--set widht: unknown axis"),  # named as typed, not fixed.widht
    (["--set", "=16"], "--set: expected AXIS=VALUE"),
    (["--set", "width=0"], "--set width:"),
    (["--set", "width=\u0661\u0666"], "--set width:"),  # Arabic-Indic digits: not 16
])
def test_bad_command_line_exits_2_with_one_line(tmp_path, argv, field):
    (tmp_path / "s.toml").write_text(to_toml(VALID))
    out = tmp_path / "never"
    code, err = run_main(["run", str(tmp_path / "s.toml"), "-o", str(out), "-q", *argv])
    assert_one_line_error(code, err, field)
    assert not out.exists()


def test_unreachable_scheduler_exits_2_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr("gradstats.sweeps.executors.CONNECT_TIMEOUT_SECONDS", 0.5)
    (tmp_path / "s.toml").write_text(to_toml(VALID))
    out = tmp_path / "never"
    code, err = run_main(["run", str(tmp_path / "s.toml"), "-o", str(out), "-q",
                          "--scheduler", "tcp://127.0.0.1:9"])
    assert_one_line_error(code, err, "--scheduler")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="this machine has a GPU, so requesting one is not an error")
def test_gpu_requested_without_one_exits_2(tmp_path):
    sweep = copy_valid()
    sweep["fixed"]["device"] = "cuda"
    (tmp_path / "s.toml").write_text(to_toml(sweep))
    code, err = run_main(["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "n"), "-q"])
    assert_one_line_error(code, err, "device")
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(("text", "extra", "field"), [
    ('name = "x"\n[grid]\nwidth = [0]\n', [], "width"),
    ('name = "x"\n', ["--workers", "-2"], "--workers"),
])
def test_real_subprocess_exits_2_with_one_line_and_writes_nothing(tmp_path, text, extra, field):
    (tmp_path / "s.toml").write_text(text)
    out = tmp_path / "never"
    proc = subprocess.run([sys.executable, "-m", "gradstats.cli", "run", str(tmp_path / "s.toml"),
                           "--out", str(out), *extra], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, field)
    assert not out.exists()


# --- fuzzing: any sweep file is a sweep or one SweepError -----------------------------------
SWEEP_KEYS = sorted(TOP_KEYS)
PLAUSIBLE = {
    "width": st.integers(-2, 8), "depth": st.integers(-1, 3), "input_dim": st.integers(0, 8),
    "n_train": st.integers(0, 16), "batch_size": st.integers(0, 8), "steps": st.integers(-1, 5),
    "lr": st.floats(allow_nan=True), "sigma_w2": st.floats(-1, 4), "momentum": st.floats(-1, 2),
    "seeds": st.integers(-1, 3) | st.lists(st.integers(-1, 5), max_size=3),
    "record": st.integers(-1, 4) | st.lists(st.integers(-1, 5), max_size=3),
}
scalars = (st.integers() | st.floats() | st.booleans() | st.text(max_size=8)
           | st.sampled_from(["relu", "tanh", "ntk", "he", "mse", "sgd", "cpu", "digits",
                              "sphere", "npz:nowhere.npz", "float64", "per_example"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(sorted(AXIS_TYPES)) | names, inner,
                                        max_size=3), max_leaves=8)


def toml_inline(v) -> str:
    """TOML for any value of `values`, tables inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float):
        return "nan" if v != v else {float("inf"): "inf", float("-inf"): "-inf"}.get(v, repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(toml_inline(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_inline(x)}" for k, x in v.items()) + "}"
    return str(v)


@st.composite
def fuzzed_sweeps(draw) -> dict:
    """Mostly well-formed sweeps (known keys, plausible axis values) with junk mixed in."""
    axis_value = lambda axis: PLAUSIBLE.get(axis, scalars)  # noqa: E731
    axes = st.sampled_from(sorted(AXIS_TYPES)) | names
    sweep = {"name": draw(st.sampled_from(["ok", "..", "a/b", ""]) | names)}
    for key in draw(st.lists(st.sampled_from(SWEEP_KEYS + ["bogus"]), max_size=5, unique=True)):
        if key == "grid":
            sweep[key] = draw(st.dictionaries(axes, st.lists(scalars, max_size=3), max_size=3))
        elif key == "fixed":
            axis = draw(axes)
            sweep[key] = {axis: draw(axis_value(axis)), **draw(st.dictionaries(axes, scalars,
                                                                                max_size=2))}
        elif key in ("zip", "exclude"):
            sweep[key] = draw(st.lists(st.dictionaries(axes, values, max_size=3), max_size=2))
        elif key == "seeds":
            sweep[key] = draw(PLAUSIBLE["seeds"] | values)
        else:
            sweep[key] = draw(values)
    return sweep


def _expand_small(sweep) -> None:
    from gradstats.sweeps import expand
    from gradstats.sweeps.limits import Limits

    expand(sweep, limits=Limits(points=64, steps=10, point_memory=2**26, results_size=2**26))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sweep=fuzzed_sweeps())
def test_any_sweep_file_is_a_sweep_or_one_sweep_error(sweep):
    from gradstats.sweeps import load_sweep

    text = "\n".join(f"{json.dumps(k)} = {toml_inline(v)}" for k, v in sweep.items()) + "\n"
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"gradstats-fuzz-{uuid.uuid4().hex}.toml"
    path.write_text(text, encoding="utf-8")
    try:
        _expand_small(load_sweep(path))
    except SweepError as err:
        assert "\n" not in str(err) and ": " in str(err)
    finally:
        path.unlink()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200) | st.builds(
    lambda text, at, junk: (text[:at] + junk + text[at:]).encode("utf-8", "surrogatepass"),
    st.just(to_toml(VALID)), st.integers(0, 200), st.text(max_size=4)))
def test_any_bytes_as_a_sweep_file_exit_0_or_2_with_one_line(tmp_path, content):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    out = tmp_path / uuid.uuid4().hex
    code, err = run_main(["run", str(path), "--out", str(out), "-w", "0", "-q", "--no-compare"])
    assert code in (0, 2), err
    if code == 2:
        assert_one_line_error(code, err, "")
        assert not out.exists()
