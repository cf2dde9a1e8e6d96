"""Package boundaries, checked in clean interpreters (subprocesses): what each subpackage may
import, that a sweep file is parsed without torch or jax, and how fast the CLI starts.

- ``gradstats.simulate`` (every module) never imports ``gradstats.theory`` nor jax;
- ``gradstats.theory`` (every module) never imports torch nor ``gradstats.simulate``;
- ``gradstats.results`` and ``gradstats.results.plots`` (every module) never import torch;
- the shared descriptions (``gradstats.layers``, ``activations``, ``parameterization``,
  ``spec``) import neither torch nor jax: each layer kind's realizations import their backend
  when they run;
- no module but the CLI imports ``gradstats.cli`` (the commands it registers do not import it
  back);
- ``gradstats --help`` and ``gradstats presets`` import none of the heavy libraries (torch,
  jax, xarray, scipy, matplotlib, dask, zarr, netCDF readers), which is what keeps them starting
  in a fraction of a second. Their start-up time is measured in
  ``benchmarks/bench_cli_startup.py`` (RESULTS_startup.md), not asserted here: a wall-clock
  limit fails on a loaded machine and says nothing about the code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gradstats

SRC = str(Path(gradstats.__file__).resolve().parents[1])
# Libraries that each take from 0.2 s to several seconds to import (benchmarks/bench_cli_startup.py).
HEAVY = ("torch", "jax", "jaxlib", "xarray", "scipy", "matplotlib", "dask", "distributed", "zarr",
         "netCDF4", "h5netcdf", "h5py", "pandas", "sklearn")

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
names = []
for root in {roots!r}:
    pkg = importlib.import_module(root)
    names.append(root)
    if hasattr(pkg, "__path__"):
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, root + ".")
                  if m.name not in {skip!r}]
for name in names:
    importlib.import_module(name)
print(json.dumps({{"modules": names, "loaded": sorted(sys.modules)}}))
"""


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def _loaded_after_importing(roots: list[str], skip: tuple[str, ...] = ()) -> tuple[list[str], set[str]]:
    """(modules imported, every module in sys.modules afterwards) in a fresh interpreter."""
    proc = _python(_IMPORT_ALL.format(roots=roots, skip=skip))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["modules"], set(out["loaded"])


def _hits(loaded: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f for f in forbidden if f in loaded)


def _culprits(modules: list[str], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Which of ``modules``, each imported alone, pulls in which forbidden module."""
    found = {}
    for name in modules:
        _, loaded = _loaded_after_importing([name])
        if hits := _hits(loaded, forbidden):
            found[name] = hits
    return found


@pytest.mark.parametrize(("roots", "forbidden"), [
    (["gradstats.simulate"], ("gradstats.theory", "jax", "jaxlib")),
    (["gradstats.theory"], ("torch", "gradstats.simulate")),
    (["gradstats.results"], ("torch",)),
    (["gradstats.results.plots"], ("torch",)),
    (["gradstats.layers", "gradstats.activations", "gradstats.parameterization", "gradstats.spec"],
     ("torch", "jax", "jaxlib", "gradstats.simulate", "gradstats.theory")),
], ids=["simulate", "theory", "results", "results.plots", "layers"])
def test_subpackage_never_imports(roots, forbidden):
    modules, loaded = _loaded_after_importing(roots)
    assert len(modules) > 1
    if hits := _hits(loaded, forbidden):
        pytest.fail(f"{roots[0]} imports {hits}: {_culprits(modules, forbidden)}")


def test_no_module_imports_the_cli_back():
    modules, loaded = _loaded_after_importing(["gradstats"], skip=("gradstats.cli",))
    assert "gradstats.results.plot_command" in modules and "gradstats.theory.command" in modules
    assert "gradstats.cli" not in loaded


def test_parsing_a_sweep_file_needs_neither_torch_nor_jax():
    code = """
import json, sys
from importlib import resources
from gradstats.sweeps.grid import expand
from gradstats.sweeps.presets import preset_names, resolve_sweep
from gradstats.sweeps.sweepfile import load_sweep
folder = resources.files("gradstats.sweeps") / "presets"
sizes = {name: len(expand(resolve_sweep(name))) for name in preset_names()}
measured = [name for name in preset_names() if load_sweep(str(folder / f"{name}.toml")).measure]
print(json.dumps({"sizes": sizes, "measured": measured, "loaded": sorted(sys.modules)}))
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["measured"], "no preset names estimators: the check would not cover measure"
    assert _hits(set(out["loaded"]), ("torch", "jax", "gradstats.simulate.estimators")) == []


@pytest.mark.parametrize("argv", [["--help"], ["presets"]], ids=["help", "presets"])
def test_cli_help_and_presets_import_no_heavy_library(argv):
    code = f"""
import json, sys
from gradstats.cli import main
try:
    main({argv!r})
except SystemExit as stop:
    assert stop.code in (0, None), stop.code
print(json.dumps(sorted(sys.modules)))
"""
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "gradstats.cli" in loaded
    assert _hits(loaded, HEAVY) == []
