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
