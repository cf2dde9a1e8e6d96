"""Advisory file locks so that runs sharing a results directory never compute a point twice.

Choice: one ``flock(2)`` lock file per point (``DIR/.locks/KEY.lock``) plus one around
consolidation. The kernel drops an flock when its holder dies, however it dies (SIGKILL
included), so there are no stale locks to detect or break by hand; the file holds
``pid@host`` only for people who look. flock, unlike fcntl/lockf record locks, conflicts
between two opens in one process and is not released by closing some other descriptor of
the same file. On NFS, Linux emulates flock with server-side byte-range locks (lockd), so
runs on different hosts sharing a directory exclude each other too; Lustre/GPFS need the
``flock`` mount option.

A lock file is unlinked by its holder on release. To make that safe, an acquirer checks,
after getting the lock, that the path still names the inode it locked, and retries if not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCKS_DIR = ".locks"
POLL_SECONDS = 0.05


@dataclass
class FileLock:
    """A held lock: the open descriptor and the path it was taken on."""

    path: Path
    fd: int
    shared: bool = False

    def release(self) -> None:
        """Unlink the lock file (while still holding it), then drop the lock; a shared lock
        is unlinked only by its last holder (the one that can then take it exclusively)."""
        if self.fd < 0:
            return
        try:
            if self.shared:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: not last
            self.path.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = -1


def lock_path(out_dir: Path, name: str) -> Path:
    """The lock file for ``name`` (a point key or ``consolidate``) under ``out_dir``."""
    return Path(out_dir) / LOCKS_DIR / f"{name}.lock"


def try_lock(path: Path) -> FileLock | None:
    """Take the lock at ``path`` without waiting; None when another holder has it."""
    return _acquire(Path(path), blocking=False)


def is_locked(path: Path) -> bool:
    """Whether someone holds ``path`` now (a lock left by a dead process is removed)."""
    held = try_lock(path)
    if held is None:
        return True
    held.release()
    return False


@contextmanager
def locked(path: Path) -> Iterator[FileLock]:
    """Hold the lock at ``path`` for the ``with`` block, waiting for it if needed."""
    held = _acquire(Path(path), blocking=True)
    assert held is not None  # a blocking acquire returns a lock or raises
    try:
        yield held
    finally:
        held.release()


RUNNING = "running"  # held shared by every live run into a directory (`hold_running`)


def hold_running(out_dir: Path) -> FileLock:
    """A shared lock on ``DIR/.locks/running.lock``, held while a run is live so that
    `run_is_live` can tell the manifest of a live run from one an aborted run left (the
    kernel drops it however the run dies). The last holder to release it removes the file."""
    held = _acquire(lock_path(out_dir, RUNNING), blocking=True, shared=True)
    assert held is not None  # a blocking acquire returns a lock or raises
    return held


def run_is_live(out_dir: Path) -> bool:
    """Whether some run holds `hold_running` on ``out_dir`` now (ask before taking yours:
    flock conflicts between two opens in one process)."""
    path = lock_path(out_dir, RUNNING)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _acquire(path: Path, blocking: bool, shared: bool = False) -> FileLock | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            if not shared:  # one holder: its name is for people; a full disk must not
                with contextlib.suppress(OSError):  # stop the lock from working
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}@{socket.gethostname()}\n".encode())
            return FileLock(path, fd, shared)
        os.close(fd)  # the previous holder unlinked it after we opened it: try again
        time.sleep(POLL_SECONDS / 10)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
