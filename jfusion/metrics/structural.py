"""Structural-similarity metrics: SSIM (VIFB and standard), MS-SSIM, Piella Q0/Q_W/Q_E, Cvejic Q_C, Yang Q_Y.

All are smooth functions of the images (except the data-dependent branches of Q_C/Q_Y) and
differentiable with ``jax.grad``: SSIM/MS-SSIM/Piella can serve as training losses.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import (
    box_mean_valid,
    filter_same_zero,
    filter_valid,
    fspecial_gaussian1d,
    safe_sqrt,
    to_grey_levels,
    windowed_cov,
    windowed_var,
)
from jfusion.metrics._registry import register_metric
from jfusion.options import opt
from jfusion.ops import pad2d

__all__ = ["LocalStats", "local_stats", "ssim", "ms_ssim", "piella_q0", "piella_qw", "piella_qe", "qc", "qy"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


class LocalStats(NamedTuple):
    """Windowed means, variances and covariance of two images (population, 'valid' positions)."""

    mu_x: jax.Array
    mu_y: jax.Array
    var_x: jax.Array
    var_y: jax.Array
    cov: jax.Array


def local_stats(x: jax.Array, y: jax.Array, *, window: str = "gaussian", win_size: int = 11, sigma: float = 1.5) -> LocalStats:
    """Local statistics over 'valid' windows: Gaussian (``fspecial`` taps) or uniform (any size).

    Args:
      x, y: images ``(..., H, W)``.
      window: ``"gaussian"`` (odd ``win_size``, std ``sigma``) or ``"uniform"``.
    """
    maps = _local_means(jnp.stack([x, y, x * x, y * y, x * y]), window, win_size, sigma)
    mx, my, exx, eyy, exy = maps
    vx, vy = windowed_var(exx, mx), windowed_var(eyy, my)
    return LocalStats(mx, my, vx, vy, windowed_cov(exy, mx, my, exx, eyy, vx, vy))


def _local_means(maps: jax.Array, window: str, win_size: int, sigma: float) -> jax.Array:
    """Windowed means of stacked maps ``(..., H, W)`` in one filter call ('valid')."""
    if window == "gaussian":
        return filter_valid(maps, fspecial_gaussian1d(win_size, sigma))
    return box_mean_valid(maps, win_size)


def _stats_against(x: jax.Array, f: jax.Array, window: str, win_size: int, sigma: float) -> LocalStats:
    """:func:`local_stats` of every source ``x (S, H, W)`` against one image ``f (H, W)``.

    F's mean and second moment are filtered once (not once per source): ``3 S + 2`` maps.
    """
    s = x.shape[0]
    maps = jnp.concatenate([x, f[None], x * x, (f * f)[None], x * f[None]])
    m = _local_means(maps, window, win_size, sigma)
    mx, mf, exx, eff, exf = m[:s], m[s], m[s + 1 : 2 * s + 1], m[2 * s + 1], m[2 * s + 2 :]
    vx, vf = windowed_var(exx, mx), windowed_var(eff, mf)[None]
    return LocalStats(mx, mf[None], vx, vf, windowed_cov(exf, mx, mf[None], exx, eff[None], vx, vf))


def _ssim_map(st: LocalStats, c1: float, c2: float) -> jax.Array:
    return ((2 * st.mu_x * st.mu_y + c1) * (2 * st.cov + c2)) / (
        (st.mu_x**2 + st.mu_y**2 + c1) * (st.var_x + st.var_y + c2)
    )


def _uiqi_map(st: LocalStats) -> jax.Array:
    """Wang-Bovik UIQI with its special cases (flat windows: 2 mu_x mu_y / (mu_x^2 + mu_y^2), or 1)."""
    num = 4.0 * st.cov * st.mu_x * st.mu_y
    d1 = st.var_x + st.var_y
    d2 = st.mu_x**2 + st.mu_y**2
    both = (d1 != 0) & (d2 != 0)
    only2 = (d1 == 0) & (d2 != 0)
    q = jnp.where(both, num / jnp.where(both, d1 * d2, 1.0), 1.0)
    return jnp.where(only2, 2 * st.mu_x * st.mu_y / jnp.where(only2, d2, 1.0), q)


@register_metric("ssim", direction="higher", convention="vifb", range=(-1, 1), ideal=1.0, summed=True, options={"convention": opt(choices=('vifb', 'standard')), "window": opt(choices=('gaussian', 'uniform')), "sigma": opt(doc="standard deviation of the Gaussian window", low=1e-3)})
def ssim(
    sources: ArrayLike,
    fused: ArrayLike,
    *,
    data_range: float = 1.0,
    convention: str = "vifb",
    window: str = "gaussian",
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> jax.Array:
    """SSIM of F against every source (Wang et al. 2004), reduced over sources.

    Gaussian 11x11 window (sigma 1.5, normalised), K = (0.01, 0.03), L = 255, 'valid' positions,
    mean of the map, no automatic downsampling.

    Args:
      convention: ``"vifb"``: the **sum** over sources (VIFB "Ssim", range up to S);
        ``"standard"``: the mean over sources (range [-1, 1]).
      window: ``"gaussian"`` or ``"uniform"`` (``win_size`` x ``win_size``).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    c1, c2 = (k1 * 255.0) ** 2, (k2 * 255.0) ** 2
    st = _stats_against(x, f, window, win_size, sigma)
    per = jnp.mean(_ssim_map(st, c1, c2), axis=(-2, -1))
    return jnp.sum(per) if convention == "vifb" else jnp.mean(per)


