"""`gradstats report`: one self-contained HTML page of a sweep.

A tiny sweep (2 configurations x 2 seeds) is run once through the CLI: sigma_w2 = 50 with
lr = 10 diverges on both seeds, and one point is made to raise (an error text with HTML in
it). The page must hold every figure kind the results allow, compare's rows with their
verdict counts and validity reasons, the sweep file as stored, the failed and diverged
points, the provenance attrs; nothing external, no script, all text escaped. A headless
Chromium then loads it: no console errors, every image decoded and laid out, a screenshot
that is not blank.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from gradstats.cli import main
from gradstats.results import plots
from gradstats.results.compare import compare, summary_rows
from gradstats.results.compare_command import write_comparison
from gradstats.results.io import load_results
from gradstats.results.report import comparison_for
from gradstats.sweeps import load_sweep

SWEEP = """
name = "tiny-report"
seeds = 2
[grid]
sigma_w2 = [50.0, 2.0]
[fixed]
depth = 2
width = 8
input_dim = 4
n_train = 16
batch_size = 4
lr = 10.0
steps = 2
record = [0, 1, 2]
"""
# The error of the point made to fail: HTML that must reach the page as text.
BOOM = "boom <script>alert(1)</script> & <b>bold</b>"
REQUIRE_BROWSER_ENV = "GRADSTATS_REQUIRE_BROWSER"


def _main(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The tiny sweep run quietly without compare (no comparison.nc); seed 1 of
    sigma_w2 = 2 fails."""
    import gradstats.simulate.ensemble as ensemble
    import gradstats.simulate.training as training

    root = tmp_path_factory.mktemp("report")
    (root / "tiny.toml").write_text(SWEEP)
    real = training.simulate_point

    def flaky(point, measure=(), on_step=None):
        if point.seed == 1 and point.arch.sigma_w2 == 2.0:
            raise RuntimeError(BOOM)
        return real(point, measure, on_step)

    real_ensemble = ensemble.simulate_ensemble

    def flaky_ensemble(points, measure=None):  # as an ensemble whose member raised: its
        if any(p.seed == 1 and p.arch.sigma_w2 == 2.0 for p in points):  # points then
            raise RuntimeError(BOOM)  # run one by one
        return real_ensemble(points, measure)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "simulate_point", flaky)
        mp.setattr(ensemble, "simulate_ensemble", flaky_ensemble)
        code, _, err = _main(["run", str(root / "tiny.toml"), "--out", str(root / "out"),
                              "-w", "0", "-q", "--no-compare"])
    assert code == 1 and "boom" in err  # the failed point, as gradstats run reports it
    return root / "out"


@pytest.fixture(scope="module")
def report(run_dir) -> tuple[Path, str]:
    """(the report's path, its text) made with the default --out."""
    code, out, err = _main(["report", str(run_dir)])
    assert code == 0, err
    path = run_dir / "report.html"
    assert out.strip() == f"wrote {path}"
    return path, path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def expected(run_dir):
    """The results and their comparison at the default level, computed here."""
    ds = load_results(run_dir)
    return ds, compare(ds)


