"""Preloaded by every worker process of a local Dask cluster (`executors.DaskExecutor`).

Ctrl-C in a terminal sends SIGINT to the whole process group: the driver and its workers.
The driver handles it (it stops the cluster and prints one line saying how to resume); a
worker that took it too would print its own KeyboardInterrupt traceback. So local workers
ignore SIGINT: they start with it ignored (inherited from the driver) and this preload
ignores it again in a worker the nanny restarts.
"""

from __future__ import annotations

import signal
import sys
import threading


def ignore_sigint() -> None:
    """Ignore SIGINT in this process (only the main thread can set signal handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def drop_closed_loop_client_finalizer(unraisable) -> None:
    """`sys.unraisablehook` that drops one known message and passes the rest on: a
    distributed Client collected after its event loop closed (the cluster shut down on
    Ctrl-C) raises "IOLoop is closed" in ``Client.__del__``, printed as a 10-line traceback
    although nothing is wrong (distributed's own finalizer, not our code)."""
    obj = getattr(unraisable, "object", None)
    if (isinstance(unraisable.exc_value, RuntimeError)
            and "IOLoop is closed" in str(unraisable.exc_value)
            and getattr(obj, "__qualname__", "") == "Client.__del__"):
        return
    sys.__unraisablehook__(unraisable)


def quiet_shutdown() -> None:
    """Install `drop_closed_loop_client_finalizer` in this process."""
    sys.unraisablehook = drop_closed_loop_client_finalizer


def dask_setup(worker) -> None:  # noqa: ARG001 - the preload hook's signature
    ignore_sigint()
    quiet_shutdown()
