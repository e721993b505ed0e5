"""Resampling of ``(H, W)`` / ``(H, W, C)`` images (channels stay last)."""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["resize", "downsample", "upsample_zeros"]

Method = Literal["nearest", "linear", "bilinear", "cubic", "bicubic", "lanczos3"]


def resize(image: ArrayLike, shape: tuple[int, int], *, method: Method = "bicubic", antialias: bool = False) -> jax.Array:
    """Resize the first two axes to ``shape`` (half-pixel centres, as OpenCV ``resize``/MATLAB ``imresize``)."""
    image = jnp.asarray(image)
    method = {"bilinear": "linear", "bicubic": "cubic"}.get(method, method)
    out_shape = tuple(shape) + image.shape[2:]
    return jax.image.resize(image, out_shape, method=method, antialias=antialias)


def downsample(image: ArrayLike, factor: int, *, offset: int = 0) -> jax.Array:
    """Keep every ``factor``-th row and column starting at ``offset`` (decimation, no filtering)."""
    image = jnp.asarray(image)
    return image[offset::factor, offset::factor]


def upsample_zeros(image: ArrayLike, factor: int, *, offset: int = 0) -> jax.Array:
    """Insert zeros: the inverse placement of :func:`downsample` on a ``factor``-times larger grid."""
    image = jnp.asarray(image)
    h, w = image.shape[:2]
    out = jnp.zeros((h * factor, w * factor) + image.shape[2:], image.dtype)
    return out.at[offset::factor, offset::factor].set(image)
