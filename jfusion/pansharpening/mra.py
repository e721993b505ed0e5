"""Multi-resolution-analysis (MRA) pan-sharpening: ATWT (additive wavelet), MTF-GLP, MTF-GLP-HPM, HPF.

Detail-injection form of Vivone et al. (IEEE TGRS 2015): ``F_k = MS~_k + g_k (P_k - P_k^L)``,
with ``P_k`` the PAN moment-matched to band ``k`` of the interpolated MS and ``P_k^L`` a
low-pass version of it. Band-wise work is ``vmap``-ped over the band axis.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.filters import box_filter, correlate1d
from jfusion.pansharpening.cs import match_moments
from jfusion.pansharpening.registry import register
from jfusion.pansharpening.wald import Interp, decimate, interp23tap, mtf_filter, upsample_ms

__all__ = ["atrous_lowpass", "matched_pan", "atwt", "mtf_glp", "mtf_glp_hpm", "hpf", "glp_lowpass", "cbd_gains"]

_EPS = 1e-6
B3_SPLINE = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _band_map(fn, *arrays):
    return jax.vmap(fn, in_axes=-1, out_axes=-1)(*arrays)


def matched_pan(pan: jax.Array, ms_up: jax.Array) -> jax.Array:
    """The PAN moment-matched to each band of ``ms_up``: ``(H, W, B)``."""
    return _band_map(lambda band: match_moments(pan, band), ms_up)


def atrous_lowpass(img: ArrayLike, levels: int) -> jax.Array:
    """The approximation of ``img`` ``(..., H, W)`` after ``levels`` à-trous B3-spline steps.

    Level ``j`` filters rows and columns with ``[1, 4, 6, 4, 1] / 16`` dilated by ``2**j``
    (symmetric borders).
    """
    x = jnp.asarray(img, jnp.float32)
    for j in range(levels):
        k = np.zeros(4 * 2**j + 1)
        k[:: 2**j] = B3_SPLINE
        x = correlate1d(correlate1d(x, k, -2, border="symmetric"), k, -1, border="symmetric")
    return x


@register("atwt", family="mra", reference="Additive wavelet / ATWT, Nunez et al., IEEE TGRS 37(3) 1999 / toolbox ATWT.m")
def atwt(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """ATWT: add the à-trous details of the band-matched PAN (log2(ratio) levels) to each band."""
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    p = matched_pan(jnp.asarray(pan, jnp.float32), ms_up)
    levels = max(1, int(round(math.log2(ratio))))
    lp = jnp.moveaxis(atrous_lowpass(jnp.moveaxis(p, -1, 0), levels), 0, -1)
    return ms_up + (p - lp)


def glp_lowpass(p: jax.Array, *, ratio: int, sensor: str | None) -> jax.Array:
    """GLP low-pass of band-matched PANs ``(H, W, B)``: MS-MTF filter, decimation, 23-tap expansion."""
    return interp23tap(decimate(mtf_filter(p, ratio=ratio, sensor=sensor), ratio), ratio)


def cbd_gains(ms_up: jax.Array, p_low: jax.Array) -> jax.Array:
    """Context-based-decision (regression) injection gains of MTF-GLP-CBD: ``g_k = cov(MS~_k, P_k^L) / var(P_k^L)``.

    ``ms_up`` and ``p_low`` ``(H, W, B)``: the interpolated MS and the low-pass of the band-matched PANs
    (:func:`glp_lowpass`); global moments over the image (Aiazzi et al. 2006; toolbox ``MTF_GLP_CBD.m``
    without its local windows). Returns ``(B,)``.
    """
    m0 = ms_up - ms_up.mean(axis=(0, 1))
    p0 = p_low - p_low.mean(axis=(0, 1))
    return jnp.sum(m0 * p0, axis=(0, 1)) / (jnp.sum(p0 * p0, axis=(0, 1)) + _EPS)


@register("mtf-glp", family="mra", reference="MTF-GLP, Aiazzi, Alparone, Baronti, Garzelli, Selva, PE&RS 72(5) 2006 / toolbox MTF_GLP.m")
def mtf_glp(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """MTF-GLP: F_k = MS~_k + (P_k - EXPAND(REDUCE(MTF_k * P_k))), unit gains."""
    ms_up = upsample_ms(ms, ratio, interp=interp)
    p = matched_pan(jnp.asarray(pan, jnp.float32), ms_up)
    return ms_up + (p - glp_lowpass(p, ratio=ratio, sensor=sensor))


@register("mtf-glp-hpm", family="mra", reference="MTF-GLP with high-pass modulation, Aiazzi et al., 2003/2006 / toolbox MTF_GLP_HPM.m")
def mtf_glp_hpm(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """MTF-GLP-HPM: F_k = MS~_k * P_k / P_k^L (multiplicative injection, eps-guarded)."""
    ms_up = upsample_ms(ms, ratio, interp=interp)
    p = matched_pan(jnp.asarray(pan, jnp.float32), ms_up)
    lp = glp_lowpass(p, ratio=ratio, sensor=sensor)
    return ms_up * (p / (lp + _EPS))


@register("hpf", family="mra", reference="High-pass filtering, Chavez, Sides, Anderson, PE&RS 57(3) 1991 / toolbox HPF")
def hpf(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """HPF: add P_k minus its box mean over a ``(2 (ratio // 2) + 1)``-wide window (replicate borders)."""
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    p = matched_pan(jnp.asarray(pan, jnp.float32), ms_up)
    lp = jnp.moveaxis(box_filter(jnp.moveaxis(p, -1, 0), ratio // 2, border="replicate"), 0, -1)
    return ms_up + (p - lp)
