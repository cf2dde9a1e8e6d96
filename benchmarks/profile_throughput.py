"""Where a sweep's time goes, per point: writes benchmarks/RESULTS_throughput.md.

Runs, in one process on one torch and one BLAS thread, what ``gradstats run --workers 0``
runs (`run_sweep`: simulation, worker-side predictions, dataset, encoded point file, write,
consolidation), with every stage's function wrapped by a process-time accumulator
(`Sections`), for

1. the issue-18 sweep: widths 64, 128 x depths 4, 8, ``--seeds`` seeds (default 64), 100
   steps, with seed ensembles (default) and one by one (``ensemble=False``); and the bare
   training step per member at ensemble sizes 1-64 (the arithmetic bound);
2. the quickstart (``--qs-seeds`` seeds, default 4 = 16 points, the issue's "today"), run +
   compare in process, and the cost of the imports a fresh ``gradstats run`` pays
   (``python -X importtime``-free: wall time of importing the modules in a subprocess).

Stages (process CPU seconds, exclusive: a stage's time excludes stages nested in it):
simulation is split into the NTK at init (theory inputs), the recorded steps' spine
statistics (full-data loss and the rest), the probe NTKs of the ``ntk`` estimator, and the
training loop (the remainder); predictions by part (`gradstats.predictions.PARTS`).

Usage: python benchmarks/profile_throughput.py [--seeds 64] [--qs-seeds 4] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


class Sections:
    """Exclusive process-time accumulators over wrapped functions (nesting-aware)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner, attr: str, label: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            frame = [label, time.process_time(), 0.0]  # label, start, nested seconds
            self._stack.append(frame)
            try:
                return original(*args, **kwargs)
            finally:
                self._stack.pop()
                spent = time.process_time() - frame[1]
                self.seconds[label] += spent - frame[2]
                self.calls[label] += 1
                if self._stack:
                    self._stack[-1][2] += spent

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


NTKS = "simulation: empirical NTKs (at init on the training set; probe at recorded steps)"


def instrument(sections: Sections) -> None:
    """Wrap every stage of `run_sweep` (module attributes looked up at call time)."""
    from gradstats import predictions
    from gradstats.results import compare, io, schema
    from gradstats.simulate import engine_estimators, ensemble, ensemble_model, training
    from gradstats.sweeps import execute

    w = sections.wrap
    w(ensemble, "simulate_ensemble", "simulation: training loop and the rest")
    w(training, "simulate_point", "simulation: training loop and the rest")
    w(ensemble, "_init_inputs", NTKS)
    w(training, "init_inputs", NTKS)
    w(ensemble, "_full_loss", "simulation: full-data loss at recorded steps")
    w(training, "_full_loss", "simulation: full-data loss at recorded steps")
    w(ensemble, "_spine_values", "simulation: other spine statistics at recorded steps")
    w(training, "spine_values", "simulation: other spine statistics at recorded steps")
    w(ensemble_model, "chunked_ntk", NTKS)
    w(engine_estimators, "ntk_float64", NTKS)
    w(predictions, "predict_record", "predictions: other")
    predictions.PARTS = tuple((name, _timed_part(sections, name, part))
                              for name, part in predictions.PARTS)
    w(schema, "record_to_dataset", "dataset (record_to_dataset)")
    w(io, "encode", "encode + checksum")
    w(io, "write_bytes_atomic", "atomic write")
    w(io, "is_done", "resume check (is_done)")
    w(execute, "consolidate", "consolidate: other")
    w(io, "load_point_files", "consolidate: load point files")
    w(io, "combine", "consolidate: combine")
    w(io, "to_zarr", "consolidate: write sweep.zarr")
    w(compare, "compare", "compare")


def _timed_part(sections: Sections, name: str, part):
    holder = type("Part", (), {"f": staticmethod(part)})
    sections.wrap(holder, "f", f"predictions: {name}")
    return holder.f


def e2e_points(seeds: int, steps: int = 100):
    from gradstats.sweeps import expand, parse_sweep

    return expand(parse_sweep({"name": "e2e", "seeds": seeds,
                               "grid": {"width": [64, 128], "depth": [4, 8]},
                               "fixed": {"steps": steps}}))


