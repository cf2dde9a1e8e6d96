"""CNN kernels of many images in tiles of image pairs, within a memory budget.

A global-average-pool kernel needs every pixel pair of every image pair: n1 n2 P^2 floats
per layer (4000 x 4000 8x8 images: 5e11 bytes in float64), which is neural-tangents' most
reported failure (its issues #29, #100, #166, #182). Here the recursion runs on tiles of
b1 x b2 image pairs; b1, b2 are the largest that keep one tile's working set within
``memory_budget`` bytes, as measured by XLA's own accounting of the compiled tile
(``compiled.memory_analysis()``: arguments + outputs + temporaries), so the budget holds for
every activation, padding and depth without a hand-made estimate. Only the readout kernels
of a tile, (b1, b2) per output, leave it.

The budget bounds the kernel computation; the process also holds the inputs, the output
kernels (n1 n2 floats each, unless they stream to Zarr) and the jax runtime itself.

- `cnn_kernels`: numpy outputs (nngp, ntk, and with ``mode="layers"`` the per-layer splits);
- `cnn_kernels_to_zarr`: the same written tile by tile into a Zarr group (chunks = tiles),
  optionally computing several tiles at once through Dask (each worker gets
  ``memory_budget / workers``), so the output never needs to fit in memory either.

With x2 = None the kernel is symmetric: tiles with i-block <= j-block are computed and the
transpose is written for the others (diagonal tiles see ``same=True``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from gradstats.layers import hyper, network_spec
from gradstats.spec import Architecture
from gradstats.theory import activations as act
from gradstats.theory._compat import enable_x64, x64_scope

DEFAULT_MEMORY_BUDGET = 1 << 30  # 1 GiB per tile working set
# Tiles are grown up to this working set only: on CPU, larger tiles fall out of the caches
# and run slower per image pair (see benchmarks/RESULTS_cntk.md), so the budget caps them.
TILE_TARGET_BYTES = 16 << 20
MODES = ("nngp", "ntk", "layers")
OUTPUTS = {"nngp": ("nngp",), "ntk": ("nngp", "ntk"),
           "layers": ("nngp", "ntk", "ntk_weight", "ntk_bias")}
_PROBE = 2  # probe tile (image pairs per side) for the per-pair cost
_SMALL_PAIRS = 4096  # up to this many image pairs, try the whole kernel as one tile first


@dataclass(frozen=True)
class TilePlan:
    """Tile sizes (b1, b2), the compiled tile's measured bytes and the budget it meets."""

    b1: int
    b2: int
    tile_bytes: int
    budget: int


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def _check_arch(arch: Architecture) -> None:
    if getattr(arch, "architecture", "mlp") != "cnn":
        raise ValueError("architecture: the tiled kernels are for architecture='cnn'")


_COMPILED: dict[tuple, tuple[Any, int | None]] = {}
_COMPILED_MAX = 64


def _compile(arch: Architecture, shape1: tuple, shape2: tuple, same: bool, mode: str, quad):
    """The jitted recursion compiled for one tile shape, and its measured working set
    (memoized: a tile shape compiles once per process)."""
    dtype = jnp.zeros(()).dtype  # float64 under x64
    key = (arch, shape1, shape2, same, mode, quad, str(dtype))
    if key not in _COMPILED:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = _compile_uncached(arch, shape1, shape2, same, mode, quad, dtype)
    return _COMPILED[key]


def _compile_uncached(arch, shape1, shape2, same, mode, quad, dtype):
    import jax

    from gradstats.theory.kernels import _recursion

    spec1 = jax.ShapeDtypeStruct(shape1, dtype)
    spec2 = jax.ShapeDtypeStruct(shape2, dtype)
    compiled = _recursion.lower(spec1, spec2, hyper(arch), net=network_spec(arch), same=same,
                                mode=mode, quad=quad).compile()
    mem = compiled.memory_analysis()
    used = (None if mem is None else int(mem.temp_size_in_bytes + mem.argument_size_in_bytes
                                          + mem.output_size_in_bytes))
    return compiled, used


