"""Per-example gradient statistics and empirical NTK: Gram trick vs materialization.

Same model and batch for every column (default: relu MLP, width 512, depth 4, batch 128,
input_dim 64, float32, CPU). Rows, medians over repeats (timed
round-robin against the load of a shared machine), ratios against plain fwd+bwd:

- plain forward + backward (parameter gradients of the mean loss): the baseline;
- engine per-example stats from scratch: one forward, one backward to the pre-activations,
  all per-layer Grams (weight and bias parts) and per-example squared norms;
- training step + engine stats: the baseline with pre-activation grads retained, then the
  same Grams from them (what the ``per_example`` estimator adds to a training step);
- torch.func vmap(grad) materialization of the (B, P) per-example gradients;
- a Python loop of per-example autograd calls (materialization);
- the per-layer Grams of materialized gradients (add to either materialization row);
- our empirical NTK (B x B) vs neural-tangents' ``empirical_ntk_fn`` (jit, warmed up, fastest
  of its implementations; only when neural-tangents imports, e.g. in .venv-nt).

Run:  python benchmarks/bench_engine.py
      PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_engine.py   # adds neural-tangents
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from gradstats.simulate import build_model, engine
from gradstats.spec import Architecture


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int,
                   warmup: int = 2) -> dict[str, tuple[float, float]]:
    """(median, min) ms of each function, timed round-robin so that load from other processes
    on a shared machine hits every column alike."""
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


def grams_from_flat(flat: list[torch.Tensor]) -> torch.Tensor:
    """(L, B, B) per-layer Grams from per-layer (B, P_l) gradients."""
    return torch.stack([f @ f.T for f in flat])


def materialized_flat(model, x, y) -> list[torch.Tensor]:
    w, b = engine.slow_per_example_grads(model, x, y, mse)
    return [torch.cat([gw.reshape(x.shape[0], -1), gb], 1) for gw, gb in zip(w, b, strict=True)]


def loop_flat(model, x, y) -> list[torch.Tensor]:
    n = model.arch.n_layers
    params = list(model.weights) + list(model.biases)
    rows = []
    for i in range(x.shape[0]):
        g = torch.autograd.grad(mse(model(x[i:i + 1]), y[i:i + 1]).sum(), params)
        rows.append([torch.cat([g[l].reshape(-1), g[n + l]]) for l in range(n)])
    return [torch.stack([r[l] for r in rows]) for l in range(n)]


def nt_ntk(model, x_np: np.ndarray, repeats: int
           ) -> tuple[dict[str, tuple[float, float]], np.ndarray] | None:
    """(median, min) ms of neural-tangents' empirical NTK per working implementation, and
    nt's kernel (None without nt). Timed in its own block, not round-robin with torch: XLA's
    CPU threads keep spinning after a call and would slow the torch call that follows."""
    try:
        import jax
        import jax.numpy as jnp
        import neural_tangents as nt
    except ImportError:
        return None
    stax = nt.stax
    arch = model.arch
    w_std, b_std = float(np.sqrt(arch.sigma_w2)), float(np.sqrt(arch.sigma_b2))
    layers = []
    for _ in range(arch.depth):
        layers += [stax.Dense(arch.width, w_std, b_std), stax.Relu()]
    _, apply_fn, _ = stax.serial(*layers, stax.Dense(arch.output_dim, w_std, b_std))
    params = []
    for w, b in zip(model.weights, model.biases, strict=True):
        params += [(jnp.asarray(w.detach().numpy().T), jnp.asarray(b.detach().numpy())), ()]
    params = params[:-1]
    x = jnp.asarray(x_np)
    times: dict[str, tuple[float, float]] = {}
    kernel = None
    for impl in nt.NtkImplementation:
        try:
            fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0,
                                             implementation=impl))
            kernel = np.asarray(fn(x, None, params))
            times.update(interleaved_ms(
                {impl.name: lambda fn=fn: fn(x, None, params).block_until_ready()},
                repeats, warmup=1))
        except Exception as exc:  # noqa: BLE001 - report and keep the working ones
            print(f"neural-tangents {impl.name}: failed ({type(exc).__name__}: {exc})"[:200])
    if kernel is None:
        return None
    return times, kernel


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--input-dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    dev = torch.device(args.device)
    arch = Architecture(width=args.width, depth=args.depth, activation="relu", sigma_w2=2.0,
                        sigma_b2=0.1, input_dim=args.input_dim, output_dim=1)
    model = build_model(arch, 0, device=dev)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.input_dim, generator=gen).to(dev)
    y = torch.randn(args.batch, 1, generator=gen).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def plain() -> None:
        for prm in model.parameters():
            prm.grad = None
        mse(model(x), y).mean().backward()
        sync()

    def engine_stats() -> tuple[torch.Tensor, torch.Tensor]:
        g = engine.layer_grams(model, x, y, mse)
        per_layer = g.per_layer()
        norms = torch.stack([g.weight_part().diagonal(dim1=1, dim2=2),
                             g.bias_part().diagonal(dim1=1, dim2=2)])
        sync()
        return per_layer, norms

    def step_plus_stats() -> torch.Tensor:
        for prm in model.parameters():
            prm.grad = None
        fwd = model.forward_all(x, retain_preact_grad=True)
        mse(fwd.output, y).mean().backward()
        g = engine.grams(engine.signals_from_forward(model, fwd, float(args.batch)))
        out = g.per_layer()
        sync()
        return out

    def vmap_only() -> list[torch.Tensor]:
        out = materialized_flat(model, x, y)
        sync()
        return out

    def loop_only() -> list[torch.Tensor]:
        out = loop_flat(model, x, y)
        sync()
        return out

    flat = vmap_only()

    def grams_of_flat() -> torch.Tensor:
        out = grams_from_flat(flat)
        sync()
        return out

    def our_ntk() -> torch.Tensor:
        out = engine.empirical_ntk_model(model, x)
        sync()
        return out

    r = args.repeats
    fast = interleaved_ms({
        "plain fwd+bwd (baseline)": plain,
        "engine per-example stats": engine_stats,
        "train step + engine stats": step_plus_stats,
        "engine empirical NTK (BxB)": our_ntk,
    }, r)
    slow = interleaved_ms({
        "torch.func vmap(grad), materialize only": vmap_only,
        "python loop, materialize only": loop_only,
        "  + Grams of materialized (B, P)": grams_of_flat,
    }, max(3, r // 10), warmup=1)
    rows = list(fast.items())[:3] + list(slow.items()) + list(fast.items())[3:]
    base, base_min = rows[0][1]

    # accuracy against materialization (float32)
    ref = grams_from_flat(flat)
    got = engine_stats()[0]
    rel_mat = ((got - ref).abs().amax((1, 2)) / ref.abs().amax((1, 2))).max().item()
    loop_ref = grams_from_flat(loop_only())
    rel_loop = ((got - loop_ref).abs().amax((1, 2)) / loop_ref.abs().amax((1, 2))).max().item()

    nt_result = None
    if dev.type == "cpu":
        nt_result = nt_ntk(model, x.cpu().numpy(), max(3, r // 4))

    print(f"\nwidth {args.width}, depth {args.depth}, batch {args.batch}, input_dim "
          f"{args.input_dim}, float32, {dev}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, medians of {r} repeats (fewer for slow rows)\n")
    print(f"| {'method':<41} | {'median ms':>10} | {'x plain':>8} | {'min ms':>9} | "
          f"{'x plain':>8} |")
    print(f"|{'-' * 43}|{'-' * 11}:|{'-' * 9}:|{'-' * 10}:|{'-' * 9}:|")

    def line(name: str, ms: float, mn: float) -> None:
        print(f"| {name:<41} | {ms:>10.2f} | {ms / base:>8.2f} | {mn:>9.2f} | "
              f"{mn / base_min:>8.2f} |")

    for name, (ms, mn) in rows:
        line(name, ms, mn)
    ours, ours_min = rows[-1][1]
    if nt_result is not None:
        times, kernel = nt_result
        for impl, (ms, mn) in sorted(times.items(), key=lambda kv: kv[1]):
            line("neural-tangents NTK, " + impl, ms, mn)
        best = min(times, key=lambda k: times[k][0])
        theta = our_ntk().cpu().numpy()
        rel_nt = np.abs(theta - kernel).max() / np.abs(kernel).max()
        print(f"\nempirical NTK speed-up vs neural-tangents' fastest ({best}): median "
              f"{times[best][0] / ours:.1f}x, min {times[best][1] / ours_min:.1f}x "
              f"(target >= 20x); max rel. error vs nt: {rel_nt:.2e}")
    else:
        print("\nneural-tangents not importable here: run in .venv-nt for that comparison")
    print(f"per-example stats / plain fwd+bwd: median {rows[1][1][0] / base:.2f}x, "
          f"min {rows[1][1][1] / base_min:.2f}x (target <= 1.5x)")
    print(f"max rel. error of per-layer Grams vs vmap(grad): {rel_mat:.2e}, "
          f"vs python loop: {rel_loop:.2e} (float32)")


if __name__ == "__main__":
    main()
