"""Multi-scale transform fusion: Laplacian, ratio, contrast and gradient pyramids; DWT; SWT.

Each core fuses one channel, sources ``(S, H, W)`` -> ``(H, W)`` (the registry routes colour
through the shared YCbCr helper); all rules are N-way (``S >= 2``): detail coefficients by
a choose-max over the sources, the low-pass residual by the average (methods_spec §8.1,
§8.2). Level counts are clamped to what the image size allows, statically. Results are
clipped to [0, 1] unless ``clip=False``.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jfusion.methods.registry import Support, register
from jfusion.options import opt
from jfusion.ops.filters import pad2d
from jfusion.rules.activity import window_energy, window_max_abs
from jfusion.rules.combine import apply_weights, choose_max, max_weights, mean_sources
from jfusion.rules.consistency import majority_filter
from jfusion.transforms.pyramids import (
    GradientPyramid,
    PyramidMode,
    collapse_contrast,
    collapse_gradient,
    collapse_laplacian,
    collapse_ratio,
    contrast_pyramid,
    default_levels,
    gradient_pyramid,
    laplacian_pyramid,
    ratio_pyramid,
)
from jfusion.transforms.wavelets import WAVELETS, WaveletMode, dwt_max_level, iswt2, swt2, wavedec2, waverec2
from jfusion.registry import GENERAL_TASKS

__all__ = ["laplacian_fusion", "ratio_fusion", "contrast_fusion", "gradient_fusion", "dwt_fusion", "swt_fusion"]



def _pyramid_support(levels: int, *, window: int = 1, extra: int = 8) -> Support:
    """Support of a ``levels``-level pyramid fusion whose rule looks at ``window x window`` coefficients.

    REDUCE (5 taps) and EXPAND (3 taps) reach 2 and 1 coarse pixels per level, i.e. ``2**l`` fine
    pixels at level ``l``; summed over analysis, rule and synthesis the reach stays below
    ``2**(levels-1) * (extra + window)`` (``extra`` 8 for the Laplacian-type pyramids, 16 for the
    gradient pyramid's extra 3x3 filters). Offsets are multiples of ``2**(levels-1)``, the
    coarsest decimation.
    """
    scale = 2 ** (max(1, int(levels)) - 1)
    return Support(scale * (extra + int(window)), scale)


def _laplacian_support(o) -> Support:
    return _pyramid_support(o["levels"], window=o["window"] if o["rule"] == "window-energy" else 1)


def _ratio_support(o) -> Support:
    return _pyramid_support(o["levels"])


def _windowed_pyramid_support(o) -> Support:
    return _pyramid_support(o["levels"], window=o["window"])


def _gradient_support(o) -> Support:
    return _pyramid_support(o["levels"], window=o["window"], extra=16)


def _wavelet_support(levels: int, wavelet: str, window: int) -> Support:
    # analysis and synthesis each reach (F - 1) (2**L - 1) px; the rule's window and the 3x3
    # majority filter reach (window // 2 + 1) coefficients at the coarsest level (2**L px)
    from jfusion.transforms.wavelets import wavelet_filters

    f = len(wavelet_filters(wavelet)[0])
    scale = 2 ** max(1, int(levels))
    return Support(scale * (2 * f + int(window) // 2 + 2), scale)


def _dwt_support(o) -> Support:
    if o["mode"] != "symmetric":
        return Support.unbounded(f"mode={o['mode']!r} wraps around the image (periodic borders); use mode='symmetric'")
    return _wavelet_support(o["levels"], o["wavelet"], o["window"])


def _swt_support(o) -> Support:
    # undecimated: analysis and synthesis reach (F - 1) (2**L - 1) px each, the rules
    # window // 2 + 1; periodic over the image extended to a multiple of 2**L
    from jfusion.transforms.wavelets import wavelet_filters

    f = len(wavelet_filters(o["wavelet"])[0])
    m = 2 ** max(1, int(o["levels"]))
    return Support(2 * (f - 1) * m + int(o["window"]) // 2 + 2, 1, periodic=m)


def _finish(fused: jax.Array, clip: bool) -> jax.Array:
    # multi-scale reconstructions overshoot near strong edges; the references clip to [0, 1]
    # when they convert to 8 bits, jfusion clips here (``clip=False`` keeps the raw result)
    return jnp.clip(fused, 0.0, 1.0) if clip else fused


def _clamp_levels(levels: int, shape) -> int:
    return max(1, min(int(levels), default_levels(shape)))


def _fuse_detail(c: jax.Array, rule: str, window: int) -> jax.Array:
    if rule == "max-abs":
        return choose_max(c)
    if rule == "window-energy":
        return choose_max(c, activity=window_energy(c, size=window))
    raise ValueError(f"rule must be 'max-abs' or 'window-energy', got {rule!r}")


@register(
    "laplacian",
    tasks=GENERAL_TASKS,
    reference="P. J. Burt, E. H. Adelson, 'The Laplacian pyramid as a compact image code', IEEE Trans. Commun. 31(4) 1983; "
    "P. J. Burt, R. J. Kolczynski, 'Enhanced image capture through fusion', ICCV 1993",
    support=_laplacian_support,
    working_bytes=48,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def laplacian_fusion(
    sources: jax.Array,
    *,
    levels: int = 4,
    rule: Literal["max-abs", "window-energy"] = "max-abs",
    window: int = 3,
    mode: PyramidMode = "mertens",
    clip: bool = True,
) -> jax.Array:
    """Laplacian-pyramid fusion: details by choose-max, residual by the average.

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      levels: pyramid levels including the low-pass residual (MST toolbox default 4).
      rule: ``"max-abs"`` (pixel-wise ``|L|``) or ``"window-energy"`` (``window x window`` sum of ``L^2``).
      window: window of the energy rule.
      mode: REDUCE/EXPAND border convention (:mod:`jfusion.transforms.pyramids`).

    Returns:
      ``(H, W)``.
    """
    n = _clamp_levels(levels, sources.shape)
    pyr = laplacian_pyramid(sources, levels=n, mode=mode)
    fused = [_fuse_detail(lev, rule, window) for lev in pyr[:-1]] + [mean_sources(pyr[-1])]
    return _finish(collapse_laplacian(fused, mode=mode), clip)


@register(
    "ratio",
    tasks=("multi-focus", "infrared-visible", "medical", "general"),
    reference="A. Toet, 'Image fusion by a ratio of low-pass pyramid', Pattern Recognit. Lett. 9(4) 1989",
    options={"offset": opt(low=1e-6, high=1.0)},
    support=_ratio_support,
    working_bytes=48,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def ratio_fusion(sources: jax.Array, *, levels: int = 4, offset: float = 0.01, clip: bool = True) -> jax.Array:
    """Ratio-of-low-pass pyramid fusion: keep the ratio of largest contrast ``|R - 1|``; average the top.

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      levels: pyramid levels including the top.
      offset: added before the ratios so that they are defined on black pixels.
    """
    n = _clamp_levels(levels, sources.shape)
    pyr = ratio_pyramid(sources, levels=n, offset=offset)
    fused = [choose_max(r, activity=jnp.abs(r - 1.0)) for r in pyr[:-1]] + [mean_sources(pyr[-1])]
    return _finish(collapse_ratio(fused, offset=offset), clip)


@register(
    "contrast",
    tasks=("multi-focus", "infrared-visible", "medical", "general"),
    reference="A. Toet, L. J. van Ruyven, J. M. Valeton, 'Merging thermal and visual images by a contrast pyramid', "
    "Opt. Eng. 28(7) 1989",
    options={"offset": opt(low=1e-6, high=1.0)},
    support=_windowed_pyramid_support,
    working_bytes=48,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def contrast_fusion(
    sources: jax.Array, *, levels: int = 4, window: int = 3, offset: float = 0.01, clip: bool = True
) -> jax.Array:
    """Contrast-pyramid fusion: keep the contrast of largest local energy; average the top.

    Differs from ``ratio`` in the representation (``C = R - 1``, the Weber contrast) and in
    the rule: the activity is the ``window x window`` energy of the contrast, not the
    pixel-wise ``|R - 1|``, which makes the selection less sensitive to single-pixel noise.

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      levels: pyramid levels including the top.
      window: side of the energy window of the contrast.
      offset: added before the ratios so that they are defined on black pixels.
    """
    n = _clamp_levels(levels, sources.shape)
    pyr = contrast_pyramid(sources, levels=n, offset=offset)
    fused = [choose_max(c, activity=window_energy(c, size=window)) for c in pyr[:-1]] + [mean_sources(pyr[-1])]
    return _finish(collapse_contrast(fused, offset=offset), clip)


@register(
    "gradient",
    tasks=("multi-focus", "infrared-visible", "medical", "general"),
    reference="P. J. Burt, 'A gradient pyramid basis for pattern-selective image fusion', SID Digest 1992; "
    "P. J. Burt, R. J. Kolczynski, ICCV 1993",
    support=_gradient_support,
    working_bytes=160,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def gradient_fusion(sources: jax.Array, *, levels: int = 4, window: int = 3, clip: bool = True) -> jax.Array:
    """Gradient-pyramid fusion: per orientation, keep the gradient of largest ``window`` energy (salience).

    The four oriented bands are fused independently, converted back to an FSD Laplacian
    and collapsed; the gradient pyramid is not exactly invertible, so identical sources
    reproduce the source only up to the transform's round-trip error (aliasing of the
    decimation: mean 5e-4, max 0.016 on a natural 128 px crop; see the tests).

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      levels: pyramid levels including the top.
      window: side of the salience (energy) window.
    """
    n = _clamp_levels(levels, sources.shape)
    pyr = gradient_pyramid(sources, levels=n)
    # bands: (4, S, h, w) -> sources first for the rule
    bands = []
    for b in pyr.bands:
        b = jnp.moveaxis(b, 1, 0)
        bands.append(choose_max(b, activity=window_energy(b, size=window)))
    return _finish(collapse_gradient(GradientPyramid(tuple(bands), mean_sources(pyr.top))), clip)


def _fuse_subband(c: jax.Array, window: int, consistency: bool) -> jax.Array:
    act = window_max_abs(c, size=window)
    w = max_weights(act)
    if consistency:
        w = majority_filter(w, size=3, scores=act)
    return apply_weights(c, w)


@register(
    "dwt",
    tasks=("multi-focus", "infrared-visible", "medical", "general"),
    reference="H. Li, B. S. Manjunath, S. K. Mitra, 'Multisensor image fusion using the wavelet transform', "
    "Graph. Models Image Process. 57(3) 1995",
    options={"wavelet": opt(choices=WAVELETS)},
    support=_dwt_support,
    working_bytes=64,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def dwt_fusion(
    sources: jax.Array,
    *,
    wavelet: str = "db2",
    levels: int = 3,
    mode: WaveletMode = "symmetric",
    window: int = 3,
    consistency: bool = True,
    clip: bool = True,
) -> jax.Array:
    """DWT fusion (Li, Manjunath, Mitra 1995).

    Detail sub-bands: activity = max ``|coef|`` in a ``window x window`` window, choose-max,
    then a 3x3 majority filter on the decision map (consistency verification);
    approximation: average.

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      wavelet: filter bank name (:data:`jfusion.transforms.WAVELETS`).
      levels: decomposition depth (clamped to PyWavelets' ``dwt_max_level``, at least 1).
      mode: ``"symmetric"`` or ``"periodization"``.
      window: activity window.
      consistency: apply the 3x3 majority filter to the decision maps.
    """
    h, w = sources.shape[-2:]
    n = max(1, min(int(levels), dwt_max_level(min(h, w), wavelet)))
    coeffs = wavedec2(sources, wavelet=wavelet, level=n, mode=mode)
    fused = [mean_sources(coeffs[0])]
    for det in coeffs[1:]:
        fused.append(tuple(_fuse_subband(c, window, consistency) for c in det))
    return _finish(waverec2(fused, wavelet=wavelet, mode=mode)[..., :h, :w], clip)


@register(
    "swt",
    tasks=("multi-focus", "infrared-visible", "medical", "general"),
    reference="M. Beaulieu, S. Foucher, L. Gagnon, 'Multi-spectral image resolution refinement using stationary "
    "wavelet transform', IGARSS 2003; rules of Li, Manjunath, Mitra 1995",
    options={"wavelet": opt(choices=WAVELETS)},
    support=_swt_support,
    working_bytes=256,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def swt_fusion(
    sources: jax.Array,
    *,
    wavelet: str = "haar",
    levels: int = 3,
    window: int = 3,
    consistency: bool = True,
    clip: bool = True,
) -> jax.Array:
    """Stationary (undecimated) wavelet fusion: the DWT rules on the shift-invariant transform.

    Images whose size is not a multiple of ``2**levels`` are symmetrically extended to the
    next multiple and cropped back (the SWT is periodic).

    Args:
      sources: ``(S, H, W)`` in [0, 1].
      wavelet: filter bank name (:data:`jfusion.transforms.WAVELETS`).
      levels: decomposition depth (clamped to what the image size allows, at least 1).
      window: activity window.
      consistency: apply the 3x3 majority filter to the decision maps.
    """
    h, w = sources.shape[-2:]
    n = max(1, min(int(levels), default_levels((h, w))))
    m = 2**n
    ph, pw = (-h) % m, (-w) % m
    x = pad2d(sources, 0, ph, 0, pw, border="symmetric") if (ph or pw) else sources
    coeffs = swt2(x, wavelet=wavelet, level=n)
    fused = [mean_sources(coeffs[0])]
    for det in coeffs[1:]:
        fused.append(tuple(_fuse_subband(c, window, consistency) for c in det))
    return _finish(iswt2(fused, wavelet=wavelet)[..., :h, :w], clip)
