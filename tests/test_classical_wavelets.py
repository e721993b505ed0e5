"""Wavelets: coefficients equal to PyWavelets (wavedec2/waverec2, swt2/iswt2) to 1e-5, reconstruction, jit/vmap."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
import pywt

from jfusion.transforms import wavelets as WV

WAVELETS = ["haar", "db2", "db8", "sym3", "sym8", "bior1.3", "bior3.7", "bior6.8"]
TOL = 1e-5  # float32 computation against PyWavelets in float64


@functools.partial(jax.jit, static_argnames=("wavelet", "level", "mode"))
def _dec_rec(x, wavelet, level, mode):
    c = WV.wavedec2(x, wavelet=wavelet, level=level, mode=mode)
    return c, WV.waverec2(c, wavelet=wavelet, mode=mode)


@functools.partial(jax.jit, static_argnames=("wavelet", "level"))
def _swt_rec(x, wavelet, level):
    c = WV.swt2(x, wavelet=wavelet, level=level)
    return c, WV.iswt2(c, wavelet=wavelet)


def _assert_coeffs_equal(ours, ref):
    assert len(ours) == len(ref)
    np.testing.assert_allclose(np.asarray(ours[0]), ref[0], atol=TOL)
    for det_o, det_r in zip(ours[1:], ref[1:]):
        for a, b in zip(det_o, det_r):
            assert a.shape == b.shape
            np.testing.assert_allclose(np.asarray(a), b, atol=TOL)


@pytest.mark.parametrize("wavelet", WAVELETS)
@pytest.mark.parametrize("mode", ["symmetric", "periodization"])
@pytest.mark.parametrize("level,shape", [(1, (21, 26)), (3, (40, 37))])
def test_wavedec2_waverec2_match_pywavelets(wavelet, mode, level, shape, rng):
    x = rng.random(shape).astype(np.float32)
    ours, rec = _dec_rec(x, wavelet, level, mode)
    with _nowarn():
        ref = pywt.wavedec2(x.astype(np.float64), wavelet, mode=mode, level=level)
        ref_rec = pywt.waverec2(ref, wavelet, mode=mode)
    _assert_coeffs_equal(ours, ref)
    assert rec.shape == ref_rec.shape
    np.testing.assert_allclose(np.asarray(rec), ref_rec, atol=TOL)
    np.testing.assert_allclose(np.asarray(rec)[: shape[0], : shape[1]], x, atol=TOL)  # perfect reconstruction


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db5", "sym4", "sym8", "bior2.4", "bior3.1"])
def test_swt2_iswt2_match_pywavelets(wavelet, rng):
    x = rng.random((32, 24)).astype(np.float32)
    ours, rec = _swt_rec(x, wavelet, 3)
    ref = pywt.swt2(x.astype(np.float64), wavelet, level=3, trim_approx=True)
    _assert_coeffs_equal(ours, ref)
    np.testing.assert_allclose(np.asarray(rec), pywt.iswt2(ref, wavelet), atol=TOL)
    np.testing.assert_allclose(np.asarray(rec), x, atol=TOL)


def test_dwt_max_level_matches_pywavelets():
    for n in (8, 33, 100, 520):
        for w in ("haar", "db4", "sym8", "bior6.8"):
            assert WV.dwt_max_level(n, w) == pywt.dwt_max_level(n, pywt.Wavelet(w).dec_len)


def test_filter_tables_match_pywavelets():
    for name in WV.WAVELETS:
        w = pywt.Wavelet(name)
        for ours, ref in zip(WV.wavelet_filters(name), (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi)):
            np.testing.assert_allclose(ours, ref, atol=1e-15)


def test_wavelets_vmap_equals_loop(rng):
    x = rng.random((3, 16, 24)).astype(np.float32)
    f = lambda v: WV.wavedec2(v, wavelet="db2", level=2, mode="symmetric")[1][0]  # noqa: E731
    batched = np.asarray(jax.jit(jax.vmap(f))(x))
    stacked = np.asarray(jax.jit(f)(x))  # leading axes ride along
    np.testing.assert_allclose(batched, stacked, atol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown wavelet"):
        WV.wavelet_filters("db99")
    with pytest.raises(ValueError, match="divisible"):
        WV.swt2(np.zeros((10, 12), np.float32), wavelet="haar", level=2)
    with pytest.raises(ValueError, match="mode"):
        WV.dwt2(np.zeros((8, 8), np.float32), wavelet="haar", mode="zero")


class _nowarn:
    """Silence PyWavelets' 'level too high' boundary-effect warning for the small test images."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
