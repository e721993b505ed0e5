"""Fusion of images larger than memory, tile by tile with halos, tiles vmapped in batches.

The image stays in host memory (NumPy, or any array-like such as a memory-mapped TIFF);
only ``batch`` windows of ``(tile + 2 halo)^2`` pixels are on the device at a time, so
memory is bounded by the tile batch, not the image. Each window is fused by the method's
pure function under ``jit(vmap(...))`` (one compilation: every batch has the same shape,
the last one is padded), and only its central ``tile x tile`` part is kept.

Windows are shifted inwards at the image border instead of padded, so border pixels see the
method's own border handling. The halo and the window alignment come from the method's
declared :class:`jfusion.methods.registry.Support` (``halo=None``): window offsets are
multiples of the alignment (``2**levels`` for pyramids and wavelets, the block or patch
stride of block and patch rules) and the last window of each axis ends on the image border
(its side is grown by less than the alignment to make that offset aligned), so decimating
transforms keep the whole image's sampling grid and their border extension at the image's far
border; a periodic method (the SWT) gets windows whose far end carries the opposite border's
context (:func:`periodic_windows`). The tiled result then equals whole-image fusion up to
float32 rounding for every method of bounded support; methods of unbounded support
(image-wide statistics, image-size-dependent depths) are refused unless
``local_statistics=True``.

:func:`memory_advice` and :func:`should_tile` are the large-image checks of :func:`jfusion.fuse`
(a :class:`LargeImageWarning`) and of ``jfusion fuse`` (automatic tiling).
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

__all__ = [
    "fuse_tiled",
    "tile_plan",
    "tile_windows",
    "window_size",
    "periodic_windows",
    "job_batches",
    "LargeImageWarning",
    "AUTO_TILE_PIXELS",
    "working_memory",
    "memory_advice",
    "should_tile",
]

AUTO_TILE_PIXELS = 4096 * 4096
"""Pixel count (H x W) above which ``jfusion fuse`` tiles a method of bounded support by default."""

MEMORY_SHARE = 0.5
"""Share of the available memory that one fusion's estimated working memory may take before
:func:`jfusion.fuse` warns (and ``jfusion fuse`` tiles)."""


class LargeImageWarning(UserWarning):
    """:func:`jfusion.fuse` on an image whose estimated working memory exceeds what is available."""


def window_size(length: int, tile: int, halo: int, *, align: int = 1) -> int:
    """Side of every window along an axis of ``length``: ``tile + 2 halo`` grown by less than ``align``
    so that ``length - size`` is a multiple of ``align`` (the last window then ends on the image
    border with an aligned offset); the whole axis when that does not fit."""
    win = tile + 2 * halo
    if win >= length:
        return length
    return win + (length - win) % align


def tile_windows(length: int, tile: int, halo: int, *, align: int = 1) -> list[tuple[int, int, int]]:
    """``(window_start, keep_start, keep_stop)`` along one axis; all windows have one size
    (:func:`window_size`) and start at multiples of ``align`` (given ``tile`` and ``halo`` multiples
    of ``align``). Windows are shifted inwards at the border, never padded."""
    win = window_size(length, tile, halo, align=align)
    if win == length:
        return [(0, 0, length)]
    out = []
    for y0 in range(0, length, tile):
        y1 = min(y0 + tile, length)
        start = min(max(y0 - halo, 0), length - win)
        out.append((start, y0 - start, y1 - start))
    return out


@functools.lru_cache(maxsize=32)
def _batched(method: str, options: tuple[tuple[str, Any], ...]):
    fn = get_info(method).fn
    return jax.jit(jax.vmap(functools.partial(fn, **dict(options))))


def job_batches(jobs: list, batch: int, *, progress: bool = False, desc: str = "tiles") -> Iterator[tuple[list, list]]:
    """``(group, padded)`` per batch of at most ``batch`` ``jobs``: ``padded`` repeats the group's last job
    up to the common batch size, so every batch has one shape and a ``jit(vmap(...))`` compiles once.

    The jobs are split into ``ceil(len(jobs) / batch)`` groups of as equal a size as possible, so the
    padding (work done and thrown away) is less than one job per group: 9 jobs at ``batch=16`` run as one
    batch of 9, not 16; 20 jobs as two of 10. Optional progress bar."""
    n_groups = max(1, -(-len(jobs) // batch))
    batch = -(-len(jobs) // n_groups) if jobs else batch
    groups: Any = [jobs[i : i + batch] for i in range(0, len(jobs), batch)]
    if progress:
        from tqdm import tqdm

        groups = tqdm(groups, desc=desc)
    for group in groups:
        yield group, group + [group[-1]] * (batch - len(group))


def _symmetric_index(length: int, multiple: int) -> np.ndarray:
    """Indices of an axis of ``length`` extended symmetrically (edge repeated) to a multiple of ``multiple``."""
    padded = -(-length // multiple) * multiple
    i = np.arange(padded)
    return np.where(i < length, i, 2 * length - 1 - i)


def periodic_windows(length: int, tile: int, halo: int, multiple: int) -> tuple[int, list[tuple[np.ndarray, int, int]]]:
    """Windows for a method periodic over the axis extended symmetrically to a multiple of ``multiple``.

    Returns ``(size, [(index, keep_start, keep_stop), ...])``: ``index`` (``size`` entries, a
    multiple of ``multiple``) indexes the image axis. A window at the start of the axis ends with
    the last ``halo`` entries of the extended axis, one at its end begins with the first ``halo``:
    the window's own periodic wrap then reads what the whole image's reads. Kept pixels have
    ``halo`` of true context on both sides (or the image border).
    """
    ext = _symmetric_index(length, multiple)
    n = len(ext)
    win = -(-(tile + 4 * halo) // multiple) * multiple
    if win >= n:
        return n, [(ext, 0, length)]
    out = []
    for y0 in range(0, length, tile):
        y1 = min(y0 + tile, length)
        start = min(max(y0 - 2 * halo, 0), n - win)
        idx = ext[start : start + win].copy()
        if start == 0:
            idx[win - halo :] = ext[n - halo :]
        elif start + win == n:
            idx[:halo] = ext[:halo]
        out.append((idx, y0 - start, y1 - start))
    return win, out


def tile_plan(method: str, options: dict[str, Any], *, halo: int | None = None, local_statistics: bool = False):
    """``(support, halo, align)`` that :func:`fuse_tiled` uses for ``method`` with ``options``.

    ``halo=None`` takes the method's declared support; a given halo is rounded up to a multiple of
    the alignment. Raises :class:`FusionInputError` for a method of unbounded support unless
    ``local_statistics`` (then ``halo`` defaults to 64).
    """
    info = get_info(method)
    support = info.support_for(options)
    if info.output_scale(options) != 1:
        raise FusionInputError(
            f"method {info.name!r} cannot be tiled exactly: {support.reason or 'its output is larger than its sources'}; "
            "call jfusion.fuse on the whole image (local_statistics=True does not apply: tiles would not join)."
        )
    if not support.bounded and not local_statistics:
        raise FusionInputError(
            f"method {info.name!r} cannot be tiled exactly: {support.reason}. Call jfusion.fuse on the whole image, "
            "or pass local_statistics=True (and a halo) to accept per-window results that differ from it."
        )
    align = support.align
    if halo is None:
        halo = support.halo if support.bounded else 64
    if not isinstance(halo, (int, np.integer)) or isinstance(halo, bool) or halo < 0:
        raise FusionInputError(f"halo={halo!r}: pass an integer >= 0 (or None for the method's support).")
    halo = -(-int(halo) // align) * align
    return support, halo, align


def fuse_tiled(
    sources: ArrayLike,
    method: str,
    *,
    tile: int | None = None,
    halo: int | None = None,
    batch: int = 4,
    local_statistics: bool = False,
    progress: bool = False,
    **options: Any,
) -> np.ndarray:
    """Fuse a large scene tile by tile; equal to :func:`jfusion.fuse` for methods of bounded support.

    The halo and the window alignment come from the method's declared
    :class:`jfusion.methods.registry.Support` for ``options``: windows start at multiples of the
    alignment (``2**levels`` for pyramids and wavelets, the block or patch stride for block and
    patch rules) and the last window of each axis ends on the image border, so every window keeps
    the whole image's sampling grid and border handling; kept pixels are at least ``halo`` pixels
    from any window border that is not an image border. The result then equals whole-image fusion
    up to float32 rounding (tested to 1e-5 for every bounded method, README "Large images").

    Args:
      sources: ``(S, H, W)`` or ``(S, H, W, C)`` (or a sequence of images), [0, 1] floats or 8/16-bit;
        NumPy or memory-mapped (only the windows are read).
      method: a registered method name.
      tile: side of the kept part of each window, a multiple of the method's alignment
        (default 512 rounded up to one).
      halo: context on each side of a tile; ``None`` (default) for the method's support. A smaller
        halo gives a result that differs near tile seams (a ``UserWarning`` says so).
      batch: windows fused at once under ``vmap`` (bounds device memory).
      local_statistics: fuse a method of unbounded support (image-wide statistics, periodic
        borders) window by window anyway, accepting results that differ from the whole image's.
      progress: show a progress bar.
      **options: the method's options (hashable).

    Returns:
      The fused image, float32 NumPy array of shape ``(H, W[, C])``.

    Raises:
      FusionInputError: bad sources (as :func:`jfusion.fuse`), bad tile/halo/batch, or a method of
        unbounded support without ``local_statistics=True`` (the message says why it is unbounded).
    """
    import warnings

    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise FusionInputError(f"batch={batch!r}: pass an integer >= 1.")
    info = get_info(method)
    support, halo, align = tile_plan(method, options, halo=halo, local_statistics=local_statistics)
    if tile is None:
        tile = -(-512 // align) * align
    if not isinstance(tile, (int, np.integer)) or isinstance(tile, bool) or tile < 1 or tile % align:
        raise FusionInputError(
            f"tile={tile!r}: pass a positive multiple of {align} (the window alignment of {info.name!r} with these options)."
        )
    if support.bounded and halo < support.halo:
        warnings.warn(
            f"halo={halo} is less than the support of {info.name!r} ({support.halo} px): the tiled result will differ "
            "from whole-image fusion near tile seams; pass halo=None for an exact result.",
            UserWarning,
            stacklevel=2,
        )
    stack = validate_sources(sources, min_sources=info.min_sources, max_sources=info.max_sources)
    check_size(info, stack.shape, options=options)
    h, w = stack.shape[1:3]
    if support.periodic:
        wh, rows = periodic_windows(h, tile, halo, support.periodic)
        ww, cols = periodic_windows(w, tile, halo, support.periodic)
        take = lambda r, c: stack[:, r[0]][:, :, c[0]]  # noqa: E731
        place = lambda r, c: (slice(r[0][r[1]], r[0][r[1]] + r[2] - r[1]), slice(c[0][c[1]], c[0][c[1]] + c[2] - c[1]))  # noqa: E731
    else:
        rows, cols = tile_windows(h, tile, halo, align=align), tile_windows(w, tile, halo, align=align)
        wh, ww = window_size(h, tile, halo, align=align), window_size(w, tile, halo, align=align)
        take = lambda r, c: stack[:, r[0] : r[0] + wh, c[0] : c[0] + ww]  # noqa: E731
        place = lambda r, c: (slice(r[0] + r[1], r[0] + r[2]), slice(c[0] + c[1], c[0] + c[2]))  # noqa: E731
    check_size(info, (0, wh, ww), options=options, what="tiles (tile + 2 halo)")
    jobs = [(r, c) for r in rows for c in cols]
    fn = _batched(info.name, tuple(sorted(options.items())))
    out = np.zeros((h, w) + stack.shape[3:], np.float32)
    for group, padded in job_batches(jobs, batch, progress=progress, desc=f"tiles ({info.name})"):
        fused = np.asarray(fn(np.stack([take(r, c) for r, c in padded])))
        for (r, c), f in zip(group, fused):
            out[place(r, c)] = f[r[1] : r[2], c[1] : c[2]]
    return out


def working_memory(method: str, shape: tuple[int, ...]) -> int:
    """Estimated peak working memory (bytes) of fusing sources of ``shape`` ``(S, H, W[, C])`` whole:
    ``S H W C`` times the method's declared ``working_bytes`` (an estimate, not a measurement)."""
    return int(np.prod(shape, dtype=np.int64)) * get_info(method).working_bytes


