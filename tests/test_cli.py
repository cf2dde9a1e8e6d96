"""The command line: run, presets, show, export; bad input exits 2 with one line."""

import re
import subprocess
import sys

import pytest
import torch
import xarray as xr

from gradstats.cli import main

SWEEP = """
name = "tiny"
seeds = 2
[grid]
width = [8, 16]
[fixed]
depth = 2
input_dim = 8
n_train = 32
batch_size = 8
steps = 4
record = [0, 4]
"""


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err


def _ok(argv):
    """Run a command that must succeed: main returns normally."""
    assert main(argv) is None


def test_run_writes_points_and_prints_summary(tmp_path, capsys):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(SWEEP)
    _ok(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"])
    assert len(list((tmp_path / "out" / "points").glob("*.nc"))) == 4
    ds = xr.open_zarr(tmp_path / "out" / "sweep.zarr")
    assert ds.sizes["width"] == 2 and ds.sizes["seed"] == 2
    _ok(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"])
    assert "0 computed, 4 already done" in capsys.readouterr().out


def test_quiet_prints_no_tables_but_still_writes_the_comparison(tmp_path, capsys):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(SWEEP)
    _ok(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert (tmp_path / "out" / "comparison.nc").exists()
    assert "comparison.nc" in out and "agree" not in out and "next:" not in out
    written = (tmp_path / "out" / "comparison.nc").stat().st_mtime_ns
    _ok(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"])  # nothing new: kept
    assert (tmp_path / "out" / "comparison.nc").stat().st_mtime_ns == written
    _ok(["run", str(sweep), "--out", str(tmp_path / "off"), "--quiet", "--no-compare"])
    assert not (tmp_path / "off" / "comparison.nc").exists()


@pytest.mark.parametrize("text, field", [
    (SWEEP.replace("width = [8, 16]", "width = [8, 0]"), "grid.width[1]"),
    (SWEEP.replace("depth = 2", "depht = 2"), "fixed.depht"),
    (SWEEP.replace("[fixed]", "[fixed]\nlr = -1.0"), "fixed.lr"),
    pytest.param(SWEEP.replace("[fixed]", "[fixed]\ndevice = 'cuda'"), "device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(),
                                          reason="this machine has a GPU: cuda is valid")),
])
def test_bad_sweep_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, text, field):
    sweep = tmp_path / "bad.toml"
    sweep.write_text(text)
    code, _, err = _run(["run", str(sweep), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), err
    assert not (tmp_path / "out").exists()


def test_bad_override_exits_2(tmp_path, capsys):
    code, _, err = _run(["run", "quickstart", "--set", "width=-3", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "width" in err and not (tmp_path / "o").exists()


def test_unknown_preset_exits_2(tmp_path, capsys):
    code, _, err = _run(["run", "no-such-preset", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no-such-preset" in err


def test_presets_lists_quickstart(capsys):
    _ok(["presets"])
    assert "quickstart" in capsys.readouterr().out


def test_show_and_export(tmp_path, capsys):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(SWEEP)
    _ok(["run", str(sweep), "--out", str(tmp_path / "out"), "--quiet"])
    _ok(["show", str(tmp_path / "out")])
    assert "grad_sq_norm" in capsys.readouterr().out
    _ok(["export", str(tmp_path / "out"), "--format", "csv", "--out", str(tmp_path / "t.csv")])
    assert (tmp_path / "t.csv").read_text().startswith("variable,")


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from gradstats.cli import app; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _help(argv: list[str], columns: int) -> str:
    env = {**__import__("os").environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "gradstats.cli", *argv, "--help"],
                         capture_output=True, text=True, check=True, env=env)
    return out.stdout


def test_on_off_options_show_no_value_placeholder_in_help():
    """A flag takes no value, so help lists none beside it (typer 0.29 prints ``<bool>``,
    as if ``--quiet`` took one); --set shows the form of its value."""
    for argv in ([], ["run"], ["show"], ["export"], ["theory"], ["plot"]):
        text = _help(argv, 200)
        assert "<bool>" not in text, (argv, text)
        assert re.search(r"--help\s+Show this message", text), argv
    run = _help(["run"], 200)
    assert re.search(r"--quiet\s+-q\s+No progress bar", run), run
    assert re.search(r"--compare\s+--no-compare\s+After the run", run), run
    assert re.search(r"--set\s+AXIS=V\s+Override an axis", run), run


def test_help_paragraphs_wrap_to_the_terminal_not_to_the_source_lines():
    """A wide terminal shows each docstring paragraph on one line; a narrow one wraps it
    without the source's line breaks (typer keeps them after the first paragraph)."""
    wide = _help(["run"], 400)
    assert ("Rerunning into the same directory skips the points already done (resume); runs "
            "sharing a directory split the points between them.") in wide
    listing = _help([], 400)
    assert "print the measurements and the theory-vs-measurement table." in listing
    narrow = _help(["report"], 80)
    words = [line.strip(" │") for line in narrow.splitlines()]
    assert not any(w in ("refused.", "sharing", "cells,") for w in words)
