"""ops: filters, colour, patches, resampling against OpenCV / SciPy / NumPy references."""

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jfusion import ops

CV_BORDER = {
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
    "replicate": cv2.BORDER_REPLICATE,
    "zero": cv2.BORDER_CONSTANT,
}


@pytest.mark.parametrize("border", sorted(CV_BORDER))
@pytest.mark.parametrize("ksize", [3, 4, 7])
def test_filter2d_matches_opencv(rng, border, ksize):
    x = rng.random((23, 31)).astype(np.float32)
    k = rng.standard_normal((ksize, ksize)).astype(np.float32)
    # OpenCV's filter2D is a correlation anchored at (k-1)//2 when anchor=(-1,-1) for odd kernels;
    # for even kernels its default anchor is k//2, so pass the MATLAB anchor explicitly.
    a = (ksize - 1) // 2
    ref = cv2.filter2D(x, -1, k, anchor=(a, a), borderType=CV_BORDER[border])
    np.testing.assert_allclose(ops.filter2d(x, k, border=border), ref, atol=2e-5)


@pytest.mark.parametrize("border", sorted(CV_BORDER))
def test_separable_gaussian_matches_opencv(rng, border):
    x = rng.random((40, 33)).astype(np.float32)
    ref = cv2.GaussianBlur(x, (11, 11), 2.0, borderType=CV_BORDER[border])
    np.testing.assert_allclose(ops.gaussian_filter(x, 2.0, size=11, border=border), ref, atol=1e-5)


def test_gaussian_kernel_matches_fspecial_formula():
    g = ops.gaussian_kernel1d(5.0, size=11)
    t = np.arange(11) - 5.0
    k2 = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / 50.0)
    np.testing.assert_allclose(np.outer(g, g), k2 / k2.sum(), rtol=1e-12)


@pytest.mark.parametrize("size", [1, 3, 4, 8, 31])
@pytest.mark.parametrize("border", ["zero", "symmetric", "replicate", "periodic"])
def test_window_sum_matches_scipy(rng, size, border):
    x = rng.random((37, 29)).astype(np.float64)
    mode = {"zero": "constant", "symmetric": "reflect", "replicate": "nearest", "periodic": "wrap"}[border]
    # scipy's origin convention: window centred at size//2 -> shift to MATLAB anchor (size-1)//2.
    origin = -(1 - size % 2) if size % 2 == 0 else 0
    ref = ndimage.uniform_filter(x, size, mode=mode, origin=origin) * size * size
    out = np.asarray(ops.window_sum(x.astype(np.float32), size, border=border))
    # float32 cumulative sums over <= 37*29 values in [0, 1]: absolute error ~1e-5 at most.
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=2e-5)


def test_box_filter_count_normalisation(rng):
    x = rng.random((20, 25)).astype(np.float32)
    out = np.asarray(ops.box_filter(x, 3))
    ref = np.empty_like(x)
    for i in range(20):
        for j in range(25):
            ref[i, j] = x[max(i - 3, 0) : i + 4, max(j - 3, 0) : j + 4].mean()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_sobel_matches_opencv(rng):
    x = rng.random((30, 30)).astype(np.float32)
    gx, gy = ops.sobel(x, border="replicate")
    np.testing.assert_allclose(gx, cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE), atol=1e-5)
    np.testing.assert_allclose(gy, cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE), atol=1e-5)