def plan_tiles(arch: Architecture, n1: int, n2: int, image_shape: tuple[int, ...], *,
               mode: str = "ntk", memory_budget: int = DEFAULT_MEMORY_BUDGET,
               quadrature: act.Quadrature | None = None,
               target_bytes: int = TILE_TARGET_BYTES, symmetric: bool = False) -> TilePlan:
    """The largest tiles whose compiled working set fits ``memory_budget`` (bytes), and
    ``target_bytes`` where that is smaller (cache-sized tiles run faster on CPU).

    Cost per image pair from a probe compile, then the tile is grown to fit and checked
    against the budget by compiling it (shrunk until it fits). Call inside the precision
    scope of the computation. Raises ValueError if even one image pair does not fit.
    """
    quad = quadrature or act.DEFAULT_QUADRATURE
    target = min(memory_budget, target_bytes)
    if n1 * n2 <= _SMALL_PAIRS:  # one tile may do: measure it directly (one compile)
        _, used = _compile(arch, (n1, *image_shape), (n2, *image_shape), symmetric, mode, quad)
        if used is not None and used <= target:
            return TilePlan(n1, n2, used, memory_budget)
    p1, p2 = min(_PROBE, n1), min(_PROBE, n2)
    _, probe = _compile(arch, (p1, *image_shape), (p2, *image_shape), False, mode, quad)
    if probe is None:  # pragma: no cover - backends without memory analysis
        raise RuntimeError("this jax backend reports no memory analysis; pass tile=(b1, b2)")
    per_pair = probe / (p1 * p2)
    target = min(memory_budget, max(target_bytes, probe))  # at least the probe's tile
    side = max(1, int(math.sqrt(target / per_pair)))
    b1 = min(n1, side)
    b2 = min(n2, max(1, int(target / per_pair / b1)))
    while True:
        _, used = _compile(arch, (b1, *image_shape), (b2, *image_shape), False, mode, quad)
        if used <= memory_budget:
            return TilePlan(b1, b2, used, memory_budget)
        if b1 == b2 == 1:
            raise ValueError(f"memory_budget: one image pair needs {used} bytes, more than "
                             f"the budget of {memory_budget}")
        if b1 >= b2:
            b1 = max(1, int(b1 * 0.9))
        else:
            b2 = max(1, int(b2 * 0.9))


def _blocks(n: int, b: int) -> list[tuple[int, int]]:
    return [(start, min(start + b, n)) for start in range(0, n, b)]


def _padded(x: np.ndarray, lo: int, hi: int, size: int) -> np.ndarray:
    """x[lo:hi] padded to ``size`` rows by repeating its last image (one compiled shape)."""
    part = x[lo:hi]
    if hi - lo < size:
        part = np.concatenate([part, np.repeat(part[-1:], size - (hi - lo), axis=0)])
    return part


def _tiles(n1: int, n2: int, plan: TilePlan, symmetric: bool
           ) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    if symmetric:  # square tiles so that a transposed tile is a tile
        b = min(plan.b1, plan.b2)
        blocks = _blocks(n1, b)
        for i, bi in enumerate(blocks):
            for bj in blocks[i:]:
                yield bi, bj
        return
    for bi in _blocks(n1, plan.b1):
        for bj in _blocks(n2, plan.b2):
            yield bi, bj


class _TileRunner:
    """Compiled tile functions (off-diagonal, and diagonal when symmetric) and the inputs."""

    def __init__(self, arch, x1, x2, mode, plan: TilePlan, quad, symmetric: bool):
        self.arch, self.mode, self.symmetric = arch, mode, symmetric
        self.x1, self.x2 = x1, x1 if x2 is None else x2
        self.b1 = self.b2 = min(plan.b1, plan.b2) if symmetric else None
        if not symmetric:
            self.b1, self.b2 = plan.b1, plan.b2
        self.shape, self.quad = x1.shape[1:], quad
        self.hp = hyper(arch)

    def _compiled(self, same: bool):
        """The tile function, compiled on first use (memoized by `_compile`)."""
        b2 = self.b1 if same else self.b2
        return _compile(self.arch, (self.b1, *self.shape), (b2, *self.shape), same, self.mode,
                        self.quad)[0]

    def __call__(self, bi: tuple[int, int], bj: tuple[int, int]) -> dict[str, np.ndarray]:
        """The readout kernels of image pairs x1[bi] x x2[bj]: name -> (..., |bi|, |bj|)."""
        a = jnp.asarray(_padded(self.x1, *bi, self.b1))
        if self.symmetric and bi == bj:
            res = self._compiled(True)(a, a, self.hp)
        else:
            res = self._compiled(False)(a, jnp.asarray(_padded(self.x2, *bj, self.b2)), self.hp)
        res = (res,) if self.mode == "nngp" else res
        ni, nj = bi[1] - bi[0], bj[1] - bj[0]
        return {name: np.asarray(v)[..., :ni, :nj]
                for name, v in zip(OUTPUTS[self.mode], res, strict=True)}


def _prepare(arch: Architecture, x1, x2):
    from gradstats.theory.conv.inputs import check_images

    _check_arch(arch)
    act.check_activation(arch.activation)
    x1 = np.ascontiguousarray(x1, dtype=float)
    x2 = None if x2 is None else np.ascontiguousarray(x2, dtype=float)
    check_images(x1, x2)
    return arch.with_image(x1.shape[1:], "x1"), x1, x2


def _layers_shape(arch: Architecture, name: str, n1: int, n2: int) -> tuple[int, ...]:
    return (arch.n_layers, n1, n2) if name in ("ntk_weight", "ntk_bias") else (n1, n2)


def _put(out: dict, name: str, bi, bj, value: np.ndarray, mirror: bool) -> None:
    out[name][..., bi[0]:bi[1], bj[0]:bj[1]] = value
    if mirror and bi != bj:
        out[name][..., bj[0]:bj[1], bi[0]:bi[1]] = np.swapaxes(value, -1, -2)


