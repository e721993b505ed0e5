"""Metric arithmetic on awkward but valid data (issue 16): flat regions, integer dtypes, MS-SSIM's reference form.

References are independent NumPy float64 implementations written here: windowed statistics from
explicit windows (``sliding_window_view``), where a window whose pixels are all equal has exactly
zero variance and covariance, as in exact arithmetic.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import jfusion.metrics as jm

# ---------------------------------------------------------------------------------------------
# 1. flat regions: windowed variances of flat windows are exactly 0 (no cancellation noise)


def _gauss7() -> np.ndarray:
    t = np.arange(7) - 3.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    k = np.outer(g, g)
    return k / k.sum()


def _win_stats(x: np.ndarray, y: np.ndarray):
    """Exact 7x7 Gaussian 'valid' statistics: means, variances, covariance (two-pass, flat windows 0)."""
    k = _gauss7()
    wx, wy = sliding_window_view(x, (7, 7)), sliding_window_view(y, (7, 7))
    mx, my = np.einsum("ijab,ab->ij", wx, k), np.einsum("ijab,ab->ij", wy, k)
    dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
    flat_x = np.ptp(wx, axis=(-2, -1)) == 0
    flat_y = np.ptp(wy, axis=(-2, -1)) == 0
    vx = np.where(flat_x, 0.0, np.einsum("ijab,ab->ij", dx * dx, k))
    vy = np.where(flat_y, 0.0, np.einsum("ijab,ab->ij", dy * dy, k))
    cxy = np.where(flat_x | flat_y, 0.0, np.einsum("ijab,ab->ij", dx * dy, k))
    return mx, my, vx, vy, cxy


def _ssim_liu(x, y):
    c = 2e-16
    mx, my, vx, vy, cxy = _win_stats(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((2 * mx * my + c) * (2 * cxy + c)) / ((mx**2 + my**2 + c) * (vx + vy + c)), (vx, cxy)


def _qy_ref(a, b, f):
    """Liu's metricYang (MEFB convention: windows that come out NaN are dropped)."""
    qa, (va, _) = _ssim_liu(a, f)
    qb, (vb, _) = _ssim_liu(b, f)
    qab, _ = _ssim_liu(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = va / (va + vb)
    q = np.where(qab >= 0.75, lam * qa + (1 - lam) * qb, np.maximum(qa, qb))
    return np.nanmean(q)


def _qc_ref(a, b, f):
    """Liu's metricCvejic (MEFB convention): sim = s_AF / (s_AF + s_BF), 0 / 1 outside [0, 1], NaN dropped."""
    qa, (_, ca) = _ssim_liu(a, f)
    qb, (_, cb) = _ssim_liu(b, f)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = ca / (ca + cb)
    q = sim * qa + (1 - sim) * qb
    q = np.where(sim < 0, 0.0, np.where(sim > 1, 1.0, q))
    return np.nanmean(q)


def _flat_pair(value: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    a, b = rng.random((64, 64)), rng.random((64, 64))
    a[:32] = b[:32] = value
    return a, b, 0.5 * (a + b)


@pytest.mark.parametrize("value", [0.123, 0.5, 1.0, 0.7])
@pytest.mark.parametrize("x64", [False, True])
def test_qy_qc_flat_regions_match_exact_reference(value, x64):
    a, b, f = _flat_pair(value)
    ref_qy = _qy_ref(a * 255, b * 255, f * 255)
    ref_qc = _qc_ref(a * 255, b * 255, f * 255)
    with jax.enable_x64(x64):
        got = jm.evaluate([a, b], f, ["qy", "qc"])
        eager = float(jm.qy(np.stack([a, b]) * 255, f * 255, data_range=255.0))
    tol = 1e-7 if x64 else 2e-5  # Q_C divides by s_AF + s_BF, which cancels in places
    assert got["qy"] == pytest.approx(ref_qy, abs=tol)
    assert got["qc"] == pytest.approx(ref_qc, abs=tol)
    assert eager == pytest.approx(ref_qy, abs=tol)  # eager and jitted arithmetic agree


def test_local_stats_flat_windows_are_exactly_zero():
    from jfusion.metrics.structural import local_stats

    x = np.full((40, 40), 0.123 * 255)
    y = np.full((40, 40), 0.377 * 255)
    for window, size in (("gaussian", 7), ("gaussian", 11), ("uniform", 8)):
        st = jax.jit(lambda u, v: local_stats(u, v, window=window, win_size=size))(x, y)
        assert float(np.abs(st.var_x).max()) == 0.0
        assert float(np.abs(st.var_y).max()) == 0.0
        assert float(np.abs(st.cov).max()) == 0.0


def test_qy_on_lytro_laplacian_is_in_range():
    from tests.conftest import data_path

    import jfusion as jf
    from jfusion.io import read_image

    a = read_image(data_path("lytro", "lytro-11-A.jpg"))
    b = read_image(data_path("lytro", "lytro-11-B.jpg"))
    f = jf.fuse([a, b], method="laplacian")
    got = jm.evaluate([a, b], f, ["qy", "qc"])
    assert 0.0 <= got["qy"] <= 1.0 and 0.0 <= got["qc"] <= 1.0, got
