"""Small shims over jax APIs that differ between the supported versions (0.5.x and 0.10.x)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax


@contextlib.contextmanager
def enable_x64(enabled: bool = True) -> Iterator[None]:
    """Context in which jax computes in float64 (``enabled``) or float32.

    Uses ``jax.enable_x64`` (jax >= 0.6) or ``jax.experimental.enable_x64`` /
    ``disable_x64`` (older jax); both are thread-local scopes that leave the global
    ``jax_enable_x64`` flag alone.
    """
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(bool(enabled)):
            yield
        return
    from jax import experimental

    ctx = experimental.enable_x64() if enabled else experimental.disable_x64()
    with ctx:
        yield


@contextlib.contextmanager
def x64_scope(x64: bool | None) -> Iterator[None]:
    """``x64=None``: keep jax's current precision; True/False: force float64/float32 inside."""
    if x64 is None:
        yield
        return
    with enable_x64(x64):
        yield