def cnn_kernels(arch: Architecture, x1, x2=None, *, mode: str = "ntk",
                memory_budget: int = DEFAULT_MEMORY_BUDGET, tile: tuple[int, int] | None = None,
                x64: bool | None = None, quadrature: act.Quadrature | None = None
                ) -> dict[str, np.ndarray]:
    """Readout kernels of one output unit for images x1 (n1, C, *S) and x2 (n2, C, *S) (None:
    x1), computed in tiles of image pairs: ``nngp`` and (modes ntk, layers) ``ntk`` (n1, n2);
    ``layers`` adds ``ntk_weight``, ``ntk_bias`` (depth+1, n1, n2). ``tile`` (b1, b2) fixes
    the tile instead of fitting it to ``memory_budget`` (bytes)."""
    _check_mode(mode)
    arch, x1, x2 = _prepare(arch, x1, x2)
    n1, n2 = x1.shape[0], (x1 if x2 is None else x2).shape[0]
    quad = quadrature or act.DEFAULT_QUADRATURE
    with x64_scope(x64):
        plan = _plan(arch, n1, n2, x1.shape[1:], mode, memory_budget, tile, quad, x2 is None)
        run = _TileRunner(arch, x1, x2, mode, plan, quad, symmetric=x2 is None)
        dtype = jnp.zeros(()).dtype
        out = {name: np.empty(_layers_shape(arch, name, n1, n2), dtype)
               for name in OUTPUTS[mode]}
        for bi, bj in _tiles(n1, n2, plan, x2 is None):
            for name, value in run(bi, bj).items():
                _put(out, name, bi, bj, value, mirror=x2 is None)
    return out


def _plan(arch, n1, n2, image_shape, mode, memory_budget, tile, quad, symmetric: bool
          ) -> TilePlan:
    if tile is not None:
        b1, b2 = (int(t) for t in tile)
        if b1 < 1 or b2 < 1:
            raise ValueError(f"tile: sizes must be >= 1, got {tile}")
        return TilePlan(min(b1, n1), min(b2, n2), -1, memory_budget)
    if memory_budget <= 0:
        raise ValueError(f"memory_budget: must be > 0 bytes, got {memory_budget}")
    return plan_tiles(arch, n1, n2, image_shape, mode=mode, memory_budget=memory_budget,
                      quadrature=quad, symmetric=symmetric)


def cnn_kernels_to_zarr(arch: Architecture, x1, store: Any, x2=None, *, mode: str = "ntk",
                        memory_budget: int = DEFAULT_MEMORY_BUDGET,
                        tile: tuple[int, int] | None = None, dask_workers: int = 0,
                        x64: bool | None = None, quadrature: act.Quadrature | None = None
                        ) -> TilePlan:
    """`cnn_kernels` written into the Zarr group ``store`` (a path or a zarr store): one
    array per output, chunked by tile, filled tile by tile, so neither the pixel kernels nor
    the output kernels are ever held whole. ``dask_workers > 0`` computes that many tiles at
    once on Dask's threaded scheduler (each with ``memory_budget / dask_workers``). Returns
    the tile plan; the group's attrs record it with the architecture."""
    import dataclasses
    import json

    import zarr

    _check_mode(mode)
    arch, x1, x2 = _prepare(arch, x1, x2)
    n1, n2 = x1.shape[0], (x1 if x2 is None else x2).shape[0]
    quad = quadrature or act.DEFAULT_QUADRATURE
    workers = max(1, int(dask_workers))
    with x64_scope(x64):
        symmetric = x2 is None
        plan = _plan(arch, n1, n2, x1.shape[1:], mode, memory_budget // workers, tile, quad,
                     symmetric)
        run = _TileRunner(arch, x1, x2, mode, plan, quad, symmetric)
        b1, b2 = run.b1, run.b2
        dtype = np.dtype(jnp.zeros(()).dtype)
        wide = dtype == np.float64
        group = zarr.open_group(store, mode="w")
        out = {}
        for name in OUTPUTS[mode]:
            shape = _layers_shape(arch, name, n1, n2)
            chunks = shape[:-2] + (b1, b2)
            create = getattr(group, "create_array", None) or group.create_dataset  # zarr 3 / 2
            out[name] = create(name, shape=shape, chunks=chunks, dtype=dtype)
        group.attrs.update({"arch": json.dumps(dataclasses.asdict(arch), sort_keys=True),
                            "tile": [b1, b2], "tile_bytes": plan.tile_bytes,
                            "memory_budget": plan.budget, "mode": mode})

        def one(bi, bj):
            with enable_x64(wide):  # the precision scope is per thread (Dask's workers)
                values = run(bi, bj)
            for name, value in values.items():
                _put(out, name, bi, bj, value, mirror=symmetric)

        rows: dict[tuple[int, int], list] = {}
        for bi, bj in _tiles(n1, n2, plan, symmetric):
            rows.setdefault(bi, []).append(bj)

        def row(bi, bjs):
            for bj in bjs:
                one(bi, bj)

        if dask_workers > 0:  # one task per row of tiles (few tasks: little graph overhead)
            import dask

            dask.compute(*(dask.delayed(row, pure=False, traverse=False)(bi, bjs)
                           for bi, bjs in rows.items()),
                         scheduler="threads", num_workers=workers)
        else:
            for bi, bjs in rows.items():
                row(bi, bjs)
    return plan