def _avg_decimate(x: jax.Array) -> jax.Array:
    """Wang's MS-SSIM downsampling: ``imfilter(x, ones(2)/4, 'symmetric', 'same')`` then ``x(1:2:end, 1:2:end)``."""
    xp = pad2d(x, 0, 1, 0, 1, border="symmetric")
    y = (xp[..., :-1, :-1] + xp[..., 1:, :-1] + xp[..., :-1, 1:] + xp[..., 1:, 1:]) / 4.0
    return y[..., ::2, ::2]


@register_metric("ms_ssim", direction="higher", convention="wang2003", range=(0, 1), ideal=1.0, options={"reduction": opt(choices=('mean', 'sum')), "convention": opt(choices=("wang2003", "means_product"), doc="'wang2003': msssim.m's coarsest term mean(l cs); 'means_product': mean(l) mean(cs)"), "scales": opt(doc="number of scales (image halved between scales)", low=1, high=8), "sigma": opt(doc="standard deviation of the Gaussian window", low=1e-3)})
def ms_ssim(
    sources: ArrayLike,
    fused: ArrayLike,
    *,
    data_range: float = 1.0,
    reduction: str = "mean",
    convention: str = "wang2003",
    scales: int = 5,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> jax.Array:
    """MS-SSIM (Wang, Simoncelli & Bovik 2003) of F against each source, ``reduction`` over sources.

    ``SSIM_M^{w_M} prod_{j<M} CS_j^{w_j}`` with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
    Gaussian 11/1.5 'valid' windows, 2x2 average + decimation between scales (Wang's ``msssim.m``):
    ``CS_j`` is the mean contrast-structure map of scale j and ``SSIM_M`` the mean of the full SSIM
    map ``l * cs`` at the coarsest scale. Needs ``min(H, W) >= 11 * 2^(scales-1)``; negative
    contrast-structure terms give NaN as in the reference code.

    Args:
      reduction: ``"mean"`` (default) or ``"sum"`` over the S sources (papers use either).
      convention: ``"wang2003"`` (default): ``msssim.m``'s coarsest term ``mean(l * cs)``, as
        pytorch-msssim and piq compute it; ``"means_product"``: ``mean(l) * mean(cs)`` at the
        coarsest scale (jfusion before issue 16; up to 3e-3 off the reference on VIFB crops).
    """
    x = to_grey_levels(sources, data_range)
    f = jnp.broadcast_to(to_grey_levels(fused, data_range), x.shape)
    need = win_size * 2 ** (scales - 1)
    if min(x.shape[-2:]) < need:
        raise ValueError(f"ms_ssim with {scales} scales needs images of at least {need} px a side, got {x.shape[-2:]}")
    c1, c2 = (k1 * 255.0) ** 2, (k2 * 255.0) ** 2
    w = np.asarray(MS_SSIM_WEIGHTS[:scales])
    w = w / w.sum() if scales != 5 else w
    out = jnp.ones(x.shape[0], dtype=x.dtype)
    for s in range(scales):
        st = local_stats(x, f, win_size=win_size, sigma=sigma)
        cs_map = (2 * st.cov + c2) / (st.var_x + st.var_y + c2)
        cs = jnp.mean(cs_map, axis=(-2, -1))
        if s == scales - 1:
            lum_map = (2 * st.mu_x * st.mu_y + c1) / (st.mu_x**2 + st.mu_y**2 + c1)
            if convention == "means_product":
                last = jnp.mean(lum_map, axis=(-2, -1)) * cs
            else:
                last = jnp.mean(lum_map * cs_map, axis=(-2, -1))
            out = out * last ** w[s]
        else:
            out = out * cs ** w[s]
            x, f = _avg_decimate(x), _avg_decimate(f)
    return jnp.sum(out) if reduction == "sum" else jnp.mean(out)


_EDGE_H = np.array([[1.0, 0.0, -1.0]] * 3)
_EDGE_V = _EDGE_H.T.copy()  # [[1,1,1],[0,0,0],[-1,-1,-1]]


def _edge_image(x: jax.Array) -> jax.Array:
    """Liu metricPeilla's edge image: magnitude of the Prewitt-like ``filter2 'same'`` responses."""
    return safe_sqrt(filter_same_zero(x, _EDGE_H) ** 2 + filter_same_zero(x, _EDGE_V) ** 2)


def _piella_maps(x: jax.Array, f: jax.Array, window: str) -> tuple[jax.Array, jax.Array]:
    """Per-source quality maps ``(S, h, w)`` and local saliencies (variances) ``(S, h, w)``."""
    fb = jnp.broadcast_to(f, x.shape)
    if window == "uiqi8":
        st = local_stats(fb, x, window="uniform", win_size=8)
        return _uiqi_map(st), st.var_y
    st = local_stats(fb, x, window="gaussian", win_size=11, sigma=1.5)
    return _ssim_map(st, (0.01 * 255) ** 2, (0.03 * 255) ** 2), st.var_y


def _piella(x: jax.Array, f: jax.Array, window: str, weighted: bool) -> jax.Array:
    q, s = _piella_maps(x, f, window)
    tot = jnp.sum(s, axis=0)
    flat = tot == 0
    s = jnp.where(flat[None], s + 0.5, s)
    lam = s / jnp.sum(s, axis=0)
    combined = jnp.sum(lam * q, axis=0)
    if not weighted:
        return jnp.mean(combined)
    c = jnp.max(s, axis=0)
    return jnp.sum(c * combined) / jnp.sum(c)


@register_metric("piella_q0", direction="higher", convention="liu", range=(-1, 1), ideal=1.0, options={"window": opt(choices=('ssim_gauss11', 'uiqi8'))})
def piella_q0(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, window: str = "ssim_gauss11") -> jax.Array:
    """Piella & Heijmans Q0: ``mean_w sum_X lambda_X(w) Q(X, F | w)``, lambda_X = s_X / sum s (local variances).

    Args:
      window: ``"ssim_gauss11"`` (Liu/MEFB toolbox: SSIM with 11x11 Gaussian, 'valid', 0.5 added to
        both saliencies where their sum is 0) or ``"uiqi8"`` (the paper: UIQI, 8x8 uniform windows).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    return _piella(x, f, window, weighted=False)


@register_metric("piella_qw", direction="higher", convention="liu", range=(-1, 1), ideal=1.0, options={"window": opt(choices=('ssim_gauss11', 'uiqi8'))})
def piella_qw(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, window: str = "ssim_gauss11") -> jax.Array:
    """Piella Q_W: Q0 with window weights ``c(w) = max_X s_X(w) / sum_w max_X s_X(w)``."""
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    return _piella(x, f, window, weighted=True)


@register_metric("piella_qe", direction="higher", convention="mefb", range=(-1, 1), ideal=1.0, options={"window": opt(choices=('ssim_gauss11', 'uiqi8')), "alpha": opt(doc="exponent of the edge image term (Q_E = Q_W(X, F)^(1 - alpha) Q_W(edges)^alpha)", low=0.0)})
def piella_qe(
    sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, alpha: float = 1.0, window: str = "ssim_gauss11"
) -> jax.Array:
    """Piella Q_E: ``Q_W(A, B, F)^(1 - alpha) * Q_W(A', B', F')^alpha`` on edge images A', B', F'.

    The default ``alpha = 1`` is Q_W on the edge images: what MEFB reports as "Qw".
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    qe = _piella(_edge_image(x), _edge_image(f), window, weighted=True)
    if alpha == 1.0:
        return qe
    return _piella(x, f, window, weighted=True) ** (1.0 - alpha) * qe**alpha


def _small_ssim(x: jax.Array, y: jax.Array) -> tuple[jax.Array, LocalStats]:
    """Liu's Q_C / Q_Y SSIM: 7x7 Gaussian (sigma 1.5), 'valid', C1 = C2 = 2e-16."""
    st = local_stats(x, y, window="gaussian", win_size=7, sigma=1.5)
    return _ssim_map(st, 2e-16, 2e-16), st


def _nanmean(v: jax.Array) -> jax.Array:
    ok = ~jnp.isnan(v)
    return jnp.sum(jnp.where(ok, v, 0.0)) / jnp.sum(ok)


def _two(x: jax.Array, name: str) -> None:
    if x.shape[0] != 2:
        raise ValueError(f"{name} is defined for exactly two sources, got {x.shape[0]}")


# symmetric False: Liu / MEFB metricCvejic set the value to 0 where sim < 0 and to 1 where sim > 1, so
# swapping A and B (sim -> 1 - sim) turns those windows from 0 into 1 (the "paper" clamp is symmetric)
@register_metric("qc", direction="higher", convention="mefb", n_sources=2, range=(-1, 1), ideal=1.0, symmetric=False, options={"convention": opt(choices=('mefb', 'liu', 'paper'))})
def qc(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, convention: str = "mefb") -> jax.Array:
    """Cvejic Q_C (two sources): ``mean[sim Q(A,F) + (1 - sim) Q(B,F)]``, ``sim = s_AF / (s_AF + s_BF)``.

    Args:
      convention: ``"mefb"`` (Liu/MEFB: the combined value is set to 0 where sim < 0 and 1 where
        sim > 1; NaN windows dropped), ``"liu"`` (same but NaN propagates), ``"paper"`` (sim clamped to [0, 1]).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    _two(x, "qc")
    qa, sta = _small_ssim(x[0], f)
    qb, stb = _small_ssim(x[1], f)
    sim = sta.cov / (sta.cov + stb.cov)
    if convention == "paper":
        s = jnp.clip(sim, 0.0, 1.0)
        q = s * qa + (1 - s) * qb
    else:
        q = sim * qa + (1 - sim) * qb
        q = jnp.where(sim < 0, 0.0, jnp.where(sim > 1, 1.0, q))
    return jnp.mean(q) if convention == "liu" else _nanmean(q)


@register_metric("qy", direction="higher", convention="mefb", n_sources=2, range=(-1, 1), ideal=1.0, options={"convention": opt(choices=('mefb', 'liu'))})
def qy(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, convention: str = "mefb") -> jax.Array:
    """Yang Q_Y (two sources): where SSIM(A,B|w) >= 0.75 the lambda-weighted SSIMs, else their max.

    ``lambda = s_A^2 / (s_A^2 + s_B^2)`` (local variances), 7x7 Gaussian SSIM with C1 = C2 = 2e-16.

    Args:
      convention: ``"mefb"`` drops NaN windows (flat in both sources) before averaging; ``"liu"``
        propagates them.
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    _two(x, "qy")
    qa, sta = _small_ssim(x[0], f)
    qb, stb = _small_ssim(x[1], f)
    qab, _ = _small_ssim(x[0], x[1])
    lam = sta.var_x / (sta.var_x + stb.var_x)
    q = jnp.where(qab >= 0.75, lam * qa + (1 - lam) * qb, jnp.maximum(qa, qb))
    return jnp.mean(q) if convention == "liu" else _nanmean(q)
