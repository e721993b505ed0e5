"""HDR utilities (jfusion.hdr) and radiance files (jfusion.io) against numpy, skimage and OpenCV."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jfusion import FusionInputError, hdr
from jfusion.io import FusionOutputError, read_radiance, write_radiance


def test_mu_law_formula_inverse_and_loss_gradient(rng):
    h = rng.random((8, 9, 3)).astype(np.float32)
    ref = np.log1p(5000.0 * h.astype(np.float64)) / np.log1p(5000.0)
    np.testing.assert_allclose(np.asarray(hdr.mu_law(h)), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(hdr.mu_law_inverse(hdr.mu_law(h))), h, rtol=1e-4, atol=1e-6)
    t = rng.random((8, 9, 3)).astype(np.float32)
    loss = float(hdr.mu_law_loss(h, t))
    assert loss == pytest.approx(np.mean((ref - np.log1p(5000.0 * t) / np.log1p(5000.0)) ** 2), rel=1e-4)
    g = np.asarray(jax.grad(lambda e: hdr.mu_law_loss(e, t))(jnp.asarray(h)))
    gref = 2 * (ref - np.log1p(5000.0 * t) / np.log1p(5000.0)) * 5000.0 / ((1 + 5000.0 * h) * np.log1p(5000.0)) / h.size
    np.testing.assert_allclose(g, gref, rtol=1e-3, atol=1e-9)


def test_domain_mapping_round_trip(rng):
    i = rng.random((6, 7, 3)).astype(np.float32)
    h = hdr.ldr_to_hdr(i, 0.25)
    np.testing.assert_allclose(np.asarray(h), i.astype(np.float64) ** 2.2 / 0.25, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(hdr.hdr_to_ldr(h, 0.25)), i, atol=1e-5)
    np.testing.assert_allclose(np.asarray(hdr.exposure_times([-2, 0, 2])), [0.25, 1, 4])


def test_psnr_metrics_and_ssim_mu_vs_skimage(rng):
    metrics = pytest.importorskip("skimage.metrics")
    t = rng.random((40, 44, 3)).astype(np.float32) ** 3
    e = np.clip(t + rng.normal(0, 0.02, t.shape), 0, 1).astype(np.float32)
    tm = lambda x: np.log1p(5000.0 * x.astype(np.float64)) / np.log1p(5000.0)  # noqa: E731
    assert float(hdr.psnr_l(e, t)) == pytest.approx(10 * np.log10(1 / np.mean((e - t.astype(np.float64)) ** 2)), abs=1e-3)
    assert float(hdr.psnr_mu(e, t)) == pytest.approx(10 * np.log10(1 / np.mean((tm(e) - tm(t)) ** 2)), abs=1e-3)
    ref = metrics.structural_similarity(tm(e), tm(t), data_range=1.0, channel_axis=-1, gaussian_weights=True,
                                        sigma=1.5, use_sample_covariance=False)
    assert float(hdr.ssim_mu(e, t)) == pytest.approx(ref, abs=1e-4)


def test_rgbe_round_trip_and_opencv_decoder(tmp_path, rng):
    cv2 = pytest.importorskip("cv2")
    rad = (rng.random((17, 23, 3)) ** 2 * np.exp2(rng.integers(-8, 8, (17, 23, 1)))).astype(np.float32)
    rad[0, 0] = 0.0
    path = write_radiance(tmp_path / "x.hdr", rad)
    ours = read_radiance(path)
    # RGBE keeps 8 mantissa bits of each pixel's largest channel
    err = np.abs(ours - rad) / np.maximum(rad.max(axis=-1, keepdims=True), 1e-30)
    assert err.max() < 1 / 128
    theirs = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=0)
    # a file OpenCV writes (run-length encoded) reads back as OpenCV reads it
    other = tmp_path / "cv.hdr"
    assert cv2.imwrite(str(other), np.ascontiguousarray(rad[..., ::-1]))
    np.testing.assert_allclose(read_radiance(other), cv2.imread(str(other), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)[..., ::-1],
                               rtol=1e-6, atol=0)
    with pytest.raises(FusionOutputError):
        write_radiance(path, rad)  # no overwrite without asking
    write_radiance(path, rad, overwrite=True)


def test_float_tiff_radiance_is_exact(tmp_path, rng):
    rad = (rng.random((9, 11, 3)) * 40).astype(np.float32)
    np.testing.assert_array_equal(read_radiance(write_radiance(tmp_path / "x.tif", rad)), rad)


def test_radiance_bad_input(tmp_path):
    with pytest.raises(FusionInputError, match="radiance"):
        write_radiance(tmp_path / "a.hdr", -np.ones((4, 4, 3)))
    with pytest.raises(FusionOutputError):
        write_radiance(tmp_path / "a.png", np.ones((4, 4, 3)))
    (tmp_path / "b.hdr").write_bytes(b"not radiance")
    with pytest.raises(FusionInputError, match="Radiance"):
        read_radiance(tmp_path / "b.hdr")
