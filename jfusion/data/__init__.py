"""Training data: synthetic multi-focus pairs (:mod:`.synth`) and a grain pipeline over image folders (:mod:`.folder`).

The tensorflow-datasets builder lives in :mod:`jfusion.data.tfds_focus` and is imported only
on demand (``tensorflow-datasets`` is the optional extra ``tfds``).
"""

from jfusion.data.folder import crop_dataset, image_paths, load_crop_pool, split_paths, split_paths_with_test
from jfusion.data.shards import read_shards, write_focus_shards
from jfusion.data.synth import (
    blur_margin,
    exposure_scene,
    multifocus_scene,
    progressive_blur,
    sample_focus_batch,
    sample_multiscale_focus_batch,
)

__all__ = [
    "blur_margin",
    "crop_dataset",
    "exposure_scene",
    "image_paths",
    "load_crop_pool",
    "multifocus_scene",
    "progressive_blur",
    "read_shards",
    "sample_focus_batch",
    "sample_multiscale_focus_batch",
    "split_paths",
    "split_paths_with_test",
    "write_focus_shards",
]
