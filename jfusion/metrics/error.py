"""Error metrics against the sources: RMSE and PSNR (VIFB's and the standard definitions)."""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.metrics._common import to_grey_levels
from jfusion.metrics._registry import register_metric
from jfusion.options import opt

__all__ = ["rmse", "psnr"]


def _vifb_error(x: jax.Array, f: jax.Array) -> jax.Array:
    """VIFB's ``mse`` helper: ``||X - F||_2 / (M N)`` per source, shape (S,)."""
    n = f.shape[-1] * f.shape[-2]
    return jnp.sqrt(jnp.sum((x - f[None]) ** 2, axis=(-2, -1))) / n


def _mse(x: jax.Array, f: jax.Array) -> jax.Array:
    return jnp.mean((x - f[None]) ** 2, axis=(-2, -1))


@register_metric("rmse", direction="lower", convention="vifb", range=(0, 255), ideal=0.0, options={"convention": opt(choices=('vifb', 'standard'))})
def rmse(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, convention: str = "vifb") -> jax.Array:
    """RMSE between F and the sources, averaged over sources, in grey levels.

    Args:
      convention: ``"vifb"``: mean over sources of ``||X - F||_2 / (M N)`` (VIFB's helper; values
        ~0.05-0.1); ``"standard"``: ``sqrt(mean over sources of MSE(X, F))``.
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    if convention == "vifb":
        return jnp.mean(_vifb_error(x, f))
    return jnp.sqrt(jnp.mean(_mse(x, f)))


@register_metric("psnr", direction="higher", convention="vifb", range=(0, math.inf), ideal=math.inf, options={"convention": opt(choices=('vifb', 'standard'))})
def psnr(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, convention: str = "vifb") -> jax.Array:
    """PSNR (dB) of F against the sources, peak 255.

    Args:
      convention: ``"vifb"``: ``20 log10(255 / sqrt(mean_X ||X - F||_2 / (M N)))`` (VIFB, ~55-65 dB);
        ``"standard"``: ``10 log10(255^2 / mean over sources of MSE(X, F))``.
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    if convention == "vifb":
        return 20.0 * jnp.log10(255.0 / jnp.sqrt(jnp.mean(_vifb_error(x, f))))
    return 10.0 * jnp.log10(255.0**2 / jnp.mean(_mse(x, f)))
