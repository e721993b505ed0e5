"""A grain pipeline over a folder of images: grey crops for training-pair synthesis.

Any folder (or list of paths) of PNG/JPEG/TIFF/BMP images is a valid source. The
pipeline is a ``grain.MapDataset``: paths -> (seeded) shuffle -> decode to grey [0, 1]
-> ``per_image`` random crops per image (seeded per record, so the same seed gives the
same crops in any order or worker count) -> batches. :func:`load_crop_pool` runs it once
and stacks the crops into the in-memory pool that :func:`jfusion.data.synth.sample_focus_batch`
draws from; :func:`crop_dataset` exposes the dataset itself for streaming use.
Nothing downloads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import grain
import numpy as np

from jfusion.io import read_image

__all__ = ["IMAGE_EXTENSIONS", "image_paths", "crop_dataset", "load_crop_pool", "split_paths", "split_paths_with_test"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def image_paths(source: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Sorted image files under a folder (recursively), or the given list of paths.

    Raises:
      FileNotFoundError: the folder does not exist or holds no image.
    """
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    else:
        paths = [str(p) for p in source]
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {source}")
    return paths


def split_paths(paths: Sequence[str], *, val_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic split of image paths into (train, validation) by image, so pairs are held out."""
    order = np.random.default_rng(seed).permutation(len(paths))
    n_val = max(1, int(round(val_fraction * len(paths)))) if len(paths) > 1 else 0
    val = sorted(paths[i] for i in order[:n_val])
    train = sorted(paths[i] for i in order[n_val:])
    return train, val


def split_paths_with_test(
    paths: Sequence[str], *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[str], list[str], list[str]]:
    """Deterministic (train, validation, test) split of image paths by image.

    The validation images are exactly those of :func:`split_paths` with the same ``seed`` and
    ``val_fraction`` (the same permutation's first images); the next ``round(test_fraction * n)``
    images of that permutation are the test images, and the rest train. So adding a test split
    moves images only from train to test.

    Raises:
      ValueError: fractions outside [0, 1) or leaving no training image.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0):
        raise ValueError(f"val_fraction and test_fraction must lie in [0, 1), got {val_fraction}, {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(paths))
    n_val = max(1, int(round(val_fraction * len(paths)))) if len(paths) > 1 else 0
    n_test = int(round(test_fraction * len(paths)))
    if n_val + n_test >= len(paths):
        raise ValueError(f"{len(paths)} images leave no training image for val_fraction={val_fraction}, test_fraction={test_fraction}")
    val = sorted(paths[i] for i in order[:n_val])
    test = sorted(paths[i] for i in order[n_val : n_val + n_test])
    train = sorted(paths[i] for i in order[n_val + n_test :])
    return train, val, test


def _grey(path: str) -> np.ndarray:
    img = read_image(path)
    img = np.asarray(img, np.float32)
    if img.ndim == 3:
        c = img.shape[-1]
        img = img[..., :3] @ np.array([0.2989, 0.5870, 0.1140], np.float32) if c >= 3 else img[..., 0]
    return img


class _RandomCrops:
    """grain random-map transform: ``per_image`` random ``crop x crop`` grey crops of one image."""

    def __init__(self, crop: int, per_image: int):
        self.crop, self.per_image = crop, per_image

    def __call__(self, path: str, rng: np.random.Generator) -> np.ndarray:
        img = _grey(path)
        h, w = img.shape
        c = self.crop
        if h < c or w < c:  # small images are upscaled by edge padding only as far as needed
            img = np.pad(img, ((0, max(0, c - h)), (0, max(0, c - w))), mode="symmetric")
            h, w = img.shape
        ys = rng.integers(0, h - c + 1, self.per_image)
        xs = rng.integers(0, w - c + 1, self.per_image)
        return np.stack([img[y : y + c, x : x + c] for y, x in zip(ys, xs)])


def crop_dataset(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    crop: int = 96,
    per_image: int = 2,
    seed: int = 0,
    shuffle: bool = True,
) -> grain.MapDataset:
    """A ``grain.MapDataset`` of ``(per_image, crop, crop)`` float32 grey crops, one record per image."""
    ds = grain.MapDataset.source(image_paths(source))
    if shuffle:
        ds = ds.shuffle(seed=seed)
    return ds.random_map(_RandomCrops(int(crop), int(per_image)), seed=seed)


def load_crop_pool(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    crop: int = 96,
    per_image: int = 2,
    seed: int = 0,
    max_images: int | None = None,
) -> np.ndarray:
    """Run :func:`crop_dataset` once and stack all crops: ``(n_images * per_image, crop, crop)`` float32."""
    ds = crop_dataset(source, crop=crop, per_image=per_image, seed=seed)
    if max_images is not None:
        ds = ds[: int(max_images)]
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=2, prefetch_buffer_size=4))
    return np.concatenate(list(it), axis=0)
