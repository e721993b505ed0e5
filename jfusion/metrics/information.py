"""Histogram / information-theoretic metrics: CE, MI, NMI (Hossny Q_MI), TE (Tsallis), NCIE.

Reduction over S >= 2 sources is stated per metric (the references define S = 2; the
generalisation keeps their form). Histogram metrics are piecewise constant; ``mi`` has a
soft-histogram option (``soft=True``) that is differentiable and usable as a loss.
"""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import (
    entropy_from_counts,
    exact_div,
    histogram,
    joint_histogram,
    matlab_round,
    normalize1,
    quantize_levels,
    soft_histogram_weights,
    to_grey_levels,
)
from jfusion.metrics._registry import register_metric
from jfusion.options import opt
from jfusion.ops.precision import matmul

__all__ = [
    "level_histogram_metrics",
    "cross_entropy",
    "mutual_information",
    "normalized_mutual_information",
    "tsallis_entropy",
    "ncie",
]


def _probs(counts: jax.Array) -> jax.Array:
    counts = counts.astype(jnp.result_type(float))
    return counts / jnp.sum(counts)


def _xlogy_ratio(p: jax.Array, q: jax.Array, base: float) -> jax.Array:
    """``sum p log(p / q)`` over entries where both are non-zero (VIFB's cross-entropy rule)."""
    ok = (p > 0) & (q > 0)
    r = jnp.where(ok, p / jnp.where(ok, q, 1.0), 1.0)
    return jnp.sum(jnp.where(ok, p * jnp.log(r), 0.0)) / np.log(base)


