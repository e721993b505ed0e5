"""MEF-SSIM (Ma, Zeng & Wang 2015) for multi-exposure stacks, single- and multi-scale (MEFB's default).

The reference code loops over every 11x11 patch; here the desired patch is never formed: its
norm and its Gaussian-weighted statistics are quadratic forms in the exposures, so everything is
uniform/Gaussian window sums of ``x_k``, ``x_k x_l``, ``x_k F``, ``F`` and ``F^2`` ('valid').
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import (
    box_mean_valid,
    filter_valid,
    fspecial_gaussian1d,
    to_grey_levels,
    windowed_cov,
    windowed_var,
)
from jfusion.metrics._registry import register_metric
from jfusion.options import opt
from jfusion.metrics.structural import _avg_decimate
from jfusion.ops.precision import einsum

__all__ = ["mef_ssim"]

_EPS = float(np.finfo(np.float64).eps)
MEF_MS_WEIGHTS = (0.0448, 0.2856, 0.3001)


def _mef_ssim_single(x: jax.Array, f: jax.Array, win: int, c: float) -> jax.Array:
    """Mean MEF-SSIM map of one scale: ``x (K, H, W)``, ``f (H, W)`` on the 0..255 scale."""
    n = float(win * win)
    k = x.shape[0]
    box = lambda v: box_mean_valid(v, win)  # noqa: E731
    g1 = fspecial_gaussian1d(win, 1.5)
    gau = lambda v: filter_valid(v, g1)  # noqa: E731

    mu = box(x)  # (K, h, w) uniform means
    xx = x[:, None] * x[None, :]  # (K, K, H, W) products
    box_xx = box(xx)
    var = windowed_var(jnp.moveaxis(jnp.diagonal(box_xx, axis1=0, axis2=1), -1, 0), mu)
    ed = jnp.sqrt(jnp.maximum(n * var, 0.0)) + 0.001  # signal strengths c_k (+0.001 as the reference)
    # structural consistency R = ||sum_k x_k - mean|| / sum_k ||x_k - mu_k||
    mu_s = jnp.sum(mu, axis=0)
    var_s = windowed_var(jnp.sum(box_xx, axis=(0, 1)), mu_s)
    num = jnp.sqrt(jnp.maximum(n * var_s, 0.0))
    den = jnp.sum(jnp.sqrt(jnp.maximum(n * var, 0.0)), axis=0)
    r = (num + _EPS) / (den + _EPS)
    r = jnp.where(r > 1, 1 - _EPS, jnp.where(r < 0, _EPS, r))
    # tan(pi R / 2) reaches the cap of 10 at R ~ 0.937; R is clamped below 1 first because in float32
    # pi / 2 * (1 - eps64) rounds above pi / 2, where tan is hugely negative (the reference's double gives +1.6e16,
    # capped to 10): without the clamp, windows where one exposure is flat (R == 1) gave NaN.
    p = jnp.minimum(jnp.tan(jnp.pi / 2 * jnp.minimum(r, 0.999)), 10.0)
    wmap = (ed / win) ** p[None] + _EPS
    wmap = wmap / jnp.sum(wmap, axis=0)
    a = wmap / ed  # desired patch r = sum_k a_k (x_k - mu_k): coefficients per centre
    b = jnp.sum(a * mu, axis=0)
    # ||r||^2 over the 121-pixel patch
    norm2 = n * (einsum("kij,lij,klij->ij", a, a, box_xx) - 2 * b * jnp.sum(a * mu, axis=0) + b * b)
    norm = jnp.sqrt(jnp.maximum(norm2, 0.0))
    max_ed = jnp.max(ed, axis=0)
    s = jnp.where(norm > 0, max_ed / jnp.where(norm > 0, norm, 1.0), 1.0)
    # Gaussian-weighted statistics of the rescaled desired patch and of F
    gx = gau(x)
    gxx = gau(xx)
    gxf = gau(x * f[None])
    gf, gff = gau(f), gau(f * f)
    lin = jnp.sum(a * gx, axis=0)
    quad = einsum("kij,lij,klij->ij", a, a, gxx)
    var1 = s * s * windowed_var(quad, lin)
    var2 = windowed_var(gff, gf)
    cov = s * windowed_cov(jnp.sum(a * gxf, axis=0), lin, gf, quad, gff, var1, var2)
    q = (2 * cov + c) / (var1 + var2 + c)
    return jnp.mean(q)


@register_metric("mef_ssim", direction="higher", convention="mefb", colour="gray", range=(-1, 1), ideal=1.0, options={"scales": opt(doc="number of scales (image halved between scales)", low=1, high=8)})
def mef_ssim(
    sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, scales: int = 3, win_size: int = 11
) -> jax.Array:
    """MEF-SSIM of a fused image against an exposure stack (Ma, Zeng & Wang 2015; MEFB mef_ms_ssim.m).

    Per 11x11 patch the desired patch combines the exposures' structures, weighted by signal
    strength to the power ``tan(pi R / 2)`` (R: structural consistency, power capped at 10), with
    the largest exposure contrast; local score ``(2 s_rF + C) / (s_r^2 + s_F^2 + C)`` with Gaussian
    (sigma 1.5) weights, C = (0.03 * 255)^2. Multi-scale (MEFB): ``scales`` levels (2x2 average +
    decimation), ``prod_l Q_l^w_l`` with weights (0.0448, 0.2856, 0.3001) normalised;
    ``scales=1`` is the single-scale index. Under :func:`jfusion.metrics.evaluate` colour images go
    through ``rgb2gray`` first (MEFB).

    Args:
      sources: the exposures ``(K, H, W)``, K >= 2, in ``[0, data_range]``.
      fused: ``(H, W)``.

    Raises:
      ValueError: images smaller than ``win_size * 2^(scales - 1)`` a side (the reference returns -Inf).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    need = win_size * 2 ** (scales - 1)
    if min(f.shape[-2:]) < need:
        raise ValueError(f"mef_ssim with {scales} scales needs images of at least {need} px a side, got {f.shape[-2:]}")
    c = (0.03 * 255.0) ** 2
    w = np.asarray(MEF_MS_WEIGHTS[:scales]) if scales <= 3 else np.ones(scales)
    w = w / w.sum()
    out = 1.0
    for level in range(scales):
        out = out * _mef_ssim_single(x, f, win_size, c) ** w[level]
        if level < scales - 1:
            x, f = _avg_decimate(x), _avg_decimate(f)
    return out
