"""Synthetic multi-focus pairs (spec 1.2), the grain folder pipeline and the TFDS builder."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jfusion.data import blur_margin, crop_dataset, image_paths, load_crop_pool, progressive_blur, sample_focus_batch
from jfusion.data.folder import split_paths
from jfusion.io import write_image
from jfusion.ops.filters import gaussian_kernel1d


def _pool(m=4, size=80, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, size, size)).astype(np.float32)


def test_progressive_blur_matches_scipy():
    """Each level is the previous one correlated with the 7x7 sigma-2 Gaussian (reference: scipy.ndimage,
    mode 'reflect' == our 'symmetric'); tolerance 1e-5 absolute (float32)."""
    img = _pool(1, 40)[0]
    stack = np.asarray(progressive_blur(img, sigma=2.0, size=7, levels=5))
    assert stack.shape == (6, 40, 40)
    k = gaussian_kernel1d(2.0, size=7)
    ref = img.astype(np.float64)
    np.testing.assert_array_equal(stack[0], img)
    for i in range(1, 6):
        ref = ndimage.correlate1d(ndimage.correlate1d(ref, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")
        np.testing.assert_allclose(stack[i], ref, atol=1e-5)


def test_sample_pairs_are_sharp_blurred_patches_of_the_pool():
    pool = _pool()
    out = sample_focus_batch(jax.random.key(0), pool, batch=64)
    a, b, lab = np.asarray(out["a"])[..., 0], np.asarray(out["b"])[..., 0], np.asarray(out["label"])
    assert a.shape == (64, 16, 16) and lab.dtype == np.int32 and set(np.unique(lab)) <= {0, 1}
    assert 0 < lab.mean() < 1
    sharp = np.where(lab[:, None, None] == 1, a, b)
    blurred = np.where(lab[:, None, None] == 1, b, a)
    # the sharp patch is a verbatim patch of some pool crop
    windows = np.lib.stride_tricks.sliding_window_view(pool, (16, 16), axis=(1, 2)).reshape(-1, 16, 16)
    for s in sharp[:5]:
        assert np.min(np.abs(windows - s).max(axis=(1, 2))) < 1e-6
    # blurring removes high-frequency energy (noise pool): the sharp one always has more
    hf = lambda x: np.abs(np.diff(x, axis=-1)).mean(axis=(-2, -1))  # noqa: E731
    assert np.all(hf(sharp) > hf(blurred))


def test_blurred_patch_equals_whole_crop_blur():
    """The windowed blur (zero border outside the margin) equals blurring the whole crop: atol 1e-5."""
    pool = _pool(1, 16 + 2 * blur_margin() + 20)
    stack = np.asarray(progressive_blur(pool[0], levels=5, border="zero"))
    out = sample_focus_batch(jax.random.key(3), pool, batch=32)
    a, b, lab = np.asarray(out["a"])[..., 0], np.asarray(out["b"])[..., 0], np.asarray(out["label"])
    blurred = np.where(lab[:, None, None] == 1, b, a)
    sharp = np.where(lab[:, None, None] == 1, a, b)
    full = np.lib.stride_tricks.sliding_window_view(stack, (16, 16), axis=(1, 2))  # (6, y, x, 16, 16)
    for s, bl in zip(sharp[:6], blurred[:6]):
        y, x = np.unravel_index(np.argmin(np.abs(full[0] - s).max(axis=(-2, -1))), full.shape[1:3])
        err = min(np.abs(full[lv, y, x] - bl).max() for lv in range(1, 6))
        assert err < 1e-5


def test_sampling_is_keyed_and_jittable():
    pool = _pool()
    o1 = sample_focus_batch(jax.random.key(7), pool, batch=8)
    o2 = sample_focus_batch(jax.random.key(7), pool, batch=8)
    o3 = sample_focus_batch(jax.random.key(8), pool, batch=8)
    np.testing.assert_array_equal(np.asarray(o1["a"]), np.asarray(o2["a"]))
    assert not np.array_equal(np.asarray(o1["a"]), np.asarray(o3["a"]))


def test_multiclass_pairs_are_partial_focus_mixtures():
    """K classes: A is sharp on a fraction k/(K-1) of the patch, B on the rest."""
    pool = _pool()
    out = sample_focus_batch(jax.random.key(1), pool, batch=128, n_classes=5)
    a, b, lab = np.asarray(out["a"])[..., 0], np.asarray(out["b"])[..., 0], np.asarray(out["label"])
    assert set(np.unique(lab)) == {0, 1, 2, 3, 4}
    hf_a = np.abs(np.diff(a, axis=-1)).mean(axis=(1, 2)) + np.abs(np.diff(a, axis=-2)).mean(axis=(1, 2))
    hf_b = np.abs(np.diff(b, axis=-1)).mean(axis=(1, 2)) + np.abs(np.diff(b, axis=-2)).mean(axis=(1, 2))
    share = hf_a / (hf_a + hf_b)
    means = [share[lab == k].mean() for k in range(5)]
    assert all(x < y for x, y in zip(means, means[1:]))  # more of A sharp -> more of A's detail


def test_min_std_skips_flat_patches():
    pool = _pool()
    pool[:, :, :40] = 0.5  # flat left half
    out = sample_focus_batch(jax.random.key(2), pool, batch=64, min_std=0.05)
    a, b = np.asarray(out["a"]), np.asarray(out["b"])
    sharp_std = np.maximum(a.std(axis=(1, 2, 3)), b.std(axis=(1, 2, 3)))
    assert np.mean(sharp_std > 0.05) > 0.95


def test_sample_rejects_small_pool():
    with pytest.raises(ValueError, match="at least"):
        sample_focus_batch(jax.random.key(0), _pool(2, 30), batch=4)


def test_grain_folder_pipeline(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        write_image(tmp_path / f"img{i}.png", rng.random((50 + 5 * i, 60, 3)).astype(np.float32))
    (tmp_path / "notes.txt").write_text("not an image")
    paths = image_paths(tmp_path)
    assert len(paths) == 5
    ds = crop_dataset(tmp_path, crop=32, per_image=3, seed=1)
    assert len(ds) == 5 and ds[0].shape == (3, 32, 32)
    pool1 = load_crop_pool(tmp_path, crop=32, per_image=3, seed=1)
    pool2 = load_crop_pool(tmp_path, crop=32, per_image=3, seed=1)
    assert pool1.shape == (15, 32, 32) and pool1.dtype == np.float32
    np.testing.assert_array_equal(pool1, pool2)
    tr, va = split_paths(paths, val_fraction=0.2)
    assert len(va) == 1 and not set(tr) & set(va) and len(tr) + len(va) == 5
    with pytest.raises(FileNotFoundError):
        image_paths(tmp_path / "missing")


def test_tfds_builder(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets (extra 'tfds') is not installed")
    from jfusion.data.tfds_focus import FocusPairs

    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", rng.random((96, 96)).astype(np.float32))
    builder = FocusPairs(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path)))
    ds = builder.as_dataset(split="train")
    ex = next(iter(tfds.as_numpy(ds)))
    assert ex["a"].shape == (16, 16, 1) and ex["label"] in (0, 1)


# ------------------------------------------------------------------ issue 13: splits, multi-scale pairs, scenes with truth
def test_split_with_test_keeps_the_validation_images():
    from jfusion.data.folder import split_paths_with_test

    paths = [f"img{i:03d}.png" for i in range(50)]
    tr2, va2 = split_paths(paths, val_fraction=0.1, seed=3)
    tr, va, te = split_paths_with_test(paths, val_fraction=0.1, test_fraction=0.2, seed=3)
    assert va == va2 and len(te) == 10 and len(tr) == 35
    assert sorted(tr + va + te) == sorted(paths) and not (set(tr) & set(te)) and set(te) <= set(tr2)
    with pytest.raises(ValueError):
        split_paths_with_test(paths, val_fraction=0.5, test_fraction=0.5)


def _block_mean(x, f):
    h, w = x.shape
    return x.reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def test_multiscale_pairs_match_a_scipy_reference():
    """Du & Gao pairs: the sharp / blurred s x s patch at one place, area-resized to 16x16. Reference: scipy
    zero-padded correlation repeated per level (the blur of the 94x94 window) and numpy block means; atol 1e-5."""
    from jfusion.data import sample_multiscale_focus_batch

    margin = blur_margin()
    win = 64 + 2 * margin
    pool = _pool(1, win, seed=1)  # one crop of exactly one window: every pair comes from the same place
    out = sample_multiscale_focus_batch(jax.random.key(0), pool, batch=48, scales=(16, 32, 64))
    a, b = np.asarray(out["a"])[..., 0], np.asarray(out["b"])[..., 0]
    lab, scale = np.asarray(out["label"]), np.asarray(out["scale"])
    assert a.shape == (48, 16, 16) and set(np.unique(scale)) == {16, 32, 64} and set(np.unique(lab)) == {0, 1}
    k = gaussian_kernel1d(2.0, size=7)
    levels = [pool[0].astype(np.float64)]
    for _ in range(5):
        levels.append(ndimage.correlate1d(ndimage.correlate1d(levels[-1], k, axis=0, mode="constant"), k, axis=1, mode="constant"))
    sharp = np.where(lab[:, None, None] == 1, a, b)
    blurred = np.where(lab[:, None, None] == 1, b, a)
    for i in range(48):
        s = int(scale[i])
        off = margin + (64 - s) // 2
        ref = [_block_mean(lv[off : off + s, off : off + s], s // 16) for lv in levels]
        np.testing.assert_allclose(sharp[i], ref[0], atol=1e-5)
        assert min(np.abs(blurred[i] - r).max() for r in ref[1:]) < 1e-5


def test_multiscale_pairs_are_keyed_and_reject_bad_scales():
    from jfusion.data import sample_multiscale_focus_batch

    pool = _pool(2, 96)
    o1 = sample_multiscale_focus_batch(jax.random.key(5), pool, batch=8)
    o2 = sample_multiscale_focus_batch(jax.random.key(5), pool, batch=8)
    np.testing.assert_array_equal(np.asarray(o1["a"]), np.asarray(o2["a"]))
    with pytest.raises(ValueError, match="multiples of 16"):
        sample_multiscale_focus_batch(jax.random.key(0), pool, batch=4, scales=(16, 24))
    with pytest.raises(ValueError, match="at least"):
        sample_multiscale_focus_batch(jax.random.key(0), _pool(1, 80), batch=4, scales=(16, 64))


def test_multifocus_scene_with_truth_matches_a_scipy_reference():
    """Source i is the truth on region i and scipy's Gaussian blur of it (mode 'reflect', radius ceil(3 high))
    elsewhere; regions have equal areas; atol 1e-5."""
    from test_foundation_shape import count_compilations

    from jfusion.data import multifocus_scene

    rng = np.random.default_rng(0)
    img = rng.random((64, 80, 3)).astype(np.float32)
    for n in (2, 3):
        sc = multifocus_scene(jax.random.key(n), img, n_sources=n, sigma_range=(1.0, 3.0))
        src, reg, sig = np.asarray(sc["sources"]), np.asarray(sc["regions"]), np.asarray(sc["sigmas"])
        assert src.shape == (n, 64, 80, 3) and reg.shape == (64, 80) and sig.shape == (n,)
        np.testing.assert_array_equal(np.asarray(sc["truth"]), img)
        counts = np.bincount(reg.ravel(), minlength=n)
        assert counts.max() - counts.min() <= n, counts  # quantile cuts: equal areas
        assert np.all((1.0 <= sig) & (sig <= 3.0))
        for i in range(n):
            ref = np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), float(sig[i]), mode="reflect", radius=9)
                            for c in range(3)], -1)
            inside = reg == i
            np.testing.assert_array_equal(src[i][inside], img[inside])
            np.testing.assert_allclose(src[i][~inside], ref[~inside], atol=1e-5)
    # keyed, and a second key compiles nothing
    a = multifocus_scene(jax.random.key(7), img, n_sources=2)
    with count_compilations() as box:
        b = multifocus_scene(jax.random.key(7), img, n_sources=2)
        multifocus_scene(jax.random.key(8), img, n_sources=2)
    assert box[0] == 0
    np.testing.assert_array_equal(np.asarray(a["sources"]), np.asarray(b["sources"]))


def test_multifocus_scene_bad_input_names_the_argument():
    from jfusion.data import multifocus_scene
    from jfusion.errors import FusionInputError

    img = np.zeros((32, 32), np.float32)
    with pytest.raises(FusionInputError, match="n_sources=4"):
        multifocus_scene(jax.random.key(0), img, n_sources=4)
    with pytest.raises(FusionInputError, match="sigma_range"):
        multifocus_scene(jax.random.key(0), img, sigma_range=(0.0, 2.0))
    with pytest.raises(FusionInputError, match="image of shape"):
        multifocus_scene(jax.random.key(0), np.zeros((8, 32), np.float32))
