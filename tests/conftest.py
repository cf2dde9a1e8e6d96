"""Shared test set-up: a headless matplotlib backend, one BLAS thread and one torch thread
(the CI has 2 cores; multithreaded OpenBLAS on a busy 2-core machine runs 20x slower)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
