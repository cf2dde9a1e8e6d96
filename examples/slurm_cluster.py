"""Run a gradstats sweep on a SLURM cluster with dask-jobqueue.

    pip install dask-jobqueue
    python examples/slurm_cluster.py my_sweep.toml --out results/my_sweep --jobs 8

Each SLURM job starts ``--cores`` single-threaded Dask worker processes; this script (the
driver, e.g. on the login node) submits points, writes each finished point's file under
``--out`` as results arrive, and consolidates ``sweep.zarr`` at the end. Kill it and rerun
to resume: finished points are kept. Alternatively keep a cluster alive with
``--serve`` and point ``gradstats run SWEEP --scheduler ADDRESS`` at the printed address.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def make_cluster(cores: int, memory: str, walltime: str, queue: str | None):
    """A SLURMCluster whose jobs run ``cores`` one-thread worker processes each."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue=queue, cores=cores, processes=cores, memory=memory, walltime=walltime,
        job_script_prologue=["export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"],
        # workers that lose their job's allocation are replaced; tasks on them are rerun
        worker_extra_args=["--lifetime", "55m", "--lifetime-stagger", "4m"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", help="sweep file or preset name")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=4, help="SLURM jobs to start")
    parser.add_argument("--cores", type=int, default=8, help="cores (= workers) per job")
    parser.add_argument("--memory", default="16GB")
    parser.add_argument("--walltime", default="01:00:00")
    parser.add_argument("--queue", default=None)
    parser.add_argument("--serve", action="store_true",
                        help="only start the cluster and print its address")
    args = parser.parse_args()

    cluster = make_cluster(args.cores, args.memory, args.walltime, args.queue)
    cluster.scale(jobs=args.jobs)
    if args.serve:
        print(f"gradstats run SWEEP --scheduler {cluster.scheduler_address}", flush=True)
        while True:  # Ctrl-C stops the cluster
            time.sleep(60)

    from gradstats.sweeps import expand, resolve_sweep
    from gradstats.sweeps.execute import run_sweep
    from gradstats.sweeps.executors import DaskExecutor

    sweep = resolve_sweep(args.sweep)
    executor = DaskExecutor(address=cluster.scheduler_address)
    try:
        summary = run_sweep(expand(sweep), sweep.measure, args.out, name=sweep.name,
                            executor=executor,
                            progress=lambda done, total: print(f"{done}/{total}", flush=True))
    finally:
        executor.close()
        cluster.close()
    print(f"{summary.computed} computed, {summary.skipped} already done, "
          f"{len(summary.failed)} failed -> {summary.store}")


if __name__ == "__main__":
    main()
