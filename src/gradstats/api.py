"""The Python entry points that mirror the command line: `run_sweep` and `compare`.

Both are thin layers over the code the CLI runs (`gradstats.sweeps.execute.run_sweep`,
`gradstats.results.compare.compare`, `gradstats.results.compare_command`): the same sweep
gives the same point files, and the same results the same comparison, from either.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from gradstats.sweeps.sweepfile import SweepFile

__all__ = ["Comparison", "compare", "run_sweep"]

# The columns of `Comparison.table`, in order (fields of `compare.SummaryRow`).
TABLE_COLUMNS = ("title", "steps", "test", "domain", "agree", "disagree", "outside",
                 "undetermined", "raw_disagree", "expected_false", "detectable",
                 "undetermined_detectable", "typical", "allowance", "reasons")


def run_sweep(sweep: str | os.PathLike | Mapping[str, Any] | SweepFile | None = None,
              out: str | os.PathLike | None = None, *,
              set: Mapping[str, Any] | Sequence[str] | None = None,
              workers: int | None = 0, scheduler: str | None = None, limits: bool = True,
              progress: bool = False, lazy: bool = True, ensemble: bool = True) -> xr.Dataset:
    """Run a sweep like ``gradstats run`` and return its results dataset (`load_results`).

    ``sweep``: a sweep file path (.toml), a preset name (`gradstats.sweeps.preset_names`), a
    dict with a sweep file's keys (``name``, ``seeds``, ``grid``, ``fixed``, ...) or a parsed
    `gradstats.sweeps.SweepFile`; None: the ``quickstart`` preset.
    ``out``: the results directory (default ``results/<sweep name>``); a rerun into it
    resumes (finished points are not recomputed).
    ``set``: axis overrides, ``{"width": [64, 128], "seeds": 4}`` (a list sweeps the axis,
    one value fixes it) or the CLI's strings ``["width=64,128"]``.
    ``workers``: 0 (default) computes in this process; N starts a local Dask cluster of N
    processes; None: as the CLI, one per core (in-process when the work is small).
    ``scheduler``: the address of a running Dask cluster. ``limits=False``: the CLI's
    ``--no-limits``. ``progress``: a progress bar on stderr. ``ensemble=False``: the CLI's
    ``--no-ensemble`` (every point trained on its own; the same results).

    Returns the dataset of every point in ``out`` (dims: the axes that vary, ``seed``,
    ``step``, ``layer``, ...), dask-backed unless ``lazy=False``. Points that failed are
    recorded in it (``failed = 1``, errors in ``attrs["errors"]``) and named in a warning.
    Raises `gradstats.errors.InputError` (a bad sweep, override or directory; nothing
    written).
    """
    with _python_names():
        return _run_sweep(sweep, out, set=set, workers=workers, scheduler=scheduler,
                          limits=limits, progress=progress, lazy=lazy, ensemble=ensemble)


def _run_sweep(sweep: Any, out: str | os.PathLike | None, *, set: Any, workers: int | None,
               scheduler: str | None, limits: bool, progress: bool, lazy: bool,
               ensemble: bool) -> xr.Dataset:
    """`run_sweep`'s work; its errors name command-line options (`_python_names` renames)."""
    from gradstats import paths
    from gradstats.results.io import load_results
    from gradstats.sweeps import apply_overrides, expand, sweeptoml
    from gradstats.sweeps.execute import run_sweep as execute
    from gradstats.sweeps.limits import DEFAULT_LIMITS
    from gradstats.sweeps.progress import progress_bar
    from gradstats.terminal import stderr_console

    sweep_file = _sweep_file(sweep)
    if set:
        sweep_file = apply_overrides(sweep_file, _override_strings(set))
    points = expand(sweep_file, limits=DEFAULT_LIMITS if limits else None)
    if any(p.device == "cuda" for p in points):
        from gradstats.simulate.model import resolve_device

        resolve_device("cuda")  # an InputError here, before anything is written
    out_dir = Path(out) if out is not None else Path("results") / sweep_file.name
    paths.check_output_dir(out_dir)
    executor = None
    if scheduler is not None:
        from gradstats.sweeps.executors import DaskExecutor

        executor = DaskExecutor(address=scheduler)
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    try:
        with progress_bar(enabled=progress, console=stderr_console()) as bar:
            summary = execute(points, sweep_file.measure, out_dir, name=sweep_file.name,
                              progress=bar, phase=bar.phase, executor=executor,
                              workers=n_workers, command=_command(out_dir),
                              sweep_toml=sweeptoml.dumps(sweep_file), ensemble=ensemble)
    finally:
        if executor is not None:
            executor.close()
    if summary.failed:
        named = "; ".join(f"{p.key()} (seed {p.seed}): {' '.join(err.split())[:200]}"
                          for p, err in summary.failed[:3])
        more = len(summary.failed) - min(3, len(summary.failed))
        warnings.warn(f"{len(summary.failed)} of {summary.total} points failed (recorded with "
                      f"failed = 1; rerun to retry): {named}"
                      + (f"; and {more} more" if more else ""), stacklevel=2)
    return load_results(out_dir, lazy=lazy)


