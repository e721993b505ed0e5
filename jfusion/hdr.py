"""HDR building blocks (Kalantari & Ramamoorthi 2017): the mu-law tonemapper and its loss, the
LDR <-> HDR domain mappings, exposure alignment, and the full-reference HDR metrics.

Conventions. LDR images are in [0, 1]; radiance ``H`` is linear, normalised so that the
reference exposure's ``I = 1`` maps to ``1 / t_ref`` (``H = I^gamma / t``). The tonemapper and
the metrics take radiance clipped to [0, 1] as the paper does (its ground truth is scaled so
the reference exposure time is 1). All functions are pure and jit/vmap/grad friendly.

The metrics compare an estimate with a ground truth (full reference), which is not the shape
of :mod:`jfusion.metrics`' registry (sources vs fused, no reference), so they live here:
``psnr_mu`` (PSNR of the mu-law tonemapped images, "PSNR-T"), ``psnr_l`` (PSNR of linear
radiance) and ``ssim_mu`` (SSIM of the tonemapped images, an HDR-VDP-free proxy).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.filters import gaussian_filter
from jfusion.ops.flow import tvl1_flow, warp

__all__ = [
    "MU",
    "GAMMA",
    "mu_law",
    "mu_law_inverse",
    "mu_law_loss",
    "ldr_to_hdr",
    "hdr_to_ldr",
    "exposure_times",
    "align_exposures",
    "psnr_mu",
    "psnr_l",
    "ssim_mu",
]

MU = 5000.0
GAMMA = 2.2


def mu_law(radiance: ArrayLike, *, mu: float = MU) -> jax.Array:
    """Mu-law tonemapper ``T(H) = log(1 + mu H) / log(1 + mu)`` of ``H`` clipped to [0, 1]; in [0, 1]."""
    h = jnp.clip(jnp.asarray(radiance, jnp.float32), 0.0, 1.0)
    return jnp.log1p(mu * h) / math.log1p(mu)


def mu_law_inverse(tonemapped: ArrayLike, *, mu: float = MU) -> jax.Array:
    """Inverse of :func:`mu_law`: ``H = ((1 + mu)^T - 1) / mu``."""
    t = jnp.asarray(tonemapped, jnp.float32)
    return jnp.expm1(t * math.log1p(mu)) / mu


def mu_law_loss(estimate: ArrayLike, target: ArrayLike, *, mu: float = MU) -> jax.Array:
    """The paper's loss: mean squared difference of the mu-law tonemapped radiances (differentiable).

    The paper sums over the patch; the mean differs by a constant factor (the patch size), which
    only rescales the learning rate.
    """
    d = mu_law(estimate, mu=mu) - mu_law(target, mu=mu)
    return jnp.mean(d * d)


def ldr_to_hdr(ldr: ArrayLike, time: ArrayLike, *, gamma: float = GAMMA) -> jax.Array:
    """LDR to the HDR domain: ``H = I^gamma / t`` (``ldr`` in [0, 1], ``time`` broadcast against it)."""
    i = jnp.clip(jnp.asarray(ldr, jnp.float32), 0.0, 1.0)
    return i**gamma / jnp.asarray(time, jnp.float32)


def hdr_to_ldr(radiance: ArrayLike, time: ArrayLike, *, gamma: float = GAMMA) -> jax.Array:
    """Radiance to an LDR exposure through the gamma camera response: ``clip(H t, 0, 1)^(1/gamma)``."""
    h = jnp.asarray(radiance, jnp.float32) * jnp.asarray(time, jnp.float32)
    return jnp.clip(h, 0.0, 1.0) ** (1.0 / gamma)


def exposure_times(ev: ArrayLike) -> jax.Array:
    """Exposure times ``2^ev`` relative to the reference (EV steps, e.g. ``(-2, 0, 2)``)."""
    return jnp.exp2(jnp.asarray(ev, jnp.float32))


def _match_exposure(ldr: jax.Array, t_from: jax.Array, t_to: jax.Array, gamma: float) -> jax.Array:
    return hdr_to_ldr(ldr_to_hdr(ldr, t_from, gamma=gamma), t_to, gamma=gamma)


def align_exposures(
    ldr: ArrayLike,
    times: ArrayLike,
    *,
    reference: int = 1,
    gamma: float = GAMMA,
    flow_options: dict | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Warp every exposure onto the reference with TV-L1 flow (the paper's alignment, spec 4.1).

    For each pair, the darker image is raised to the brighter one's exposure (linear domain,
    re-clipped, re-gamma'd) before the flow is computed, so both see the same saturation; the
    original exposure is then warped backward (bilinear) onto the reference grid.

    Args:
      ldr: ``(S, H, W, C)`` or ``(S, H, W)`` LDR exposures in [0, 1]; times: ``(S,)``.
      reference: index of the reference exposure (static; the middle one for three).

    Returns:
      ``(aligned, flows)``: ``aligned`` like ``ldr`` (the reference unchanged) and ``(S, H, W, 2)``
      flows from the reference to each exposure (zero for the reference).
    """
    ldr = jnp.asarray(ldr, jnp.float32)
    times = jnp.asarray(times, jnp.float32)
    opts = dict(flow_options or {})
    ref = ldr[reference]
    aligned, flows = [], []
    for s in range(ldr.shape[0]):
        if s == reference:
            aligned.append(ref)
            flows.append(jnp.zeros(ref.shape[:2] + (2,), jnp.float32))
            continue
        t_hi = jnp.maximum(times[s], times[reference])
        a = _match_exposure(ref, times[reference], t_hi, gamma)
        b = _match_exposure(ldr[s], times[s], t_hi, gamma)
        f = tvl1_flow(a, b, **opts)
        aligned.append(warp(ldr[s], f))
        flows.append(f)
    return jnp.stack(aligned), jnp.stack(flows)


def _psnr(a: jax.Array, b: jax.Array) -> jax.Array:
    mse = jnp.mean((a - b) ** 2)
    return 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-20))


def psnr_mu(estimate: ArrayLike, target: ArrayLike, *, mu: float = MU) -> jax.Array:
    """PSNR (dB, peak 1) between the mu-law tonemapped estimate and target radiances ("PSNR-mu")."""
    return _psnr(mu_law(estimate, mu=mu), mu_law(target, mu=mu))


def psnr_l(estimate: ArrayLike, target: ArrayLike) -> jax.Array:
    """PSNR (dB, peak 1) between linear radiances clipped to [0, 1] ("PSNR-L")."""
    e = jnp.clip(jnp.asarray(estimate, jnp.float32), 0.0, 1.0)
    t = jnp.clip(jnp.asarray(target, jnp.float32), 0.0, 1.0)
    return _psnr(e, t)


def ssim_mu(estimate: ArrayLike, target: ArrayLike, *, mu: float = MU) -> jax.Array:
    """SSIM (Wang et al. 2004: Gaussian sigma 1.5 window, K = 0.01, 0.03, peak 1) of the tonemapped
    images, mean over pixels and channels (``skimage.metrics.structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``).

    Args:
      estimate, target: ``(H, W)`` or ``(H, W, C)`` radiance.
    """
    x = mu_law(estimate, mu=mu)
    y = mu_law(target, mu=mu)
    if x.ndim == 3:
        x, y = jnp.moveaxis(x, -1, 0), jnp.moveaxis(y, -1, 0)

    def blur(z):
        return gaussian_filter(z, 1.5, size=11, border="symmetric")

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    pad = 5  # skimage crops (win_size - 1) / 2 from every side before averaging
    return jnp.mean(s[..., pad:-pad, pad:-pad])
