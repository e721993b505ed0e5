"""Colour conversions on channels-last images ``(..., 3)`` in [0, 1].

YCbCr is ITU-R BT.601 full range (the JPEG/JFIF form that PIL and OpenCV implement):
``Y = 0.299 R + 0.587 G + 0.114 B`` and chroma centred on 0.5. The inverse is the exact
matrix inverse, so ``ycbcr_to_rgb(rgb_to_ycbcr(x)) == x`` to float rounding. OpenCV rounds
its chroma factors to three decimals (0.564, 0.713), so it agrees with these numbers to
about 1e-3 (Y agrees exactly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.precision import matmul

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb", "rgb_to_gray", "RGB_TO_GRAY"]

_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
_M = np.array(
    [
        [_KR, _KG, _KB],
        [-0.5 * _KR / (1 - _KB), -0.5 * _KG / (1 - _KB), 0.5],
        [0.5, -0.5 * _KG / (1 - _KR), -0.5 * _KB / (1 - _KR)],
    ]
)
_M_INV = np.linalg.inv(_M)
_OFFSET = np.array([0.0, 0.5, 0.5])

# MATLAB rgb2gray weights (used by the reference multi-focus codes for weight maps).
RGB_TO_GRAY = np.array([0.2989, 0.5870, 0.1140])


def rgb_to_ycbcr(rgb: ArrayLike) -> jax.Array:
    """RGB ``(..., 3)`` in [0, 1] to YCbCr ``(..., 3)`` with Y in [0, 1], Cb/Cr centred on 0.5."""
    rgb = jnp.asarray(rgb)
    return matmul(rgb, jnp.asarray(_M.T, rgb.dtype)) + jnp.asarray(_OFFSET, rgb.dtype)


def ycbcr_to_rgb(ycc: ArrayLike) -> jax.Array:
    """Exact inverse of :func:`rgb_to_ycbcr` (no clipping)."""
    ycc = jnp.asarray(ycc)
    return matmul(ycc - jnp.asarray(_OFFSET, ycc.dtype), jnp.asarray(_M_INV.T, ycc.dtype))


def rgb_to_gray(rgb: ArrayLike) -> jax.Array:
    """Luminance as MATLAB ``rgb2gray`` (0.2989 R + 0.5870 G + 0.1140 B), ``(..., 3) -> (...)``."""
    rgb = jnp.asarray(rgb)
    return matmul(rgb, jnp.asarray(RGB_TO_GRAY, rgb.dtype))
