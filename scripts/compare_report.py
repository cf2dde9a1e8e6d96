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
- README.md ``<!-- preset-table:begin/end -->``: one line per preset;
- README.md ``<!-- residual-table:begin/end -->`` (when the ``residual`` preset is among
  those run): per network of that preset, the measured and predicted growth of the forward
  signal and of the gradient norm over depth, and the verdict counts of the kernel rows.

Given preset names, only their sections and lines are replaced; the others are kept. No number
in those sections is written by hand. Seeds are the presets' own (the point keys
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


KERNEL_ROWS = ("grad_sq_norm", "bias_grad_sq_norm", "backward_q", "forward_q")


def _network_label(values: dict) -> str:
    if not int(values.get("residual", 0)):
        return "plain MLP"
    scale = str(values.get("residual_scale", "1.0"))
    return "residual, alpha = " + ("1/sqrt(depth)" if scale == "1/sqrt(depth)" else f"{float(scale):g}")


def residual_table(ds, cmp) -> str:
    """Per network of the residual preset, from layer 1 to layer depth (the last hidden
    layer): the growth of the forward signal forward_q(depth) / forward_q(1), of the backward
    signal toward the input backward_q(1) / backward_q(depth) and of the weight gradient
    grad_sq_norm(1) / grad_sq_norm(depth) (measured seed means, the prediction compare tests
    in brackets), and the agree / disagree / outside / undetermined cells of each kernel row."""
    from gradstats.results.compare import _context

    ctx = _context(ds, 0.01)
    lines = ["| network | norm | depth | forward_q(depth) / forward_q(1) | "
             "backward_q(1) / backward_q(depth) | grad_sq_norm(1) / grad_sq_norm(depth) | "
             + " | ".join(f"`{n}` a/d/o/u" for n in KERNEL_ROWS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(KERNEL_ROWS)]

    def at(var: str, sel: dict, layer: int) -> float:
        da = ds[var].sel(sel).sel(layer=layer)
        if "step" in da.dims:
            da = da.sel(step=0)
        return float(da.mean("seed"))

    keys = sorted(ctx.configs, key=lambda k: (ctx.sel(k).get("norm", ""), ctx.sel(k).get("depth", 0),
                                              _network_label(ctx.sel(k))))
    for key in keys:
        sel, arch = ctx.sel(key), ctx.configs[key][0].arch
        d = arch.depth
        fwd = [at(v, sel, d) / at(v, sel, 1) for v in ("forward_q", "theory_forward_q")]
        back = [at(v, sel, 1) / at(v, sel, d) for v in ("backward_q", "theory_backward_q")]
        grad = [at(v, sel, 1) / at(v, sel, d) for v in ("grad_sq_norm", "theory_grad_sq_norm")]
        counts = []
        for name in KERNEL_ROWS:
            v = cmp[f"{name}_verdict"].sel(sel).values.ravel()
            counts.append("/".join(str(int((v == c).sum())) for c in (1, 0, 2, 3)))
        ratios = " | ".join(f"{_fmt(m)} ({_fmt(p)})" for m, p in (fwd, back, grad))
        lines.append(f"| {_network_label(sel)} | {arch.norm} | {d} | {ratios} | "
                     + " | ".join(counts) + " |")
    return "\n".join(lines)


def merge_sections(old: str, new: dict[str, str]) -> str:
    """The ``### name`` sections of ``old`` with those in ``new`` replaced or added, sorted."""
    parts = {m.group(1): m.group(0).strip() for m in
             re.finditer(r"^### (\S+) .*?(?=^### |\Z)", old, flags=re.S | re.M)}
    parts.update(new)
    return "\n\n".join(parts[k] for k in sorted(parts))


def merge_rows(old: str, header: list[str], new: dict[str, str]) -> str:
    """The table rows of ``old`` (one per preset, "| `name` | ...") with ``new`` replacing or
    adding rows, sorted by preset name, under ``header``."""
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)` \|.*$", old, flags=re.M)}
    rows.update(new)
    return "\n".join([*header, *(rows[k] for k in sorted(rows))])


def between(path: Path, tag: str) -> str:
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    text = path.read_text()
    return text[text.index(begin) + len(begin):text.index(end)] if begin in text else ""


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
    header = ["| preset | points (seeds) | cells agree | disagree | outside | "
              "undetermined | agree / tested | rows with a disagreement |",
              "|---|---|---|---|---|---|---|---|"]
    sections, table = {}, {}
    for name in names:
        ds, n_points, seeds = run_preset(name, args.results, not args.no_run, args.workers)
        cmp = compare(ds)
        text, totals = preset_section(name, cmp, n_points, seeds)
        sections[name] = text
        tested = totals["agree"] + totals["disagree"] + totals["undetermined"]
        share = f"{100 * totals['agree'] / tested:.0f}%" if tested else "-"
        table[name] = (f"| `{name}` | {n_points} ({seeds}) | {totals['agree']} | "
                       f"{totals['disagree']} | {totals['outside']} | {totals['undetermined']} | "
                       f"{share} | {totals['disagreeing']} |")
        print(text, "\n", flush=True)
        if name == "residual":
            body = residual_table(ds, cmp)
            replace_between(README, "residual-table", body)
            print(body, "\n", flush=True)
    replace_between(COMPARE_DOC, "comparisons", comparisons_table())
    replace_between(COMPARE_DOC, "presets", merge_sections(between(COMPARE_DOC, "presets"),
                                                           sections))
    replace_between(README, "preset-table", merge_rows(between(README, "preset-table"),
                                                       header, table))
    print(f"updated {COMPARE_DOC} and {README}")


if __name__ == "__main__":
    main()
