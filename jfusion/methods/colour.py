"""The one colour helper: single-channel fusion rules applied to grey, RGB and multiband sources.

* ``(S, H, W)``: the core fuses directly.
* ``(S, H, W, 3)``: sources go to YCbCr; Y is fused by the core; Cb and Cr by the standard
  chroma rule, each source weighted by ``|chroma - 0.5|`` (a grey source, chroma 0.5, gets
  no weight, so grey + colour pairs keep the colour source's chroma); back to RGB.
* ``(S, H, W, C)``, ``C != 3``: the core runs on each band, vmapped over bands.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.colour import rgb_to_ycbcr, ycbcr_to_rgb

__all__ = ["fuse_channels", "fuse_chroma"]


def fuse_chroma(chroma: ArrayLike, eps: float = 1e-12) -> jax.Array:
    """Fuse chroma planes ``(S, H, W)`` centred on 0.5 with weights ``|c - 0.5|``."""
    chroma = jnp.asarray(chroma)
    w = jnp.abs(chroma - 0.5)
    den = jnp.sum(w, axis=0)
    num = jnp.sum(w * chroma, axis=0)
    return jnp.where(den > eps, num / jnp.maximum(den, eps), jnp.mean(chroma, axis=0))


def fuse_channels(core: Callable[[jax.Array], jax.Array], sources: ArrayLike) -> jax.Array:
    """Apply a single-channel fusion ``core((S, H, W)) -> (H, W)`` to grey, RGB or multiband sources."""
    sources = jnp.asarray(sources)
    if sources.ndim == 3:
        return core(sources)
    if sources.ndim != 4:
        raise ValueError(f"sources must be (S, H, W) or (S, H, W, C), got {sources.shape}")
    c = sources.shape[-1]
    if c == 1:
        return core(sources[..., 0])[..., None]
    if c == 3:
        ycc = rgb_to_ycbcr(sources)
        y = core(ycc[..., 0])
        cb = fuse_chroma(ycc[..., 1])
        cr = fuse_chroma(ycc[..., 2])
        return ycbcr_to_rgb(jnp.stack([y, cb, cr], axis=-1))
    return jax.vmap(core, in_axes=-1, out_axes=-1)(sources)
