"""Output paths checked before any work starts: each problem is an `InputError` naming the
option, and nothing is written by the checks themselves."""

from __future__ import annotations

import os
from pathlib import Path

from gradstats.errors import InputError


def check_output_dir(path: Path, option: str = "--out") -> None:
    """``path`` is a directory, or can be created as one."""
    path = Path(os.path.abspath(path))
    ancestor = existing_ancestor(path)
    if ancestor == path and not path.is_dir():
        raise InputError(f"{option}: {path} exists and is not a directory")
    _check_creatable(path, ancestor, option)


def check_output_file(path: Path, option: str = "--out", suffix: str | None = None,
                      overwrite: bool = True) -> None:
    """``path`` can be written as a file with ``suffix``; an existing file only when
    ``overwrite``; never an existing directory."""
    path = Path(os.path.abspath(path))
    ancestor = existing_ancestor(path)
    if ancestor == path and path.is_dir():
        raise InputError(f"{option}: {path} is a directory")
    if suffix is not None and path.suffix != suffix:
        raise InputError(f"{option}: {path.name} should end in {suffix}")
    if ancestor == path:
        if not overwrite:
            raise InputError(f"{option}: {path} exists; pass --force to replace it")
        require_writable(path.parent, option)
        return
    _check_creatable(path, ancestor, option)
    require_writable(ancestor, option)


def require_writable(path: Path, option: str = "--out") -> None:
    """``path`` (or where it would be created) can be written by this process: a directory
    that files can be created in, or an existing file that can be replaced (it and its
    directory writable)."""
    target = existing_ancestor(Path(path))
    if target.is_dir() and writable(target):
        return
    if not target.is_dir() and os.access(target, os.W_OK) and writable(target.parent):
        return
    read_only = bool(os.statvfs(target).f_flag & os.ST_RDONLY)
    problem = "is on a read-only file system" if read_only else "is not writable"
    raise InputError(f"{option}: {target} {problem}")


def writable(directory: Path) -> bool:
    """Whether this process may create files in ``directory`` (permissions and read-only
    mounts; access(2) answers for the real user)."""
    return os.access(directory, os.W_OK | os.X_OK)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing ancestor (absolute)."""
    path = Path(os.path.abspath(path))
    while not _exists(path) and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path, ancestor: Path, option: str) -> None:
    if not ancestor.is_dir():
        raise InputError(f"{option}: {path} cannot be created: {ancestor} is a file")
    limit = _name_max(ancestor)
    for part in path.relative_to(ancestor).parts:
        if len(os.fsencode(part)) > limit:
            raise InputError(f"{option}: {path}: the name {part[:40]}... is longer than the "
                             f"file system allows ({limit} bytes)")


def _exists(path: Path) -> bool:
    try:
        os.lstat(path)
    except OSError:  # absent, under a file, or a name too long: not there
        return False
    return True


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255
