"""Bad inputs of every kind, through every command: exit code 2, exactly one line on stderr
(``error: ...`` naming the input), no traceback, and the workspace byte for byte as before
(nothing written, nothing lost).

Each case builds its input in a fresh workspace (the test's cwd) that also holds a copy of
a finished results directory, then runs `gradstats.cli.main` in this process. Classes:
sweep files, sizes, the command line, data files, output paths, results inputs, sweep
identity, usage. Sweep-field checks drawn by hypothesis live in tests/sweeps/test_bad_input.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as stdio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gradstats.cli import main
from gradstats.sweeps import expand, parse_sweep
from gradstats.sweeps.execute import run_sweep

TINY_FIXED = {"depth": 1, "input_dim": 4, "n_train": 8, "batch_size": 4, "steps": 1}
TINY = {"name": "tiny", "seeds": 1, "grid": {"width": [4, 8]}, "fixed": TINY_FIXED}
RUN = ["-o", "out", "-q", "-w", "0"]
FINISHED = "done"  # the finished results directory inside every workspace


def toml(sweep: dict) -> str:
    """A small TOML writer: scalars and lists at the top, then [tables] and [[arrays]]."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in sweep.items() if not isinstance(v, dict)
             and not (isinstance(v, list) and v and isinstance(v[0], dict))]
    for k, v in sweep.items():
        if isinstance(v, dict):
            lines += [f"[{k}]"] + [f"{a} = {value(x)}" for a, x in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for table in v:
                lines += [f"[[{k}]]"] + [f"{a} = {value(x)}" for a, x in table.items()]
    return "\n".join(lines) + "\n"


def tiny(**changes) -> dict:
    """The tiny sweep with top-level ``changes``; ``fixed`` entries merge into TINY's."""
    sweep = json.loads(json.dumps(TINY))
    fixed = changes.pop("fixed", {})
    sweep.update(changes)
    sweep["fixed"] = {**sweep["fixed"], **fixed}
    return sweep


class Workspace:
    """The test's cwd: helpers to put inputs there."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return name

    def sweep(self, sweep: dict, name: str = "s.toml") -> str:
        return self.write(name, toml(sweep))

    def npz(self, name: str, **arrays) -> str:
        np.savez(self.root / name, **arrays)
        return name

    def npz_sweep(self, data: str, **fixed) -> str:
        """A sweep on ``npz:data`` (input_dim follows the data)."""
        base = {k: v for k, v in TINY_FIXED.items() if k != "input_dim"}
        return self.sweep({"name": "npz", "grid": {"width": [4]},
                           "fixed": {**base, "n_train": 4, "data": f"npz:{data}", **fixed}})


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: files by content digest and mode, directories by mode."""
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        entries[rel] = (digest, stat.st_mode)
    return entries


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = stdio.StringIO(), stdio.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exit_:
            return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def assert_one_line_input_error(code: int, err: str, word: str) -> None:
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and word in lines[0], (word, lines[0])
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished results directory of the tiny sweep (copied into each workspace)."""
    out = tmp_path_factory.mktemp("finished") / FINISHED
    run_sweep(expand(parse_sweep(TINY)), [], out, name="tiny")
    return out


@pytest.fixture
def ws(tmp_path, monkeypatch, finished):
    shutil.copytree(finished, tmp_path / FINISHED)
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path)


CASES: dict[str, Callable[[Workspace], tuple[list[str], str]]] = {}


def case(name: str):
    def register(build):
        assert name not in CASES
        CASES[name] = build
        return build
    return register


# --- sweep files ---------------------------------------------------------------------------
@case("sweep file: binary")
def _(ws):
    return ["run", ws.write("b.toml", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"), *RUN], "UTF-8"


@case("sweep file: latin-1 text")
def _(ws):
    return ["run", ws.write("l.toml", 'name = "caf\xe9"\n'.encode("latin-1")), *RUN], "UTF-8"


@case("sweep file: a directory named .toml")
def _(ws):
    (ws.root / "d.toml").mkdir()
    return ["run", "d.toml", *RUN], "directory"


@case("sweep file: a directory")
def _(ws):
    (ws.root / "adir").mkdir()
    return ["run", "adir", *RUN], "directory"


@case("sweep file: missing")
def _(ws):
    return ["run", "missing.toml", *RUN], "does not exist"


@case("sweep file: empty")
def _(ws):
    return ["run", ws.write("e.toml", ""), *RUN], "name"


@case("sweep file: invalid TOML")
def _(ws):
    return ["run", ws.write("t.toml", "name = \n[grid\n"), *RUN], "TOML"


@case("sweep file: a NUL character")
def _(ws):
    return ["run", ws.write("n.toml", 'name = "a\x00b"\n'), *RUN], "TOML"


@case("sweep file: empty [[zip]]")
def _(ws):
    return ["run", ws.write("z.toml", 'name = "z"\n[[zip]]\n'), *RUN], "zip[0]"


@case("sweep file: empty [[exclude]]")
def _(ws):
    return ["run", ws.write("x.toml", toml(tiny()) + "[[exclude]]\n"), *RUN], "exclude[0]"


@case("sweep file: exclude names an axis the sweep lacks")
def _(ws):
    return ["run", ws.sweep(tiny(exclude=[{"lr": 0.1}])), *RUN], "exclude[0].lr"


@case("sweep file: a per-example estimator group with batch norm")
def _(ws):
    sweep = tiny(measure=["per_example"], fixed={"norm": "batch"})
    return ["run", ws.sweep(sweep), *RUN], "measure[0]: per_example needs per-example gradients"


@case("--set norm=batch on a sweep that measures the empirical NTK")
def _(ws):
    return ["run", ws.sweep(tiny(measure=["ntk"])), *RUN, "--set", "norm=none,batch"], \
        "which batch normalization"


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../up", "x" * 300, "", "-x", "a b"])
def test_sweep_name_that_is_no_safe_directory_name_is_refused(ws, name):
    sweep = ws.sweep(tiny(name=name))
    before = snapshot(ws.root)
    code, _, err = run_main(["run", sweep, "-q", "-w", "0"])
    assert_one_line_input_error(code, err, "name")
    assert snapshot(ws.root) == before


@case("sweep file: a seed beyond int32")
def _(ws):
    return ["run", ws.sweep(tiny(seeds=[0, 3000000000, 2])), *RUN], "seeds[1]"


@case("sweep file: a seed twice")
def _(ws):
    return ["run", ws.sweep(tiny(seeds=[1, 1])), *RUN], "seeds[1]"


@case("sweep file: a grid value twice")
def _(ws):
    return ["run", ws.sweep(tiny(grid={"width": [8, 8.0]})), *RUN], "grid.width[1]"


@case("sweep file: a zip row twice")
def _(ws):
    return ["run", ws.sweep(tiny(zip=[{"lr": [0.1, 0.1], "momentum": [0.5, 0.5]}])), *RUN], \
        "zip[0][1]"


@case("sweep file: unknown measure")
def _(ws):
    return ["run", ws.sweep(tiny(measure=["bogus"])), *RUN], "measure[0]"


@case("sweep file: a measure twice")
def _(ws):
    return ["run", ws.sweep(tiny(measure=["per_example", "per_example"])), *RUN], "measure[1]"


@case("sweep file: width beyond int32")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"width": 2**31})), *RUN], "width"


# --- sizes (checked before expansion) ------------------------------------------------------
@case("size: a 10^7-point grid")
def _(ws):
    grid = {axis: list(range(1, 11)) for axis in ("width", "depth", "batch_size", "n_train")}
    grid.update({"lr": [0.01 * i for i in range(1, 11)], "sigma_w2": [1.0 + i for i in range(10)],
                 "momentum": [0.05 * i for i in range(10)]})
    return ["run", ws.sweep({"name": "huge", "grid": grid}), *RUN], "10,000,000 points"


@case("size: seeds = 10^9")
def _(ws):
    return ["run", ws.sweep(tiny(seeds=10**9)), *RUN], "seeds"


@case("size: steps = 10^12")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"steps": 10**12})), *RUN], "steps"


@case("size: steps = 10^8")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"steps": 10**8})), *RUN], "steps"


@case("size: record = 10^8 steps")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"steps": 1000, "record": 10**8})), *RUN], "record"


@case("size: one point's memory")
def _(ws):
    return ["run", ws.sweep(tiny(grid={"width": [100_000]}, fixed={"depth": 10})), *RUN], "memory"


@case("size: combined results dense over zipped axes")
def _(ws):
    rows = range(1, 2001)
    zipped = {"width": list(rows), "n_train": [r + 7 for r in rows], "lr": [r / 1e4 for r in rows]}
    return ["run", ws.sweep({"name": "z", "zip": [zipped]}), *RUN], "combined results"


# --- the command line ----------------------------------------------------------------------
@case("--set seeds=abc")
def _(ws):
    return ["run", ws.sweep(tiny()), *RUN, "--set", "seeds=abc"], "seeds"


@case("--set width= (empty value)")
def _(ws):
    return ["run", ws.sweep(tiny()), *RUN, "--set", "width="], "width"


@case("--set seeds=1,1")
def _(ws):
    return ["run", ws.sweep(tiny()), *RUN, "--set", "seeds=1,1"], "seeds[1]"


@case("run: unknown option")
def _(ws):
    return ["run", ws.sweep(tiny()), *RUN, "--bogus"], "--bogus"


@case("run: an extra argument")
def _(ws):
    return ["run", ws.sweep(tiny()), "extra", *RUN], "extra"


# --- data files ----------------------------------------------------------------------------
RNG = np.random.default_rng(0)
NPZ_CASES = {  # name: (arrays or raw bytes, extra fixed axes, word in the error)
    "not a zip": (b"hello, not a zip", {}, "not an .npz"),
    "truncated": ("truncate", {}, "not an .npz"),
    "an .npy": ("npy", {}, "single array"),
    "object arrays": ({"x": np.array([object()] * 6, dtype=object), "y": np.zeros(6)}, {},
                      "Python objects"),
    "string data": ({"x": np.array([["a", "b"]] * 6), "y": np.zeros(6)}, {}, "numeric"),
    "complex data": ({"x": np.ones((6, 2)) + 1j, "y": np.zeros(6)}, {}, "numeric"),
    "0 rows": ({"x": np.zeros((0, 3)), "y": np.zeros(0)}, {}, "at least one row"),
    "0 features": ({"x": np.zeros((6, 0)), "y": np.zeros(6)}, {}, "at least one row"),
    "1-D x": ({"x": np.zeros(6), "y": np.zeros(6)}, {}, "2-D"),
    "3-D y": ({"x": np.zeros((6, 3)), "y": np.zeros((6, 1, 1))}, {}, "'y' must be"),
    "NaN in x": ({"x": np.where(np.eye(6, 3) > 0, np.nan, 1.0), "y": np.zeros(6)}, {}, "NaN"),
    "inf in y": ({"x": np.ones((6, 3)), "y": np.array([0, 1, np.inf, 0, 0, 0])}, {}, "NaN/inf"),
    "rows differ": ({"x": np.ones((6, 3)), "y": np.zeros(5)}, {}, "5 rows"),
    "wrong keys": ({"inputs": np.ones((6, 3)), "targets": np.zeros(6)}, {}, "'inputs'"),
    "fractional labels": ({"x": RNG.standard_normal((6, 3)), "y": np.arange(6) / 2},
                          {"loss": "cross_entropy"}, "labels"),
    "negative labels": ({"x": RNG.standard_normal((6, 3)), "y": -np.arange(6)},
                        {"loss": "cross_entropy"}, "labels"),
    "absurd label": ({"x": RNG.standard_normal((6, 3)), "y": np.array([10**9, 1, 0, 1, 0, 0])},
                     {"loss": "cross_entropy"}, "labels"),
    "n_train beyond its rows": ({"x": RNG.standard_normal((6, 3)), "y": np.zeros(6)},
                                {"n_train": 7}, "n_train"),
    "input_dim disagrees": ({"x": RNG.standard_normal((6, 3)), "y": np.zeros(6)},
                            {"input_dim": 4}, "input_dim"),
}


def _npz_case(name: str):
    content, fixed, word = NPZ_CASES[name]

    def build(ws):
        if isinstance(content, bytes):
            data = ws.write("d.npz", content)
        elif content == "truncate":
            good = ws.npz("g.npz", x=np.ones((6, 3)), y=np.zeros(6))
            data = ws.write("d.npz", (ws.root / good).read_bytes()[:60])
        elif content == "npy":
            np.save(ws.root / "a.npy", np.ones((6, 3)))
            data = ws.write("d.npz", (ws.root / "a.npy").read_bytes())
        else:
            data = ws.npz("d.npz", **content)
        return ["run", ws.npz_sweep(data, **fixed), *RUN], word
    return build


for _name in NPZ_CASES:
    case(f"npz: {_name}")(_npz_case(_name))


@case("npz: missing file")
def _(ws):
    return ["run", ws.npz_sweep("nope.npz"), *RUN], "does not exist"


@case("npz: a directory")
def _(ws):
    (ws.root / "dir.npz").mkdir()
    return ["run", ws.npz_sweep("dir.npz"), *RUN], "not a file"


@case("digits: n_train beyond its 1797 rows")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"data": "digits", "input_dim": 64, "n_train": 5000})),
            *RUN], "n_train"


@case("digits: input_dim other than 64")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"data": "digits", "input_dim": 8})), *RUN], "input_dim"


# --- output paths --------------------------------------------------------------------------
@case("run --out under a file")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", f"{ws.sweep(tiny())}/out", "-q", "-w", "0"], "--out"


@case("run --out is a file")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", ws.write("file", "x"), "-q", "-w", "0"], "--out"


@case("run --out whose points subdirectory is a file")
def _(ws):
    ws.write("o/points", "not a directory")
    return ["run", ws.sweep(tiny()), "-o", "o", "-q", "-w", "0"], "points exists and is not"


@case("run --out where no directory can be made (/proc)")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", "/proc/gradstats-out", "-q", "-w", "0"], "--out"


@case("run --out with a name longer than the file system allows")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", "r/" + "n" * 300, "-q", "-w", "0"], "longer"


@case("run: default results/<name> is a file")
def _(ws):
    ws.write("results/tiny", "not a directory")
    return ["run", ws.sweep(tiny()), "-q", "-w", "0"], "--out"


@case("export --out onto a directory")
def _(ws):
    (ws.root / "d.csv").mkdir()
    return ["export", FINISHED, "-f", "csv", "-o", "d.csv"], "directory"


@case("export --out onto an existing file")
def _(ws):
    return ["export", FINISHED, "-f", "csv", "-o", ws.write("mine.csv", "precious")], "--force"


@case("export --format zarr --force onto a directory that is no store")
def _(ws):
    ws.write("keep.zarr/notes.txt", "precious")
    return ["export", FINISHED, "-f", "zarr", "-o", "keep.zarr", "--force"], "not a Zarr store"


@case("export --out with another format's suffix")
def _(ws):
    return ["export", FINISHED, "-f", "csv", "-o", "t.nc"], ".csv"


@case("export --format xlsx")
def _(ws):
    return ["export", FINISHED, "-f", "xlsx", "-o", "t.xlsx"], "--format"


@case("plot --out is a file")
def _(ws):
    return ["plot", FINISHED, "-o", ws.write("f", "x")], "--out"


@case("theory --out without .nc")
def _(ws):
    return ["theory", "--phase-diagram", "--grid-points", "3", "--out", "pd.txt"], ".nc"


@case("theory --out under a file")
def _(ws):
    return ["theory", "--phase-diagram", "--grid-points", "3", "--out",
            f"{ws.write('f', 'x')}/pd.nc"], "--out"


@case("theory --out without --phase-diagram")
def _(ws):
    return ["theory", "--out", "pd.nc"], "--phase-diagram"


@case("theory --q0 nan")
def _(ws):
    return ["theory", "--q0", "nan"], "--q0"


@case("theory --width abc")
def _(ws):
    return ["theory", "--width", "abc"], "--width"


@case("theory --sigma-w2 inf")
def _(ws):
    return ["theory", "--sigma-w2", "inf"], "sigma"


# --- results inputs ------------------------------------------------------------------------
@case("show a missing path")
def _(ws):
    return ["show", "nowhere"], "does not exist"


@case("show a sweep file")
def _(ws):
    return ["show", ws.sweep(tiny())], "not a results directory"


@case("show a store whose metadata is garbage")
def _(ws):
    (ws.root / FINISHED / "sweep.zarr" / ".zmetadata").write_text("garbage")
    return ["show", f"{FINISHED}/sweep.zarr"], "damaged"


@case("show a store without a listing whose metadata is garbage")
def _(ws):
    store = ws.root / FINISHED / "sweep.zarr"
    (store / ".gradstats-files").unlink()
    (store / ".zmetadata").write_text("garbage")
    return ["show", f"{FINISHED}/sweep.zarr"], "cannot read it as a Zarr store"


@case("show a corrupt .nc")
def _(ws):
    return ["show", ws.write("r.nc", b"CDF\x02garbage")], "no data variables"


@case("show a directory whose point files are all unreadable")
def _(ws):
    for path in (ws.root / FINISHED / "points").glob("*.nc"):
        path.write_bytes(path.read_bytes()[:100])
    return ["show", FINISHED], "no readable point files"


@case("report on the comparison file instead of the results")
def _(ws):
    code, _, err = run_main(["compare", FINISHED])  # writes FINISHED/comparison.nc
    assert code == 0, err
    return ["report", f"{FINISHED}/comparison.nc"], "is a comparison"


@case("export a store with a variable removed")
def _(ws):
    shutil.rmtree(ws.root / FINISHED / "sweep.zarr" / "grad_sq_norm")
    return ["export", f"{FINISHED}/sweep.zarr", "-f", "csv", "-o", "t.csv"], "damaged"


@case("export results that are all NaN")
def _(ws):
    xr.Dataset({"grad_sq_norm": ("width", [np.nan, np.nan])}, coords={"width": [4, 8]}
               ).to_netcdf(ws.root / "nan.nc")
    return ["export", "nan.nc", "-f", "csv", "-o", "t.csv"], "no values"


@case("theory --depth 10^8 (hours of work)")
def _(ws):
    return ["theory", "--depth", "100000000"], "--depth"


@case("theory --phase-diagram --grid-points 10^5 (10^10 points)")
def _(ws):
    return ["theory", "--phase-diagram", "--grid-points", "100000"], "--grid-points"


@case("compare a missing directory")
def _(ws):
    return ["compare", "nowhere"], "RESULTS"


@case("compare a damaged store")
def _(ws):
    (ws.root / FINISHED / "sweep.zarr" / ".zmetadata").write_text("garbage")
    return ["compare", f"{FINISHED}/sweep.zarr"], "damaged"


@case("compare --level 2")
def _(ws):
    return ["compare", FINISHED, "--level", "2"], "--level"


@case("run an empty sweep name")
def _(ws):
    return ["run", "", "-o", "new"], "SWEEP"


@case("run --scheduler empty")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", "new", "--scheduler", ""], "--scheduler"


@case("compare --out with another suffix")
def _(ws):
    return ["compare", FINISHED, "--out", "x.txt"], "--out"


@case("compare --out a directory")
def _(ws):
    return ["compare", FINISHED, "--out", FINISHED], "--out"


@case("compare where comparison.nc is a directory")
def _(ws):
    (ws.root / FINISHED / "comparison.nc").mkdir()
    return ["compare", FINISHED], "comparison.nc"


@case("plot a missing directory")
def _(ws):
    return ["plot", "nowhere", "-o", "figs"], "does not exist"


# --- convolutional networks ------------------------------------------------------------------
CNN = {"architecture": "cnn", "data": "torus-fields"}  # input_dim = 4 channels (TINY_FIXED)


@case("cnn on data that is not image-shaped")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"architecture": "cnn", "data": "sphere"})), *RUN], "data"


@case("image data for an MLP")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"data": "torus-fields"})), *RUN], "data"


@case("cnn with both channels and width")
def _(ws):
    sweep = tiny(grid={"channels": [4, 8]}, fixed={**CNN, "width": 8})
    return ["run", ws.sweep(sweep), *RUN], "channels"


@case("cnn VALID kernel larger than the images")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={**CNN, "padding": "VALID", "kernel_size": 9})), *RUN], \
        "kernel_size"


@case("cnn with orthogonal init")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={**CNN, "init": "orthogonal"})), *RUN], "init"


@case("cnn with an unknown padding")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={**CNN, "padding": "same"})), *RUN], "padding"


@case("kernel_size for an MLP")
def _(ws):
    return ["run", ws.sweep(tiny(fixed={"kernel_size": 5})), *RUN], "kernel_size"


# --- sweep identity ------------------------------------------------------------------------
@case("run a different sweep into a finished directory")
def _(ws):
    return ["run", ws.sweep(tiny(grid={"width": [16]})), "-o", FINISHED, "-q", "-w", "0"], \
        "another sweep"


@case("run part of the sweep into its directory")
def _(ws):
    return ["run", ws.sweep(tiny()), "-o", FINISHED, "-q", "-w", "0", "--set", "width=4"], \
        "another sweep"


@case("run the sweep measured differently into its directory")
def _(ws):
    return ["run", ws.sweep(tiny(measure=["per_example"])), "-o", FINISHED, "-q", "-w", "0"], \
        "another sweep"


@case("run into a directory holding a stray point file")
def _(ws):
    ws.write(f"{FINISHED}/points/0123456789abcdef.nc", b"not ours")
    return ["run", ws.sweep(tiny()), "-o", FINISHED, "-q", "-w", "0"], "another sweep"


# --- usage ---------------------------------------------------------------------------------
@case("no command")
def _(ws):
    return [], "Missing command"


@case("show without RESULTS")
def _(ws):
    return ["show"], "Missing argument"


@case("an unknown command")
def _(ws):
    return ["frobnicate"], "frobnicate"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_exits_2_with_one_line_and_changes_nothing(ws, name):
    argv, word = CASES[name](ws)
    before = snapshot(ws.root)
    code, _, err = run_main(argv)
    assert_one_line_input_error(code, err, word)
    assert snapshot(ws.root) == before


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


def test_a_huge_grid_is_refused_before_any_point_is_built(ws, monkeypatch):
    """Sizing reads the 70 axis values only; building the 10^7 points would take minutes.
    Deterministic stand-in for a wall-clock limit (how fast it is lives in no test)."""
    from gradstats.sweeps import grid

    built = []
    monkeypatch.setattr(grid, "make_point", lambda *a, **k: built.append(a) or pytest.fail(
        "a point was built before the size check"))
    argv, _ = CASES["size: a 10^7-point grid"](ws)
    code, _, err = run_main(argv)
    assert code == 2 and "10,000,000 points" in err
    assert built == []


def test_set_seeds_abc_prints_no_warnings_in_a_real_process(tmp_path):
    (tmp_path / "s.toml").write_text(toml(tiny()))
    proc = subprocess.run([sys.executable, "-m", "gradstats.cli", "run", "s.toml", "-o", "out",
                           "--set", "seeds=abc"], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert_one_line_input_error(proc.returncode, proc.stderr, "seeds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]


def test_an_internal_error_is_one_line_with_exit_1(ws, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("gradstats.results.summary.print_overview", broken)
    code, _, err = run_main(["show", FINISHED])
    assert code == 1 and err.splitlines() == [
        "error: internal error: ZeroDivisionError: a bug (set GRADSTATS_TRACEBACK=1 to see where)"]


@case("show a .nc that is no netCDF at all")
def _(ws):
    return ["show", ws.write("junk.nc", b"\x00\x01 junk")], "cannot read it as netCDF"


# --- read-only results (a real read-only mount where this process may mount one) ------------
@pytest.fixture
def read_only(ws):
    """``ro/done``: the finished directory on a read-only tmpfs (skipped where mounting is
    not allowed, e.g. without root)."""
    mount_point = ws.root / "ro"
    mount_point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount_point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copytree(ws.root / FINISHED, mount_point / FINISHED)
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
        yield Path("ro") / FINISHED
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.mark.parametrize(("argv", "word"), [
    (["run", "s.toml", "-q", "-w", "0", "--set", "seeds=2"], "read-only file system"),
    (["compare", "{dir}"], "comparison.nc"),
    (["export", "{dir}", "-f", "csv"], "read-only file system"),
    (["plot", "{dir}"], "read-only file system"),
])
def test_writing_into_a_read_only_directory_is_one_line_exit_2(ws, read_only, argv, word):
    ws.sweep(tiny())
    argv = [a.format(dir=read_only) for a in argv]
    if argv[0] == "run":
        argv += ["-o", str(read_only)]
    before = snapshot(ws.root)
    code, _, err = run_main(argv)
    assert_one_line_input_error(code, err, word)
    assert snapshot(ws.root) == before


def test_a_finished_sweep_reruns_on_a_read_only_directory_writing_nothing(ws, read_only):
    before = snapshot(ws.root / read_only)
    code, out, err = run_main(["run", ws.sweep(tiny()), "-o", str(read_only), "-q", "-w", "0"])
    assert code == 0
    assert "0 computed, 2 already done" in out
    # --quiet still compares (the directory has no comparison yet): one line says why the
    # file is missing, as after a run that prints its tables
    assert err.count("\n") == 1 and "comparison.nc not written" in err, err
    assert snapshot(ws.root / read_only) == before


def test_an_unwritable_output_is_refused_before_any_work(ws, monkeypatch):
    """Where no read-only mount can be made: the permission check says no, as access(2)
    does for a user without write permission."""
    monkeypatch.setattr("gradstats.paths.writable", lambda directory: False)
    sweep = ws.sweep(tiny())
    before = snapshot(ws.root)
    code, _, err = run_main(["run", sweep, "-o", FINISHED, "-q", "-w", "0", "--set", "seeds=2"])
    assert_one_line_input_error(code, err, "is not writable")
    code, out, err = run_main(["run", "s.toml", "-o", FINISHED, "-q", "-w", "0"])
    assert code == 0 and "0 computed" in out  # no new point: no check needed
    # --quiet compares only where it can write the file: one line says why it did not
    assert err.count("\n") == 1 and "comparison.nc not written" in err, err
    assert snapshot(ws.root) == before
