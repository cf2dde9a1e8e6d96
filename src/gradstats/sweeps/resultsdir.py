"""A results directory belongs to one sweep: its identity, its manifest, whether it is writable.

Identity is by content: the set of point keys. A run into a directory is accepted when
every point already there (in ``points/``, or in ``sweep.json`` while the run that wrote it
is still going) is a point of the new sweep:
the same sweep resumes, and a sweep that contains it (more seeds, another width) extends
it. Otherwise the run is refused before anything is written, since the results would mix
(docs/errors.md). ``sweep.json`` is rewritten only when the sweep it describes changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradstats.errors import InputError, os_error_line
from gradstats.results import io
from gradstats.spec import Point

MANIFEST = "sweep.json"
# The sweep file as last run into the directory (`gradstats.sweeps.sweeptoml`).
SWEEP_TOML = "sweep.toml"
# Manifest entries that describe the sweep (the rest, e.g. the command, do not).
IDENTITY_FIELDS = ("name", "measure", "sweep_id", "points", "data_digests")


def data_digests(points: Sequence[Point]) -> dict[str, str]:
    """SHA-256 of each npz file the points read (``npz:PATH`` -> hex digest): a point key
    names the file by its path, so its content is recorded beside the points."""
    from gradstats.simulate.data import npz_path

    digests = {}
    for name in sorted({p.data.name for p in points if p.data.name.startswith("npz:")}):
        try:
            content = npz_path(name).read_bytes()
        except OSError:  # the data check names the problem (`simulate.data`)
            continue
        digests[name] = hashlib.sha256(content).hexdigest()
    return digests


def create_layout(out_dir: Path, subdirs: Sequence[str], option: str = "--out") -> None:
    """Create ``out_dir`` and its ``subdirs`` (points, locks) before anything is written in
    them, so that a directory that cannot hold a run (a path under /proc, a file named like
    a subdirectory) is an input error that leaves no file behind."""
    for directory in (Path(out_dir), *(Path(out_dir) / d for d in subdirs)):
        if directory.exists() and not directory.is_dir():
            raise InputError(f"{option}: {directory} exists and is not a directory")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{option}: {os_error_line(err)}") from None


def check_data_unchanged(out_dir: Path, manifest: dict[str, Any]) -> None:
    """`InputError` when an npz file that ``out_dir``'s points were computed from has other
    content now: resumed or added points would train on other data than those there."""
    there = read_manifest(out_dir) or {}
    recorded = there.get("data_digests") or {}
    if not isinstance(recorded, dict) or not io.point_files(out_dir):
        return
    for name, digest in (manifest.get("data_digests") or {}).items():
        if name in recorded and recorded[name] != digest:
            raise InputError(
                f"data: {name} has changed since the points in {out_dir} were computed from it "
                f"(sha256 {str(recorded[name])[:12]}..., now {digest[:12]}...): results would "
                "mix; restore the file, or run into another --out")


def sweep_id(keys: Sequence[str]) -> str:
    """Content identity of a set of points: digest of their sorted distinct keys."""
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]


def make_manifest(name: str, points: Sequence[Point], measure: Sequence[str],
                  command: str = "") -> dict[str, Any]:
    """What ``sweep.json`` holds: name, measure, sweep_id, every point, the digests of the
    npz files read (`data_digests`), the command."""
    keys = [p.key() for p in points]
    manifest: dict[str, Any] = {
        "name": name, "measure": list(measure), "sweep_id": sweep_id(keys),
        "points": [{"key": k, "point": json.loads(p.to_json())}  # as read back (lists)
                   for k, p in zip(keys, points, strict=True)]}
    digests = data_digests(points)
    if digests:
        manifest["data_digests"] = digests
    if command:
        manifest["command"] = command
    return manifest


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """``DIR/sweep.json`` parsed; None when absent or unreadable (its point files still count)."""
    try:
        manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def manifest_keys(manifest: dict[str, Any] | None) -> set[str]:
    """The point keys a manifest lists (empty for None or a malformed one)."""
    try:
        return {str(entry["key"]) for entry in (manifest or {}).get("points", [])}
    except (TypeError, KeyError):
        return set()


def check_belongs(out_dir: Path, manifest: dict[str, Any]) -> None:
    """`InputError` when ``out_dir`` holds points that are not in ``manifest``'s sweep: point
    files, or the points of ``sweep.json`` while the run that wrote it is live (an aborted
    or finished run's manifest claims only the files it left)."""
    from gradstats.sweeps import locks

    out_dir = Path(out_dir)
    ours = manifest_keys(manifest)
    there = read_manifest(out_dir)
    existing = {path.stem for path in io.point_files(out_dir)}
    if locks.run_is_live(out_dir):
        existing |= manifest_keys(there)
    foreign = existing - ours
    if not foreign:
        return
    name = there.get("name") if there else None
    described = f"another sweep ({name!r}, " if name else "another sweep ("
    files = sorted(f"{io.POINTS_DIR}/{key}.nc" for key in foreign
                   if (Path(out_dir) / io.POINTS_DIR / f"{key}.nc").exists())
    named = (f"; not of this sweep: {', '.join(files[:3])}" + (" ..." if len(files) > 3 else "")
             if files else "")
    remedy = "move those files away" if files else "wait until its run has ended"
    raise InputError(
        f"--out: {out_dir} holds {described}{len(existing)} points, {len(foreign)} of them not "
        f"points of this one{named}): results would mix; choose another --out, or {remedy}")


def manifest_changed(out_dir: Path, manifest: dict[str, Any]) -> bool:
    """Whether ``sweep.json`` must be (re)written to describe ``manifest``'s sweep."""
    there = read_manifest(out_dir)
    return there is None or any(there.get(k) != manifest.get(k) for k in IDENTITY_FIELDS)


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> bool:
    """Write ``sweep.json`` atomically if it changed; returns whether it was written."""
    if not manifest_changed(out_dir, manifest):
        return False
    io.write_text_atomic(json.dumps(manifest, indent=1), Path(out_dir) / MANIFEST)
    return True


def sweep_toml_changed(out_dir: Path, text: str) -> bool:
    """Whether ``DIR/sweep.toml`` must be (re)written to hold ``text`` ("" : never)."""
    if not text:
        return False
    try:
        return (Path(out_dir) / SWEEP_TOML).read_text(encoding="utf-8") != text
    except (OSError, UnicodeDecodeError):
        return True


def write_sweep_toml(out_dir: Path, text: str) -> bool:
    """Write ``DIR/sweep.toml`` (atomically) when it changed; whether it was written."""
    if not sweep_toml_changed(out_dir, text):
        return False
    io.write_text_atomic(text, Path(out_dir) / SWEEP_TOML)
    return True
