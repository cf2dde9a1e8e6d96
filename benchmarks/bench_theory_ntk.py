"""Analytic NTK speed: gradstats.theory vs neural-tangents' kernel_fn.

Run in the neural-tangents environment:

    PYTHONPATH=src .venv-nt/bin/python benchmarks/bench_theory_ntk.py [--n 1000] [--depth 10]

Both are jitted and warmed up; the table reports the median wall time of ``--repeats`` calls
(with ``block_until_ready``) for relu, in float64 and float32, the ratio nt / own, and each
one's largest elementwise relative deviation from the float64 gradstats kernel.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")


def _median_time(fn, repeats: int) -> float:
    import jax

    jax.block_until_ready(fn())  # warm-up (compile)
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--input-dim", type=int, default=64)
    p.add_argument("--activation", default="relu")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()

    import jax
    import numpy as np

    from gradstats import Architecture
    from gradstats.theory import activations, kernels, nt_backend
    from gradstats.theory._compat import enable_x64

    arch = Architecture(width=512, depth=args.depth, activation=args.activation, sigma_w2=2.0,
                        sigma_b2=0.1, parameterization="ntk", input_dim=args.input_dim)
    x_np = np.random.default_rng(0).normal(size=(args.n, args.input_dim))
    cpu = platform.processor() or platform.machine()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({cpu}), {os.cpu_count()} cpus; "
          f"NTK of {args.n} inputs, depth {args.depth}, {args.activation}")
    print(f"{'dtype':8s} {'gradstats (s)':>14s} {'neural-tangents (s)':>20s} {'nt/own':>8s} "
          f"{'own err':>9s} {'nt err':>9s}")
    reference = None
    for x64 in (True, False):
        with enable_x64(x64):
            import jax.numpy as jnp

            x = jnp.asarray(x_np)
            quad = activations.DEFAULT_QUADRATURE

            def own(x=x, quad=quad):
                return kernels._recursion(
                    x, x, 2.0, 0.1, 512.0, activation=arch.activation, depth=arch.depth,
                    standard=False, bias=True, same=True, mode="ntk", quad=quad)[1]

            _, _, kernel_fn = nt_backend.stax_network(arch)
            nt_fn = jax.jit(kernel_fn, static_argnames="get")

            def ntk_nt(x=x, nt_fn=nt_fn):
                return nt_fn(x, None, "ntk")

            t_own = _median_time(own, args.repeats)
            t_nt = _median_time(ntk_nt, args.repeats)
            a, b = np.asarray(own(), float), np.asarray(ntk_nt(), float)
            if reference is None:  # float64 gradstats: the reference for both errors
                reference = a
            err_own = float(np.max(np.abs(a - reference) / np.abs(reference)))
            err_nt = float(np.max(np.abs(b - reference) / np.abs(reference)))
            name = "float64" if x64 else "float32"
            print(f"{name:8s} {t_own:14.4f} {t_nt:20.4f} {t_nt / t_own:8.2f} "
                  f"{err_own:9.1e} {err_nt:9.1e}")


if __name__ == "__main__":
    main()
