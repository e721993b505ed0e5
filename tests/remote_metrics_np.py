"""Direct NumPy transcriptions of the pan-sharpening quality indices (Vivone et al. toolbox), test use only.

SAM (degrees), ERGAS, Q2n (hypercomplex UIQI over 32x32 blocks, Garzelli & Nencini 2009).
Q2n here uses non-overlapping blocks on the largest block-aligned crop (the toolbox pads
instead); that is a test oracle choice, not jfusion's metric.
"""

from __future__ import annotations

import numpy as np


def sam(ref: np.ndarray, fused: np.ndarray) -> float:
    ref = np.asarray(ref, np.float64)
    fused = np.asarray(fused, np.float64)
    num = np.sum(ref * fused, axis=-1)
    den = np.sqrt(np.sum(ref**2, axis=-1) * np.sum(fused**2, axis=-1))
    ok = den > 0
    ang = np.arccos(np.clip(num[ok] / den[ok], -1.0, 1.0))
    return float(np.degrees(ang.mean()))


def ergas(ref: np.ndarray, fused: np.ndarray, ratio: int = 4) -> float:
    ref = np.asarray(ref, np.float64)
    fused = np.asarray(fused, np.float64)
    mse = np.mean((ref - fused) ** 2, axis=(0, 1))
    mu = np.mean(ref, axis=(0, 1))
    return float(100.0 / ratio * np.sqrt(np.mean(mse / mu**2)))


def _conj(x):
    return np.concatenate([x[..., :1], -x[..., 1:]], axis=-1)


def _onion_mult(a, b):
    """Cayley-Dickson product of hypercomplex numbers stored on the last axis (length 2^k)."""
    n = a.shape[-1]
    if n == 1:
        return a * b
    h = n // 2
    a1, a2 = a[..., :h], a[..., h:]
    b1, b2 = b[..., :h], b[..., h:]
    return np.concatenate([_onion_mult(a1, b1) - _onion_mult(_conj(b2), a2), _onion_mult(b2, a1) + _onion_mult(a2, _conj(b1))], -1)


def _onion_quality(x, y):
    # x, y: (S, S, n) blocks, n a power of two. UIQI generalised to hypercomplex numbers.
    x = x.reshape(-1, x.shape[-1]).astype(np.float64)
    y = y.reshape(-1, y.shape[-1]).astype(np.float64)
    # block normalisation by x's band statistics, applied to both (toolbox norm_blocco)
    mu = x.mean(0)
    sd = x.std(0, ddof=1)
    sd = np.where(sd == 0, np.finfo(float).eps, sd)
    x = (x - mu) / sd + 1
    y = (y - mu) / sd + 1
    m = x.shape[0]
    mx, my = x.mean(0), y.mean(0)
    c = m / (m - 1.0)
    var_x = c * (np.mean(np.sum(x**2, -1)) - np.sum(mx**2))
    var_y = c * (np.mean(np.sum(y**2, -1)) - np.sum(my**2))
    mod_mx2, mod_my2 = np.sum(mx**2), np.sum(my**2)
    mean_bias = 2 * np.sqrt(mod_mx2 * mod_my2) / (mod_mx2 + mod_my2)
    if var_x + var_y == 0:
        return mean_bias
    cov = c * (np.mean(_onion_mult(x, _conj(y)), 0) - _onion_mult(mx, _conj(my)))
    return float(np.sqrt(np.sum(cov**2)) * 2 / (var_x + var_y) * mean_bias)


def q2n(ref: np.ndarray, fused: np.ndarray, block: int = 32) -> float:
    ref = np.asarray(ref, np.float64)
    fused = np.asarray(fused, np.float64)
    b = ref.shape[-1]
    n = 1 << int(np.ceil(np.log2(b)))
    if n > b:
        pad = np.zeros(ref.shape[:2] + (n - b,))
        ref = np.concatenate([ref, pad], -1)
        fused = np.concatenate([fused, pad], -1)
    hb, wb = ref.shape[0] // block, ref.shape[1] // block
    vals = [
        _onion_quality(ref[i * block : (i + 1) * block, j * block : (j + 1) * block], fused[i * block : (i + 1) * block, j * block : (j + 1) * block])
        for i in range(hb)
        for j in range(wb)
    ]
    return float(np.mean(vals))
