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
- README.md ``<!-- batchnorm-table:begin/end -->`` (when the ``batchnorm`` preset is run):
  the measured and predicted batch-norm growth rates per configuration;
- README.md ``<!-- coord-table:begin/end -->`` (when the ``coord-check`` preset is run): the
  fitted step-1 width exponents of the coord rows against the derivation, with verdicts;
- README.md ``<!-- residual-table:begin/end -->`` (when the ``residual`` preset is run): per
  network of that preset, the measured and predicted growth of the forward signal, the
  backward signal and the gradient norm over depth, and the verdict counts of the kernel rows;
- README.md ``<!-- lr-transfer-table:begin/end -->`` (when the ``lr-transfer`` preset is
  run): per parameterization (and optimizer) the loss-optimal base lr at each width, the
  seed-mean final loss there, and the shift of the optimum over the width range in grid
  steps (`gradstats.results.lr_transfer`);
- README.md ``<!-- validity-table:begin/end -->`` (when the ``validity`` preset is run): per
  setting (activation, sigma_w2) and per-layer prediction, the beta = depth/width at which
  its relative error first exceeds 10%, infinite width and finite-width corrected
  (`gradstats.results.validity_map`), and the figure docs/gallery/validity_validity.png.

With preset names, only those presets' sections and table lines are replaced (the others are
kept as they are); without, every preset is run. No number in those sections is written by
hand. Seeds are the presets' own (the point keys
fix every draw), so a rerun reproduces the tables exactly.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import numpy as np

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
    return load_results(out, lazy=False), len(points), seeds


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


