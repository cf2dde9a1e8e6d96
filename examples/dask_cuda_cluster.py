"""Run a gradstats sweep on every GPU of one machine with dask-cuda (one worker per GPU).

    pip install dask-cuda
    python examples/dask_cuda_cluster.py my_sweep.toml --out results/my_sweep

Points with ``device = "auto"`` (the default) or ``"cuda"`` run on the worker's GPU:
`LocalCUDACluster` pins each worker process to one GPU with ``CUDA_VISIBLE_DEVICES``, so
torch's ``cuda`` device is that GPU. CPU threads per worker stay at one; the GPU does the work.
The same works from the command line with a running cluster:
``dask scheduler`` + ``dask cuda worker ADDRESS`` and ``gradstats run SWEEP --scheduler ADDRESS``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="sweep file or preset name")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from dask_cuda import LocalCUDACluster

    from gradstats.sweeps import expand, resolve_sweep
    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.executors import DaskExecutor

    sweep = resolve_sweep(args.sweep)
    with LocalCUDACluster(threads_per_worker=1, dashboard_address=None) as cluster:
        executor = DaskExecutor(address=cluster.scheduler_address)
        try:
            summary = run_sweep(expand(sweep), sweep.measure, args.out, name=sweep.name,
                                executor=executor,
                                progress=lambda done, total: print(f"{done}/{total}", flush=True))
        finally:
            executor.close()
    print(f"{summary.computed} computed, {summary.skipped} already done, "
          f"{len(summary.failed)} failed -> {summary.store}")


if __name__ == "__main__":
    main()
