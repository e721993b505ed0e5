"""Spatial-domain fusion: guided-filter fusion (GFF), spatial-frequency block fusion, Mertens
exposure fusion (methods_spec §8.3, §8.4, §8.7).

``gff`` and ``mertens`` handle colour natively (``colour="native"``): their weights are
computed once per source from the grey (or colour) image and applied to every channel;
they accept ``(S, H, W)`` and ``(S, H, W, C)``. ``sf-block`` is a one-channel rule routed
through the shared YCbCr helper. All are N-way (``S >= 2``).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jfusion.methods.registry import Support, register
from jfusion.options import opt
from jfusion.ops.colour import RGB_TO_GRAY, rgb_to_gray
from jfusion.ops.filters import gaussian_filter, guided_filter, laplacian, pad2d
from jfusion.rules.activity import block_spatial_frequency
from jfusion.rules.combine import apply_weights, max_sources, max_weights, min_sources, sum_sources
from jfusion.rules.consistency import majority_filter
from jfusion.transforms.pyramids import (
    collapse_laplacian,
    default_levels,
    gaussian_pyramid,
    laplacian_pyramid,
)
from jfusion.transforms.twoscale import two_scale

__all__ = ["gff_fusion", "sf_block_fusion", "mertens_fusion", "mertens_weights"]


def _gff_support(o) -> Support:
    # saliency: 3x3 Laplacian + 11x11 Gaussian (6 px); weights: guided filter = two box means of
    # radius r (2 r); base layer: a base_size mean
    return Support(max(6 + 2 * max(int(o["r1"]), int(o["r2"])), int(o["base_size"]) // 2) + 2)


def _sf_block_support(o) -> Support:
    # a block's decision reads its own spatial frequency and, through the 3x3 majority filter,
    # its neighbours'; offsets keep the block grid
    b = int(o["block"])
    return Support(2 * b, b)


def _mertens_support(o) -> Support:
    if o["levels"] is None:
        return Support.unbounded(
            "its default depth floor(log2(min(H, W))) grows with the image, so the support does; pass levels=N"
        )
    from jfusion.methods.multiscale import _pyramid_support

    pyr = _pyramid_support(o["levels"])
    return Support(pyr.halo + 2 * pyr.align, pyr.align)  # + the weights' 3x3 Laplacian


def _finish(fused: jax.Array, clip: bool) -> jax.Array:
    return jnp.clip(fused, 0.0, 1.0) if clip else fused


def _grey(sources: jax.Array) -> jax.Array:
    """``(S, H, W)`` luminance of grey or colour sources (MATLAB ``rgb2gray`` weights for RGB)."""
    if sources.ndim == 3:
        return sources
    if sources.shape[-1] == 3:
        return rgb_to_gray(sources)
    return jnp.mean(sources, axis=-1)


def _channels_first(x: jax.Array) -> jax.Array:
    return x if x.ndim == 3 else jnp.moveaxis(x, -1, 1)  # (S, C, H, W)


def _channels_last(x: jax.Array, like_ndim: int) -> jax.Array:
    # x: (C, H, W) or (H, W) after reducing the sources axis
    return x if like_ndim == 3 else jnp.moveaxis(x, 0, -1)


def _per_channel(weights: jax.Array, ndim: int) -> jax.Array:
    return weights if ndim == 3 else weights[:, None]


@register(
    "gff",
    tasks=("multi-focus", "multi-exposure", "medical", "infrared-visible", "general"),
    reference="S. Li, X. Kang, J. Hu, 'Image fusion with guided filtering', IEEE Trans. Image Process. 22(7) 2013",
    colour="native",
    options={
        "r1": opt(low=1, high=512), "r2": opt(low=1, high=512), "eps1": opt(low=1e-12), "eps2": opt(low=1e-12),
        "base_size": opt(low=1, high=1023),
    },
    support=_gff_support,
    working_bytes=320,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def gff_fusion(
    sources: jax.Array,
    *,
    r1: int = 45,
    eps1: float = 0.3,
    r2: int = 7,
    eps2: float = 1e-6,
    base_size: int = 31,
    quantise: bool = True,
    clip: bool = True,
) -> jax.Array:
    """Guided-filter fusion (GFF).

    Two-scale split by a ``base_size`` mean (replicate border); saliency = Gaussian
    (sigma 5, 11x11) of ``|Laplacian|`` of the grey source; one-hot max-saliency maps refined
    by guided filters with the grey source as guide, ``(r1, eps1)`` for the base and
    ``(r2, eps2)`` for the detail layer; weights clipped to [0, 1] (rounded to 1/255 steps
    when ``quantise``, as the reference's 8-bit conversion does) and normalised over sources.

    Args:
      sources: ``(S, H, W)`` or ``(S, H, W, C)`` in [0, 1].
      r1, eps1: guided-filter radius and regularisation for the base-layer weights (paper: 45, 0.3).
      r2, eps2: the same for the detail-layer weights (paper: 7, 1e-6).
      base_size: side of the mean filter of the two-scale split (paper: 31).
      quantise: round the refined weights to 1/255 steps, as the reference's 8-bit conversion.

    Returns:
      ``(H, W)`` or ``(H, W, C)``.
    """
    nd = sources.ndim
    grey = _grey(sources)
    sal = gaussian_filter(jnp.abs(laplacian(grey, border="replicate")), 5.0, size=11, border="replicate")
    p = max_weights(sal)

    def refine(radius: int, eps: float) -> jax.Array:
        w = jnp.clip(guided_filter(grey, p, radius, eps), 0.0, 1.0)
        if quantise:
            w = jnp.round(w * 255.0) / 255.0
        w = w + 1e-12
        return w / sum_sources(w, keepdims=True)

    wb = _per_channel(refine(r1, eps1), nd)
    wd = _per_channel(refine(r2, eps2), nd)
    x = _channels_first(sources)
    base, detail = two_scale(x, size=base_size, border="replicate")
    fused = sum_sources(wb * base + wd * detail)
    return _finish(_channels_last(fused, nd), clip)


@register(
    "sf-block",
    tasks=("multi-focus", "general"),
    reference="S. Li, J. T. Kwok, Y. Wang, 'Combination of images with diverse focuses using the spatial frequency', "
    "Inf. Fusion 2(3) 2001",
    options={"block": opt(low=1, high=1024), "threshold": opt(low=0.0)},
    support=_sf_block_support,
    working_bytes=48,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def sf_block_fusion(
    sources: jax.Array, *, block: int = 8, threshold: float = 0.0, consistency: bool = True
) -> jax.Array:
    """Spatial-frequency block fusion (Li, Kwok, Wang 2001).

    The image is cut into ``block x block`` tiles (extended symmetrically to a multiple of
    the block and cropped back); each tile is taken from the source with the largest
    spatial frequency when the spread ``max SF - min SF`` exceeds ``threshold``, else the
    sources are averaged; a 3x3 majority filter on the tile decisions is the consistency
    step. N-way: the rule compares all sources at once.

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      block: tile size (methods_spec: 8, 32 also common).
      threshold: SF spread below which a tile is averaged.
      consistency: apply the majority filter on the tile decision map.
    """
    s, h, w = sources.shape
    ph, pw = (-h) % block, (-w) % block
    x = pad2d(sources, 0, ph, 0, pw, border="symmetric") if (ph or pw) else sources
    sf = block_spatial_frequency(x, block)  # (S, nh, nw)
    wts = max_weights(sf)
    if consistency:
        wts = majority_filter(wts, size=3, scores=sf)
    spread = max_sources(sf) - min_sources(sf)
    wts = jnp.where(spread > threshold, wts, 1.0 / s)
    wts = jnp.repeat(jnp.repeat(wts, block, axis=-2), block, axis=-1)
    return apply_weights(x, wts)[:h, :w]


def _power(x: jax.Array, p: float) -> jax.Array:
    # exponents are static: skip the transcendental pow for the common 1 and 0
    if p == 1:
        return x
    if p == 0:
        return jnp.ones_like(x)
    return x**p


def mertens_weights(
    sources: jax.Array,
    *,
    contrast_weight: float = 1.0,
    saturation_weight: float = 1.0,
    exposure_weight: float = 1.0,
    sigma: float = 0.2,
    mode: Literal["mertens", "opencv"] = "mertens",
) -> jax.Array:
    """Mertens' normalised per-pixel weights ``(S, H, W)`` (contrast x saturation x well-exposedness).

    Contrast is ``|Laplacian|`` of the grey image; saturation the standard deviation over
    the colour channels (omitted for one-channel sources, where it is zero everywhere);
    well-exposedness ``prod_c exp(-(v - 0.5)^2 / (2 sigma^2))``. ``1e-12`` is added before
    normalising over the sources.

    ``mode="mertens"``: MATLAB conventions (replicate border, ``rgb2gray`` weights 0.2989/
    0.5870/0.1140, standard deviation). ``mode="opencv"``: ``cv2.createMergeMertens``'s
    (reflect-101 border, grey 0.299/0.587/0.114, saturation ``sqrt(sum (v - mean)^2)`` =
    ``sqrt(C)`` x std). The conventions differ only by scale factors that the normalisation
    cancels, except where every source's weight is near the ``1e-12`` floor.
    """
    if sources.ndim == 4:
        planes = [sources[..., c] for c in range(sources.shape[-1])]  # channel planes: fuse well on CPU
    else:
        planes = [sources]
    if len(planes) == 3:
        coef = (0.299, 0.587, 0.114) if mode == "opencv" else tuple(float(v) for v in RGB_TO_GRAY)
        grey = coef[0] * planes[0] + coef[1] * planes[1] + coef[2] * planes[2]
    else:
        grey = sum(planes) / len(planes)
    border = "replicate" if mode == "mertens" else "reflect"
    w = _power(jnp.abs(laplacian(grey, border=border)), contrast_weight)
    if len(planes) > 1:
        mean = sum(planes) / len(planes)
        ss = sum((p - mean) ** 2 for p in planes)
        sat = jnp.sqrt(ss) if mode == "opencv" else jnp.sqrt(ss / len(planes))
        w = w * _power(sat, saturation_weight)
    wexp = jnp.exp(sum((p - 0.5) ** 2 for p in planes) * (-1.0 / (2.0 * sigma**2)))
    w = w * _power(wexp, exposure_weight) + 1e-12
    return w / sum_sources(w, keepdims=True)


@register(
    "mertens",
    tasks=("multi-exposure", "multi-focus", "general"),
    reference="T. Mertens, J. Kautz, F. Van Reeth, 'Exposure fusion', Pacific Graphics 2007",
    colour="native",
    options={
        "contrast_weight": opt(low=0.0, high=100.0), "saturation_weight": opt(low=0.0, high=100.0),
        "exposure_weight": opt(low=0.0, high=100.0), "sigma": opt(low=1e-3, high=100.0),
    },
    support=_mertens_support,
    working_bytes=96,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def mertens_fusion(
    sources: jax.Array,
    *,
    contrast_weight: float = 1.0,
    saturation_weight: float = 1.0,
    exposure_weight: float = 1.0,
    sigma: float = 0.2,
    levels: int | None = None,
    mode: Literal["mertens", "opencv"] = "mertens",
    clip: bool = True,
) -> jax.Array:
    """Exposure fusion (Mertens, Kautz, Van Reeth 2007): weights blended in a Laplacian pyramid.

    ``mode="mertens"`` follows Mertens' MATLAB code (replicate-border Laplacian, §0.2
    pyramids, ``floor(log2(min(H, W)))`` levels); ``mode="opencv"`` follows
    ``cv2.createMergeMertens`` (reflect-101 Laplacian, ``pyrDown``/``pyrUp`` pyramids, one
    more level). ``levels`` overrides the level count.

    Args:
      sources: ``(S, H, W)`` or ``(S, H, W, C)`` exposures in [0, 1].
      contrast_weight, saturation_weight, exposure_weight: exponents of the three weight
        terms (0 switches a term off; paper: 1).
      sigma: width of the well-exposedness Gaussian around 0.5 (paper: 0.2).
      levels: pyramid levels (None: the mode's default from the image size).
      mode: ``"mertens"`` (the MATLAB code's conventions) or ``"opencv"`` (``cv2.createMergeMertens``).

    Returns:
      ``(H, W)`` or ``(H, W, C)``, clipped to [0, 1] unless ``clip=False`` (the raw pyramid
      blend, as OpenCV returns it, can leave [0, 1] slightly).
    """
    nd = sources.ndim
    w = mertens_weights(
        sources,
        contrast_weight=contrast_weight,
        saturation_weight=saturation_weight,
        exposure_weight=exposure_weight,
        sigma=sigma,
        mode=mode,
    )
    # materialise the weights once: without the barrier XLA fuses the whole weight expression
    # into each strided REDUCE tap and recomputes it (measured 4x slower on CPU)
    w = jax.lax.optimization_barrier(w)
    if levels is None:
        levels = default_levels(w.shape) + (1 if mode == "opencv" else 0)
    x = _channels_first(sources)
    lap = laplacian_pyramid(x, levels=levels, mode=mode)
    gw = gaussian_pyramid(w, levels=levels, mode=mode)
    blended = [sum_sources(_per_channel(g, nd) * lev) for g, lev in zip(gw, lap)]
    return _finish(_channels_last(collapse_laplacian(blended, mode=mode), nd), clip)