class _Page(HTMLParser):
    """The images (attrs), the tables (rows of cell texts) and all text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[dict] = []
        self.tables: list[list[list[str]]] = []
        self.texts: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def rows(self) -> list[list[str]]:
        return [row for table in self.tables for row in table]


def test_every_available_figure_kind_is_embedded_as_a_png(expected, report):
    page = _Page(report[1])
    kinds = plots.kinds_available(expected[0])
    assert {"summary", "layers"} <= set(kinds)  # what this sweep's variables allow
    assert [img["data-kind"] for img in page.images] == kinds
    for img in page.images:
        prefix = "data:image/png;base64,"
        assert img["src"].startswith(prefix)
        png = base64.b64decode(img["src"][len(prefix):], validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_the_comparison_table_has_every_row_with_its_verdict_counts(expected, report):
    page = _Page(report[1])
    rows = summary_rows(expected[1])  # level 0.01, as no comparison.nc is stored
    assert rows and any(r.outside for r in rows)
    by_name = {row[0]: row for row in page.rows() if row}
    for row in rows:
        cells = by_name[row.name]
        # comparison, steps, test, level, domain, agree, disagree, outside, undet.
        assert cells[2:4] == [row.test, "0.01"] and cells[4] == row.domain
        assert cells[5:9] == [str(row.agree), str(row.disagree), str(row.outside),
                              str(row.undetermined)]
    text = " ".join(" ".join(page.texts).split())
    for reason in {reason for row in rows for reason in row.reasons}:
        assert f"outside: {' '.join(reason.split())}" in text  # the validity notes
    assert "Computed for this report" in text


def test_each_comparison_lists_its_cells_with_verdicts_and_reasons(expected, report):
    rows = _Page(report[1]).rows()
    cmp = expected[1]
    verdicts = cmp["grad_sq_norm_verdict"]
    header = next(r for r in rows if "verdict" in r and "reason (outside)" in r and "layer" in r)
    assert header[:len(verdicts.dims)] == list(verdicts.dims)
    outside = [r for r in rows if "outside" in r and len(r) == len(header)]
    reasons = {str(v) for v in cmp["grad_sq_norm_reason"].values.ravel() if str(v)}
    assert reasons and reasons <= {r[-1] for r in outside}


def test_the_sweep_file_failed_and_diverged_points_are_shown(run_dir, expected, report):
    path, text = report
    page = _Page(text)
    stored = (run_dir / "sweep.toml").read_text()
    assert stored in "".join(page.texts)  # verbatim, unescaped back by the parser
    sweep = load_sweep(run_dir / "sweep.toml")  # what gradstats run stored is the sweep run
    assert sweep == load_sweep(run_dir.parent / "tiny.toml")
    rows = page.rows()
    failed = [r for r in rows if r and r[0] == "sigma_w2=2 (seed 1)"]
    assert len(failed) == 1 and BOOM in failed[0][2]
    diverged = {r[0] for r in rows if len(r) == 2 and r[1].startswith("inf/nan during training")}
    flags = expected[0]["diverged"].to_series()
    recorded = {f"sigma_w2={w:g} (seed {s})" for (w, s), v in flags.items() if v == 1}
    assert "sigma_w2=50 (seed 0)" in recorded and diverged == recorded


def test_provenance_shows_the_recorded_attrs(expected, report):
    ds = expected[0]
    rows = {r[0]: r[1] for r in _Page(report[1]).rows() if len(r) == 2}
    assert rows["gradstats version"] == ds.attrs["gradstats_version"]
    assert rows["torch version"] == ds.attrs["torch_version"]
    assert rows["jax version"] == ds.attrs["jax_version"]
    assert rows["devices the points ran on"] == ds.attrs["device_used"] == "cpu"
    assert rows["git commit"] == "not recorded"
    assert rows["command"].startswith("gradstats run ")
    # a directory is combined when loaded: the page dates its point files, not the loading
    assert "combined (UTC)" not in rows and rows["point files written (UTC)"].startswith("20")


def test_the_page_is_self_contained_escaped_and_has_no_script(report):
    text = report[1]
    page = _Page(text)
    assert "script" not in page.tags and "link" not in page.tags
    assert "<script" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    external = re.findall(r'(?:src|href)="(?!data:|#)[^"]*"', text)
    assert external == []
    assert "url(" not in text.split("</style>")[0]  # no fetched fonts or images in the CSS


def test_a_stored_comparison_is_reused_and_recomputed_when_stale_or_at_another_level(
        run_dir, expected, tmp_path):
    ds = expected[0]
    results = tmp_path / "copy"
    shutil.copytree(run_dir, results)
    write_comparison(compare(ds, level=0.05), results / "comparison.nc")

    def origin(level):
        cmp, text = comparison_for(ds, results, level, lambda _text: None)
        return text, cmp.attrs["level"]

    text, level = origin(None)
    assert text.startswith("Read from comparison.nc") and level == 0.05
    text, level = origin(0.01)
    assert text.startswith("Computed for this report") and level == 0.01
    newest = max(p.stat().st_mtime for p in (results / "points").iterdir())
    os.utime(results / "comparison.nc", (newest - 60, newest - 60))  # older than the points
    text, level = origin(None)
    assert text.startswith("Computed for this report") and level == 0.01


@pytest.mark.parametrize("args, starts", [
    (["{tmp}/nowhere"], "error: RESULTS: "),
    (["{tmp}"], "error: "),  # a directory without points/
    (["{run}", "--out", "{tmp}/r.txt"], "error: --out: r.txt should end in .html"),
    (["{run}", "--level", "1.5"], "error: --level: must lie in (0, 1)"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(run_dir, tmp_path, args, starts):
    before = sorted(p.name for p in run_dir.iterdir())
    argv = ["report", *(a.format(tmp=tmp_path, run=run_dir) for a in args)]
    code, out, err = _main(argv)
    assert code == 2 and err.startswith(starts) and len(err.strip().splitlines()) == 1, err
    assert out == "" and list(tmp_path.iterdir()) == []
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_a_failure_while_writing_leaves_the_old_report_and_no_temp_file(run_dir, tmp_path,
                                                                       monkeypatch):
    from gradstats.results import report, report_html

    target = tmp_path / "r.html"
    target.write_text("old report")

    def broken(*_args, **_kwargs):
        raise RuntimeError("page failed")

    monkeypatch.setattr(report, "render_figures", lambda ds, update: [])  # faster
    monkeypatch.setattr(report, "comparison_for", lambda *args: (None, "no comparison"))
    monkeypatch.setattr(report_html, "page", broken)
    code, _, err = _main(["report", str(run_dir), "--out", str(target)])
    assert code == 1 and "page failed" in err
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"] and target.read_text() == "old report"


# --- a real browser ----------------------------------------------------------------------------

def _browser_or_skip() -> tuple[str, str]:
    """(chromium, chromedriver) paths; skip (or fail, with GRADSTATS_REQUIRE_BROWSER=1)."""
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser",
                                                   "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
        problem = None
    except ImportError:
        problem = "selenium is not installed (pip install -e '.[dev]')"
    if problem is None and not (chromium and driver):
        problem = ("Chromium and chromedriver are not installed "
                   "(apt-get install chromium chromium-driver)")
    if problem:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {problem}")
        pytest.skip(problem)
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium session (module-scoped, so that a missing browser skips before the
    sweep is run)."""
    chromium, driver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2000", "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
        session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
        try:
            yield session
        finally:
            session.quit()


