"""Feature-based metrics: Zhao et al.'s phase-congruency Q_P and Haghighat's feature mutual information FMI.

Both follow the MATLAB codes the benchmarks run (metrics_spec.md 3.12 and 3.23): Liu's
``metricZhao.m`` / ``myphasecong3.m`` (MEFB ``metricsQp``) and Haghighat's ``fmi.m`` with the
'edge' feature and 3x3 windows (MEFB ``metricsFMI``). Inputs on the [0, data_range] scale are
mapped to 0..255 first. Both are piecewise smooth only (thresholds, masks, binary edges): not losses.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import fspecial_gaussian1d, safe_div, to_grey_levels, windowed_cov, windowed_var
from jfusion.metrics._registry import register_metric
from jfusion.options import opt
from jfusion.ops import extract_patches, separable_filter, sobel_edges

_FMI_CHUNK = 8192

__all__ = ["PhaseCongruency", "phase_congruency", "qp", "fmi", "fmi_window"]


class PhaseCongruency(NamedTuple):
    """Kovesi phase congruency outputs, each ``(..., H, W)``.

    Attributes:
      pc: phase congruency (PC_2 measure, weighted energy over summed amplitudes), in [0, 1).
      moment_max: maximum moment M of the orientation covariance (edge strength).
      moment_min: minimum moment m (corner strength).
    """

    pc: jax.Array
    moment_max: jax.Array
    moment_min: jax.Array


class _Bank(NamedTuple):
    filters: np.ndarray  # (O, S, H, W) log-Gabor x angular spread, unshifted FFT layout
    em_n: np.ndarray  # (O,) sum of the smallest-scale filter squared
    noise_gain: np.ndarray  # (O,) 2 sum(ifft^2) + 4 sum_{i<j} ifft_i ifft_j
    angles: np.ndarray  # (O,)


def _centred_range(n: int) -> np.ndarray:
    """Kovesi's normalised frequency axis (odd sizes divided by n - 1, even by n)."""
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


def _lowpass(rows: int, cols: int, cutoff: float, order: int) -> np.ndarray:
    """Kovesi's ``lowpassfilter`` as in Liu's copy: Butterworth on a centred grid, then ``fftshift``."""
    x = (np.arange(cols)[None, :] - cols // 2) / cols
    y = (np.arange(rows)[:, None] - rows // 2) / rows
    radius = np.sqrt(x * x + y * y)
    return np.fft.fftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * order)))