# VIFB's CE sums only over bins non-zero in both histograms, so the terms need not form a KL
# divergence and the value can be negative (a constant fused image holding a level the source rarely
# takes). By the log-sum inequality it stays above min_P P log2 P = -1 / (e ln 2) ~ -0.531.
@register_metric("ce", direction="lower", convention="vifb", range=(-1 / (math.e * math.log(2)), math.inf), ideal=0.0)
def cross_entropy(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """CE: mean over sources of ``sum_k h_X[k] log2(h_X[k] / h_F[k])`` over bins non-zero in both.

    Integer grey levels (``floor`` of 0..255, see ``quantize_levels``); 256 bins (VIFB).
    """
    x = quantize_levels(to_grey_levels(sources, data_range))
    f = quantize_levels(to_grey_levels(fused, data_range))
    pf = _probs(histogram(f))
    ce = jax.vmap(lambda xs: _xlogy_ratio(_probs(histogram(xs)), pf, 2.0))(x)
    return jnp.mean(ce)


def _minmax_levels(x: jax.Array) -> jax.Array:
    """VIFB ``mutinf`` binning: min-max to [0, 1] (constant -> 0), ``int16(x * 255)``."""
    lo, hi = jnp.min(x), jnp.max(x)
    rng = hi - lo
    u = jnp.where(rng != 0, exact_div(x - lo, jnp.where(rng != 0, rng, 1.0)), 0.0)
    return jnp.clip(matlab_round(u * 255.0), 0, 255).astype(jnp.int32)


def _mi_from_joint(joint: jax.Array, base: float | None) -> jax.Array:
    ha = entropy_from_counts(joint.sum(axis=1), base=base)
    hb = entropy_from_counts(joint.sum(axis=0), base=base)
    hab = entropy_from_counts(joint.ravel(), base=base)
    return ha + hb - hab


def _soft_mi(x: jax.Array, f: jax.Array, bins: int, bandwidth: float, base: float | None) -> jax.Array:
    def unit(v):
        lo, hi = jnp.min(v), jnp.max(v)
        return (v - lo) / jnp.maximum(hi - lo, 1e-12)

    wx = soft_histogram_weights(unit(x), bins, bandwidth)
    wf = soft_histogram_weights(unit(f), bins, bandwidth)
    joint = matmul(wx.T, wf)
    return _mi_from_joint(joint, base)


@register_metric("mi", direction="higher", convention="vifb", range=(0, 8), summed=True)
def mutual_information(
    sources: ArrayLike,
    fused: ArrayLike,
    *,
    data_range: float = 1.0,
    base: float | None = None,
    soft: bool = False,
    bins: int = 32,
    bandwidth: float = 0.5,
) -> jax.Array:
    """MI (Qu et al. 2002): ``sum over sources of MI(X, F)``; VIFB: nats, min-max + ``round(255 x)`` bins.

    Args:
      sources: ``(S, H, W)`` in ``[0, data_range]``.
      fused: ``(H, W)``.
      data_range: the value mapping to 255 (MI is invariant to it).
      base: logarithm base; ``None`` = natural log (VIFB), 2 = bits.
      soft: differentiable form: Gaussian (Parzen) soft joint histogram of ``bins`` bins with
        ``bandwidth`` (in bins) on the min-max normalised images; approximates the hard value.
      bins: number of bins of the soft histogram.
      bandwidth: soft kernel width in bins.
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    if soft:
        return jnp.sum(jax.vmap(lambda xs: _soft_mi(xs, f, bins, bandwidth, base))(x))
    lf = _minmax_levels(f)
    return jnp.sum(jax.vmap(lambda xs: _mi_from_joint(joint_histogram(_minmax_levels(xs), lf), base))(x))


def level_histogram_metrics(
    x: jax.Array, f: jax.Array, *, base: float | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """CE, EN and MI (VIFB conventions) of exact 8-bit data from one joint histogram per source.

    For integer grey levels the three metrics' histograms are all marginals or relabellings of
    the joint ``(x, f)`` histograms: CE's and EN's ``floor`` levels are the levels themselves, and
    MI's min-max levels ``round(255 (v - min) / (max - min))`` are a one-to-one relabelling (the
    step ``255 / (max - min)`` is at least 1), which leaves every entropy unchanged. One flat
    ``bincount`` of ``S * H * W`` entries replaces five histograms; values equal
    :func:`cross_entropy`, :func:`entropy` and :func:`mutual_information` up to summation order.

    Args:
      x: integer levels 0..255 of the sources ``(S, H, W)`` (any integer or float dtype holding
        exact integers).
      f: integer levels of the fused channel ``(H, W)``.
      base: MI's logarithm base (``None``: nats, VIFB).

    Returns:
      ``(ce, en, mi)`` scalars.
    """
    s = x.shape[0]
    xi = x.astype(jnp.int32)
    fi = f.astype(jnp.int32)
    idx = (jnp.arange(s, dtype=jnp.int32)[:, None, None] * 256 + xi) * 256 + fi[None]
    joint = jnp.bincount(idx.ravel(), length=s * 65536).reshape(s, 256, 256)
    hx = joint.sum(axis=2)
    hf = joint[0].sum(axis=0)
    en = entropy_from_counts(hf, base=2.0)
    pf = _probs(hf)
    ce = jnp.mean(jax.vmap(lambda h: _xlogy_ratio(_probs(h), pf, 2.0))(hx))
    h_f = entropy_from_counts(hf, base=base)
    mi = jnp.sum(jax.vmap(lambda h, j: entropy_from_counts(h, base=base) + h_f - entropy_from_counts(j.ravel(), base=base))(hx, joint))
    return ce, en, mi


def _norm_levels(x: jax.Array) -> jax.Array:
    return jnp.clip(normalize1(x), 0, 255).astype(jnp.int32)


@register_metric("nmi", direction="higher", convention="mefb", range=(0, 1), summed=True, ideal=1.0)
def normalized_mutual_information(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0) -> jax.Array:
    """NMI / Q_MI (Hossny 2008; Liu metricMI, MEFB metricsNMI): ``2 sum_X MI(X,F) / (H(X) + H(F))``.

    ``normalize1`` binning, log2; range [0, 2] for two sources (``2 S`` ... summed over sources).
    """
    x = _norm_levels(to_grey_levels(sources, data_range))
    lf = _norm_levels(to_grey_levels(fused, data_range))
    hf = entropy_from_counts(histogram(lf), base=2.0)

    def one(xs):
        joint = joint_histogram(xs, lf)
        hx = entropy_from_counts(joint.sum(axis=1), base=2.0)
        return _mi_from_joint(joint, 2.0) / (hx + hf)

    return 2.0 * jnp.sum(jax.vmap(one)(x))


@register_metric("te", direction="higher", convention="mefb", range=(0, math.inf), summed=True, options={"q": opt(doc="order q of the Tsallis entropy (q != 1)", low=1e-6)})
def tsallis_entropy(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, q: float = 1.85) -> jax.Array:
    """TE (Cvejic 2006; Liu metricMI sw=2, MEFB metricsTE): ``sum_X I_q(X; F)``, q = 1.85.

    ``I_q = (1 - sum_{p(x)p(f) != 0} p(x,f)^q / (p(x) p(f))^(q-1)) / (1 - q)`` on ``normalize1`` bins.
    """
    x = _norm_levels(to_grey_levels(sources, data_range))
    lf = _norm_levels(to_grey_levels(fused, data_range))

    def one(xs):
        p = _probs(joint_histogram(xs, lf))
        px, pf = p.sum(axis=1), p.sum(axis=0)
        pp = px[:, None] * pf[None, :]
        ok = pp > 0
        term = jnp.where(ok, p**q / jnp.where(ok, pp, 1.0) ** (q - 1.0), 0.0)
        return (1.0 - jnp.sum(term)) / (1.0 - q)

    return jnp.sum(jax.vmap(one)(x))


@register_metric("ncie", direction="higher", convention="mefb", range=(0, 1), options={"convention": opt(choices=('mefb', 'paper'))})
def ncie(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, convention: str = "mefb") -> jax.Array:
    """NCIE / Q_NCIE (Wang & Shen 2005; Liu metricWang, MEFB metricsQncie).

    Nonlinear correlation coefficients ``NCC(X, Y) = H(X) + H(Y) - H(X, Y)`` (base-256 entropies,
    ``normalize1`` bins) of every pair in (sources..., F) form the ``K x K`` matrix R (K = S + 1);
    ``NCIE = 1 - H_R``, ``H_R = -sum (l/K) log_b (l/K)`` over R's eigenvalues l.

    Args:
      convention: ``"mefb"`` (toolbox, b = 256, NCIE in [1 - log_256 3, 1] for S = 2) or
        ``"paper"`` (b = K, NCIE in [0, 1]).
    """
    x = _norm_levels(to_grey_levels(sources, data_range))
    lf = _norm_levels(to_grey_levels(fused, data_range))
    imgs = jnp.concatenate([x, lf[None]], axis=0)
    k = imgs.shape[0]

    def ncc(a, b):
        return _mi_from_joint(joint_histogram(a, b), 256.0)

    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    vals = jnp.stack([ncc(imgs[i], imgs[j]) for i, j in pairs])
    rows = np.array([p[0] for p in pairs])
    cols = np.array([p[1] for p in pairs])
    r = jnp.eye(k, dtype=vals.dtype).at[rows, cols].set(vals).at[cols, rows].set(vals)
    lam = jnp.linalg.eigvalsh(r) / k
    base = 256.0 if convention == "mefb" else float(k)
    ok = lam > 0
    hr = -jnp.sum(jnp.where(ok, lam * jnp.log(jnp.where(ok, lam, 1.0)), 0.0)) / np.log(base)
    return 1.0 - hr
