"""Pan-sharpening of strips larger than memory: MS/PAN windows with halos, vmapped in batches.

The scene stays in host memory; ``batch`` windows of ``(tile + 2 halo)`` MS pixels (and ``r``
times that in PAN pixels) are on the device at a time. Windows share one shape, so the method
compiles once (``jit(vmap(...))``, the last batch padded), and they are shifted inwards at the
scene border (:func:`jfusion.tiling.tile_windows`) so border pixels see the method's own
border handling. Window offsets are whole MS pixels, i.e. multiples of ``ratio`` PAN pixels,
so the interpolators keep the whole-scene sampling phase.

Guarantee: for methods registered ``local=True`` (output at a pixel depends on a bounded
neighbourhood: ``exp``, ``gihs``, ``pnn``, ``pnn-residual``, ``drpnn``) and a halo at least their
support, the result equals :func:`jfusion.pansharpen` on the whole scene up to float32 rounding
(tested to 1e-5 of the data range). With the 23-tap interpolator that needs ``halo >= 16`` MS
pixels (the default: 8 of wrapped context plus 8 of the interpolator's reach; it also covers the
shipped networks' receptive fields at ratio 4); with bicubic interpolation the reach suffices. Methods with image-wide statistics (moment
matching, regressions, PCA: the CS and MRA families, ``srcnn-gs``, ``sae``) would use per-window
statistics; they are refused unless ``local_statistics=True`` accepts that.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError

__all__ = ["pansharpen_tiled"]


_WRAP = 8  # MS pixels of wrapped context: covers the 23-tap interpolator's reach at every ratio stage


def _window_index(window: tuple[int, int, int], size: int, length: int, wrap: int) -> np.ndarray:
    """MS indices of one window along an axis.

    When the kept part lies within ``wrap`` pixels of a scene border, the window's far ``wrap``
    entries are the opposite border's, which the interpolator's periodic wrap then reads.
    """
    start, keep0, keep1 = window
    idx = np.arange(start, start + size)
    if wrap and size < length:
        if start == 0 and keep0 < wrap:
            idx[size - wrap :] = np.arange(length - wrap, length)
        elif start + size == length and size - keep1 < wrap:
            idx[:wrap] = np.arange(wrap)
    return idx


@functools.lru_cache(maxsize=32)
def _batched(method: str, ratio: int, sensor: str | None, options: tuple[tuple[str, Any], ...]):
    from jfusion.pansharpening.registry import get_info

    fn = functools.partial(get_info(method).fn, ratio=ratio, sensor=sensor, **dict(options))
    return jax.jit(jax.vmap(fn))


def pansharpen_tiled(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    method: str = "gsa",
    sensor: str | None = None,
    bit_depth: int | None = None,
    tile: int = 256,
    halo: int = 16,
    batch: int = 4,
    local_statistics: bool = False,
    progress: bool = False,
    **options: Any,
) -> np.ndarray:
    """Pan-sharpen a large scene window by window.

    Args:
      ms: ``(h, w, B)`` multispectral image in the sensor's scale (NumPy or memory-mapped).
      pan: ``(r h, r w)`` panchromatic image.
      method: a registered pan-sharpening method (not the MS/HS ones).
      sensor, bit_depth, **options: as in :func:`jfusion.pansharpen`.
      tile: side of the kept part of each window, in MS pixels.
      halo: context on each side, in MS pixels (16 covers the 23-tap interpolator and the
        shipped networks' receptive fields at ratio 4).
      batch: windows pan-sharpened at once under ``vmap`` (bounds device memory).
      local_statistics: accept per-window statistics for methods that are not ``local``.
      progress: show a progress bar.

    Returns:
      ``(r h, r w, B)`` float32 NumPy array in the sensor's scale.

    Raises:
      FusionInputError: bad inputs (as :func:`jfusion.pansharpen`), bad tile/halo/batch, an
        MS/HS method, or a non-local method without ``local_statistics=True``.
    """
    from jfusion.pansharpening import prepare
    from jfusion.tiling import job_batches, tile_windows

    for name, value, low in (("tile", tile, 1), ("halo", halo, 0), ("batch", batch, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise FusionInputError(f"{name}={value!r}: pass an integer >= {low}.")
    info, ms_f, pan_f, r, opts = prepare(ms, pan, method=method, sensor=sensor, bit_depth=bit_depth, options=options)
    if info.family == "mshs":
        raise FusionInputError(f"method {method!r}: MS/HS fusion is not tiled; call jfusion.pansharpen on the cube.")
    if not info.local and not local_statistics:
        raise FusionInputError(
            f"method {method!r} uses image-wide statistics, so windows would differ from the whole scene; "
            "pass local_statistics=True to accept per-window statistics, or use a local method "
            "(exp, gihs, pnn, pnn-residual, drpnn)."
        )
    h, w, bands = ms_f.shape
    rows, cols = tile_windows(h, tile, halo), tile_windows(w, tile, halo)
    wh, ww = min(tile + 2 * halo, h), min(tile + 2 * halo, w)
    jobs = [(a, b) for a in rows for b in cols]
    fn = _batched(method, r, sensor, tuple(sorted(opts.items())))
    # The 23-tap interpolator wraps around the scene (periodic border, as the toolbox does): a
    # window at the scene border carries the opposite border's last WRAP rows/columns at its far
    # (halo) end, where its own periodic wrap reads them.
    wrap = min(_WRAP, halo) if opts.get("interp", "23tap") == "23tap" else 0
    row_idx = {a: _window_index(a, wh, h, wrap) for a in rows}
    col_idx = {b: _window_index(b, ww, w, wrap) for b in cols}
    out = np.zeros((h * r, w * r, bands), np.float32)
    for group, sel in job_batches(jobs, batch, progress=progress, desc=f"windows ({method})"):
        ms_w = np.stack([ms_f[np.ix_(row_idx[a], col_idx[b])] for a, b in sel])
        pan_w = np.stack([pan_f[a[0] * r : (a[0] + wh) * r, b[0] * r : (b[0] + ww) * r] for a, b in sel])
        fused = np.asarray(fn(ms_w, pan_w))
        for (a, b), f in zip(group, fused):
            out[(a[0] + a[1]) * r : (a[0] + a[2]) * r, (b[0] + b[1]) * r : (b[0] + b[2]) * r] = (
                f[a[1] * r : a[2] * r, b[1] * r : b[2] * r]
            )
    return out