# The command-line options the shared checks name, and the run_sweep arguments they are.
_OPTION_NAMES = (("--no-limits", "limits=False"), ("--no-ensemble", "ensemble=False"),
                 ("--scheduler", "scheduler"), ("--workers", "workers"), ("--out", "out"),
                 ("--set", "set"))


@contextmanager
def _python_names() -> Iterator[None]:
    """Re-raise an `InputError` naming `run_sweep`'s arguments instead of the CLI's options
    (``--set width: ...`` -> ``set width: ...``; ``pass --no-limits`` -> ``pass
    limits=False``): the checks are shared with the CLI and name its options."""
    from gradstats.errors import InputError

    try:
        yield
    except InputError as err:
        message = str(err)
        for option, name in _OPTION_NAMES:
            message = message.replace(option, name)
        err.args = (message,)
        raise


def _sweep_file(sweep: Any) -> SweepFile:
    """A validated `SweepFile` from a path, a preset name, a mapping or a SweepFile."""
    from gradstats.sweeps import parse_sweep, resolve_sweep
    from gradstats.sweeps.sweepfile import SweepError, SweepFile

    if isinstance(sweep, SweepFile):
        return sweep
    if isinstance(sweep, Mapping):
        return parse_sweep(dict(sweep))
    if sweep is None or isinstance(sweep, str | os.PathLike):
        return resolve_sweep(None if sweep is None else os.fspath(sweep))
    raise SweepError(f"sweep: expected a sweep file path, a preset name, a dict or a "
                     f"SweepFile, got {type(sweep).__name__}")


