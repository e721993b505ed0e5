"""Fusion of images larger than memory, tile by tile with halos, tiles vmapped in batches.

The image stays in host memory (NumPy, or any array-like such as a memory-mapped TIFF);
only ``batch`` windows of ``(tile + 2 halo)^2`` pixels are on the device at a time, so
memory is bounded by the tile batch, not the image. Each window is fused by the method's
pure function under ``jit(vmap(...))`` (one compilation: every batch has the same shape,
the last one is padded), and only its central ``tile x tile`` part is kept.

Windows are shifted inwards at the image border instead of padded, so border pixels see
the method's own border handling, and window offsets are multiples of ``align`` so that
decimating transforms (pyramids, DWT) keep the whole-image sampling grid. For a method
whose output at a pixel depends only on inputs within ``halo`` pixels (its support), the
tiled result equals the whole-image result up to float rounding. Images whose sides are
not multiples of ``align`` are padded (symmetric) up to the next multiple and cropped back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError, validate_sources
from jfusion.methods.registry import check_size, get_info

__all__ = ["fuse_tiled", "tile_windows", "job_batches"]


def tile_windows(length: int, tile: int, halo: int) -> list[tuple[int, int, int]]:
    """``(window_start, keep_start, keep_stop)`` along one axis; all windows have one size."""
    win = min(tile + 2 * halo, length)
    out = []
    for y0 in range(0, length, tile):
        y1 = min(y0 + tile, length)
        start = int(np.clip(y0 - halo, 0, length - win))
        out.append((start, y0 - start, y1 - start))
    return out


@functools.lru_cache(maxsize=32)
def _batched(method: str, options: tuple[tuple[str, Any], ...]):
    fn = get_info(method).fn
    return jax.jit(jax.vmap(functools.partial(fn, **dict(options))))


def job_batches(jobs: list, batch: int, *, progress: bool = False, desc: str = "tiles") -> Iterator[tuple[list, list]]:
    """``(group, padded)`` per batch of ``jobs``: ``padded`` repeats the last job up to ``batch`` entries,
    so every batch has one shape and a ``jit(vmap(...))`` compiles once. Optional progress bar."""
    groups: Any = [jobs[i : i + batch] for i in range(0, len(jobs), batch)]
    if progress:
        from tqdm import tqdm

        groups = tqdm(groups, desc=desc)
    for group in groups:
        yield group, group + [group[-1]] * (batch - len(group))


def fuse_tiled(
    sources: ArrayLike,
    method: str,
    *,
    tile: int = 512,
    halo: int = 64,
    batch: int = 4,
    align: int = 32,
    progress: bool = False,
    **options: Any,
) -> np.ndarray:
    """Fuse a large scene tile by tile.

    Args:
      sources: ``(S, H, W)`` or ``(S, H, W, C)`` (or a sequence of images), [0, 1] floats or 8/16-bit.
      method: a registered method name.
      tile: side of the kept part of each window (multiple of ``align``).
      halo: context added on each side of a tile (multiple of ``align``); choose at least the
        method's support radius for a result equal to whole-image fusion.
      batch: windows fused at once under ``vmap`` (bounds device memory).
      align: offset granularity of windows; ``2**levels`` or more for pyramid/wavelet methods.
      progress: show a progress bar.
      **options: the method's options (hashable).

    Returns:
      The fused image, float32 NumPy array of shape ``(H, W[, C])``.
    """
    if tile <= 0 or halo < 0 or batch <= 0 or align <= 0:
        raise FusionInputError("tile, batch and align must be positive and halo non-negative.")
    if tile % align or halo % align:
        raise FusionInputError(f"tile ({tile}) and halo ({halo}) must be multiples of align ({align}).")
    info = get_info(method)
    stack = validate_sources(sources, min_sources=info.min_sources, max_sources=info.max_sources)
    check_size(info, stack.shape, options=options)
    h, w = stack.shape[1:3]
    hp, wp = -(-h // align) * align, -(-w // align) * align
    if (hp, wp) != (h, w):
        pad = [(0, 0), (0, hp - h), (0, wp - w)] + [(0, 0)] * (stack.ndim - 3)
        stack = np.pad(stack, pad, mode="symmetric")
    rows, cols = tile_windows(hp, tile, halo), tile_windows(wp, tile, halo)
    wh, ww = min(tile + 2 * halo, hp), min(tile + 2 * halo, wp)
    check_size(info, (0, wh, ww), options=options, what="tiles (tile + 2 halo)")
    jobs = [(r, c) for r in rows for c in cols]
    fn = _batched(method, tuple(sorted(options.items())))
    out = np.zeros((hp, wp) + stack.shape[3:], np.float32)
    for group, padded in job_batches(jobs, batch, progress=progress, desc=f"tiles ({method})"):
        fused = np.asarray(fn(np.stack([stack[:, r[0] : r[0] + wh, c[0] : c[0] + ww] for r, c in padded])))
        for (r, c), f in zip(group, fused):
            out[r[0] + r[1] : r[0] + r[2], c[0] + c[1] : c[0] + c[2]] = f[r[1] : r[2], c[1] : c[2]]
    return out[:h, :w]