@functools.lru_cache(maxsize=16)
def _filter_bank(
    rows: int, cols: int, nscale: int, norient: int, min_wavelength: float, mult: float, sigma_onf: float, d_theta_on_sigma: float
) -> _Bank:
    """The frequency-domain filters and noise constants of ``myphasecong3`` for one image size (NumPy, float64)."""
    x, y = np.meshgrid(_centred_range(cols), _centred_range(rows))
    radius = np.sqrt(x * x + y * y)
    radius[rows // 2, cols // 2] = 1.0
    theta = np.arctan2(-y, x)
    radius, theta = np.fft.ifftshift(radius), np.fft.ifftshift(theta)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    lp = _lowpass(rows, cols, 0.45, 15)
    log_gabor = []
    for s in range(nscale):
        fo = 1.0 / (min_wavelength * mult**s)
        lg = np.exp(-(np.log(radius / fo) ** 2) / (2 * np.log(sigma_onf) ** 2)) * lp
        lg[0, 0] = 0.0
        log_gabor.append(lg)
    theta_sigma = np.pi / norient / d_theta_on_sigma
    angles = np.arange(norient) * np.pi / norient
    spread = []
    for ang in angles:
        ds = sin_t * np.cos(ang) - cos_t * np.sin(ang)
        dc = cos_t * np.cos(ang) + sin_t * np.sin(ang)
        spread.append(np.exp(-(np.arctan2(ds, dc) ** 2) / (2 * theta_sigma**2)))
    filters = np.stack([np.stack([lg * sp for lg in log_gabor]) for sp in spread])  # (O, S, H, W)
    em_n = np.sum(filters[:, 0] ** 2, axis=(-2, -1))
    ifft = np.real(np.fft.ifft2(filters)) * np.sqrt(rows * cols)
    sum_an2 = np.sum(ifft**2, axis=(1, 2, 3))
    sum_aiaj = np.zeros(norient)
    for i in range(nscale - 1):
        for j in range(i + 1, nscale):
            sum_aiaj += np.sum(ifft[:, i] * ifft[:, j], axis=(-2, -1))
    return _Bank(filters, em_n, 2 * sum_an2 + 4 * sum_aiaj, angles)


def phase_congruency(
    image: ArrayLike,
    *,
    nscale: int = 4,
    norient: int = 6,
    min_wavelength: float = 3.0,
    mult: float = 2.1,
    sigma_onf: float = 0.55,
    d_theta_on_sigma: float = 1.2,
    k: float = 2.0,
    cut_off: float = 0.5,
    g: float = 10.0,
    epsilon: float = 1e-4,
) -> PhaseCongruency:
    """Kovesi's phase congruency (``phasecong2/3``) with Liu's ``myphasecong3`` modifications.

    Log-Gabor filters (``nscale`` scales from ``min_wavelength``, ratio ``mult``, bandwidth
    ``sigma_onf``) times an angular Gaussian (sigma = pi / norient / d_theta_on_sigma) and Kovesi's
    Butterworth low-pass (radius 0.45, order 15, built with ``fftshift`` as in Liu's copy, which
    differs from ``ifftshift`` for odd sizes); the filter bank is NumPy constants built once per
    size. Noise threshold per orientation from the median smallest-scale energy (Rayleigh model,
    ``k`` sigmas, divided by 1.7), frequency-spread sigmoid weight (``cut_off``, ``g``).
    Deviation: where an orientation's summed amplitude is 0 (flat image) its PC is 0, not 0/0 = NaN.

    Args:
      image: grey image(s) ``(..., H, W)`` (any scale; the reference sees 0..255).

    Returns:
      :class:`PhaseCongruency` ``(pc, M, m)``, each ``(..., H, W)``.
    """
    x = jnp.asarray(image)
    rows, cols = x.shape[-2:]
    bank = _filter_bank(rows, cols, nscale, norient, float(min_wavelength), float(mult), float(sigma_onf), float(d_theta_on_sigma))
    real_dt = jnp.result_type(x.dtype, jnp.float32)
    spec = jnp.fft.fft2(x.astype(real_dt))
    eo = jnp.fft.ifft2(spec[..., None, None, :, :] * jnp.asarray(bank.filters, real_dt))  # (..., O, S, H, W)
    e, o = jnp.real(eo), jnp.imag(eo)
    an = jnp.abs(eo)
    sum_an = jnp.sum(an, axis=-3)
    sum_e, sum_o = jnp.sum(e, axis=-3), jnp.sum(o, axis=-3)
    max_an = jnp.max(an, axis=-3)
    xenergy = jnp.sqrt(sum_e**2 + sum_o**2) + epsilon
    mean_e, mean_o = (sum_e / xenergy)[..., None, :, :], (sum_o / xenergy)[..., None, :, :]
    energy = jnp.sum(e * mean_e + o * mean_o - jnp.abs(e * mean_o - o * mean_e), axis=-3)
    median_e2n = jnp.median((an[..., 0, :, :] ** 2).reshape(*an.shape[:-4], norient, rows * cols), axis=-1)
    noise_power = (-median_e2n / np.log(0.5)) / jnp.asarray(bank.em_n, real_dt)
    tau = jnp.sqrt(noise_power * jnp.asarray(bank.noise_gain, real_dt) / 2.0)
    thresh = (tau * np.sqrt(np.pi / 2) + k * tau * np.sqrt(2 - np.pi / 2)) / 1.7
    energy = jnp.maximum(energy - thresh[..., None, None], 0.0)
    width = sum_an / (max_an + epsilon) / nscale
    weight = 1.0 / (1.0 + jnp.exp((cut_off - width) * g))
    energy_o = weight * energy  # (..., O, H, W)
    pc = jnp.sum(energy_o, axis=-3) / (jnp.sum(sum_an, axis=-3) + epsilon)
    pc_o = safe_div(energy_o, sum_an)
    cos_a = jnp.asarray(np.cos(bank.angles), real_dt)[:, None, None]
    sin_a = jnp.asarray(np.sin(bank.angles), real_dt)[:, None, None]
    covx, covy = pc_o * cos_a, pc_o * sin_a
    covx2 = jnp.sum(covx**2, axis=-3) / (norient / 2)
    covy2 = jnp.sum(covy**2, axis=-3) / (norient / 2)
    covxy = jnp.sum(covx * covy, axis=-3) / norient
    denom = jnp.sqrt(covxy**2 + (covx2 - covy2) ** 2) + epsilon
    return PhaseCongruency(pc, (covy2 + covx2 + denom) / 2, (covy2 + covx2 - denom) / 2)


def _masked_correlation(feats: jax.Array, feat_max: jax.Array, feat_f: jax.Array, masks: jax.Array, mask_max: jax.Array) -> jax.Array:
    """Liu's ``correlation_coeffcient``: max over sources and the max-map of the masked local correlations."""
    kern = fspecial_gaussian1d(11, 1.5)
    filt = lambda v: separable_filter(v, kern, kernel_x=kern, border="zero")  # noqa: E731  filter2 'same'
    xs = jnp.concatenate([feats * masks, (feat_max * mask_max)[None]], axis=0)
    ms = jnp.concatenate([masks, mask_max[None]], axis=0)
    c = 1e-4
    mu_x, mu_f = filt(xs), filt(feat_f)
    exx, eff = filt(xs * xs), filt(feat_f * feat_f)
    var_x = windowed_var(exx, mu_x)
    var_f = windowed_var(eff, mu_f)
    cov = windowed_cov(filt(xs * feat_f), mu_x, mu_f, exx, eff, var_x, var_f)
    r = (cov + c) / (jnp.sqrt(jnp.abs(var_x * var_f)) + c)
    best = jnp.max(jnp.where(ms, r, 0.0), axis=0)
    return jnp.sum(best) / jnp.sum(mask_max)


# ideal None: under Zhao et al.'s definition (Liu metricZhao) identical images score below 1 (about
# 0.97 on natural images): only pixels that are features (PC > threshold) of F = A = B reach 1, the
# masked, zero-padded local correlations do not; 1 is the bound, not the value of a perfect fusion.
@register_metric("qp", direction="higher", convention="liu", range=(0, 1), ideal=None, options={"threshold": opt(doc="phase-congruency threshold of the feature maps", low=0.0, high=1.0)})
def qp(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, threshold: float = 0.1) -> jax.Array:
    """Zhao et al. (2007) phase-congruency metric Q_P = P_pc * P_M * P_m (Liu ``metricZhao``, MEFB ``metricsQp``).

    For each feature (PC, maximum moment M, minimum moment m of :func:`phase_congruency` with
    Liu's parameters): the max-map takes, per pixel, the source with the largest PC (ties go to
    the last source, as MATLAB's ``pc1 > pc2`` picks B); masks ``PC_X > threshold``; sources are
    zeroed outside their masks (F is not); local correlations
    ``(s_XF + C) / (sqrt|s_X^2 s_F^2| + C)``, C = 1e-4, Gaussian 11x11 sigma 1.5 zero-padded
    'same' windows, kept inside each mask; score = sum of the pixelwise max over the S + 1 maps
    divided by the max-map mask area. S > 2 generalises the two-source code the same way.
    No source feature above ``threshold`` gives 0/0 = NaN, as in MATLAB.

    Args:
      sources: ``(S, H, W)`` in [0, data_range]; fused: ``(H, W)``.

    Returns:
      scalar in about [0, 1] (1 only where every pixel is a feature of F = A = B).
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    s = x.shape[0]
    # one image at a time: the (O, S, H, W) complex responses dominate memory
    allpc = jax.lax.map(phase_congruency, jnp.concatenate([x, f[None]], axis=0))
    px = PhaseCongruency(*(v[:s] for v in allpc))
    pf = PhaseCongruency(*(v[s] for v in allpc))
    pick = (s - 1) - jnp.argmax(px.pc[::-1], axis=0)  # last maximum
    sel = lambda v: jnp.take_along_axis(v, pick[None], axis=0)[0]  # noqa: E731
    masks = px.pc > threshold
    mask_max = sel(px.pc) > threshold
    score = jnp.asarray(1.0, px.pc.dtype)
    for feat_x, feat_f in zip(px, pf):
        score = score * _masked_correlation(feat_x, sel(feat_x), feat_f, masks, mask_max)
    return score


def _unit(v: jax.Array) -> jax.Array:
    """Min-max to [0, 1]; a constant window becomes all ones (``fmi.m``)."""
    lo, hi = jnp.min(v), jnp.max(v)
    flat = hi == lo
    return jnp.where(flat, jnp.ones_like(v), (v - lo) / jnp.where(flat, 1.0, hi - lo))


def _plogp(p: jax.Array) -> jax.Array:
    """``-p log2|p|`` where ``p != 0`` (MATLAB's ``real(-p log2 p)`` also for tiny negative p), else 0."""
    nz = p != 0
    return jnp.where(nz, -p * jnp.log2(jnp.abs(jnp.where(nz, p, 1.0))), 0.0)


def fmi_window(a: jax.Array, f: jax.Array) -> jax.Array:
    """Haghighat's normalised feature MI of one window pair, flattened column-major ``(w*w,)`` each.

    Marginal pdfs = min-max normalised features over their sum; joint pdf by the simplified Nelsen
    method: ``phi * dH + (1 - phi) * p_F p_A`` with H the upper Frechet bound ``min(F_i, A_j)``
    (Pearson c >= 0, ``phi = c / corr_up``) or the lower one ``max(F_i + A_j - 1, 0)`` (c < 0,
    ``theta = c / corr_lo``); result ``2 MI / (H_A + H_F)``, 1 for identical windows, 0 for MI = 0.
    """
    n = a.shape[-1]
    pa = _unit(a)
    pf = _unit(f)
    pa, pf = pa / jnp.sum(pa), pf / jnp.sum(pf)
    ca, cf = jnp.cumsum(pa), jnp.cumsum(pf)
    ta, tf = pa - jnp.sum(pa) / n, pf - jnp.sum(pf) / n
    num = jnp.sum(ta * tf)
    c = jnp.where(num == 0, 0.0, safe_div(num, jnp.sqrt(jnp.sum(ta * ta) * jnp.sum(tf * tf))))
    idx = jnp.arange(1, n + 1, dtype=pa.dtype)
    sd = lambda p: jnp.sqrt(jnp.maximum(jnp.sum(idx * idx * p) - jnp.sum(idx * p) ** 2, 0.0))  # noqa: E731
    sd_a, sd_f = sd(pa), sd(pf)
    fi, aj = cf[:, None], ca[None, :]
    h_up = 0.5 * (fi + aj - jnp.abs(fi - aj))
    h_lo = 0.5 * (fi + aj - 1.0 + jnp.abs(fi + aj - 1.0))
    prod = fi * aj
    denom = sd_f * sd_a
    degenerate = (sd_a == 0) | (sd_f == 0)
    phi_up = jnp.where(degenerate | (c == 0), 0.0, safe_div(c, safe_div(jnp.sum(h_up - prod), denom)))
    phi_lo = jnp.where(degenerate, 0.0, safe_div(c, safe_div(jnp.sum(h_lo - prod), denom)))
    upper = c >= 0
    phi = jnp.where(upper, phi_up, phi_lo)
    h = jnp.where(upper, h_up, h_lo)
    hp = jnp.pad(h, ((1, 0), (1, 0)))
    dh = hp[1:, 1:] - hp[:-1, 1:] - hp[1:, :-1] + hp[:-1, :-1]
    jpdf = phi * dh + (1.0 - phi) * pf[:, None] * pa[None, :]
    h_a, h_f = jnp.sum(_plogp(pa)), jnp.sum(_plogp(pf))
    mi = h_a + h_f - jnp.sum(_plogp(jpdf))
    out = jnp.where(mi == 0, 0.0, safe_div(2.0 * mi, h_a + h_f))
    return jnp.where(jnp.all(a == f), jnp.ones_like(out), out)


def _window_columns(feat: jax.Array, w: int) -> jax.Array:
    """All ``w x w`` 'valid' windows ``(N, w*w)``, each flattened column-major like MATLAB ``x(:)``."""
    p = extract_patches(feat, w, stride=1)
    return jnp.swapaxes(p, -1, -2).reshape(p.shape[0], w * w)


@register_metric("fmi", direction="higher", convention="mefb", range=(0, 1), ideal=1.0)
def fmi(sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, window: int = 3) -> jax.Array:
    """Feature mutual information, Haghighat et al. 2011 (fast-FMI ``fmi.m`` as in MEFB ``metricsFMI``), edge feature.

    Features are MATLAB ``edge(x)`` binary maps (:func:`jfusion.ops.sobel_edges`: Sobel, automatic
    threshold ``cutoff = 4 * mean(bx^2 + by^2)`` with the /8-scaled Sobel gradients, edge thinning
    by non-maximum suppression along the dominant axis, as MATLAB R2013+ ``edge.m``; in float32 the
    mean and the comparisons are float32, so pixels within rounding of the cutoff may differ).
    Every ``window x window`` 'valid' window (stride 1, column-major flattening) gives
    :func:`fmi_window` for each source against F; FMI = mean over windows of the mean over sources
    (the reference's ``(FMI_AF + FMI_BF) / 2``).

    Args:
      sources: ``(S, H, W)`` in [0, data_range]; fused: ``(H, W)``; window: odd window size.

    Returns:
      scalar in [0, 1].
    """
    x = to_grey_levels(sources, data_range)
    f = to_grey_levels(fused, data_range)
    dt = jnp.result_type(x.dtype, jnp.float32)
    ex = sobel_edges(x).astype(dt)
    ef = sobel_edges(f).astype(dt)
    wf = _window_columns(ef, window)
    s = ex.shape[0]
    wx = jax.vmap(lambda e: _window_columns(e, window))(ex)  # (S, N, w*w)
    pairs = (wx.reshape(-1, wx.shape[-1]), jnp.tile(wf, (s, 1)))
    # vectorised in chunks of _FMI_CHUNK windows to bound the (N, w^2, w^2) intermediates
    vals = jax.lax.map(lambda p: fmi_window(*p), pairs, batch_size=_FMI_CHUNK)
    return jnp.mean(vals)  # equal window counts: the mean over windows of the mean over sources