IMAGES_JS = """return Array.from(document.images).map(i => {
  const r = i.getBoundingClientRect();
  return [i.dataset.kind || '', i.complete, i.naturalWidth, r.width, r.height]; });"""


def _colours(png: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])


def test_the_report_renders_in_headless_chromium(browser, expected, report):
    browser.get(report[0].resolve().as_uri())
    assert browser.title == "gradstats report: tiny-report"
    images = browser.execute_script(IMAGES_JS)
    assert [i[0] for i in images] == plots.kinds_available(expected[0])
    for kind, complete, natural_width, width, height in images:
        assert complete and natural_width > 0 and width > 0 and height > 0, kind
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert [r for r in resources if not r.startswith("data:")] == []
    assert _colours(browser.get_screenshot_as_png()) > 50  # text, tables, figures: not blank
    figure = browser.find_element("css selector", "figure img")
    assert _colours(figure.screenshot_as_png) > 20

    # the same checks see a broken page: an image that does not decode, a script error
    browser.get("data:text/html,<img src='data:image/png;base64,AAAA'><script>nope(</script>")
    (_, complete, natural_width, *_), = browser.execute_script(IMAGES_JS)
    assert natural_width == 0
    assert any(e["level"] == "SEVERE" for e in browser.get_log("browser"))
