"""Wald protocol and classical pan-sharpening against direct NumPy/SciPy transcriptions.

Tolerances: float32 JAX vs float64 NumPy, values of order 1: 2e-4 absolute unless stated.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi

import jfusion
from jfusion.errors import FusionInputError
from jfusion.ops import filter2d, filter2d_dense
from jfusion.pansharpening import cs, mra, wald
from jfusion.pansharpening import get_pansharpening_method, list_pansharpening_methods, read_scene

sys.path.insert(0, str(Path(__file__).parent))
from conftest import data_path  # noqa: E402
from remote_metrics_np import ergas, q2n, sam  # noqa: E402

TOL = 2e-4
CLASSICAL = ["exp", "ihs", "gihs", "brovey", "pca", "gs", "gsa", "atwt", "mtf-glp", "mtf-glp-hpm", "hpf"]


# ----------------------------------------------------------------------------- NumPy transcriptions
def np_interp23tap(img: np.ndarray, ratio: int) -> np.ndarray:
    k = wald.interp23tap_kernel()
    x = img.astype(np.float64)
    for step in range(int(np.log2(ratio))):
        up = np.zeros((2 * x.shape[0], 2 * x.shape[1]) + x.shape[2:])
        o = 1 if step == 0 else 0
        up[o::2, o::2] = x
        up = ndi.correlate1d(up, k, axis=0, mode="wrap")
        x = ndi.correlate1d(up, k, axis=1, mode="wrap")
    return x


def np_mtf(img: np.ndarray, gains, ratio: int) -> np.ndarray:
    return np.stack([ndi.correlate(img[..., b].astype(np.float64), wald.mtf_kernel(g, ratio), mode="nearest") for b, g in enumerate(gains)], -1)


def np_match(x, t):
    return (x - x.mean()) * t.std() / x.std() + t.mean()


def np_reference(name: str, ms: np.ndarray, pan: np.ndarray, ratio: int, sensor: str) -> np.ndarray:
    """The formula of each method written out directly (Vivone et al. 2015 notation)."""
    up = np_interp23tap(ms, ratio)
    pan = pan.astype(np.float64)
    b = up.shape[-1]
    if name == "exp":
        return up
    if name in ("ihs", "brovey", "gs"):
        i = up.mean(-1)
        p = np_match(pan, i)
        if name == "ihs":
            return up + (p - i)[..., None]
        if name == "brovey":
            return up * (p / i)[..., None]
        g = np.array([np.cov(up[..., k].ravel(), i.ravel())[0, 1] / np.var(i, ddof=1) for k in range(b)])
        return up + (p - i)[..., None] * g
    if name == "gihs":
        i = up.mean(-1)
        return up + (pan - i)[..., None]
    if name == "pca":
        x = up.reshape(-1, b)
        mu = x.mean(0)
        evals, evecs = np.linalg.eigh(np.cov((x - mu).T))
        v = evecs[:, np.argmax(evals)]
        v = v * np.sign(v.sum())
        scores = (x - mu) @ evecs
        j = np.argmax(evals)
        if np.sign(evecs[:, j].sum()) < 0:
            scores[:, j] *= -1
            evecs[:, j] *= -1
        pc1 = scores[:, j].reshape(pan.shape)
        scores[:, j] = np_match(pan, pc1).ravel()
        return (scores @ evecs.T + mu).reshape(up.shape)
    if name == "gsa":
        pan_lr = ndi.correlate(pan, wald.mtf_kernel(wald.sensor_mtf(sensor).pan_gain, ratio), mode="nearest")[ratio // 2 :: ratio, ratio // 2 :: ratio]
        a = ms.reshape(-1, b).astype(np.float64)
        a = np.c_[a - a.mean(0), np.ones(len(a))]
        w = np.linalg.lstsq(a, (pan_lr - pan_lr.mean()).ravel(), rcond=None)[0]
        i = (up - up.mean((0, 1))) @ w[:-1] + w[-1]
        p = np_match(pan, i)
        g = np.array([np.cov(up[..., k].ravel(), i.ravel())[0, 1] / np.var(i, ddof=1) for k in range(b)])
        return up + (p - i)[..., None] * g
    p = np.stack([np_match(pan, up[..., k]) for k in range(b)], -1)
    if name == "atwt":
        lp = p.copy()
        for j in range(int(np.log2(ratio))):
            k = np.zeros(4 * 2**j + 1)
            k[:: 2**j] = mra.B3_SPLINE
            lp = ndi.correlate1d(ndi.correlate1d(lp, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")
        return up + p - lp
    if name == "hpf":
        r = ratio // 2
        lp = ndi.uniform_filter(p, size=(2 * r + 1, 2 * r + 1, 1), mode="nearest")
        return up + p - lp
    gains = [wald.sensor_mtf(sensor).ms_gains[k % len(wald.sensor_mtf(sensor).ms_gains)] for k in range(b)]
    lp = np_interp23tap(np_mtf(p, gains, ratio)[ratio // 2 :: ratio, ratio // 2 :: ratio], ratio)
    if name == "mtf-glp":
        return up + p - lp
    if name == "mtf-glp-hpm":
        return up * p / lp
    raise KeyError(name)


def small_scene(rng, h=16, bands=4, ratio=4):
    base = rng.random((h * ratio, h * ratio))
    base = ndi.gaussian_filter(base, 2.0)
    pan = 200 + 800 * (base - base.min()) / np.ptp(base)
    ms = np.stack([ndi.gaussian_filter(pan, 3)[ratio // 2 :: ratio, ratio // 2 :: ratio] * (0.5 + 0.2 * k) + 30 * rng.random((h, h)) for k in range(bands)], -1)
    return ms.astype(np.float32), pan.astype(np.float32)


# ----------------------------------------------------------------------------- Wald protocol
def test_filter2d_dense_matches_tap_loop(rng):
    x = rng.random((2, 19, 23)).astype(np.float32)
    k = rng.random((6, 7))
    for border in ("reflect", "symmetric", "replicate", "zero", "periodic"):
        np.testing.assert_allclose(filter2d_dense(x, k, border=border), filter2d(x, k, border=border), atol=1e-5)


@pytest.mark.parametrize("sensor", ["QB", "IKONOS", "GeoEye1", "WV2", "WV3", None])
def test_mtf_kernel_gain_at_nyquist(sensor):
    mtf = wald.sensor_mtf(sensor)
    for g in set(mtf.ms_gains) | {mtf.pan_gain}:
        k = wald.mtf_kernel(g, 4)
        assert k.shape == (41, 41)
        assert abs(k.sum() - 1) < 1e-12
        np.testing.assert_allclose(k, k.T, atol=1e-15)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)
        # The Kaiser window and the clipping of negative taps lower the realised gain a little:
        # measured |realised - nominal| <= 0.02 for all tabulated gains (0.5 for WV3 PAN: 0.03).
        assert abs(wald.nyquist_gain(k, 4) - g) < 0.035


def test_sensor_aliases_and_unknown():
    assert wald.sensor_mtf("ge1").name == "GeoEye1"
    assert wald.sensor_mtf("IKONOS").name == wald.sensor_mtf("ikonos").name == "IKONOS"
    with pytest.raises(ValueError, match="known"):
        wald.sensor_mtf("landsat9")


def test_interp23tap_matches_numpy_and_interpolates(rng):
    x = rng.random((12, 10, 3)).astype(np.float32)
    up = wald.interp23tap(x, 4)
    assert up.shape == (48, 40, 3)
    np.testing.assert_allclose(up, np_interp23tap(x, 4), atol=TOL)
    # The interpolator passes through the samples: decimating at offset r/2 gives them back.
    np.testing.assert_allclose(wald.decimate(up, 4), x, atol=TOL)
    np.testing.assert_allclose(wald.interp23tap(np.full((8, 8), 5.0), 2), 5.0, atol=1e-5)


def test_bicubic_upsampling_matches_pillow(rng):
    from PIL import Image

    x = rng.random((9, 11)).astype(np.float32)
    up = np.asarray(wald.upsample_ms(x[..., None], 4, interp="bicubic"))[..., 0]
    ref = np.asarray(Image.fromarray(x, mode="F").resize((44, 36), Image.BICUBIC))
    # PIL's bicubic is Keys a=-0.5 with half-pixel centres, as jax.image.resize; borders differ
    # (PIL renormalises clipped taps, JAX clamps), so compare the interior.
    np.testing.assert_allclose(up[4:-4, 4:-4], ref[4:-4, 4:-4], atol=1e-4)


def test_degrade_matches_numpy_and_shapes(rng):
    ms, pan = small_scene(rng)
    ms_lr, pan_lr = wald.degrade(ms, pan, ratio=4, sensor="IKONOS")
    assert ms_lr.shape == (4, 4, 4) and pan_lr.shape == (16, 16)
    ref_ms = np_mtf(ms, wald.SENSORS["IKONOS"].ms_gains, 4)[2::4, 2::4]
    ref_pan = ndi.correlate(pan.astype(np.float64), wald.mtf_kernel(0.17, 4), mode="nearest")[2::4, 2::4]
    np.testing.assert_allclose(ms_lr, ref_ms, rtol=TOL)
    np.testing.assert_allclose(pan_lr, ref_pan, rtol=TOL)
    b_ms, b_pan = wald.degrade(ms, pan, ratio=4, degradation="bicubic")
    assert b_ms.shape == (4, 4, 4) and b_pan.shape == (16, 16)


def test_reduced_resolution_and_split():
    ms = np.zeros((320, 320, 4), np.float32)
    pan = np.zeros((1280, 1280), np.float32)
    (mtr, ptr), (mte, pte) = wald.split_test_region(ms, pan, 4)
    assert mtr.shape == (320, 240, 4) and ptr.shape == (1280, 960)
    assert mte.shape == (320, 80, 4) and pte.shape == (1280, 320)
    pair = wald.reduced_resolution(mte, pte, ratio=4, sensor="WV2")
    assert pair.ms_lr.shape == (80, 20, 4) and pair.pan_lr.shape == (320, 80) and pair.reference.shape == (320, 80, 4)


# ----------------------------------------------------------------------------- methods vs formulas
@pytest.mark.parametrize("name", CLASSICAL)
def test_method_matches_numpy_formula(name, rng):
    ms, pan = small_scene(rng, h=16, bands=4)
    out = jfusion.pansharpen(ms, pan, method=name, sensor="IKONOS", bit_depth=11)
    ref = np_reference(name, ms, pan, 4, "IKONOS")
    assert out.shape == (64, 64, 4) and out.dtype == jnp.float32
    # values ~100-1000: float32 accumulation of the 41-tap/23-tap filters and the statistics -> rtol 1e-4
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=0.05)


def test_gihs_band_weights(rng):
    ms, pan = small_scene(rng, h=8, bands=3)
    up = np_interp23tap(ms, 4)
    w = (1.0, 2.0, 1.0)
    i = up @ (np.array(w) / 4.0)
    out = cs.gihs(ms, pan, ratio=4, weights=w)
    np.testing.assert_allclose(out, up + (pan - i)[..., None], rtol=1e-4, atol=0.05)


@pytest.mark.parametrize("name", ["ihs", "brovey", "gs"])
def test_cs_returns_ms_when_pan_is_intensity(name, rng):
    ms, _ = small_scene(rng, h=8)
    up = np.asarray(wald.interp23tap(ms, 4))
    pan = 3.0 * up.mean(-1) + 7.0  # any affine copy of I: moment matching maps it back onto I
    np.testing.assert_allclose(get_pansharpening_method(name)(ms, pan, ratio=4), up, rtol=1e-4, atol=1e-2)


def test_pca_returns_ms_when_pan_is_pc1(rng):
    ms, _ = small_scene(rng, h=8)
    up = np.asarray(wald.interp23tap(ms, 4), np.float64)
    x = up.reshape(-1, 4)
    evals, evecs = np.linalg.eigh(np.cov((x - x.mean(0)).T))
    v = evecs[:, -1] * np.sign(evecs[:, -1].sum())  # jfusion's sign convention
    pc1 = ((x - x.mean(0)) @ v).reshape(up.shape[:2])
    out = cs.pca(ms, (2.0 * pc1 + 500.0).astype(np.float32), ratio=4)
    np.testing.assert_allclose(out, up, rtol=1e-4, atol=2e-2)


def test_gsa_returns_ms_when_pan_is_a_band_combination(rng):
    ms, _ = small_scene(rng, h=16)
    up = np.asarray(wald.interp23tap(ms, 4))
    pan = up @ np.array([0.1, 0.4, 0.3, 0.2], np.float32)
    out = np.asarray(cs.gsa(ms, pan, ratio=4, sensor="IKONOS"))
    # The regression runs on the MTF-degraded PAN vs the original MS, so the weights are only
    # approximately those of the combination; measured max relative deviation ~1e-2.
    assert np.max(np.abs(out - up) / up) < 0.03


@pytest.mark.parametrize("name", ["atwt", "mtf-glp", "mtf-glp-hpm", "hpf"])
def test_mra_constant_pan_adds_nothing(name, rng):
    ms, _ = small_scene(rng, h=8)
    pan = np.full((32, 32), 321.0, np.float32)
    up = np.asarray(wald.interp23tap(ms, 4))
    np.testing.assert_allclose(get_pansharpening_method(name)(ms, pan, ratio=4, sensor="QB"), up, rtol=1e-4, atol=1e-2)


def test_jit_and_vmap_over_scenes(rng):
    scenes = [small_scene(rng, h=8) for _ in range(3)]
    ms = np.stack([s[0] for s in scenes])
    pan = np.stack([s[1] for s in scenes])
    for name in ("gsa", "mtf-glp-hpm", "pca"):
        fn = jax.jit(jax.vmap(functools.partial(get_pansharpening_method(name), ratio=4, sensor="IKONOS")))
        out = fn(ms, pan)
        for i in range(3):
            np.testing.assert_allclose(out[i], get_pansharpening_method(name)(ms[i], pan[i], ratio=4, sensor="IKONOS"), rtol=1e-4, atol=1e-2)


def test_registry_lists_classical():
    names = {m.name for m in list_pansharpening_methods()}
    assert set(CLASSICAL) <= names


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages(rng):
    ms, pan = small_scene(rng, h=8)
    with pytest.raises(FusionInputError, match="ratio"):
        jfusion.pansharpen(ms, pan[:30, :30], method="gs")
    with pytest.raises(FusionInputError, match="ratio"):
        jfusion.pansharpen(ms, pan[:32, :16], method="gs")
    with pytest.raises(FusionInputError, match="ratio=2"):
        jfusion.pansharpen(ms, pan, method="gs", ratio=2)
    bad = ms.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(FusionInputError, match="NaN"):
        jfusion.pansharpen(bad, pan, method="gs")
    with pytest.raises(FusionInputError, match="bit_depth"):
        jfusion.pansharpen(ms.astype(np.uint16) + 3000, pan.astype(np.uint16), method="gs", bit_depth=11)
    with pytest.raises(FusionInputError, match="negative"):
        jfusion.pansharpen(ms - 5000, pan, method="gs")
    with pytest.raises(FusionInputError, match="registered"):
        jfusion.pansharpen(ms, pan, method="nope")
    with pytest.raises(FusionInputError, match="sensor"):
        jfusion.pansharpen(ms, pan, method="gs", sensor="landsat9")
    with pytest.raises(FusionInputError, match=r"\(h, w, B\)"):
        jfusion.pansharpen(ms[None], pan, method="gs")


# ----------------------------------------------------------------------------- real scenes
@pytest.mark.parametrize("scene", ["imgGE1.mat", "imgIK.mat", "imgWV2.mat"])
def test_real_scene_reduced_and_full_resolution(scene):
    s = read_scene(data_path("pansharpening", scene))
    _, (ms, pan) = wald.split_test_region(s.ms, s.pan, s.ratio)
    pair = wald.reduced_resolution(ms, pan, ratio=s.ratio, sensor=s.sensor)
    ref = np.asarray(pair.reference)
    scores = {}
    for name in CLASSICAL:
        out = np.asarray(jfusion.pansharpen(pair.ms_lr, pair.pan_lr, method=name, sensor=s.sensor, bit_depth=s.bit_depth))
        assert out.shape == ref.shape and np.all(np.isfinite(out))
        scores[name] = (q2n(ref, out), sam(ref, out), ergas(ref, out))
        # full resolution: a crop of the original pair with the reduced pair's shapes (reuses the compiled function)
        full = jfusion.pansharpen(ms[:80, :20], pan[:320, :80], method=name, sensor=s.sensor, bit_depth=s.bit_depth)
        assert full.shape == (320, 80, ms.shape[-1]) and np.all(np.isfinite(np.asarray(full)))
    # Sanity of the conventions: the MTF-matched GLP beats plain interpolation on Q2n and ERGAS
    # on every scene (as in every published comparison).
    assert scores["mtf-glp"][0] > scores["exp"][0] and scores["mtf-glp"][2] < scores["exp"][2]
    assert scores["mtf-glp-hpm"][0] > scores["exp"][0] and scores["mtf-glp-hpm"][2] < scores["exp"][2]