def batchnorm_table(cmp, ds) -> str:
    """Per configuration of the ``batchnorm`` preset: the fitted rate -d ln grad_sq_norm/dl
    (seed mean +- SE), ln lambda(B), their difference, the allowance, the detectable error and
    the verdict of ``bn_grad_sq_norm_rate``."""
    from gradstats.comparisons import by_name
    from gradstats.results import stats

    name = "bn_grad_sq_norm_rate"
    row = by_name(name)
    verdict = cmp[f"{name}_verdict"]
    lines = [f"Rate fitted per seed over layers {row.first_layer}..depth-{row.readout_gap} "
             f"(minus the OLS slope of ln grad_sq_norm on the layer index), {ds.sizes['seed']} seeds; "
             f"`{name}` at level {verdict.attrs['level']:g} (Holm over "
             f"{verdict.attrs['n_tested']} cells), allowance {verdict.attrs['allowance']}, "
             "agree only if a 10% error in lambda would have been seen:", "",
             "| activation | batch size | depth | measured rate | predicted ln λ(B) | "
             "difference | allowance | detects | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    dims = list(verdict.dims)
    for index in np.ndindex(verdict.shape):
        code = float(verdict.values[index])
        if not math.isfinite(code):
            continue
        sel = {d: verdict[d].values[i] for d, i in zip(dims, index, strict=True)}
        get = {k: float(cmp[f"{name}_{k}"].values[index])
               for k in ("mean", "pred", "estimate", "se", "allowance", "detectable")}
        act, batch, depth = (sel[k] if k in sel else ds[k].item() if k in ds.coords else "-"
                             for k in ("activation", "batch_size", "depth"))
        lines.append(f"| {act} | {batch} | {depth} | {get['mean']:.4f} ± {get['se']:.4f} | "
                     f"{get['pred']:.4f} | {get['estimate']:+.4f} | ±{get['allowance']:.4f} | "
                     f"±{get['detectable']:.3f} | {stats.VERDICT_NAMES[int(code)]} |")
    return "\n".join(lines)


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


COORD_ROWS = (("preact_change_input_exponent", "input layer Δh"),
              ("preact_change_hidden_exponent", "hidden Δh"),
              ("output_change_exponent", "output Δf"),
              ("output_feature_change_exponent", "Δf: features"),
              ("output_readout_change_exponent", "Δf: readout"))


def _exponent(value: float) -> str:
    """+1/2-style text of a derived exponent (multiples of 1/2)."""
    if value == 0:
        return "0"
    whole = value == int(value)
    text = f"{abs(int(value))}" if whole else f"{abs(int(2 * value))}/2"
    return ("+" if value > 0 else "−") + text


def coord_table(cmp, ds) -> str:
    """Per (optimizer, parameterization) of the ``coord-check`` preset: the fitted step-1 width
    exponent of each coord row (OLS over widths and seeds, +- its standard error), the
    derived exponent in brackets and the row's verdict."""
    from gradstats.results import stats
    from gradstats.results.plots.coord import in_table_order

    widths = ds["width"].values
    head = ("| optimizer | parameterization | " + " | ".join(t for _, t in COORD_ROWS) + " |")
    lines = [f"Widths {int(widths.min())}–{int(widths.max())} ({len(widths)}), "
             f"{ds.sizes['seed']} seeds; verdicts at level "
             f"{cmp[COORD_ROWS[0][0] + '_verdict'].attrs['level']:g}, allowance ±0.15:", "",
             head, "|---|---|" + "---|" * len(COORD_ROWS)]
    first = cmp[f"{COORD_ROWS[0][0]}_verdict"].sel(step=1)
    optimizers = in_table_order(first["optimizer"].values, "optimizer")
    parameterizations = in_table_order(first["parameterization"].values, "parameterization")
    for opt in optimizers:
        for pz in parameterizations:
            cells = []
            for row, _ in COORD_ROWS:
                if f"{row}_verdict" not in cmp:
                    cells.append("-")
                    continue
                sel = {"step": 1, "optimizer": opt, "parameterization": pz}

                def get(key: str, row: str = row, sel: dict = sel) -> np.ndarray:
                    da = cmp[f"{row}_{key}"]  # other axes (lr zipped with the optimizer):
                    return da.sel({k: v for k, v in sel.items() if k in da.dims}).values.ravel()

                codes = get("verdict").astype(float)
                present = np.flatnonzero(np.isfinite(codes))  # the combination measured
                if not len(present):
                    cells.append("-")
                    continue
                at = present[0]
                code = codes[at]
                mean, se, pred = (float(get(k)[at]) for k in ("mean", "se", "pred"))
                sign = "+" if mean >= 0 else "−"
                cells.append(f"{sign}{abs(mean):.2f} ± {se:.2f} ({_exponent(pred)}) "
                             f"{stats.VERDICT_NAMES[int(code)]}")
            lines.append(f"| {opt} | {pz} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ADAM_COLUMNS = (("adam_update_ratio", "‖u‖/‖g‖", "{:.3g}"),
                ("adam_sign_agreement", "sign(u) = sign(g)", "{:.3f}"),
                ("adam_second_moment_log_sd", "sd of ln √v̂", "{:.2f}"))


def adam_table(ds) -> str:
    """Under Adam, per parameterization: the step-1 Adam statistics of the hidden layer (layer
    2), seed means per width (smallest to largest)."""
    from gradstats.results.plots.coord import in_table_order

    if "adam_update_ratio" not in ds or "optimizer" not in ds.dims:
        return ""
    part = ds.sel(optimizer="adam", step=1, layer=2)
    widths = [int(w) for w in part["width"].values]
    lines = [f"Adam's step at step 1 against the raw minibatch gradient, hidden layer 2, seed "
             f"means at widths {', '.join(map(str, widths))}:", "",
             "| parameterization | " + " | ".join(t for _, t, _ in ADAM_COLUMNS) + " |",
             "|---|" + "---|" * len(ADAM_COLUMNS)]
    for pz in in_table_order(part["parameterization"].values, "parameterization"):
        cells = []
        for name, _, fmt in ADAM_COLUMNS:
            da = part[name].sel(parameterization=pz)
            if "lr" in da.dims:
                da = da.dropna("lr", how="all").isel(lr=0)
            means = da.mean("seed").transpose("width").values
            cells.append(" / ".join(fmt.format(float(m)) for m in means))
        lines.append(f"| {pz} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _lr_text(lr: float) -> str:
    """2^k for a power of two, else 3 significant digits."""
    if not math.isfinite(lr):
        return "-"
    k = math.log2(lr)
    return f"2^{k:.0f}" if abs(k - round(k)) < 1e-9 else f"{lr:.3g}"


def lr_transfer_table(ds) -> str:
    """Per group of the lr-transfer preset (parameterization, optimizer) and width: the
    loss-optimal base lr, the seed-mean final loss there (± se), its status and plausible lrs;
    then per group the shift of the optimum over the width range in grid steps, with the
    range the plausible lrs allow."""
    from gradstats.results.lr_transfer import WIDTH_DIM, lr_transfer_summary

    s = lr_transfer_summary(ds)
    widths = [int(w) for w in s[WIDTH_DIM].values]
    groups = [d for d in s["lr_opt"].dims if d != WIDTH_DIM]
    seeds, steps = ds.sizes.get("seed", 1), int(ds["step"].values[-1])
    start = ds["full_loss"].isel(step=0)
    lines = [f"Seed-mean full training loss after {steps} steps ({seeds} seeds), minimized over "
             "each parameterization's factor-2 grid of base lrs. "
             "*Plausible*: the grid lrs whose loss is not above the optimum's by more than "
             f"Welch's one-sided {s.attrs['level']:g} critical value times the standard error "
             "of the difference; the optimum is *resolved* when both its grid neighbours are "
             "above it in that sense.", "",
             "| " + " | ".join([*groups, "width", "optimal lr", "loss there", "status",
                                "plausible lrs", f"shift from {widths[0]} (grid steps)"]) + " |",
             "|" + "---|" * (len(groups) + 6)]
    combos = _combos(s, groups)
    for sel in combos:
        for w in widths:
            c = s.sel({**sel, WIDTH_DIM: w})
            status = str(c["status"].values)
            head = [*(str(sel[d]) for d in groups), str(w)]
            if status in ("diverged", "empty"):
                lines.append("| " + " | ".join(head + ["-", "-", status, "-", "-"]) + " |")
                continue
            plausible = [_lr_text(lr) for lr in c["lr"].values[c["plausible"].values]]
            lines.append("| " + " | ".join(head + [
                _lr_text(float(c["lr_opt"])),
                f"{float(c['loss_opt']):.3f} ± {float(c['loss_opt_se']):.3f}",
                status + (f" ({int(c['edge_steps'])} from the edge)" if status != "edge" else ""),
                ", ".join(plausible), f"{float(c['shift_steps']):+.0f}"]) + " |")
    lines += ["", "| " + " | ".join([*groups, "lr grid", "loss at step 0",
                                     f"optimum shift {widths[0]}→{widths[-1]}",
                                     "shifts the plausible lrs allow", "both ends resolved"])
              + " |", "|" + "---|" * (len(groups) + 5)]
    for sel in combos:
        g = s.sel(sel)
        grid = g["lr"].values[g["on_grid"].values.any(0)]
        low, high, shift = (float(g[k]) for k in ("lr_shift_low", "lr_shift_high", "lr_shift"))
        lines.append("| " + " | ".join([
            *(str(sel[d]) for d in groups), f"{_lr_text(grid.min())} .. {_lr_text(grid.max())}",
            f"{float(start.sel(sel).mean()):.2f}", f"{shift:+.0f}", f"{low:+.0f} .. {high:+.0f}",
            "yes" if bool(g["lr_shift_resolved"]) else "no"]) + " |")
    return "\n".join(lines)


VALIDITY_FIGURE = ROOT / "docs" / "gallery" / "validity_validity.png"
SETTING_NAMES = {("relu", 2.0): "relu, critical (sigma_w2 = 2)",
                 ("relu", 1.5): "relu, ordered (sigma_w2 = 1.5)",
                 ("tanh", 1.761): "tanh, critical (sigma_w2 = 1.761, sigma_b2 = 0.05)",
                 ("tanh", 3.0): "tanh, chaotic (sigma_w2 = 3, sigma_b2 = 0.05)"}


def _beta_text(mid: float, lo: float, hi: float) -> str:
    def one(v: float) -> str:
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "> 0.5"
        return "< 0.008" if v == 0 else f"{v:.2g}"

    if math.isnan(mid):
        return "no correction"
    return f"{one(mid)} [{one(lo)}, {one(hi)}]"


#: the prediction compare's row tests: the kurtosis row tests the four-point-vertex value,
#: every other row the infinite-width one
TESTED_BOUNDARY = {"preact_kurtosis": "beta_boundary_at_corrected"}


def _verdicts_beyond(vmap, cmp, q: str, pos: str, combo: dict) -> str:
    """compare's verdict counts on the cells of row ``q`` (at the layer of ``pos``) whose
    configuration lies beyond the map's boundary, in that setting, of the prediction the row
    tests (`TESTED_BOUNDARY`)."""
    from gradstats.results import stats

    name = f"{q}_verdict"
    if name not in cmp:
        return "-"
    verdict = cmp[name]
    if "step" in verdict.dims:
        verdict = verdict.isel(step=0, drop=True)
    depth = vmap["depth"].broadcast_like(vmap["beta"])
    pick = depth if pos == "last_hidden" else depth + 1
    at = verdict.where(verdict["layer"] == pick).max("layer").sel(combo)
    boundary = TESTED_BOUNDARY.get(q, "beta_boundary_at")
    bound = float(vmap[boundary].sel(quantity=q, position=pos, step=0, **combo))
    beyond = (vmap["beta"].sel(combo) > bound) & at.notnull()
    codes = at.where(beyond).values.ravel()
    codes = codes[np.isfinite(codes)]
    if not len(codes):
        return "none beyond"
    return ", ".join(f"{int((codes == c).sum())} {n}" for c, n in stats.VERDICT_NAMES.items()
                     if (codes == c).any())


def validity_table(ds, cmp=None) -> str:
    """Per setting and per-layer prediction (at the layer `validity_command.ROW_POSITION`
    names), the beta boundary at 10% error, infinite width and corrected, with the interval
    from the ends of the error's 95% interval, and (given ``cmp``) compare's verdicts on the
    configurations beyond the infinite-width boundary; writes the validity figure."""
    from gradstats.results.plots.common import save
    from gradstats.results.plots.validity import plot_validity
    from gradstats.results.validity_command import POSITION_TEXT, ROW_POSITION, settings
    from gradstats.results.validity_map import validity_map

    vmap = validity_map(ds, threshold=0.1)
    save(plot_validity(vmap), VALIDITY_FIGURE, "png", dpi=150)
    betas = vmap["beta"].values[np.isfinite(vmap["beta"].values)]
    rows = ["| setting | prediction (layer) | infinite width: beta at 10% error | "
            "finite-width corrected | compare's verdicts beyond the boundary of the prediction it tests |",
            "|---|---|---|---|---|"]
    for combo in settings(vmap):
        label = SETTING_NAMES.get((combo.get("activation"), combo.get("sigma_w2")),
                                  ", ".join(f"{k}={v}" for k, v in combo.items()))
        for q in vmap["quantity"].values.tolist():
            pos = ROW_POSITION[q]
            sel = {"quantity": q, "position": pos, "step": 0, **combo}
            cells = []
            for corr in ("", "_corrected"):
                name = f"beta_boundary_at{corr}"
                cells.append(_beta_text(*(float(vmap[f"{name}{end}"].sel(sel))
                                          for end in ("", "_lo", "_hi"))))
            if cells[0] == "no correction":
                continue
            beyond = _verdicts_beyond(vmap, cmp, q, pos, combo) if cmp is not None else "-"
            rows.append(f"| {label} | `{q}` ({POSITION_TEXT[pos]}) | {cells[0]} | "
                        f"{cells[1]} | {beyond} |")
    note = (f"beta = depth/width from {betas.min():.2g} to {betas.max():.2g}; "
            f"{int(vmap['n_seeds'].max())} seeds per configuration")
    return "\n".join(rows) + f"\n\n{note}."


def ntk_change_table(ds, cmp) -> str:
    """The NTK change at the last step vs width per activation: seed means, the local slope
    between neighbouring widths and the fit over all widths (each with its SE over seeds),
    beside the theory's -1 and the row's verdict (fitted over its domain's widths)."""
    from gradstats.results import stats

    change = ds["ntk_rel_change"].isel(step=-1)
    widths = change["width"].values
    head = ("| activation | " + " | ".join(f"width {w}" for w in widths) + " | "
            + " | ".join(f"slope {a}-{b}" for a, b in zip(widths[:-1], widths[1:], strict=True))
            + " | slope, all widths | theory | `ntk_change_exponent` |")
    rows = [head, "|" + "---|" * (len(widths) * 2 + 3)]
    for act in change["activation"].values:
        v = change.sel(activation=act).transpose("width", "seed").values
        means = [f"{m:.2g}" for m in v.mean(axis=1)]
        local = []
        for i in range(len(widths) - 1):
            fit = stats.fit_width_exponent(widths[i:i + 2], v[i:i + 2], 0.05)
            local.append(f"{fit.slope:.2f} ± {fit.slope_se:.2f}" if fit else "-")
        fit = stats.fit_width_exponent(widths, v, 0.05)
        verdict = "-"
        if "ntk_change_exponent_mean" in cmp:
            row = cmp.sel(activation=act)
            code = int(row["ntk_change_exponent_verdict"]) if np.isfinite(
                float(row["ntk_change_exponent_verdict"])) else None
            verdict = (f"{stats.VERDICT_NAMES.get(code, '-')} "
                       f"({float(row['ntk_change_exponent_mean']):.2f})"
                       if code is not None else "-")
        rows.append(f"| {act} | " + " | ".join(means) + " | " + " | ".join(local)
                    + f" | {fit.slope:.2f} ± {fit.slope_se:.2f} | -1 | {verdict} |")
    return "\n".join(rows)


def _combos(ds, dims: list[str]) -> list[dict]:
    import itertools

    values = [ds[d].values.tolist() for d in dims]
    return [dict(zip(dims, c, strict=True)) for c in itertools.product(*values)]


def merge_sections(old: str, new: dict[str, str], order: list[str]) -> str:
    """The ``### preset`` sections of ``old`` with those in ``new`` replaced or added, in
    ``order`` (presets not in ``order`` last)."""
    parts = re.split(r"(?m)^(?=### )", old.strip())
    sections = {}
    for part in parts:
        if part.startswith("### "):
            sections[part.split()[1]] = part.strip()
    sections.update(new)
    ranked = sorted(sections, key=lambda n: order.index(n) if n in order else len(order))
    return "\n\n".join(sections[n] for n in ranked)


def merge_table(old: str, new: dict[str, str], order: list[str]) -> str:
    """The preset table ``old`` (header, rule, one line per preset) with lines replaced or
    added from ``new``, in ``order``."""
    lines = old.strip().splitlines()
    head, rows = lines[:2], {}
    for line in lines[2:]:
        match = re.match(r"\| `([^`]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    rows.update(new)
    ranked = sorted(rows, key=lambda n: order.index(n) if n in order else len(order))
    return "\n".join(head + [rows[n] for n in ranked])


def read_between(path: Path, tag: str) -> str:
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    text = path.read_text()
    if begin not in text:
        raise SystemExit(f"{path}: marker {begin} missing")
    return text.split(begin, 1)[1].split(end, 1)[0]


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
    order = preset_names()
    names = args.presets or order
    sections, table = {}, {}
    head = ["| preset | points (seeds) | cells agree | disagree | outside | "
            "undetermined | agree / tested | rows with a disagreement |",
            "|---|---|---|---|---|---|---|---|"]
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
        if name == "batchnorm":
            bn = batchnorm_table(cmp, ds)
            replace_between(README, "batchnorm-table", bn)
            print(bn, "\n", flush=True)
        if name == "coord-check":
            body = coord_table(cmp, ds)
            adam = adam_table(ds)
            body = body + ("\n\n" + adam if adam else "")
            replace_between(README, "coord-table", body)
            print(body, "\n", flush=True)
        if name == "residual":
            body = residual_table(ds, cmp)
            replace_between(README, "residual-table", body)
            print(body, "\n", flush=True)
        if name == "ntk-change":
            body = ntk_change_table(ds, cmp)
            replace_between(README, "ntk-change-table", body)
            print(body, "\n", flush=True)
        if name == "lr-transfer":
            body = lr_transfer_table(ds)
            replace_between(README, "lr-transfer-table", body)
            print(body, "\n", flush=True)
        if name == "validity":
            body = validity_table(ds, cmp)
            replace_between(README, "validity-table", body)
            print(body, "\n", flush=True)
    old_sections = read_between(COMPARE_DOC, "presets") if args.presets else ""
    old_table = read_between(README, "preset-table") if args.presets else "\n".join(head)
    replace_between(COMPARE_DOC, "comparisons", comparisons_table())
    replace_between(COMPARE_DOC, "presets", merge_sections(old_sections, sections, order))
    replace_between(README, "preset-table", merge_table(old_table, table, order))
    print(f"updated {COMPARE_DOC} and {README}")


if __name__ == "__main__":
    main()
