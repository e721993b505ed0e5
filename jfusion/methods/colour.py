"""The one colour helper: single-channel fusion rules applied to grey, RGB and multiband sources.

* ``(S, H, W)``: the core fuses directly.
* ``(S, H, W, 3)``: sources go to YCbCr; Y is fused by the core; Cb and Cr by the standard
  chroma rule, each source weighted by ``|chroma - 0.5|`` (a grey source, chroma 0.5, gets
  no weight, so grey + colour pairs keep the colour source's chroma); back to RGB.
* ``(S, H, W, C)``, ``C != 3``: the core runs on each band, vmapped over bands.

A core whose output is larger than its input (super-resolution fusion, ``scale_option`` in the
registry) gets its chroma planes bicubic-upsampled to its output size before the chroma rule.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.colour import rgb_to_ycbcr, ycbcr_to_rgb
from jfusion.ops.resample import resize

__all__ = ["fuse_channels", "fuse_chroma"]


def _sum_sources(x: jax.Array) -> jax.Array:
    # S is small and static: adding the planes is much faster on XLA:CPU than a reduce
    # over the leading (major) axis, and identical in value.
    out = x[0]
    for i in range(1, x.shape[0]):
        out = out + x[i]
    return out


def fuse_chroma(chroma: ArrayLike, *, eps: float = 1e-12) -> jax.Array:
    """Fuse chroma planes ``(S, H, W)`` centred on 0.5 with weights ``|c - 0.5|``."""
    chroma = jnp.asarray(chroma)
    w = jnp.abs(chroma - 0.5)
    den = _sum_sources(w)
    num = _sum_sources(w * chroma)
    mean = _sum_sources(chroma) / chroma.shape[0]
    return jnp.where(den > eps, num / jnp.maximum(den, eps), mean)


def fuse_channels(core: Callable[[jax.Array], jax.Array], sources: ArrayLike, *, clip: bool = False) -> jax.Array:
    """Apply a single-channel fusion ``core((S, H, W)) -> (H, W)`` to grey, RGB or multiband sources.

    ``clip`` clips an RGB result to [0, 1]: fused luma and fused chroma can each be in range while
    their combination is not (a saturated chroma on a bright luma).
    """
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
        chroma = ycc[..., 1:]
        if y.shape != chroma.shape[1:3]:  # a super-resolution core: chroma bicubic-upsampled to its output
            chroma = resize(jnp.moveaxis(chroma, 0, 2), y.shape, method="bicubic")  # (H, W, S, 2)
            chroma = jnp.moveaxis(chroma, 2, 0)
        cb = fuse_chroma(chroma[..., 0])
        cr = fuse_chroma(chroma[..., 1])
        rgb = ycbcr_to_rgb(jnp.stack([y, cb, cr], axis=-1))
        return jnp.clip(rgb, 0.0, 1.0) if clip else rgb
    return jax.vmap(core, in_axes=-1, out_axes=-1)(sources)
