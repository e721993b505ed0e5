"""Training data of the shipped convolutional dictionary (``jfusion train dictionary``, :mod:`jfusion.training.dictionary`).

Recipe: grey crops of natural images (``shared/data/natural`` or a folder the user names),
high-passed by the Tikhonov split (lmbda 5, pad 16, the CSR convention), learned by
:func:`jfusion.sparse.dictlearn.learn_dictionary` (CBPDN + consensus CCMOD). Writes the
asset ``<name>`` (:mod:`jfusion.assets`: ``<name>.npz`` with the ``(h, w, M)`` float32 array under
``dictionary``, ``<name>.json`` with data, command, seed, steps, objective summary, date, sha256).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jfusion.io import read_image
from jfusion.ops.colour import rgb_to_gray

__all__ = ["training_images", "train_dictionary"]

_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def training_images(folder: str | Path, *, num_images: int, crop: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """``num_images`` grey ``crop x crop`` crops (one per image, random position) as ``(K, crop, crop)``.

    Images are drawn without replacement from all image files under ``folder`` (sorted, then
    permuted by ``seed``); images smaller than ``crop`` are skipped.
    """
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in _EXTS)
    if not files:
        raise ValueError(f"no images under {folder}")
    rng = np.random.default_rng(seed)
    out, used = [], []
    for i in rng.permutation(len(files)):
        img = np.asarray(read_image(files[i]), np.float32)
        if img.ndim == 3:
            img = np.asarray(rgb_to_gray(img[..., :3]))
        h, w = img.shape
        if h < crop or w < crop:
            continue
        r, c = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        out.append(img[r : r + crop, c : c + crop])
        used.append(str(files[i]))
        if len(out) == num_images:
            break
    if len(out) < num_images:
        raise ValueError(f"only {len(out)} images of at least {crop}x{crop} under {folder}")
    return np.stack(out), used


def train_dictionary(
    data: str | Path,
    out_dir: str | Path,
    *,
    name: str = "csr32",
    num_filters: int = 32,
    filter_size: int = 8,
    lmbda: float = 0.1,
    num_iter: int = 300,
    num_images: int = 16,
    crop: int = 128,
    seed: int = 0,
    command: str | None = None,
    force: bool = False,
) -> dict:
    """Learn a dictionary and write the asset ``<name>`` (``.npz`` + manifest ``.json``, :mod:`jfusion.assets`); returns the manifest.

    The recipe ``jfusion train dictionary`` (:func:`jfusion.training.dictionary.train_and_evaluate`,
    resumable from ``<out_dir>/checkpoints``). An existing asset of that name is replaced only with ``force=True``.
    """
    from jfusion.training.dictionary import DictionaryConfig, train_and_evaluate

    config = DictionaryConfig(name=name, data=str(data), num_filters=num_filters, filter_size=filter_size, lmbda=lmbda,
                              iterations=num_iter, num_images=num_images, crop=crop, seed=seed)
    return train_and_evaluate(config, out_dir, force=force, command=command)