def quickstart_points(seeds: int):
    from gradstats.sweeps import apply_overrides, expand, resolve_sweep

    return expand(apply_overrides(resolve_sweep("quickstart"), [f"seeds={seeds}"]))


def profiled_run(sections: Sections, points, ensemble: bool, with_compare: bool
                 ) -> tuple[float, float]:
    """(process CPU s, wall s) of `run_sweep` (+ compare of its results) into a fresh dir."""
    from gradstats.sweeps.execute import run_sweep

    sections.reset()
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        run_sweep(points, [], Path(tmp) / "out", workers=0, ensemble=ensemble)
        if with_compare:
            from gradstats.results.compare import compare
            from gradstats.results.io import load_results

            compare(load_results(Path(tmp) / "out", lazy=False))
        return time.process_time() - cpu, time.perf_counter() - wall


def breakdown_table(sections: Sections, total_cpu: float, n_points: int) -> list[str]:
    rows = sorted(sections.seconds.items(), key=lambda kv: -kv[1])
    accounted = sum(s for _, s in rows)
    lines = ["| stage | CPU ms per point | share |", "|---|---:|---:|"]
    for label, seconds in rows:
        lines.append(f"| {label} | {1e3 * seconds / n_points:.1f} | "
                     f"{100 * seconds / total_cpu:.0f}% |")
    rest = total_cpu - accounted
    lines.append(f"| scheduling, locks, manifest, summary (the rest) | "
                 f"{1e3 * rest / n_points:.1f} | {100 * rest / total_cpu:.0f}% |")
    lines.append(f"| **total** | **{1e3 * total_cpu / n_points:.1f}** | 100% |")
    return lines


def step_bound_table(widths_depths, sizes=(1, 2, 8, 16, 32, 64)
                     ) -> tuple[list[str], list[float]]:
    """Bare training step (forward, backward, SGD) per member vs ensemble size: the table and
    each configuration's best ms per member."""
    from gradstats.simulate import ensemble_model as em
    from gradstats.simulate.model import build_model

    best: list[float] = []
    lines = ["| width | depth | " + " | ".join(f"E={e}" for e in sizes) + " | best vs E=1 |",
             "|---:|---:|" + "---:|" * (len(sizes) + 1)]
    for width, depth in widths_depths:
        point = e2e_points(1)[0]
        arch = point.arch.__class__(**{**point.arch.__dict__, "width": width, "depth": depth,
                                       "input_dim": point.data.input_dim})
        per_member = []
        for e in sizes:
            nets = [build_model(arch, i, dtype=torch.float32, device=torch.device("cpu"))
                    for i in range(e)]
            model = nets[0] if e == 1 else em.EnsembleNetwork(nets)
            x = torch.randn(*(() if e == 1 else (e,)), 32, arch.input_dim)
            opt = torch.optim.SGD(model.parameters(), lr=0.01)

            def step(model=model, x=x, opt=opt):
                loss = (model(x) ** 2).mean()
                opt.zero_grad(set_to_none=False)
                loss.backward()
                opt.step()

            for _ in range(3):
                step()
            n = 20
            start = time.process_time()
            for _ in range(n):
                step()
            per_member.append(1e3 * (time.process_time() - start) / n / e)
        lines.append(f"| {width} | {depth} | " + " | ".join(f"{t:.3f}" for t in per_member)
                     + f" | {per_member[0] / min(per_member):.1f}x |")
        best.append(min(per_member))
    return lines, best


def bound_lines(per_point: dict[bool, tuple[float, dict[str, float]]], best: list[float],
                steps: int) -> list[str]:
    """What bounds the ensembles' speed-up, from the two runs' per-point stages (ms)."""
    one_total = per_point[False][0]
    ens_total, ens = per_point[True]
    sim = sum(v for k, v in ens.items() if k.startswith("simulation"))
    loop = ens.get("simulation: training loop and the rest", 0.0)
    floor_loop = (steps + 1) * sum(best) / len(best)  # the bare step at its best E, averaged
    floor_sim = sim - loop + floor_loop
    return ["## What bounds the speed-up", "",
            f"- measured: one by one {one_total:.0f} ms per point, ensembles {ens_total:.0f}: "
            f"**{one_total / ens_total:.1f}x**;",
            f"- the ensembles' simulation alone is {sim:.0f} ms per point: with every stage "
            f"outside it free (predictions, datasets, files, store) the speed-up would be "
            f"{one_total / sim:.1f}x;",
            f"- of that simulation, the training loop and the rest take {loop:.0f} ms; the bare "
            f"step at its best ensemble size (table above, {steps + 1} steps) takes "
            f"{floor_loop:.0f}. With the loop at that floor and nothing outside the "
            f"simulation: {one_total / floor_sim:.1f}x. The remaining {sim - loop:.0f} ms "
            "(empirical NTKs in float64, full-data loss and spine statistics) is arithmetic "
            "every member pays, batched or not.", ""]


