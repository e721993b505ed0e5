"""Activity measures: how much a coefficient or pixel "stands out" (larger = keep it).

All work on the last two axes ``(..., H, W)`` and keep the input's shape unless stated;
leading axes (sources, orientations) ride along. Windows are anchored like
:func:`jfusion.ops.filter2d` (odd sizes are centred).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.filters import Border, pad2d, window_sum

__all__ = [
    "abs_activity",
    "window_energy",
    "window_max_abs",
    "local_variance",
    "spatial_frequency",
    "block_spatial_frequency",
]


def abs_activity(c: ArrayLike) -> jax.Array:
    """``|c|``: the pixel-wise max-absolute rule's activity."""
    return jnp.abs(jnp.asarray(c))


def window_energy(c: ArrayLike, *, size: int = 3, border: Border = "symmetric") -> jax.Array:
    """``sum_window c^2`` over a ``size x size`` window (Burt-Kolczynski salience)."""
    c = jnp.asarray(c)
    return window_sum(c * c, size, border=border)


def window_max_abs(c: ArrayLike, *, size: int = 3, border: Border = "symmetric") -> jax.Array:
    """``max_window |c|`` over a ``size x size`` window (Li, Manjunath, Mitra 1995 DWT activity)."""
    a = jnp.abs(jnp.asarray(c))
    lo, hi = (size - 1) // 2, size // 2
    ap = pad2d(a, lo, hi, lo, hi, border=border)
    dims = (1,) * (a.ndim - 2) + (size, size)
    return jax.lax.reduce_window(ap, -jnp.inf, jax.lax.max, dims, (1,) * a.ndim, "VALID")


def local_variance(x: ArrayLike, *, size: int = 3, border: Border = "symmetric") -> jax.Array:
    """Variance over a ``size x size`` window, ``mean(x^2) - mean(x)^2`` (clamped at 0)."""
    x = jnp.asarray(x)
    n = float(size * size)
    m = window_sum(x, size, border=border) / n
    m2 = window_sum(x * x, size, border=border) / n
    return jnp.maximum(m2 - m * m, 0.0)


def _squared_differences(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    # (F(m,n) - F(m,n-1))^2 and (F(m,n) - F(m-1,n))^2, zero in the first column / row
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx2 = jnp.pad(dx * dx, [(0, 0)] * (x.ndim - 1) + [(1, 0)])
    dy2 = jnp.pad(dy * dy, [(0, 0)] * (x.ndim - 2) + [(1, 0), (0, 0)])
    return dx2, dy2


def spatial_frequency(x: ArrayLike, *, size: int = 3, border: Border = "symmetric") -> jax.Array:
    """Pixel-wise spatial frequency ``sqrt(RF^2 + CF^2)`` over a ``size x size`` window.

    ``RF^2`` / ``CF^2`` are the window means of squared horizontal / vertical first
    differences (Eskicioglu & Fisher; Li, Kwok, Wang 2001).
    """
    x = jnp.asarray(x)
    dx2, dy2 = _squared_differences(x)
    n = float(size * size)
    return jnp.sqrt((window_sum(dx2, size, border=border) + window_sum(dy2, size, border=border)) / n)


def block_spatial_frequency(x: ArrayLike, block: int) -> jax.Array:
    """Spatial frequency of each non-overlapping ``block x block`` tile (Li, Kwok, Wang 2001).

    Args:
      x: ``(..., H, W)`` with ``H`` and ``W`` multiples of ``block``.
      block: tile size.

    Returns:
      ``(..., H // block, W // block)``; differences are taken inside each tile only and
      normalised by ``block^2`` as in the paper.
    """
    x = jnp.asarray(x)
    h, w = x.shape[-2:]
    if h % block or w % block:
        raise ValueError(f"image {(h, w)} is not a multiple of the block size {block}")
    t = x.reshape(x.shape[:-2] + (h // block, block, w // block, block))
    dx = t[..., :, 1:] - t[..., :, :-1]
    dy = t[..., 1:, :, :] - t[..., :-1, :, :]
    rf2 = jnp.sum(dx * dx, axis=(-3, -1))
    cf2 = jnp.sum(dy * dy, axis=(-3, -1))
    return jnp.sqrt((rf2 + cf2) / float(block * block))
