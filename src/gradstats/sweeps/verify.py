"""Verify a results directory (``gradstats show --check DIR``): every point of its sweep is
there, intact and its own; nothing else is; the consolidated store matches the point files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradstats.results import io
from gradstats.results.io import ResultsError
from gradstats.sweeps import resultsdir

RERUN = "rerun the sweep into this directory to"


@dataclass
class CheckReport:
    """``ok``: points whose file is intact, their own and finished; ``problems``: one line each."""

    points: int = 0
    ok: int = 0
    problems: list[str] = field(default_factory=list)


def check_results_dir(out_dir: Path) -> CheckReport:
    """Check ``out_dir`` (see the module docstring); `ResultsError` if it is no results dir."""
    out_dir = Path(out_dir)
    manifest_path = out_dir / resultsdir.MANIFEST
    if not out_dir.is_dir() or not (manifest_path.exists() or (out_dir / io.POINTS_DIR).is_dir()):
        raise ResultsError(f"{out_dir} is not a results directory (no {resultsdir.MANIFEST}, "
                           f"no {io.POINTS_DIR}/)")
    report = CheckReport()
    manifest = resultsdir.read_manifest(out_dir)
    keys = resultsdir.manifest_keys(manifest)
    if manifest is None:
        report.problems.append(f"{resultsdir.MANIFEST} is missing or unreadable; the point files "
                               "are checked alone")
        keys = {p.stem for p in io.point_files(out_dir)}
    elif manifest.get("sweep_id") not in (None, resultsdir.sweep_id(sorted(keys))):
        report.problems.append(f"{resultsdir.MANIFEST}: its sweep_id does not match its points "
                               "(edited by hand?)")
    report.points = len(keys)
    for key in sorted(keys):
        problem = _point_problem(out_dir, key)
        if problem is None:
            report.ok += 1
        else:
            report.problems.append(f"{io.POINTS_DIR}/{key}.nc: {problem}")
    for path in io.point_files(out_dir):
        if path.stem not in keys:
            report.problems.append(f"{io.POINTS_DIR}/{path.name}: not a point of this sweep")
    report.problems += _store_problems(out_dir)
    return report


def _point_problem(out_dir: Path, key: str) -> str | None:
    path = out_dir / io.POINTS_DIR / f"{key}.nc"
    if not path.exists():
        return f"missing (not computed yet; {RERUN} compute it)"
    ds, problem = io.read_point(path, expected_key=key)
    if problem is not None:
        return f"{problem}; {RERUN} recompute it"
    if ds.attrs.get("status") != "ok":
        first = str(ds.attrs.get("error", "")).splitlines()[:1]
        return f"the point failed ({first[0] if first else 'no message'}); {RERUN} retry it"
    return None


def _store_problems(out_dir: Path) -> list[str]:
    from gradstats.sweeps.execute import store_is_current

    store = out_dir / io.CONSOLIDATED
    if not store.is_dir():
        return [f"{io.CONSOLIDATED} is missing; {RERUN} build it"]
    damage = io.verify_store(store, content=True)
    if damage:
        return [f"{io.CONSOLIDATED}: {d}; {RERUN} rebuild it" for d in damage]
    if not store_is_current(out_dir):
        return [f"{io.CONSOLIDATED} was not built from the current point files; {RERUN} "
                "rebuild it"]
    return []
