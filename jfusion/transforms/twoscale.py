"""Two-scale base/detail decomposition by a box mean (GFF's split, Li, Kang, Hu 2013)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.filters import Border, window_sum

__all__ = ["two_scale"]


def two_scale(x: ArrayLike, *, size: int = 31, border: Border = "replicate") -> tuple[jax.Array, jax.Array]:
    """Split ``(..., H, W)`` into ``(base, detail)``: base = ``size x size`` mean, detail = ``x - base``.

    The defaults are GFF's (31x31 mean filter, MATLAB ``imfilter(..., 'replicate')``);
    ``base + detail == x`` exactly.
    """
    x = jnp.asarray(x)
    base = window_sum(x, size, border=border) / float(size * size)
    return base, x - base
