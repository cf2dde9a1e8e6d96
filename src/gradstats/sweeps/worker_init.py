"""Preloaded by every worker process of a local Dask cluster (`executors.DaskExecutor`).

Ctrl-C in a terminal sends SIGINT to the whole process group: the driver and its workers.
The driver handles it (it stops the cluster and prints one line saying how to resume); a
worker that took it too would print its own KeyboardInterrupt traceback. So local workers
ignore SIGINT: they start with it ignored (inherited from the driver) and this preload
ignores it again in a worker the nanny restarts.
"""

from __future__ import annotations

import signal
import threading


def ignore_sigint() -> None:
    """Ignore SIGINT in this process (only the main thread can set signal handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload hook's signature
    ignore_sigint()
