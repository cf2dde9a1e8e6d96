"""Checks of image inputs for the convolutional kernels (channel-first, torch layout)."""

from __future__ import annotations

from typing import Any


def check_images(x1: Any, x2: Any | None = None) -> None:
    """x1 (n1, C, W) or (n1, C, H, W); x2, if given, with the same (C, *spatial)."""
    if x1.ndim not in (3, 4):
        raise ValueError(f"a cnn needs images x of shape (n, C, W) or (n, C, H, W), got "
                         f"shape {tuple(x1.shape)}")
    if x2 is not None and tuple(x2.shape[1:]) != tuple(x1.shape[1:]):
        raise ValueError(f"x2 must be (n2, {', '.join(map(str, x1.shape[1:]))}) like x1, got "
                         f"shape {tuple(x2.shape)}")
