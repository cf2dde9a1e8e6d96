"""The report of a sweep: one self-contained HTML page (``gradstats report``).

`build_report(path)` reads a results directory (or its .zarr / a .nc) and returns the page:

- overview: the sweep's name, dims, point counts, verdict totals;
- theory vs measurement: the table `gradstats compare` prints (one row per comparison, with
  steps, test, domain, verdict counts), the validity notes (why cells lie outside, which rows
  had too few seeds, what each test is, which comparisons were skipped) and, per comparison,
  every cell's verdict with its configuration, layer, step, estimate and reason. The stored
  ``DIR/comparison.nc`` is used when it is newer than every point file (and, given a level,
  at that level); otherwise the comparison is computed for the report (and not written);
- figures: every kind of `gradstats.results.plots.kinds_available`, as embedded PNGs;
- failed and diverged points, by the axes that vary and their seed;
- the sweep file (``DIR/sweep.toml``, stored by ``gradstats run``);
- provenance: the versions, devices, dates and command the results' attrs record.

Only reads; the page holds everything (no network, no script).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from gradstats.results import io
from gradstats.results import report_html as h
from gradstats.spec import AXES, SEED_DIM, Point

REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.nc"
SWEEP_TOML = "sweep.toml"  # = gradstats.sweeps.resultsdir.SWEEP_TOML (not imported: no cycle)
MANIFEST = "sweep.json"
# Cells listed per comparison (disagreements first); the rest are counted.
MAX_CELLS = 200
# Order of the cells in a comparison's list: the ones a reader looks for first.
VERDICT_ORDER = ("disagree", "undetermined", "outside", "agree")
# Provenance attrs in the order shown, with their labels; other scalar attrs follow.
PROVENANCE = (("gradstats_version", "gradstats version"), ("git_commit", "git commit"),
              ("torch_version", "torch version"), ("jax_version", "jax version"),
              ("device_used", "devices the points ran on"), ("machine", "machine"),
              ("created", "combined (UTC)"), ("command", "command"),
              ("schema_version", "schema version"), ("n_points", "point files"))
NOT_PROVENANCE = {"points", "errors", "theory_notes"}

Update = Callable[[str], None]


@dataclass(frozen=True)
class FigureImage:
    """One plot kind: its PNG bytes, or why it could not be drawn."""

    kind: str
    description: str
    png: bytes | None = None
    problem: str = ""


@dataclass(frozen=True)
class PointProblem:
    """A failed or diverged point: its label (varying axes and seed) and what happened."""

    label: str
    what: str
    key: str = ""


def results_dir(path: Path) -> Path:
    """The directory holding a results path's side files (itself, or a file's parent)."""
    path = Path(path)
    return path if path.is_dir() and path.suffix != ".zarr" else path.parent


def build_report(path: Path, ds: xr.Dataset | None = None, level: float | None = None,
                 update: Update | None = None) -> str:
    """The HTML page of the results at ``path`` (``ds``: already loaded from there).

    ``level``: significance level of a comparison computed here (default: the stored
    comparison's, else `gradstats.comparisons.DEFAULT_LEVEL`); a stored comparison at another
    level is recomputed. ``update(text)`` is told each phase (for a spinner).
    """
    update = update or (lambda _text: None)
    path = Path(path)
    if ds is None:
        ds = io.load_results(path, lazy=False)
    directory = results_dir(path)
    manifest = _read_json(directory / MANIFEST)
    cmp, origin = comparison_for(ds, directory, level, update)
    figures = render_figures(ds, update)
    update("writing the report")
    sweep_text = _read_text(directory / SWEEP_TOML)
    name = _sweep_name(sweep_text, manifest) or path.name
    failed, diverged = failed_points(ds), diverged_points(ds)
    sections = [
        ("overview", "Overview", _overview(ds, cmp, failed, diverged)),
        ("comparison", "Theory vs measurement", _comparison_section(cmp, origin)),
        ("figures", "Figures", _figures_section(figures, ds)),
        ("points", "Failed and diverged points", _points_section(failed, diverged)),
        ("sweep", "Sweep file", _sweep_section(sweep_text, manifest)),
        ("provenance", "Provenance", _provenance_section(ds, path)),
    ]
    made = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return h.page(f"gradstats report: {name}", f"results {path} - report made {made}", sections)


# --- gathering ---------------------------------------------------------------------------------

def comparison_for(ds: xr.Dataset, directory: Path, level: float | None, update: Update
                   ) -> tuple[xr.Dataset | None, str]:
    """(comparison dataset or None, where it came from or why there is none)."""
    from gradstats.comparisons import DEFAULT_LEVEL

    stored = Path(directory) / COMPARISON_FILE
    if io.newer_than_points(stored, directory):
        try:
            cmp = xr.load_dataset(stored)
        except Exception as err:  # a damaged file: compute instead, and say so
            warnings.warn(f"{stored} unreadable ({type(err).__name__}); comparing again",
                          stacklevel=2)
        else:
            if level is None or math.isclose(float(cmp.attrs.get("level", math.nan)), level):
                notes = cmp.attrs.get("notes", "")
                cmp.attrs["notes"] = notes.splitlines() if isinstance(notes, str) else list(notes)
                return cmp, (f"Read from {COMPARISON_FILE} (written "
                             f"{_utc(stored.stat().st_mtime)}).")
    if not ds.attrs.get("points"):
        return None, ("No comparison: these results carry no point specs; make the report of "
                      "a results directory.")
    if "grad_sq_norm" not in ds:
        return None, "No comparison: no measurements in these results (all points failed?)."
    from gradstats.results.compare import compare

    level = DEFAULT_LEVEL if level is None else level
    update("comparing with theory")
    cmp = compare(ds, level=level, progress=lambda name: update(f"comparing with theory: {name}"))
    return cmp, (f"Computed for this report (no current {COMPARISON_FILE}; "
                 "gradstats compare writes one).")


def render_figures(ds: xr.Dataset, update: Update) -> list[FigureImage]:
    """Every available plot kind drawn as PNG bytes; a kind that fails keeps its problem
    (and warns), so one bad figure does not cost the report."""
    from gradstats.results import plots

    figures = []
    with tempfile.TemporaryDirectory(prefix="gradstats-report-") as tmp:
        for kind in plots.kinds_available(ds):
            description = plots.KINDS[kind].description
            update(f"drawing {kind}")
            try:
                fig = plots.render(ds, kind)
                png = plots.save(fig, Path(tmp) / f"{kind}.png", "png").read_bytes()
            except plots.MissingVariables as err:
                figures.append(FigureImage(kind, description, problem=str(err)))
            except Exception as err:  # drawing is extra; the report says what went wrong
                problem = f"{type(err).__name__}: {err}"
                warnings.warn(f"figure {kind} not drawn ({problem})", stacklevel=2)
                figures.append(FigureImage(kind, description, problem=problem))
            else:
                figures.append(FigureImage(kind, description, png=png))
    return figures


def failed_points(ds: xr.Dataset) -> list[PointProblem]:
    """The points that raised (``attrs['errors']``: 'KEY: error'), labelled."""
    errors = ds.attrs.get("errors", [])
    errors = [errors] if isinstance(errors, str) else list(errors)
    by_key = _points_by_key(ds)
    varying = _varying(ds)
    out = []
    for line in errors:
        key, _, error = str(line).partition(": ")
        point = by_key.get(key)
        label = (_label({**point.axis_values(), SEED_DIM: point.seed}, varying)
                 if point is not None else key)
        out.append(PointProblem(label, " ".join(error.split()), key))
    return out


def diverged_points(ds: xr.Dataset) -> list[PointProblem]:
    """The runs whose network became inf/nan (``diverged`` = 1), with the step it happened."""
    if "diverged" not in ds:
        return []
    flag = ds["diverged"]
    step = ds["diverged_step"] if "diverged_step" in ds else None
    varying = _varying(ds)
    out = []
    for index in zip(*np.nonzero(np.nan_to_num(flag.values) > 0), strict=True):
        where = {d: _item(flag[d].values[i]) for d, i in zip(flag.dims, index, strict=True)}
        where.update({n: _item(c.values) for n, c in flag.coords.items() if c.ndim == 0})
        what = "inf/nan during training"
        if step is not None:
            at = float(step.sel({d: where[d] for d in step.dims}).values)
            if math.isfinite(at) and at >= 0:
                what += f", first at step {int(at)}"
        out.append(PointProblem(_label(where, varying), what))
    return out


def _points_by_key(ds: xr.Dataset) -> dict[str, Point]:
    texts = ds.attrs.get("points", [])
    texts = [texts] if isinstance(texts, str) else list(texts)
    points = {}
    for text in texts:
        try:
            point = Point.from_json(text)
        except Exception:  # an unreadable spec only costs its label
            continue
        points[point.key()] = point
    return points


def _varying(ds: xr.Dataset) -> list[str]:
    return [a for a in AXES if a in ds.dims]


def _label(values: dict, varying: list[str]) -> str:
    """``width=8, lr=10 (seed 1)`` (as the run summary names points)."""
    named = ", ".join(f"{a}={_fmt_value(values[a])}" for a in varying if a in values)
    seed = values.get(SEED_DIM)
    seed_text = f"seed {seed}" if seed is not None else ""
    if named and seed_text:
        return f"{named} ({seed_text})"
    return named or seed_text or "the only point"


def _fmt_value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _item(value):
    value = np.asarray(value)
    return value.item() if value.ndim == 0 else value


def _read_text(path: Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _read_json(path: Path) -> dict | None:
    text = _read_text(path)
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _sweep_name(sweep_text: str | None, manifest: dict | None) -> str | None:
    if sweep_text:
        try:
            name = tomllib.loads(sweep_text).get("name")
        except tomllib.TOMLDecodeError:
            name = None
        if name:
            return str(name)
    return str(manifest["name"]) if manifest and manifest.get("name") else None


# --- sections ------------------------------------------------------------------------------------

def _overview(ds: xr.Dataset, cmp: xr.Dataset | None, failed: list, diverged: list) -> str:
    from gradstats.terminal import plural

    dims = ", ".join(f"{d}={n}" for d, n in ds.sizes.items())
    fixed = ", ".join(f"{n}={_fmt_value(_item(c.values))}" for n, c in ds.coords.items()
                      if c.ndim == 0 and n in AXES)
    rows = [("point files", str(ds.attrs.get("n_points", "?"))), ("dims", dims or "-"),
            ("fixed axes", fixed or "-"),
            ("failed points", str(len(failed))), ("diverged runs", str(len(diverged)))]
    if cmp is not None:
        totals = _verdict_totals(cmp)
        rows.append(("verdicts (cells)", ", ".join(plural(n, w, w) for w, n in totals.items())))
    return h.key_values(rows)


def _verdict_totals(cmp: xr.Dataset) -> dict[str, int]:
    from gradstats.results.compare import summary_rows

    rows = summary_rows(cmp)
    return {"agree": sum(r.agree for r in rows), "disagree": sum(r.disagree for r in rows),
            "outside": sum(r.outside for r in rows),
            "undetermined": sum(r.undetermined for r in rows)}


def _comparison_section(cmp: xr.Dataset | None, origin: str) -> str:
    if cmp is None:
        return h.paragraph(origin, "note")
    from gradstats.results.compare import summary_rows
    from gradstats.results.compare_command import HEADER, TESTS, _detects, _fmt, skipped_lines

    level = float(cmp.attrs["level"])
    rows = summary_rows(cmp)
    parts = [h.paragraph(f"{origin} Significance level {level:g} per comparison, "
                         f"{cmp.attrs.get('adjustment', 'Holm within each comparison')}."),
             h.paragraph(HEADER.format(level=level), "note")]
    header = ("comparison", "steps", "test", "level", "domain", "agree", "disagree", "outside",
              "undet.", "raw disagree (expected)", "detects", "typical")
    body, marks = [], []
    for row in rows:
        tested = row.agree + row.disagree + row.undetermined
        marks.append("disagree" if row.disagree else "agree" if row.agree and row.agree == tested
                     else "undetermined")
        body.append((row.name, row.steps or "-", row.test, f"{level:g}", row.domain,
                     row.agree, row.disagree, row.outside, row.undetermined,
                     f"{row.raw_disagree} ({_fmt(row.expected_false)})", _detects(row),
                     _fmt(row.typical)))
    num = ["", "", "", "num", "", "num", "num", "num", "num", "num", "num", "num"]
    parts.append(h.table(header, body, num, marks) if body else
                 h.paragraph("No comparison applies to these results.", "note"))
    parts.append("<h3>Validity notes</h3>")
    by_reason: dict[str, list[str]] = {}
    for row in rows:
        for reason in row.reasons:
            by_reason.setdefault(reason, []).append(row.name)
    notes = [f"outside: {reason} ({', '.join(names)})" for reason, names in by_reason.items()]
    notes += [f"too few seeds to decide: {r.name} ({r.undetermined} cells detect only "
              f"{_detects(r, r.undetermined_detectable)})" for r in rows if r.undetermined]
    notes += [f"skipped: {line}" for line in skipped_lines(cmp.attrs.get("notes", []), markup=False)]
    parts.append(h.bullet_list(notes) or h.paragraph("Every cell lies inside its prediction's "
                                                     "validity domain.", "note"))
    used = [t for t in dict.fromkeys(row.test for row in rows) if t in TESTS]
    if used:
        parts.append(h.bullet_list([f"{t}: {TESTS[t]}" for t in used]))
    parts.append("<h3>Cells</h3>")
    parts.append(h.paragraph("Each comparison's cells (configuration x layer x step) with their "
                             "verdict; disagreements first.", "note"))
    for row in rows:
        parts.append(_cells_block(cmp, row, level))
    return "".join(parts)


def _cells_block(cmp: xr.Dataset, row, level: float) -> str:
    """A collapsed table of one comparison's cells: coordinates, verdict, estimate, reason."""
    from gradstats.results.stats import VERDICT_NAMES

    verdict = cmp[f"{row.name}_verdict"]
    dims = list(verdict.dims)
    typical = ("ratio", "tightness", "mean" if row.name.endswith("_exponent") else "estimate")
    value_name = next((f"{row.name}_{s}" for s in typical if f"{row.name}_{s}" in cmp), None)
    extra = [(f"{row.name}_{s}", t) for s, t in (("mean", "measured"), ("pred", "predicted"))
             if f"{row.name}_{s}" != value_name]
    extra += [(f"{row.name}_p_holm", "p (Holm)"), (f"{row.name}_detectable", "detects")]
    extra = [(v, t) for v, t in extra if v in cmp]
    reason = cmp[f"{row.name}_reason"] if f"{row.name}_reason" in cmp else None
    codes = np.asarray(verdict.values, float)
    cells = []
    for index in np.ndindex(codes.shape):
        code = codes[index]
        if not math.isfinite(code):
            continue
        word = VERDICT_NAMES.get(int(code), str(code))
        coords = [_fmt_value(_item(verdict[d].values[i])) if d in verdict.coords else str(i)
                  for d, i in zip(dims, index, strict=True)]
        values = [_number(cmp[value_name].values[index]) if value_name else "-"]
        values += [_number(cmp[v].values[index]) for v, _ in extra]
        why = str(reason.values[index]) if reason is not None else ""
        cells.append((VERDICT_ORDER.index(word) if word in VERDICT_ORDER else 9, word,
                      coords, values, why))
    cells.sort(key=lambda c: c[0])
    shown = cells[:MAX_CELLS]
    header = (*dims, "verdict", value_name.removeprefix(f"{row.name}_") if value_name else "value",
              *(t for _, t in extra), "reason (outside)")
    table = h.table(header, [(*c[2], c[1], *c[3], c[4]) for c in shown],
                    classes=[""] * len(dims) + ["", "num"] + ["num"] * len(extra) + [""],
                    row_classes=[c[1] for c in shown], mark_column=len(dims))
    more = len(cells) - len(shown)
    tail = h.paragraph(f"... and {more} more cells", "note") if more > 0 else ""
    counts = f"{row.agree} agree, {row.disagree} disagree, {row.outside} outside, " \
             f"{row.undetermined} undetermined"
    title = (f"{row.name}: {row.title} - test {row.test}, level {level:g}, steps "
             f"{row.steps or '-'} ({counts})")
    return h.details(title, table + tail)


def _number(value) -> str:
    value = float(value)
    return f"{value:.3g}" if math.isfinite(value) else "-"


def _figures_section(figures: list[FigureImage], ds: xr.Dataset) -> str:
    from gradstats.results import plots

    parts = []
    for fig in figures:
        if fig.png is not None:
            parts.append(h.figure(fig.kind, fig.png, fig.description))
        else:
            parts.append(h.paragraph(f"{fig.kind} not drawn: {fig.problem}", "problem"))
    drawn = {f.kind for f in figures}
    absent = [k for k in plots.KINDS if k not in drawn]
    if not figures:
        parts.append(h.paragraph("No figure kind applies to these results.", "note"))
    if absent:
        parts.append(h.paragraph("Not drawn (the results lack their variables): "
                                 + ", ".join(absent), "note"))
    return "".join(parts)


def _points_section(failed: list[PointProblem], diverged: list[PointProblem]) -> str:
    if not failed and not diverged:
        return h.paragraph("None: every point ran and no network diverged.", "note")
    parts = []
    if failed:
        parts.append(f"<h3>Failed ({len(failed)}; rerun the sweep to retry them)</h3>")
        parts.append(h.table(("point", "key", "error"),
                             [(p.label, p.key, p.what) for p in failed]))
    if diverged:
        parts.append(f"<h3>Diverged ({len(diverged)}; recorded, values kept as they were)</h3>")
        parts.append(h.table(("run", "what"), [(p.label, p.what) for p in diverged]))
    return "".join(parts)


def _sweep_section(sweep_text: str | None, manifest: dict | None) -> str:
    if sweep_text is not None:
        return h.paragraph(f"{SWEEP_TOML}, stored by gradstats run:", "note") + \
            h.preformatted(sweep_text)
    parts = [h.paragraph(f"This results directory stores no {SWEEP_TOML} (it was written "
                         "before gradstats run stored the sweep file).", "note")]
    if manifest:
        rows = [("name", manifest.get("name", "")),
                ("measure", ", ".join(map(str, manifest.get("measure", []))) or "-"),
                ("points", str(len(manifest.get("points", [])))),
                ("command", manifest.get("command", "not recorded"))]
        parts.append(h.paragraph(f"From {MANIFEST}:", "note") + h.key_values(rows))
    return "".join(parts)


def _provenance_section(ds: xr.Dataset, path: Path) -> str:
    import platform

    from gradstats import __version__

    attrs = dict(ds.attrs)
    files = io.point_files(path) if Path(path).is_dir() else []
    if files:  # combined just now from the point files: say when those were written instead
        attrs.pop("created", None)
    rows = [(label, _attr_text(attrs[key]) if key in attrs else "not recorded")
            for key, label in PROVENANCE if key in attrs or key != "created"]
    if files:
        times = sorted(_utc(f.stat().st_mtime) for f in files)
        rows.append(("point files written (UTC)",
                     times[0] if times[0] == times[-1] else f"{times[0]} to {times[-1]}"))
    known = {k for k, _ in PROVENANCE} | NOT_PROVENANCE
    rows += [(key, _attr_text(value)) for key, value in attrs.items() if key not in known]
    report = [("results", str(path)), ("made by", f"gradstats {__version__}"),
              ("made on", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
              ("python", platform.python_version())]
    return (h.paragraph("As recorded in the results:", "note") + h.key_values(rows)
            + h.paragraph("This report:", "note") + h.key_values(report))


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _attr_text(value) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(map(str, value))
    return str(value)