def test_laplacian_matches_opencv(rng):
    x = rng.random((30, 30)).astype(np.float32)
    ref = cv2.Laplacian(x, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(ops.laplacian(x, border="replicate"), ref, atol=1e-5)


def _guided_numpy(i, p, r, eps):
    """He et al. 2013, Alg. 1, with explicit window means over in-image pixels."""
    h, w = i.shape

    def mean(v):
        out = np.empty_like(v)
        for y in range(h):
            for x in range(w):
                out[y, x] = v[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1].mean()
        return out

    mi, mp = mean(i), mean(p)
    a = (mean(i * p) - mi * mp) / (mean(i * i) - mi * mi + eps)
    b = mp - a * mi
    return mean(a) * i + mean(b)


@pytest.mark.parametrize("r,eps", [(2, 1e-2), (4, 1e-4)])
def test_guided_filter_matches_direct_formula(rng, r, eps):
    i = rng.random((18, 21))
    p = rng.random((18, 21))
    ref = _guided_numpy(i, p, r, eps)
    out = ops.guided_filter(i.astype(np.float32), p.astype(np.float32), r, eps)
    np.testing.assert_allclose(out, ref, atol=2e-4)


def test_filters_batch_over_leading_axes(rng):
    x = rng.random((2, 3, 16, 17)).astype(np.float32)
    out = ops.gaussian_filter(x, 1.5)
    np.testing.assert_allclose(out[1, 2], ops.gaussian_filter(x[1, 2], 1.5), atol=1e-7)
    out_v = jax.vmap(jax.vmap(lambda v: ops.guided_filter(v, v, 2, 1e-3)))(x)
    np.testing.assert_allclose(out_v, ops.guided_filter(x, x, 2, 1e-3), atol=1e-6)


def test_ycbcr_matches_opencv_and_pil(rng):
    rgb = rng.random((12, 9, 3)).astype(np.float32)
    ycc = np.asarray(ops.rgb_to_ycbcr(rgb))
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]]
    # Y is the same formula; OpenCV rounds the chroma factors to 0.564 / 0.713 (exact: 0.5643 / 0.7133).
    np.testing.assert_allclose(ycc[..., 0], ref[..., 0], atol=1e-6)
    np.testing.assert_allclose(ycc[..., 1:], ref[..., 1:], atol=5e-4)
    from PIL import Image

    u8 = (rgb * 255).round().astype(np.uint8)
    pil = np.asarray(Image.fromarray(u8).convert("YCbCr"), dtype=np.float64)
    ours = np.asarray(ops.rgb_to_ycbcr(u8.astype(np.float32) / 255.0)) * 255.0
    assert np.abs(pil - ours).max() <= 1.0  # PIL rounds to integers
    np.testing.assert_allclose(ops.ycbcr_to_rgb(ycc), rgb, atol=1e-6)


def test_patches_roundtrip_and_order(rng):
    x = rng.random((21, 26, 2)).astype(np.float32)
    p = ops.extract_patches(x, 8, stride=3)
    rs, cs = ops.patch_starts(21, 8, 3), ops.patch_starts(26, 8, 3)
    assert p.shape == (len(rs) * len(cs), 8, 8, 2)
    assert rs[-1] == 13 and cs[-1] == 18
    np.testing.assert_array_equal(p[1], x[0:8, cs[1] : cs[1] + 8])
    np.testing.assert_allclose(ops.fold_patches(p, (21, 26), 8, stride=3), x, atol=1e-6)


def test_fold_averages_overlaps():
    p = jnp.stack([jnp.zeros((4, 4)), jnp.ones((4, 4))])
    out = np.asarray(ops.fold_patches(p, (4, 6), 4, stride=2))
    np.testing.assert_allclose(out[:, :2], 0.0)
    np.testing.assert_allclose(out[:, 2:4], 0.5)
    np.testing.assert_allclose(out[:, 4:], 1.0)


def test_resize_matches_opencv_bilinear(rng):
    x = rng.random((16, 20)).astype(np.float32)
    out = ops.resize(x, (32, 40), method="bilinear")
    ref = cv2.resize(x, (40, 32), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_downsample_upsample_zeros():
    x = jnp.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(ops.downsample(ops.upsample_zeros(x, 2, offset=1), 2, offset=1), x)


def test_correlate_valid_matches_numpy():
    rng = np.random.default_rng(11)
    x = rng.random((2, 9, 12))
    k = np.array([0.25, 0.0, 0.5, -0.125])
    got_rows = np.asarray(ops.correlate_valid(jnp.asarray(x), k, -2))
    got_cols = np.asarray(ops.correlate_valid(jnp.asarray(x), k, -1))
    ref_rows = np.apply_along_axis(lambda v: np.correlate(v, k, "valid"), -2, x)
    ref_cols = np.apply_along_axis(lambda v: np.correlate(v, k, "valid"), -1, x)
    assert got_rows.shape == (2, 6, 12) and got_cols.shape == (2, 9, 9)
    np.testing.assert_allclose(got_rows, ref_rows, atol=1e-6)  # float32 arithmetic
    np.testing.assert_allclose(got_cols, ref_cols, atol=1e-6)