def _override_strings(overrides: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """``{"width": [64, 128], "bias": False}`` -> ``["width=64,128", "bias=false"]``."""
    if isinstance(overrides, str):
        return [overrides]
    if not isinstance(overrides, Mapping):
        return [str(item) for item in overrides]

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return repr(value) if isinstance(value, float) else str(value)

    out = []
    for axis, value in overrides.items():
        values = list(value) if isinstance(value, list | tuple) else [value]
        out.append(f"{axis}={','.join(text(v) for v in values)}")
    return out


def _command(out_dir: Path) -> str:
    """What the results record as the command that made them: a call that reruns the sweep
    as run (overrides applied), from the ``DIR/sweep.toml`` this run wrote."""
    return (f"gradstats.run_sweep({os.fspath(out_dir / 'sweep.toml')!r}, "
            f"out={os.fspath(out_dir)!r})")


@dataclass(frozen=True)
class Comparison:
    """Theory vs measurement of a sweep, as ``gradstats compare`` computes and prints it.

    ``table``: one row per comparison (index ``comparison``): verdict counts over its cells
    (``agree``, ``disagree``, ``outside``, ``undetermined``), ``raw_disagree`` beside
    ``expected_false`` (their number if the theory were exact), the median ``detectable``
    error, a ``typical`` measured/predicted value, the test, validity ``domain``,
    ``allowance`` and the ``reasons`` of outside cells. ``cells``: the per-cell dataset
    (``DIR/comparison.nc``: ``<name>_verdict`` 0 disagree / 1 agree / 2 outside /
    3 undetermined, ``_p``, ``_p_holm``, ``_detectable``, ``_reason``, ... over the sweep's
    axes, ``layer`` and ``step``). ``skipped``: comparisons the results do not allow, why.
    """

    table: pd.DataFrame
    cells: xr.Dataset
    skipped: list[str] = field(default_factory=list)

    @property
    def level(self) -> float:
        """The significance level of every row (Holm-adjusted within a row)."""
        return float(self.cells.attrs["level"])

    def print(self, console: Any = None) -> None:
        """The table ``gradstats compare`` prints (to stdout, or a rich ``console``)."""
        from gradstats.results.compare_command import print_comparison
        from gradstats.terminal import stdout_console

        print_comparison(self.cells, console or stdout_console())

    def __repr__(self) -> str:
        counts = self.table[["agree", "disagree", "outside", "undetermined"]].sum()
        return (f"Comparison({len(self.table)} comparisons at level {self.level:g}: "
                + ", ".join(f"{int(n)} {k}" for k, n in counts.items()) + ")")


def compare(results: str | os.PathLike | xr.Dataset, *, level: float = 0.01,
            out: str | os.PathLike | None = None) -> Comparison:
    """Compare a sweep's measurements with theory, like ``gradstats compare``.

    ``results``: a results directory, its ``sweep.zarr``, or a dataset from `load_results` /
    `run_sweep` (lazy datasets are computed first). ``level``: the significance level per
    comparison, Holm-adjusted over its cells. ``out``: also write the per-cell dataset there
    as netCDF (the CLI's ``DIR/comparison.nc``); nothing is written by default.
    Returns a `Comparison` (``.table``, ``.cells``, ``.print()``).
    """
    import pandas as pd
    import xarray as xr

    from gradstats import paths
    from gradstats.results.compare import compare as compare_cells
    from gradstats.results.compare import summary_rows
    from gradstats.results.compare_command import skipped_lines, write_comparison
    from gradstats.results.io import is_comparison, load_results
    from gradstats.spec import SpecError

    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise SpecError("level", f"must be a number in (0, 1), got {level!r}")
    if isinstance(results, Comparison) or (isinstance(results, xr.Dataset)
                                           and is_comparison(results)):
        raise SpecError("results", "this is a comparison, not results; give the results "
                        "directory or the dataset of load_results / run_sweep")
    if not isinstance(results, xr.Dataset | str | os.PathLike):
        raise SpecError("results", f"expected a results path or an xarray Dataset, got "
                        f"{type(results).__name__}")
    if out is not None:
        paths.check_output_file(Path(out), "out", suffix=".nc")  # before the work
    ds = results.compute() if isinstance(results, xr.Dataset) else load_results(
        results, lazy=False)
    if "seed" not in ds.dims:
        raise SpecError("results", "the dataset has no seed dimension (a selection such as "
                        "ds.isel(seed=0) drops it); compare needs every seed")
    if not ds.attrs.get("points"):
        raise SpecError("results", "the dataset carries no point specs (attrs['points']); give "
                        "a results directory or a dataset from load_results")
    cells = compare_cells(ds, level=level)
    if out is not None:
        write_comparison(cells, Path(out))
    rows = summary_rows(cells)
    table = pd.DataFrame([{c: getattr(row, c) for c in TABLE_COLUMNS} for row in rows],
                         index=pd.Index([row.name for row in rows], name="comparison"),
                         columns=list(TABLE_COLUMNS))
    notes = cells.attrs.get("notes", [])
    return Comparison(table=table, cells=cells, skipped=skipped_lines(notes))