def import_seconds() -> tuple[float, float]:
    """(CPU s, wall s) for a fresh interpreter to import what `gradstats run` needs."""
    import resource

    code = ("import gradstats.cli, torch, jax, xarray, gradstats.simulate.training, "
            "gradstats.predictions, gradstats.theory, gradstats.results.compare")
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--qs-seeds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="8 seeds, 20 steps (smoke run)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS_throughput.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    threadpool_limits(1)
    seeds, steps = (8, 20) if args.quick else (args.seeds, 100)
    load = os.getloadavg()[0]
    imports = import_seconds()
    sections = Sections()
    instrument(sections)
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: JAX compiles each configuration
        from gradstats.sweeps.execute import run_sweep
        run_sweep(e2e_points(2, steps), [], Path(tmp) / "a", workers=0)
        run_sweep(quickstart_points(1), [], Path(tmp) / "b", workers=0)
    points = e2e_points(seeds, steps)
    out = ["# Where the time goes, per point (issue 18)", "",
           "Script: `benchmarks/profile_throughput.py"
           f"{' --quick' if args.quick else ''} --seeds {seeds} --qs-seeds {args.qs_seeds}` "
           f"(this file is its output). {os.cpu_count()} cores shared with other jobs: "
           f"load average {load:.1f} at the start, __END__ at the end. Process CPU time, one "
           "torch and one BLAS thread; JAX compilations warm (a first run on this machine "
           "adds them, and JAX's persistent cache keeps them for later runs). Each stage's "
           "time excludes the stages nested in it.", ""]
    per_point: dict[bool, tuple[float, dict[str, float]]] = {}
    for ensemble in (True, False):
        cpu, wall = profiled_run(sections, points, ensemble, with_compare=False)
        per_point[ensemble] = (1e3 * cpu / len(points),
                               {k: 1e3 * v / len(points) for k, v in sections.seconds.items()})
        name = "seed ensembles (default)" if ensemble else "one by one (`--no-ensemble`)"
        out += [f"## {len(points)}-point sweep (widths 64, 128 x depths 4, 8 x {seeds} seeds, "
                f"{steps} steps), {name}", "",
                f"`run_sweep --workers 0 --no-compare`: {cpu:.1f} CPU s ({wall:.1f} s wall), "
                f"{1e3 * cpu / len(points):.0f} CPU ms per point.", "",
                *breakdown_table(sections, cpu, len(points)), ""]
        print("\n".join(out[-12:]), flush=True)
    step_table, best = step_bound_table([(64, 4), (64, 8), (128, 4), (128, 8)])
    out += ["## Bound: the bare training step", "",
            "CPU ms per member of one SGD step (forward, backward, update; batch 32, float32) "
            "of an ensemble of E members (E = 1: the plain network). The training loop of a "
            "seed ensemble cannot beat the best column; the full-data passes and NTKs are "
            "arithmetic that batching does not reduce.", "",
            *step_table, ""]
    out += bound_lines(per_point, best, steps)
    qs = quickstart_points(args.qs_seeds)
    cpu, wall = profiled_run(sections, qs, True, with_compare=True)
    out += [f"## Quickstart ({len(qs)} points: relu/tanh x widths 128, 512, depth 6, "
            f"50 steps, {args.qs_seeds} seeds), run + compare in process", "",
            f"{cpu:.1f} CPU s ({wall:.1f} s wall), {1e3 * cpu / len(qs):.0f} CPU ms per point; "
            f"a fresh process first pays {imports[0]:.1f} CPU s ({imports[1]:.1f} s wall) "
            "importing gradstats, torch, JAX and xarray.", "", *breakdown_table(sections, cpu, len(qs)), ""]
    text = "\n".join(out).replace("__END__", f"{os.getloadavg()[0]:.1f}")
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
