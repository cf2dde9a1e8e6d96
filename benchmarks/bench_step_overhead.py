"""Two fixed costs of a training step and of a fresh process, each against what replaced it,
side by side; writes RESULTS_step_overhead.md.

1. A fresh process that builds its optimizer: ``import torch`` then torch.optim.SGD over
   one parameter (which imports torch._dynamo), against the same with
   `gradstats.simulate.optimizers.SGD` (subprocesses, alternating, median of ``--repeats``).
2. The per-step divergence check of one network's gradients (the weight and bias gradients
   of an MLP with d = 32 inputs and one output, float32): ``isfinite(g).all()`` per tensor
   against `gradstats.simulate.precision.all_finite` (the same answer from amax/amin), in one
   process on one torch thread.

Usage: python benchmarks/bench_step_overhead.py [--repeats 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gradstats.simulate.precision import all_finite

HERE = Path(__file__).parent
BUILD = {
    "torch.optim.SGD": "torch.optim.SGD([p], lr=0.1)",
    "gradstats SGD": ("from gradstats.simulate.optimizers import SGD\n"
                      "SGD([{'params': [p], 'lr': 0.1}])"),
}
SHAPES = [(64, 4), (128, 8), (512, 6)]  # (width, depth)


def fresh_process_seconds(build: str) -> float:
    code = f"import torch\np = torch.zeros(3, requires_grad=True)\n{build}\n"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def gradients(width: int, depth: int) -> list[torch.Tensor]:
    dims = [32] + [width] * depth + [1]
    gen = torch.Generator().manual_seed(0)
    return [t for m, n in zip(dims[:-1], dims[1:], strict=True)
            for t in (torch.randn(n, m, generator=gen), torch.randn(n, generator=gen))]


def per_call_ms(fn, repeats: int = 300) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return 1e3 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_step_overhead.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    runs: dict[str, list[float]] = {name: [] for name in BUILD}
    for _ in range(args.repeats):
        for name, build in BUILD.items():
            runs[name].append(fresh_process_seconds(build))
    lines = ["# Fixed costs of a fresh process and of a training step", "",
             f"Script: `benchmarks/bench_step_overhead.py --repeats {args.repeats}` (this file "
             f"is its output); load average {load:.1f} on {os.cpu_count()} cores at the start.",
             "", "## 1. A fresh process: import torch and build the optimizer (wall s, median of "
             f"{args.repeats}, alternating)", "", "| optimizer | wall s |", "|---|---:|"]
    medians = {name: statistics.median(v) for name, v in runs.items()}
    lines += [f"| {name} | {s:.2f} |" for name, s in medians.items()]
    lines += ["", f"torch.optim costs a fresh process "
              f"**{medians['torch.optim.SGD'] - medians['gradstats SGD']:.2f} s** more "
              "(its import of torch._dynamo).", "",
              "## 2. The per-step divergence check of one network's gradients (ms per step, "
              "one torch thread)", "",
              "| width | depth | isfinite(g).all() per tensor | all_finite | ratio |",
              "|---:|---:|---:|---:|---:|"]
    for width, depth in SHAPES:
        grads = gradients(width, depth)
        old = per_call_ms(lambda g=grads: all(bool(torch.isfinite(t).all()) for t in g))
        new = per_call_ms(lambda g=grads: all_finite(g))
        lines.append(f"| {width} | {depth} | {old:.3f} | {new:.3f} | {old / new:.1f}x |")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
