"""Correlation-based fusion metrics: SCD (sum of the correlations of differences).

SCD (Aslantas & Bendes, AEU 69(12) 2015) is the metric infrared/visible fusion papers report beside
EN, SD, SF, MI, VIF and Q^AB/F. With ``D_1 = F - B`` (what the fused image gained over source B)
and ``D_2 = F - A``, ``SCD = r(D_1, A) + r(D_2, B)`` where ``r`` is Pearson's correlation over the
whole image (MATLAB's ``corr2``, as in the authors' and Tang's evaluation scripts). Range
``[-2, 2]``, higher is better; scale-free, so the grey scale does not matter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.metrics._common import to_grey_levels
from jfusion.metrics._registry import register_metric

__all__ = ["scd", "corr2"]


def corr2(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """Pearson correlation of two ``(H, W)`` images over all pixels (MATLAB's ``corr2``); 0 when either is flat."""
    dtype = jnp.promote_types(jnp.result_type(x, y), jnp.float32)
    x = jnp.asarray(x, dtype)
    y = jnp.asarray(y, dtype)
    xc = x - jnp.mean(x)
    yc = y - jnp.mean(y)
    num = jnp.sum(xc * yc)
    den2 = jnp.sum(xc * xc) * jnp.sum(yc * yc)
    # A flat image has no correlation with anything: MATLAB gives NaN, the fusion scripts' tables
    # never contain one (their sources are never flat); 0 keeps the sum finite and bounded.
    return jnp.where(den2 > 0, num / jnp.sqrt(jnp.where(den2 > 0, den2, 1.0)), 0.0)


@register_metric("scd", direction="higher", convention="aslantas2015", n_sources=2, range=(-2.0, 2.0), symmetric=True)
def scd(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """SCD = corr2(F - B, A) + corr2(F - A, B) for sources ``(2, H, W)`` and fused ``(H, W)``; in [-2, 2].

    Args:
      sources: the two sources ``(2, H, W)`` in ``[0, data_range]``.
      fused: ``(H, W)`` in the same range.
      data_range: the value of white (the metric is scale-free; kept for the common signature).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    a, b = x[0], x[1]
    return corr2(f - b, a) + corr2(f - a, b)
