"""Regenerate the results tables of docs/distributions.md from runs of two presets.

    python scripts/distribution_tables.py [--results DIR] [--no-run]

Runs the presets ``heavy-tails`` and ``vmf-directions`` into ``DIR/<preset>`` (default
``results/report``; resumable, skipped with ``--no-run``) and rewrites, between their markers
in docs/distributions.md:

- ``<!-- heavy-tails-table:begin/end -->``: the shape, power-law and stable-index statistics
  of minibatch gradient entries, gradient noise, whole-network entries and iteration-wise
  coordinates, with the numbers the prose quotes;
- ``<!-- vmf-table:begin/end -->``: minibatch and per-example direction concentration,
  gradient and norm stochasticity and the noise spectrum exponent per batch size, with the
  numbers the prose quotes.

Summaries are over both seeds, all recorded steps and layers 1-4 unless a cell says
otherwise; "pass" = CSN bootstrap p >= 0.1. Seeds are the presets' own (the point keys fix
every draw, each estimator from its own stream), so a rerun reproduces the tables exactly.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "distributions.md"
PASS_P = 0.1        # CSN: the power law is plausible when the bootstrap p >= 0.1
VUONG_Z = -1.645    # one-sided 5%: the alternative tail is favoured
RELU_IN = [2, 3]    # depth 3: hidden layers whose inputs are relu outputs (layer 1 sees data)


def load_preset(name: str, results: Path, run: bool):
    from gradstats.results.io import load_results

    out = results / name
    if run:
        from gradstats.sweeps import expand, resolve_sweep
        from gradstats.sweeps.execute import run_sweep

        sweep = resolve_sweep(name)
        run_sweep(expand(sweep), sweep.measure, out, name=sweep.name)
    return load_results(out, lazy=False)


def g(x: float, digits: int = 2) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def f(x: float, decimals: int = 1) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{decimals}f}"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.1 or x == 0 else f"{100 * x:.1f}%"


def sci(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")


def rng(values, fmt=f) -> str:
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    lo, hi = fmt(float(a.min())), fmt(float(a.max()))
    return lo if lo == hi else f"{lo} to {hi}" if a.min() < 0 else f"{lo}-{hi}"


def per_layer(da, fmt=f) -> str:
    return ", ".join(fmt(float(v)) for v in da.median(["data", "seed", "step"]).values)


def pass_rate(p) -> float:
    return float((p >= PASS_P).sum() / p.notnull().sum())


def vuong(r) -> tuple[float, float]:
    return float((r < VUONG_Z).sum() / r.notnull().sum()), float(r.median())


def relu_theory() -> dict[str, float]:
    """Per-example entry of a relu layer at init: delta_i x_j, each factor a Gaussian masked
    to 0 with probability 1/2 (independent in the infinite-width limit)."""
    p_nz = 0.25                         # both masks open
    k1 = 9 / p_nz                       # E[z^4] / E[z^2]^2 with E[(g1 g2)^4] = 9
    return {"k1": k1, "zero1": 1 - p_nz, "k32": 3 + (k1 - 3) / 32, "zero32": (1 - p_nz) ** 32}


def heavy_tails_block(h) -> str:
    data = [str(d) for d in h.data.values]
    loss = h.full_loss.mean("seed")
    steps = h.step.values
    last = int(steps[-1])
    lines = ["Full loss (seed means) " + ", ".join(
        f"{f(float(loss.sel(data=d, step=0)), 2)} -> {f(float(loss.sel(data=d, step=last)), 2)} "
        f"on {d}" for d in data) + ".", ""]
    lines += ["| sample | kurtosis (median, layers 1-4) | normality p (max) | power-law pass "
              "| alpha (median, layers 1-4) | stable a (median, layers 1-4) |",
              "|---|---|---|---|---|---|"]
    dim_pass = {d: pass_rate(h.dimwise_powerlaw_p.sel(data=d)) for d in data}
    for prefix, label, by_data in (("dimwise", "dimension-wise (minibatch gradient entries)", True),
                                   ("noise", "gradient noise (minibatch - full batch)", False)):
        p = pass_rate(h[f"{prefix}_powerlaw_p"])
        cell = pct(p)
        if by_data:
            cell += " (" + ", ".join(f"{d} {pct(dim_pass[d])}" for d in data) + ")"
        lines.append(f"| {label} | {per_layer(h[f'{prefix}_kurtosis'])} | "
                     f"{sci(float(h[f'{prefix}_normality_p'].max()))} | {cell} | "
                     f"{per_layer(h[f'{prefix}_powerlaw_alpha'])} | "
                     f"{per_layer(h[f'{prefix}_stable_alpha'], lambda x: f(x, 2))} |")
    net_k = h.dimwise_net_kurtosis.median(["seed", "step"])
    net_a = h.dimwise_net_powerlaw_alpha.median(["seed", "step"])
    net_pass = {d: pass_rate(h.dimwise_net_powerlaw_p.sel(data=d)) for d in data}
    lines.append("| whole network (all layers' entries) | "
                 + ", ".join(f"{f(float(net_k.sel(data=d)), 0)} ({d})" for d in data) + " | - | "
                 + ", ".join(f"{pct(net_pass[d])} ({d})" for d in data) + " | "
                 + ", ".join(f"{f(float(net_a.sel(data=d)))} ({d})" for d in data) + " | - |")

    dim_k = h.dimwise_kurtosis.median(["data", "seed", "step"]).values
    noise_k = h.noise_kurtosis.median(["data", "seed", "step"]).values
    alphas = np.concatenate([h[f"{s}_powerlaw_alpha"].median(["data", "seed", "step"]).values
                             for s in ("dimwise", "noise")])
    stables = np.concatenate([h[f"{s}_stable_alpha"].median(["data", "seed", "step"]).values
                              for s in ("dimwise", "noise")])
    ln_frac, ln_med = vuong(h.dimwise_powerlaw_lr_lognormal)
    ex_frac, ex_med = vuong(h.dimwise_powerlaw_lr_exponential)
    init = h.sel(step=0, layer=RELU_IN)
    by_step = h.dimwise_kurtosis.median(["data", "seed", "layer"])
    th = relu_theory()
    n_iter = int(h.iterwise_n_steps.max())
    expected_k = 3 * (n_iter - 1) / (n_iter + 1)   # E[b2] of a normal sample of n
    it_k, it_rej = h.iterwise_kurtosis.values, h.iterwise_normal_reject_fraction.values
    it_pass = h.iterwise_powerlaw_pass_fraction.values
    best = max(net_pass, key=net_pass.get)
    lines += [
        "",
        "Numbers the text quotes (generated with the table):",
        "",
        f"- dimension-wise: per-layer median kurtosis {rng(dim_k)}; D'Agostino normality "
        f"p <= {sci(float(h.dimwise_normality_p.max()))} everywhere; power-law pass "
        f"{pct(pass_rate(h.dimwise_powerlaw_p))}; Vuong R < {VUONG_Z} (tail favoured over the "
        f"power law) in {pct(ln_frac)} of fits for the lognormal (median R = {f(ln_med)}) and "
        f"{pct(ex_frac)} for the exponential (median R = {f(ex_med)})",
        f"- at init (step 0), hidden layers {RELU_IN[0]}-{RELU_IN[-1]} (relu inputs), every run: "
        f"kurtosis "
        f"{rng(init.dimwise_kurtosis.values, lambda x: f(x, 0))}, exact zeros "
        f"{rng(100 * init.dimwise_zero_fraction.values, lambda x: f(x, 0))}%; relu theory at "
        f"init, one example: kurtosis {f(th['k1'], 0)}, zero fraction {g(th['zero1'])}; 32 "
        f"independent examples: kurtosis {f(th['k32'])}, zero fraction {sci(th['zero32'])}",
        "- median kurtosis (layers, runs) per recorded step "
        + ", ".join(f"{int(s)}: {f(float(by_step.sel(step=s)))}" for s in steps),
        "- whole network: pass " + ", ".join(f"{pct(net_pass[d])} ({d})" for d in data)
        + f"; highest on {best}, alpha {f(float(net_a.sel(data=best)))}",
        f"- gradient noise: per-layer median kurtosis {rng(noise_k)}, pass "
        f"{pct(pass_rate(h.noise_powerlaw_p))}",
        f"- iteration-wise ({int(h.sizes['sample'])} coordinates per layer, {n_iter} recorded "
        f"steps; per run and layer): median kurtosis over steps {rng(it_k, lambda x: f(x, 2))} "
        f"(a normal sample of {n_iter} has expected kurtosis {f(expected_k, 2)}); normality "
        f"rejected at the 5% level for {rng(100 * it_rej, lambda x: f(x, 0))}% of coordinates; "
        "power-law pass fraction "
        + ("NaN (needs >= 50 recorded steps)" if np.isnan(it_pass).all() else rng(it_pass)),
        f"- stable index a (per-layer medians): {rng(stables, lambda x: f(x, 2))}; CSN density "
        f"exponents {rng(alphas)} (survival index {rng(alphas - 1)})",
    ]
    return "\n".join(lines)


def vmf_block(v) -> str:
    m = v.mean("seed")
    steps = v.step.values
    first, last = int(steps[0]), int(steps[-1])
    batches = [int(b) for b in v.batch_size.values]
    n_params = sum(a * b + b for a, b in ((64, 256), (256, 256), (256, 256), (256, 10)))
    loss = m.full_loss
    mb_u = float(m.minibatch_dir_r_bar_uniform.mean())
    k_u = float(m.minibatch_dir_kappa_uniform.mean())
    lines = [f"Digits, same network, batch {' / '.join(map(str, batches))}, "
             f"{v.sizes['seed']} seeds; d = {n_params:,} parameters. Values at steps "
             f"{first} -> {last} (seed means); full loss "
             f"{rng(loss.sel(step=first).values, lambda x: f(x, 2))} -> "
             f"{rng(loss.sel(step=last).values, lambda x: f(x, 2))} over the batch sizes.", "",
             f"| batch | minibatch R_bar (uniform {g(mb_u)}) | minibatch kappa / 10^3 (uniform "
             f"{f(k_u / 1e3, 0)}) | gradient stochasticity | minibatch norm CV | per-example "
             "R_bar (uniform 1/sqrt(B)) | noise spectrum s (+- stderr) |",
             "|---|---|---|---|---|---|---|"]

    def arrow(name: str, b: int, fmt, scale: float = 1.0) -> str:
        da = m[name].sel(batch_size=b) / scale
        return f"{fmt(float(da.sel(step=first)))} -> {fmt(float(da.sel(step=last)))}"

    two = lambda x: f(x, 2)  # noqa: E731
    for b in batches:
        vb = v.sel(batch_size=b)
        u = float(m.example_dir_r_bar_uniform.sel(batch_size=b).mean())
        lines.append(
            f"| {b} | {arrow('minibatch_dir_r_bar', b, two)} | "
            f"{arrow('minibatch_dir_kappa', b, lambda x: f(x, 0), 1e3)} | "
            f"{arrow('gradient_stochasticity', b, two)} | {arrow('minibatch_norm_cv', b, two)} | "
            f"{arrow('example_dir_r_bar', b, two)} ({f(u, 3)}) | "
            f"{rng(vb.noise_spectrum_exponent.values, two)} "
            f"(+- {rng(vb.noise_spectrum_exponent_stderr.values, lambda x: f(x, 3))}) |")

    def rises(name: str, b: int) -> int:
        return int(np.sum(np.diff(m[name].sel(batch_size=b).values) > 0))

    k_ratio = {b: float(m.minibatch_dir_kappa.sel(batch_size=b, step=last)
                        / m.minibatch_dir_kappa.sel(batch_size=b, step=first)) for b in batches}
    falls = {b: float(m.minibatch_dir_r_bar.sel(batch_size=b, step=last))
             < float(m.minibatch_dir_r_bar.sel(batch_size=b, step=first)) for b in batches}
    corr_k, corr_cv = [], []
    for b in batches:
        for s in v.seed.values:
            r = v.sel(batch_size=b, seed=s)
            gs = r.gradient_stochasticity.values
            corr_k.append(np.corrcoef(gs, 1 / r.minibatch_dir_kappa.values)[0, 1])
            corr_cv.append(np.corrcoef(gs, r.minibatch_norm_cv.values)[0, 1])
    ex_last = {b: float(m.example_dir_r_bar.sel(batch_size=b, step=last)) for b in batches}
    ex_u = {b: float(m.example_dir_r_bar_uniform.sel(batch_size=b).mean()) for b in batches}
    s_med = {b: float(v.noise_spectrum_exponent.sel(batch_size=b).median()) for b in batches}
    lines += [
        "",
        "Numbers the text quotes (generated with the table):",
        "",
        f"- minibatch R_bar lower at step {last} than at step {first} for batch sizes "
        + (", ".join(str(b) for b in batches if falls[b]) or "none")
        + f"; of the {len(steps) - 1} intervals between recorded steps, seed-mean R_bar / kappa "
        "rise in " + ", ".join(f"{rises('minibatch_dir_r_bar', b)} / "
                               f"{rises('minibatch_dir_kappa', b)} (B = {b})" for b in batches)
        + f"; kappa(step {last}) / kappa(step {first}) = "
        + ", ".join(f"{f(k_ratio[b], 2)} (B = {b})" for b in batches)
        + f"; uniform baseline R_bar {g(mb_u)}, kappa {k_u / 1e4:.1f}e4",
        "- minibatch R_bar (seed means) at steps " + ", ".join(str(int(s)) for s in steps) + ": "
        + "; ".join(f"B = {b}: " + ", ".join(two(float(x)) for x in
                                            m.minibatch_dir_r_bar.sel(batch_size=b).values)
                    for b in batches),
        f"- over the {len(steps)} recorded steps, per run: corr(gradient stochasticity, "
        f"1/kappa) = {rng(corr_k, two)}; corr(gradient stochasticity, norm CV) = "
        f"{rng(corr_cv, two)}",
        f"- per-example R_bar at step {last} / uniform value: "
        + ", ".join(f"{f(ex_last[b], 3)} / {f(ex_u[b], 3)} (B = {b})" for b in batches),
        "- median noise spectrum exponent s (steps, seeds): "
        + ", ".join(f"{f(s_med[b], 2)} (B = {b})" for b in batches)
        + f"; at most {max(batches) - 1} nonzero eigenvalues",
    ]
    return "\n".join(lines)


def replace_between(text: str, tag: str, body: str) -> str:
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "report")
    parser.add_argument("--no-run", action="store_true", help="only read existing results")
    args = parser.parse_args()
    h = load_preset("heavy-tails", args.results, not args.no_run)
    v = load_preset("vmf-directions", args.results, not args.no_run)
    blocks = {"heavy-tails-table": heavy_tails_block(h), "vmf-table": vmf_block(v)}
    text = DOC.read_text()
    for tag, body in blocks.items():
        print(body, "\n")
        text = replace_between(text, tag, body)
    DOC.write_text(text)


if __name__ == "__main__":
    main()
