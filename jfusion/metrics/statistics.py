"""Single-image statistics of the fused image: EN, SD, SF, AG, EI (VIFB conventions).

Each function takes ``sources (S, H, W)`` (unused, for a uniform signature) and one fused
channel ``(H, W)`` in ``[0, data_range]``; values are computed on the 0..255 grey scale.
"""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import entropy_from_counts, histogram, quantize_levels, safe_sqrt, to_grey_levels
from jfusion.metrics._registry import register_metric
from jfusion.ops import filter2d

__all__ = ["entropy", "standard_deviation", "spatial_frequency", "average_gradient", "edge_intensity"]

_SOBEL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])


@register_metric("en", direction="higher", convention="vifb", range=(0, 8))
def entropy(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """EN: Shannon entropy (bits) of the 256-bin histogram of ``floor(F)``; range [0, 8].

    Args:
      sources: ``(S, H, W)``, unused.
      fused: ``(H, W)`` in ``[0, data_range]``; grey levels outside 0..255 are clipped.
      data_range: the value that maps to grey level 255.
    """
    del sources
    f = to_grey_levels(fused, data_range)
    return entropy_from_counts(histogram(quantize_levels(f)), base=2.0)


@register_metric("sd", direction="higher", convention="vifb", range=(0, 127.5))
def standard_deviation(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """SD: population standard deviation (divisor MN) of F in grey levels (VIFB "Variance")."""
    del sources
    f = to_grey_levels(fused, data_range)
    return jnp.sqrt(jnp.mean((f - jnp.mean(f)) ** 2))


@register_metric("sf", direction="higher", convention="vifb", colour="side_by_side", range=(0, math.inf))
def spatial_frequency(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """SF: ``sqrt(RF^2 + CF^2)``, squared horizontal/vertical differences summed and divided by MN.

    Under the VIFB convention :func:`jfusion.metrics.evaluate` applies it to the RGB channels laid
    side by side (``[R | G | B]``, as VIFB's code does); ``colour="channels"`` gives the per-channel mean.
    """
    del sources
    f = to_grey_levels(fused, data_range)
    n = f.shape[-1] * f.shape[-2]
    rf = jnp.sum(jnp.diff(f, axis=-1) ** 2) / n
    cf = jnp.sum(jnp.diff(f, axis=-2) ** 2) / n
    return safe_sqrt(rf + cf)


def _matlab_gradient(f: jax.Array) -> tuple[jax.Array, jax.Array]:
    """MATLAB/NumPy ``gradient``: central differences inside, one-sided at the borders."""

    def along(x: jax.Array, axis: int) -> jax.Array:
        n = x.shape[axis]
        take = lambda a, b: jax.lax.slice_in_dim(x, a, b, axis=axis)  # noqa: E731
        first = take(1, 2) - take(0, 1)
        last = take(n - 1, n) - take(n - 2, n - 1)
        mid = (take(2, n) - take(0, n - 2)) / 2.0
        return jnp.concatenate([first, mid, last], axis=axis)

    return along(f, -1), along(f, -2)


@register_metric("ag", direction="higher", convention="vifb", range=(0, math.inf))
def average_gradient(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """AG: ``sum sqrt((gx^2 + gy^2) / 2) / ((M - 1)(N - 1))`` with MATLAB ``gradient`` (VIFB)."""
    del sources
    f = to_grey_levels(fused, data_range)
    gx, gy = _matlab_gradient(f)
    m, n = f.shape[-2:]
    return jnp.sum(safe_sqrt((gx**2 + gy**2) / 2.0)) / ((m - 1) * (n - 1))


@register_metric("ei", direction="higher", convention="vifb", range=(0, math.inf))
def edge_intensity(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """EI: mean Sobel magnitude, ``imfilter(F, fspecial('sobel'), 'replicate')`` and its transpose."""
    del sources
    f = to_grey_levels(fused, data_range)
    gx = filter2d(f, _SOBEL, border="replicate")
    gy = filter2d(f, _SOBEL.T, border="replicate")
    return jnp.mean(safe_sqrt(gx**2 + gy**2))
