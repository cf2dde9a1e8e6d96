"""Per-example statistics of a CNN vs a plain forward+backward of the same CNN, side by side.

For each (channels, batch) the same relu CNN (depth 2 conv layers, kernel 3, SAME, Flatten
readout to 10 outputs, ntk parameterization, float32, CPU) on the same minibatch of
digits-images (8x8) is timed round-robin, medians and mins over repeats:

- plain fwd+bwd: the parameter gradients of the mean mse loss (the baseline);
- engine per-example stats: one forward, one backward to the layer outputs, the per-layer
  per-example Grams (weight and bias parts: `gradstats.simulate.engine.layer_grams`, conv
  layers by the cheaper of patches and materialization) and the per-example squared norms;
- train step + estimator Grams: the baseline with the layer outputs' gradients retained, then
  the float64 Grams and squared norms from them (what ``measure = ["per_example"]`` adds to a
  training step, `gradstats.simulate.estimators.example_grams64`);
- torch.func vmap(grad) materialization + Grams (the reference; fewer repeats).

It also checks the engine's float32 Grams against the vmap(grad) ones and writes the table to
benchmarks/RESULTS_conv_engine.md.

Run:  PYTHONPATH=src python benchmarks/bench_conv_engine.py [--repeats 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gradstats.simulate import build_model, conv_engine, engine
from gradstats.simulate.data import load_data
from gradstats.spec import Architecture, Data

RESULTS = Path(__file__).with_name("RESULTS_conv_engine.md")


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int,
                   warmup: int = 2) -> dict[str, tuple[float, float]]:
    """(median, min) ms of each function, timed round-robin (load hits every column alike)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: (1e3 * statistics.median(v), 1e3 * min(v)) for k, v in times.items()}


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((out - y) ** 2).sum(-1)


def routes(model, s: engine.Signals) -> str:
    """The route the engine takes for each conv layer's Gram (p = patch, m = materialize)."""
    out = []
    for a, d in zip(s.inputs, s.deltas, strict=True):
        if a.ndim != 3:
            continue
        k, b, p, c = d.shape
        costs = conv_engine.gram_costs(b, b, p, a.shape[2], c, k)
        out.append(conv_engine.choose_route(costs)[0])
    return "".join(out)


