"""Component-substitution (CS) pan-sharpening: EXP, IHS, GIHS, Brovey, PCA, Gram-Schmidt, GSA.

All follow the detail-injection form of Vivone et al. (IEEE TGRS 2015),
``F_k = MS~_k + g_k (P' - I)``, with ``MS~`` the MS interpolated to the PAN grid, ``I`` an
intensity component and ``P'`` the PAN histogram-matched (mean and standard deviation) to
``I``. Statistics are global over the image (population moments). Every function takes the
low-resolution MS ``(h, w, B)`` and the PAN ``(r h, r w)`` in sensor units and returns
``(r h, r w, B)`` in those units.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.precision import einsum, matmul
from jfusion.pansharpening.registry import register
from jfusion.pansharpening.wald import Interp, decimate, mtf_filter_pan, upsample_ms

__all__ = ["match_moments", "cov_gains", "gsa_weights", "exp", "ihs", "gihs", "brovey", "pca", "gs", "gsa", "inject"]

_EPS = 1e-6


def match_moments(x: jax.Array, target: jax.Array) -> jax.Array:
    """``x`` shifted and scaled to the global mean and standard deviation of ``target``."""
    return (x - x.mean()) * (target.std() / (x.std() + _EPS)) + target.mean()


def inject(ms_up: jax.Array, detail: jax.Array, gains: jax.Array) -> jax.Array:
    """``ms_up (H, W, B) + gains (B,) * detail (H, W)``: the CS injection."""
    return ms_up + detail[..., None] * gains


def cov_gains(ms_up: jax.Array, intensity: jax.Array) -> jax.Array:
    """Gram-Schmidt injection gains ``g_k = cov(MS~_k, I) / var(I)``: ``(B,)``."""
    i0 = intensity - intensity.mean()
    m0 = ms_up - ms_up.mean(axis=(0, 1))
    return einsum("hw,hwb->b", i0, m0) / (jnp.sum(i0 * i0) + _EPS)


@register("exp", family="baseline", reference="MS interpolation only (EXP; Vivone et al., IEEE TGRS 2015)", local=True)
def exp(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """EXP: the MS interpolated to the PAN grid (23-tap or bicubic); the PAN is not used."""
    del pan, sensor
    return upsample_ms(ms, ratio, interp=interp)


@register("ihs", family="cs", reference="Fast IHS, Tu et al., Inf. Fusion 2001 / toolbox IHS.m (Vivone et al. 2015)")
def ihs(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """Fast IHS: I = band mean, PAN moment-matched to I, unit injection gains."""
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    pan = jnp.asarray(pan, jnp.float32)
    intensity = ms_up.mean(axis=-1)
    return inject(ms_up, match_moments(pan, intensity) - intensity, jnp.ones(ms_up.shape[-1]))


@register("gihs", family="cs", reference="Generalised IHS, Tu, Huang, Hung, Chang, IEEE GRSL 1(4) 2004", local=True)
def gihs(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    ratio: int = 4,
    sensor: str | None = None,
    interp: Interp = "23tap",
    weights: tuple[float, ...] | None = None,
) -> jax.Array:
    """Generalised IHS: I = sum_k w_k MS~_k (weights normalised to sum 1, default equal), F = MS~ + (PAN - I).

    No histogram matching (Tu et al. 2004): the raw PAN minus the intensity is injected with
    unit gains into every band.
    """
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    b = ms_up.shape[-1]
    w = jnp.full((b,), 1.0 / b) if weights is None else jnp.asarray(weights, jnp.float32) / sum(weights)
    intensity = matmul(ms_up, w)
    return inject(ms_up, jnp.asarray(pan, jnp.float32) - intensity, jnp.ones(b))


@register("brovey", family="cs", reference="Brovey transform, Gillespie, Kahle, Walker, RSE 1987 / toolbox Brovey.m")
def brovey(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """Brovey: F_k = MS~_k * P' / I with I the band mean and P' the PAN moment-matched to I."""
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    intensity = ms_up.mean(axis=-1)
    p = match_moments(jnp.asarray(pan, jnp.float32), intensity)
    return ms_up * (p / (intensity + _EPS))[..., None]


@register("pca", family="cs", reference="PCA substitution, Chavez & Kwarteng 1989 / toolbox PCA.m (Vivone et al. 2015)")
def pca(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """PCA: replace the first principal component of MS~ by the PAN moment-matched to it.

    The eigenvector of the largest eigenvalue of the band covariance is signed so that its
    components sum to a positive value (PC1 then correlates positively with brightness).
    Equivalent to CS injection with I = PC1 and gains = that eigenvector.
    """
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    h, w, b = ms_up.shape
    x = ms_up.reshape(-1, b)
    mu = x.mean(axis=0)
    x0 = x - mu
    cov = matmul(x0.T, x0) / x0.shape[0]
    _, vecs = jnp.linalg.eigh(cov)
    v = vecs[:, -1]
    v = v * jnp.sign(jnp.sum(v) + _EPS)
    pc1 = matmul(x0, v).reshape(h, w)
    p = match_moments(jnp.asarray(pan, jnp.float32), pc1)
    return inject(ms_up, p - pc1, v)


@register("gs", family="cs", reference="Gram-Schmidt (mode average), Laben & Brower, US patent 6011875 (2000) / toolbox GS.m")
def gs(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """Gram-Schmidt: I = band mean of MS~, P' matched to I, gains cov(MS~_k, I)/var(I)."""
    del sensor
    ms_up = upsample_ms(ms, ratio, interp=interp)
    intensity = ms_up.mean(axis=-1)
    p = match_moments(jnp.asarray(pan, jnp.float32), intensity)
    return inject(ms_up, p - intensity, cov_gains(ms_up, intensity))


def gsa_weights(ms_lr: jax.Array, pan_lr: jax.Array) -> jax.Array:
    """Least-squares weights ``(B + 1,)`` of the low-resolution PAN on the mean-free LR MS bands plus a constant."""
    b = ms_lr.shape[-1]
    a = ms_lr.reshape(-1, b)
    a = jnp.concatenate([a - a.mean(axis=0), jnp.ones((a.shape[0], 1), a.dtype)], axis=1)
    y = (pan_lr - pan_lr.mean()).reshape(-1)
    return jnp.linalg.lstsq(a, y)[0]


@register("gsa", family="cs", reference="Gram-Schmidt adaptive, Aiazzi, Baronti, Selva, IEEE TGRS 45(10) 2007 / toolbox GSA.m")
def gsa(ms: ArrayLike, pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None, interp: Interp = "23tap") -> jax.Array:
    """GSA: I = regression of the MTF-degraded PAN on the LR MS bands (+ constant), then GS gains.

    The weights are fitted at the MS scale: the PAN is low-passed with the sensor's PAN MTF
    filter and decimated by ``ratio``; the regressors are the original (mean-free) MS bands.
    """
    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    ms_up = upsample_ms(ms, ratio, interp=interp)
    pan_lr = decimate(mtf_filter_pan(pan, ratio=ratio, sensor=sensor), ratio)
    w = gsa_weights(ms, pan_lr)
    m0 = ms_up - ms_up.mean(axis=(0, 1))
    intensity = matmul(m0, w[:-1]) + w[-1]
    p = match_moments(pan, intensity)
    return inject(ms_up, p - intensity, cov_gains(ms_up, intensity))
