"""Every ```python block of README.md and docs/*.md runs, so the documented API cannot rot.

The blocks run in a temporary working directory holding a tiny ``results/quickstart``: the
quickstart preset (activation x width, seeds, steps, layers: the dims of the real one) at
widths 16 and 32, 2 seeds, 2 steps, made once by `gradstats.run_sweep`. Each block runs in
a fresh namespace (a reader copies one block at a time). Shell, TOML and text blocks are not
run. The block's name in a failure is FILE:LINE of its opening fence.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)
# The quickstart preset made tiny: same axes and dims, seconds to run.
TINY_QUICKSTART = {"width": [16, 32], "seeds": 2, "steps": 2, "record": 2, "depth": 2,
                   "n_train": 16, "batch_size": 4}


def python_blocks(path: Path) -> list[tuple[str, str]]:
    """(``FILE:LINE``, code) of every ```python block of ``path``."""
    text = path.read_text()
    return [(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}", m.group(1))
            for m in FENCE.finditer(text)]


BLOCKS = [block for path in DOCUMENTS for block in python_blocks(path)]


def test_the_readme_has_python_blocks():
    names = [name for name, _ in BLOCKS]
    assert sum(name.startswith("README.md") for name in names) >= 4, names


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory with a tiny ``results/quickstart`` (see the module docstring)."""
    import gradstats

    root = tmp_path_factory.mktemp("snippets")
    ds = gradstats.run_sweep("quickstart", out=root / "results" / "quickstart",
                             set=TINY_QUICKSTART, workers=0)
    assert {"activation", "width", "seed", "step", "layer"} <= set(ds.grad_sq_norm.dims)
    return root


@pytest.mark.slow  # the tiny sweep: ~10 s idle, ~40 s on a loaded 2-core machine (JAX compiles)
@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
def test_block_runs(name, code, workdir, monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(workdir)
    try:
        exec(compile(code, name, "exec"), {"__name__": "__snippet__"})  # noqa: S102
    finally:
        plt.close("all")


@pytest.mark.slow
def test_lazy_and_eager_results_agree(workdir):
    """The lazy and the eager dataset (both read from sweep.zarr) hold what the point files
    hold, combined here from the files themselves."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    import gradstats
    from gradstats.results import io

    path = workdir / "results" / "quickstart"
    lazy = gradstats.load_results(path)
    eager = gradstats.load_results(path, lazy=False)
    io._DECODED.clear()
    from_files = io.combine(io.load_point_files(path))
    assert isinstance(lazy.grad_sq_norm.data, da.Array)
    assert isinstance(eager.grad_sq_norm.data, np.ndarray)
    for ds in (lazy.compute(), eager):
        xr.testing.assert_identical(ds.drop_attrs(deep=False), from_files.drop_attrs(deep=False))
        assert ds.attrs["points"] == from_files.attrs["points"]


@pytest.mark.slow
def test_compare_table_counts_every_cell(workdir, tmp_path):
    """compare(): a row per comparison whose verdict counts are its cells' verdicts."""
    import numpy as np
    import xarray as xr

    import gradstats

    cmp = gradstats.compare(workdir / "results" / "quickstart", out=tmp_path / "c.nc")
    assert cmp.table.index.name == "comparison" and "grad_sq_norm" in cmp.table.index
    for name, row in cmp.table.iterrows():
        codes = cmp.cells[f"{name}_verdict"].values
        codes = codes[np.isfinite(codes)]
        assert [row.disagree, row.agree, row.outside, row.undetermined] == [
            int((codes == c).sum()) for c in range(4)], name
    on_disk = xr.open_dataset(tmp_path / "c.nc")
    assert set(on_disk.data_vars) == set(cmp.cells.data_vars)
    assert any("needs" in line for line in cmp.skipped)
