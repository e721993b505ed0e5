"""Gradient-based metrics: Q^AB/F (Xydeas & Petrovic) and Q_SF / rSFe (Zheng et al.)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import arctan, conv2_same, safe_sqrt, to_grey_levels
from jfusion.metrics._registry import register_metric
from jfusion.options import opt

__all__ = ["qabf", "qsf"]

_H1 = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])
_H3 = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_TG, _KG, _DG = 0.9994, -15.0, 0.5
_TA, _KA, _DA = 0.9879, -22.0, 0.8


def _edges(p: jax.Array, smooth: bool, eps: float) -> tuple[jax.Array, jax.Array]:
    """Edge strength and orientation; in smooth mode the orientation is the doubled-angle vector."""
    sx = conv2_same(p, _H3)
    sy = conv2_same(p, _H1)
    if smooth:
        g = jnp.sqrt(sx**2 + sy**2 + 1.0)  # floor of one Sobel unit (on VIFB's 255 * 255 scale)
        return g, jnp.stack([sx**2 - sy**2, 2.0 * sx * sy])
    g = safe_sqrt(sx**2 + sy**2)
    zero = sx == 0
    a = jnp.where(zero, math.pi / 2, arctan(sy / jnp.where(zero, 1.0, sx)))
    return g, a


def _preservation(gx, ax, gf, af, convention: str, smooth: bool, eps: float) -> jax.Array:
    if smooth:
        # min/max ratio = exp(-|log gx - log gf|), with |.| smoothed at scale eps (1 when equal)
        lr = jnp.log(gx) - jnp.log(gf)
        rel = jnp.exp(eps - jnp.sqrt(lr**2 + eps**2))
        # orientation difference modulo pi from the doubled-angle vectors (continuous where atan jumps)
        cross = ax[0] * af[1] - ax[1] * af[0]
        dot = ax[0] * af[0] + ax[1] * af[1]
        d2 = jnp.arctan2(cross, dot + 1e-12)
        d = (jnp.sqrt(d2**2 + eps**2) - eps) / 2.0
    else:
        equal = gf if convention == "vifb" else jnp.ones_like(gf)
        rel = jnp.where(
            gx > gf, gf / jnp.where(gx > gf, gx, 1.0), jnp.where(gx == gf, equal, gx / jnp.where(gx < gf, gf, 1.0))
        )
        d = jnp.abs(ax - af)
    orient = 1.0 - d / (math.pi / 2)
    qg = _TG / (1.0 + jnp.exp(_KG * (rel - _DG)))
    qa = _TA / (1.0 + jnp.exp(_KA * (orient - _DA)))
    return qg * qa


# ideal None: Xydeas & Petrovic's sigmoids (Gamma_g 0.9994, Gamma_a 0.9879; VIFB metricsQabf) cap
# Q^{XF} below 1, so identical images score about 0.975 (0.9994 * 0.9879 / (1 + e^-4.4) where VIFB's
# equal-strength rule keeps g_F, image dependent); 1 is the bound, not the value of a perfect fusion.
@register_metric("qabf", direction="higher", convention="vifb", range=(0, 1), ideal=None, options={"convention": opt(choices=('vifb', 'paper'))})
def qabf(
    sources: ArrayLike,
    fused: ArrayLike,
    *,
    data_range: float = 1.0,
    convention: str = "vifb",
    weight_exponent: float = 1.0,
    smooth: bool = False,
    eps: float = 0.05,
) -> jax.Array:
    """Q^AB/F (Xydeas & Petrovic 2000): edge strength/orientation preservation, weighted by g_X^L.

    ``sum_X sum_pixels Q^{XF} w_X / sum_X sum_pixels w_X`` over the S sources (VIFB metricsQabf):
    Sobel by ``conv2 'same'`` (zero padding) on ``255 * grey levels`` (VIFB's double scaling),
    ``atan`` orientation (pi/2 where the x response is 0), Gamma/kappa/sigma = 0.9994/-15/0.5 and
    0.9879/-22/0.8.

    Args:
      convention: ``"vifb"`` keeps VIFB's equality branch (``G = g_F`` where ``g_X == g_F``,
        so flat areas score 0); ``"paper"`` uses ``G = 1`` there.
      weight_exponent: L in ``w = g^L`` (1 in VIFB; 1.5 in some papers).
      smooth: differentiable form for losses: magnitudes ``sqrt(s^2 + 1)``, the strength ratio
        ``exp(-|log g_X - log g_F|)`` and the orientation difference (taken modulo pi from
        doubled-angle vectors, so it has no jump where the Sobel x response changes sign) with their
        ``|.|`` smoothed as ``sqrt(. ^ 2 + eps^2) - eps``. Where VIFB's orientation term does not wrap
        (differences beyond pi/2) the forms differ; otherwise they agree up to O(eps).
      eps: smoothing scale of the smooth form (log-ratio and radians).
    """
    x = to_grey_levels(sources, data_range) * 255.0
    f = to_grey_levels(fused, data_range) * 255.0
    gf, af = _edges(f, smooth, eps)

    def one(xs):
        gx, ax = _edges(xs, smooth, eps)
        q = _preservation(gx, ax, gf, af, convention, smooth, eps)
        w = gx**weight_exponent
        return jnp.sum(q * w), jnp.sum(w)

    num, den = jax.vmap(one)(x)
    return jnp.sum(num) / jnp.sum(den)


def _directional_diffs(f: jax.Array) -> list[tuple[jax.Array, float]]:
    """Row, column, main-diagonal and secondary-diagonal differences with their weights."""
    wd = 1.0 / math.sqrt(2.0)
    return [
        (f[..., :, 1:] - f[..., :, :-1], 1.0),
        (f[..., 1:, :] - f[..., :-1, :], 1.0),
        (f[..., 1:, 1:] - f[..., :-1, :-1], wd),
        (f[..., 1:, :-1] - f[..., :-1, 1:], wd),
    ]


@register_metric("qsf", direction="zero", convention="liu", range=(-1, math.inf), ideal=0.0)
def qsf(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """Q_SF / rSFe (Zheng et al. 2007, Liu metricZheng): ``(SF_F - SF_R) / SF_R``; ideal 0.

    Four-direction spatial frequency (diagonals weighted 1/sqrt(2), sums divided by MN); the
    reference SF_R takes per position the largest absolute difference over the S sources.
    Negative: under-fused; positive: over-enhanced. Scale invariant. Undefined (NaN) when every
    source is constant (SF_R = 0; the reference divides by zero and returns Inf or NaN).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    n = f.shape[-1] * f.shape[-2]
    sf_f = sum(w * jnp.sum(d**2) for d, w in _directional_diffs(f)) / n
    sf_r = sum(w * jnp.sum(jnp.max(jnp.abs(d), axis=0) ** 2) for d, w in _directional_diffs(x)) / n
    sf_f, sf_r = jnp.sqrt(sf_f), jnp.sqrt(sf_r)
    return jnp.where(sf_r > 0, (sf_f - sf_r) / jnp.where(sf_r > 0, sf_r, 1.0), jnp.nan)