def _available_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def memory_advice(method: str, shape: tuple[int, ...], options: dict[str, Any]) -> str | None:
    """A warning text when fusing ``shape`` whole needs more than :data:`MEMORY_SHARE` of the
    available memory (with the suggested :func:`fuse_tiled` call), else ``None``."""
    need, avail = working_memory(method, shape), _available_memory()
    if need <= MEMORY_SHARE * avail:
        return None
    info = get_info(method)
    h, w = shape[1:3]
    text = (
        f"fusing {h}x{w} sources with {info.name!r} needs about {need / 2**30:.1f} GiB of working memory "
        f"({avail / 2**30:.1f} GiB available); "
    )
    support = info.support_for(options)
    opts = "".join(f", {k}={v!r}" for k, v in sorted(options.items()))
    if support.bounded:
        return text + (
            f"jfusion.tiling.fuse_tiled(sources, {info.name!r}{opts}) fuses it tile by tile in bounded memory, "
            "equal to whole-image fusion up to float32 rounding."
        )
    return text + (
        f"it cannot be tiled exactly ({support.reason}); fuse a smaller image, or accept per-window results with "
        f"jfusion.tiling.fuse_tiled(sources, {info.name!r}{opts}, local_statistics=True)."
    )


def should_tile(method: str, shape: tuple[int, ...], options: dict[str, Any]) -> bool:
    """``jfusion fuse``'s automatic choice: tile when the method's support is bounded and the image
    has more than :data:`AUTO_TILE_PIXELS` pixels or does not fit in memory (:func:`memory_advice`)."""
    if not get_info(method).support_for(options).bounded:
        return False
    return shape[1] * shape[2] > AUTO_TILE_PIXELS or memory_advice(method, shape, options) is not None
