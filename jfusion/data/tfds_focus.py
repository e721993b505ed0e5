"""A tensorflow-datasets builder of synthetic multi-focus pairs from a local image folder.

For users who live in TFDS (``pip install jfusion[tfds]``): the same pairs as
:func:`jfusion.data.synth.sample_focus_batch` (Liu 2017 recipe), written as a TFDS dataset
``focus_pairs`` with splits ``train`` / ``validation`` (split by image). Nothing downloads:
the images are read from ``manual_dir``::

    import tensorflow_datasets as tfds
    from jfusion.data.tfds_focus import FocusPairs

    builder = FocusPairs(data_dir="~/tfds")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="path/to/natural_images"))
    ds = builder.as_dataset(split="train")     # {"a": (16,16,1), "b": (16,16,1), "label": 0/1}

This module imports ``tensorflow_datasets`` at import time; nothing else in jfusion imports it.
"""

from __future__ import annotations

import jax
import numpy as np
import tensorflow_datasets as tfds

from jfusion.data.folder import image_paths, load_crop_pool, split_paths
from jfusion.data.synth import sample_focus_batch

__all__ = ["FocusPairs"]


class FocusPairs(tfds.core.GeneratorBasedBuilder):
    """Synthetic (A, B, label) 16x16 multi-focus patch pairs from the images in ``manual_dir``."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Liu et al. 2017 progressive-blur pairs from local images."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put natural images (PNG/JPEG/TIFF/BMP, any folder tree) in manual_dir, e.g. BSDS500 or DIV2K; "
        "jfusion never downloads data."
    )

    #: pairs drawn per image, crop size, classes, held-out share, seed (override in a subclass)
    PAIRS_PER_IMAGE = 200
    CROP = 96
    N_CLASSES = 2
    VAL_FRACTION = 0.1
    SEED = 0
    MIN_STD = 0.02

    def _info(self) -> tfds.core.DatasetInfo:
        patch = tfds.features.Tensor(shape=(16, 16, 1), dtype=np.float32)
        return self.dataset_info_from_configs(
            description="Synthetic multi-focus patch pairs (jfusion.data.synth, Liu et al. 2017 recipe).",
            features=tfds.features.FeaturesDict(
                {"a": patch, "b": patch, "label": tfds.features.ClassLabel(num_classes=self.N_CLASSES)}
            ),
            supervised_keys=None,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        paths = image_paths(dl_manager.manual_dir)
        train, val = split_paths(paths, val_fraction=self.VAL_FRACTION, seed=self.SEED)
        return {
            "train": self._generate_examples(train, 0),
            "validation": self._generate_examples(val, 1),
        }

    def _generate_examples(self, paths: list[str], split_id: int):
        pool = load_crop_pool(paths, crop=self.CROP, per_image=1, seed=self.SEED + split_id)
        total = self.PAIRS_PER_IMAGE * len(paths)
        key = jax.random.fold_in(jax.random.key(self.SEED), split_id)
        chunk = 1024
        for c, start in enumerate(range(0, total, chunk)):
            n = min(chunk, total - start)
            out = sample_focus_batch(
                jax.random.fold_in(key, c), pool, batch=n, n_classes=self.N_CLASSES, min_std=self.MIN_STD
            )
            a, b, lab = (np.asarray(out[k]) for k in ("a", "b", "label"))
            for j in range(n):
                yield f"{start + j}", {"a": a[j], "b": b[j], "label": int(lab[j])}
