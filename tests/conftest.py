"""Shared test set-up: a headless matplotlib backend and one torch thread (the CI has 2 cores)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