def measure(channels: int, batch: int, repeats: int, x_all: np.ndarray, y_all: np.ndarray,
            with_vmap: bool) -> dict[str, object]:
    arch = Architecture(width=channels, depth=2, activation="relu", sigma_w2=2.0, sigma_b2=0.1,
                        architecture="cnn", kernel_size=3, padding="SAME", readout="flatten",
                        input_dim=1, image_shape=(8, 8), output_dim=10)
    model = build_model(arch, 0)
    x = torch.as_tensor(x_all[:batch], dtype=torch.float32)
    y = torch.as_tensor(y_all[:batch], dtype=torch.float32)

    def plain() -> None:
        for prm in model.parameters():
            prm.grad = None
        mse(model(x), y).mean().backward()

    def engine_stats() -> torch.Tensor:
        g = engine.layer_grams(model, x, y, mse)
        g.weight_part().diagonal(dim1=1, dim2=2)
        return g.per_layer()

    def step_plus_estimator() -> torch.Tensor:
        for prm in model.parameters():
            prm.grad = None
        fwd = model.forward_all(x, retain_preact_grad=True)
        mse(fwd.output, y).mean().backward()
        s = engine.signals_from_forward(model, fwd, float(batch))
        g = engine.grams(s, dtype=torch.float64)
        return g.per_layer()

    def vmap_grams() -> torch.Tensor:
        w, b = engine.slow_per_example_grads(model, x, y, mse)
        flat = [torch.cat([gw.reshape(batch, -1), gb], 1) for gw, gb in zip(w, b, strict=True)]
        return torch.stack([f @ f.T for f in flat])

    fast = interleaved_ms({"plain": plain, "engine": engine_stats,
                           "step+estimator": step_plus_estimator}, repeats)
    row: dict[str, object] = {"channels": channels, "batch": batch, **fast,
                              "routes": routes(model, engine.signals(model, x, y, mse))}
    if with_vmap:
        row.update(interleaved_ms({"vmap": vmap_grams}, max(3, repeats // 5), warmup=1))
        ref = vmap_grams()
        got = engine_stats()
        row["rel_err"] = float(((got - ref).abs().amax((1, 2)) / ref.abs().amax((1, 2))).max())
    return row


def table(rows: list[dict[str, object]]) -> list[str]:
    head = ("| channels | batch | plain ms (min) | engine ms (min) | engine / plain | "
            "step+estimator / plain | vmap(grad) / plain | conv routes | max rel. err vs vmap |")
    lines = [head, "|" + "---:|" * 4 + "---:|" * 3 + ":---:|---:|"]
    for r in rows:
        base, base_min = r["plain"]
        eng, eng_min = r["engine"]
        est, est_min = r["step+estimator"]
        vm = r.get("vmap")
        vmap_txt = f"{vm[0] / base:.1f} ({vm[1] / base_min:.1f})" if vm else "-"
        err = f"{r['rel_err']:.1e}" if "rel_err" in r else "-"
        lines.append(
            f"| {r['channels']} | {r['batch']} | {base:.2f} ({base_min:.2f}) | {eng:.2f} "
            f"({eng_min:.2f}) | {eng / base:.2f} ({eng_min / base_min:.2f}) | {est / base:.2f} "
            f"({est_min / base_min:.2f}) | {vmap_txt} | {r['routes']} | {err} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, nargs="+", default=[16, 64, 128])
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--vmap-max-channels", type=int, default=64,
                   help="time the vmap(grad) reference up to this many channels")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_data(Data(name="digits-images", n_train=max(args.batch)), "mse", 0)
    load_before = os.getloadavg()[0]
    rows = []
    for c in args.channels:
        for b in args.batch:
            rows.append(measure(c, b, args.repeats, ds.x, ds.y, c <= args.vmap_max_channels))
            print(table(rows)[-1], flush=True)
    load_after = os.getloadavg()[0]
    ratios = [r["engine"][0] / r["plain"][0] for r in rows]
    ratios_min = [r["engine"][1] / r["plain"][1] for r in rows]
    est = [r["step+estimator"][0] / r["plain"][0] for r in rows]
    summary = (f"per-example stats / plain fwd+bwd (median): {min(ratios):.2f}x to "
               f"{max(ratios):.2f}x (mins: {min(ratios_min):.2f}x to {max(ratios_min):.2f}x; "
               f"goal <= 2x); a training step with the per_example estimator's float64 Grams: "
               f"{min(est):.2f}x to {max(est):.2f}x of the plain step")
    text = [
        "# Conv per-example engine vs plain forward+backward: measured results",
        "",
        "Script: `benchmarks/bench_conv_engine.py` (this file is written by it). Same CNN and",
        "minibatch in every column: relu, depth 2 conv layers (kernel 3, SAME) of `channels`",
        "channels, Flatten, dense readout to 10 outputs, ntk parameterization, bias on, float32,",
        f"CPU, digits-images (8x8, 1 channel), mse. torch {torch.__version__}, "
        f"{args.threads} thread(s), {args.repeats} repeats (vmap row: fewer), timed round-robin;",
        f"load average {load_before:.1f} before, {load_after:.1f} after (a shared 2-core machine:",
        "the min columns are the least disturbed repeats).",
        "",
        "Rerun: `PYTHONPATH=src python benchmarks/bench_conv_engine.py`",
        "",
        "Ratios are median (min) over the plain forward+backward timed in the same column.",
        "`engine`: per-example Grams (weight and bias part per layer) and squared norms from",
        "scratch (one forward, one backward to the layer outputs). `step+estimator`: a training",
        "step that retains the layer outputs' gradients plus the float64 Grams the",
        "`per_example` estimator forms from them. Conv routes: the Gram route the cost model",
        "chose per conv layer (m = materialize per-example gradients, p = patch Gram;",
        "`gradstats.simulate.conv_engine`).",
        "",
        *table(rows),
        "",
        summary,
        "",
    ]
    args.out.write_text("\n".join(text))
    print(summary)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
