"""Fixed training sets on disk: synthetic focus pairs written as ``.npz`` shards.

On-the-fly synthesis (:func:`jfusion.data.sample_focus_batch`) is what training uses; shards
are for a data set that must not change between runs or machines (a published benchmark,
another framework). Each shard is a pure function of ``(key, pool, shard index)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
from jax.typing import ArrayLike

from jfusion.data.synth import sample_focus_batch
from jfusion.io import atomic_output, write_text

__all__ = ["write_focus_shards", "read_shards"]


def write_focus_shards(
    key: jax.Array,
    pool: ArrayLike,
    out_dir: str | os.PathLike,
    *,
    pairs: int,
    shard_size: int = 4096,
    patch: int = 16,
    n_classes: int = 2,
    min_std: float = 0.0,
) -> list[Path]:
    """Write ``pairs`` synthetic focus pairs as shards ``focus-00000.npz, ...`` plus ``info.json``.

    Args:
      key: ``jax.random`` key; shard ``i`` uses ``fold_in(key, i)``.
      pool: ``(M, H, W)`` sharp grey crops in [0, 1] (see :func:`jfusion.data.load_crop_pool`).
      out_dir: folder to create; existing shards there are refused, not overwritten.
      pairs: total number of pairs; shard_size: pairs per shard (the last may be smaller).
      patch, n_classes, min_std: as :func:`jfusion.data.sample_focus_batch`.

    Returns:
      The shard paths. Each holds ``a``, ``b`` ``(n, patch, patch, 1)`` float32 and ``label`` ``(n,)`` int32.
    """
    if pairs <= 0 or shard_size <= 0:
        raise ValueError("pairs and shard_size must be positive")
    out = Path(out_dir)
    if out.exists() and any(out.glob("focus-*.npz")):
        raise FileExistsError(f"{out} already holds shards; choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    n_shards = -(-pairs // shard_size)
    for i in range(n_shards):
        n = min(shard_size, pairs - i * shard_size)
        batch = sample_focus_batch(
            jax.random.fold_in(key, i), pool, batch=n, patch=patch, n_classes=n_classes, min_std=min_std
        )
        path = out / f"focus-{i:05d}.npz"
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:  # a killed run leaves no truncated shard
            np.savez_compressed(fh, **{k: np.asarray(v) for k, v in batch.items()})
        paths.append(path)
    info = {"pairs": pairs, "shards": n_shards, "patch": patch, "n_classes": n_classes, "min_std": min_std}
    write_text(out / "info.json", json.dumps(info, indent=2))
    return paths


def read_shards(folder: str | os.PathLike) -> Iterator[dict[str, np.ndarray]]:
    """Yield the shards of a folder written by :func:`write_focus_shards`, in order."""
    for path in sorted(Path(folder).glob("focus-*.npz")):
        with np.load(path) as z:
            yield {k: z[k] for k in z.files}
