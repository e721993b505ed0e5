"""Patch extraction and overlap-averaging fold-back, the one helper every patch method uses.

Patch positions are static (they depend only on the image size, patch size and stride),
so extraction is a single gather and folding a single scatter-add: jit compiles once
per shape, and per-patch work is a ``vmap`` over the leading patch axis.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["patch_starts", "extract_patches", "fold_patches"]


def patch_starts(length: int, size: int, stride: int, *, cover: bool = True) -> np.ndarray:
    """Start offsets ``0, stride, 2 stride, ...``; with ``cover`` the last patch ends at ``length``."""
    if size > length:
        raise ValueError(f"patch size {size} exceeds image size {length}")
    starts = list(range(0, length - size + 1, stride))
    if cover and starts[-1] != length - size:
        starts.append(length - size)
    return np.asarray(starts, dtype=np.int32)


def _index_grids(h: int, w: int, size: int, stride: int, cover: bool):
    rs = patch_starts(h, size, stride, cover=cover)
    cs = patch_starts(w, size, stride, cover=cover)
    off = np.arange(size)
    rows = (rs[:, None, None, None] + off[None, None, :, None]) * np.ones((1, len(cs), 1, 1), np.int32)
    cols = (cs[None, :, None, None] + off[None, None, None, :]) * np.ones((len(rs), 1, 1, 1), np.int32)
    rows = np.broadcast_to(rows, (len(rs), len(cs), size, size)).reshape(-1, size, size)
    cols = np.broadcast_to(cols, (len(rs), len(cs), size, size)).reshape(-1, size, size)
    return rows, cols


def extract_patches(image: ArrayLike, size: int, *, stride: int = 1, cover: bool = True) -> jax.Array:
    """Square patches of an ``(H, W, ...)`` image as ``(N, size, size, ...)``, row-major order."""
    image = jnp.asarray(image)
    rows, cols = _index_grids(image.shape[0], image.shape[1], size, stride, cover)
    return image[rows, cols]


def fold_patches(
    patches: ArrayLike, image_shape: tuple[int, int], size: int, *, stride: int = 1, cover: bool = True
) -> jax.Array:
    """Inverse of :func:`extract_patches`: add patches back and divide by each pixel's patch count."""
    patches = jnp.asarray(patches)
    h, w = image_shape[:2]
    rows, cols = _index_grids(h, w, size, stride, cover)
    trailing = patches.shape[3:]
    acc = jnp.zeros((h, w) + trailing, patches.dtype).at[rows, cols].add(patches)
    count = np.zeros((h, w), np.float64)
    np.add.at(count, (rows, cols), 1.0)
    count = count.reshape((h, w) + (1,) * len(trailing))
    return acc / jnp.asarray(count, patches.dtype)
