#!/usr/bin/env bash
# CUDA results vs CPU on a few points, ensemble and engine timings on the GPU, in one go
# (at most 5 minutes); writes benchmarks/RESULTS_gpu.md. See benchmarks/gpu_check.py.
#   benchmarks/gpu_check.sh                # on a machine with a CUDA GPU
#   benchmarks/gpu_check.sh --cpu-dry-run  # the same comparisons CPU vs CPU, small budget
# Without a GPU (and without --cpu-dry-run) it says so and exits 0. PYTHON picks the
# interpreter (default: python); the package is taken from src/ unless installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
