"""Regenerate the theory-vs-measurement claims of README.md and docs/compare.md from runs.

    python scripts/compare_report.py [PRESET ...] [--results DIR] [--no-run]

Runs each preset (default: every built-in preset) into ``DIR/<preset>`` (default
``results/report``; resumable, so a rerun only compares), compares it with theory and
rewrites, between their markers:

- docs/compare.md ``<!-- comparisons:begin/end -->``: the declared comparisons (test, steps,
  validity domain, allowance, source), straight from `gradstats.comparisons`;
- docs/compare.md ``<!-- presets:begin/end -->``: per preset, every comparison's verdict
  counts, the median measured/predicted ratio (or estimate) and the median minimum
  detectable error, the outside reasons;
- README.md ``<!-- preset-table:begin/end -->``: one line per preset.

No number in those sections is written by hand. Seeds are the presets' own (the point keys
fix every draw), so a rerun reproduces the tables exactly.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPARE_DOC = ROOT / "docs" / "compare.md"
README = ROOT / "README.md"


def comparisons_table() -> str:
    from gradstats.comparisons import COMPARISONS, allowance_text, domain_text

    rows = ["| comparison | what | test | steps | validity domain | allowance | source |",
            "|---|---|---|---|---|---|---|"]
    for c in COMPARISONS:
        steps = {"init": "0", "training": "all recorded", "trained": "recorded > 0",
                 "last": "last recorded"}[c.steps]
        rows.append(f"| `{c.name}` | {c.title} | {c.test} | {steps} | {domain_text(c)} | "
                    f"{allowance_text(c)} | {c.source} |")
    return "\n".join(rows)


def run_preset(name: str, results: Path, run: bool, workers: int):
    from gradstats.results.io import load_results
    from gradstats.sweeps import expand, resolve_sweep
    from gradstats.sweeps.execute import run_sweep

    sweep = resolve_sweep(name)
    points = expand(sweep)
    out = results / name
    if run:
        run_sweep(points, sweep.measure, out, name=sweep.name, workers=workers)
    seeds = len({p.seed for p in points})
    return load_results(out), len(points), seeds


def _fmt(value: float, digits: int = 3) -> str:
    return "-" if not math.isfinite(value) else f"{value:.{digits}g}"


def preset_section(name: str, cmp, n_points: int, seeds: int) -> tuple[str, dict]:
    from gradstats.results.compare import summary_rows

    rows = summary_rows(cmp)
    lines = [f"### {name} ({n_points} points, {seeds} seeds)", "",
             "| comparison | steps | agree | disagree | outside | undetermined | typical | detects |",
             "|---|---|---|---|---|---|---|---|"]
    totals = {"agree": 0, "disagree": 0, "outside": 0, "undetermined": 0}
    reasons = []
    for r in rows:
        if r.agree + r.disagree + r.outside + r.undetermined == 0:
            continue
        lines.append(f"| `{r.name}` | {r.steps or '-'} | {r.agree} | {r.disagree} | {r.outside} | "
                     f"{r.undetermined} | {_fmt(r.typical)} | {_fmt(r.detectable)} |")
        for key in totals:
            totals[key] += getattr(r, key)
        reasons.extend(f"`{r.name}`: {reason}" for reason in r.reasons)
    if reasons:
        lines += ["", "Outside: " + "; ".join(sorted(set(reasons))[:6]) + "."]
    disagreeing = [r.name for r in rows if r.disagree]
    totals["disagreeing"] = ", ".join(f"`{n}`" for n in disagreeing) or "none"
    return "\n".join(lines), totals


def replace_between(path: Path, tag: str, body: str) -> None:
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    text = path.read_text()
    if begin not in text:
        raise SystemExit(f"{path}: marker {begin} missing")
    new = re.sub(re.escape(begin) + ".*?" + re.escape(end), f"{begin}\n{body}\n{end}", text,
                 flags=re.S)
    path.write_text(new)


def main() -> None:
    from gradstats.results.compare import compare
    from gradstats.sweeps.presets import preset_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "report")
    parser.add_argument("--no-run", action="store_true", help="compare existing results only")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    names = args.presets or preset_names()
    sections, table = [], ["| preset | points (seeds) | cells agree | disagree | outside | "
                           "undetermined | agree / tested | rows with a disagreement |",
                           "|---|---|---|---|---|---|---|---|"]
    for name in names:
        ds, n_points, seeds = run_preset(name, args.results, not args.no_run, args.workers)
        cmp = compare(ds)
        text, totals = preset_section(name, cmp, n_points, seeds)
        sections.append(text)
        tested = totals["agree"] + totals["disagree"] + totals["undetermined"]
        share = f"{100 * totals['agree'] / tested:.0f}%" if tested else "-"
        table.append(f"| `{name}` | {n_points} ({seeds}) | {totals['agree']} | {totals['disagree']} | "
                     f"{totals['outside']} | {totals['undetermined']} | {share} | "
                     f"{totals['disagreeing']} |")
        print(text, "\n", flush=True)
    replace_between(COMPARE_DOC, "comparisons", comparisons_table())
    replace_between(COMPARE_DOC, "presets", "\n\n".join(sections))
    replace_between(README, "preset-table", "\n".join(table))
    print(f"updated {COMPARE_DOC} and {README}")


if __name__ == "__main__":
    main()
