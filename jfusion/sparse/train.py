"""Training recipe for the shipped convolutional dictionary (``jfusion train dictionary``).

Recipe: grey crops of natural images (``shared/data/natural`` or a folder the user names),
high-passed by the Tikhonov split (lmbda 5, pad 16, the CSR convention), learned by
:func:`jfusion.sparse.dictlearn.learn_dictionary` (CBPDN + consensus CCMOD). Writes
``<name>.npy`` (``(h, w, M)`` float32) and ``<name>.json`` (data, command, seed, steps,
objective history summary, date) into the output folder.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jfusion.io import read_image
from jfusion.ops.colour import rgb_to_gray
from jfusion.sparse.dictlearn import learn_dictionary
from jfusion.sparse.tikhonov import tikhonov_split

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
    overwrite: bool = False,
) -> dict:
    """Learn a dictionary and write ``<name>.npy`` and its manifest ``<name>.json``; returns the manifest.

    Both files are written atomically (the manifest last); existing ones are refused unless
    ``overwrite``, checked before the (long) learning starts.
    """
    from jfusion.io import atomic_output, check_output_path, write_text

    out = Path(out_dir)
    for suffix in (".npy", ".json"):
        check_output_path(out / f"{name}{suffix}", overwrite=overwrite)
    t0 = time.time()
    imgs, used = training_images(data, num_images=num_images, crop=crop, seed=seed)
    _, detail = tikhonov_split(jnp.asarray(imgs), lmbda=5.0, npad=16)
    key = jax.random.key(seed)
    d, hist = learn_dictionary(
        key, detail, num_filters=num_filters, filter_size=filter_size, lmbda=lmbda, num_iter=num_iter
    )
    d = np.asarray(d, np.float32)
    obj = np.asarray(hist.objective, np.float64)
    with atomic_output(out / f"{name}.npy", overwrite=overwrite) as tmp, open(tmp, "wb") as fh:
        np.save(fh, d)
    manifest = {
        "name": name,
        "shape": list(d.shape),
        "algorithm": "CBPDN (ADMM) + consensus CCMOD (sporco ConvBPDNDictLearn xmethod='admm', dmethod='cns' "
        "interleaving), jfusion.sparse.dictlearn",
        "data": {
            "folder": str(data),
            "num_images": num_images,
            "crop": crop,
            "grey": "MATLAB rgb2gray weights",
            "preprocessing": "Tikhonov high-pass, lmbda 5, symmetric pad 16",
            "files": [Path(f).name for f in used],
        },
        "command": command or f"jfusion train dictionary --data {data} --num-filters {num_filters} --filter-size {filter_size} "
        f"--lmbda {lmbda} --iterations {num_iter} --num-images {num_images} --crop {crop} --seed {seed}",
        "lmbda": lmbda,
        "iterations": num_iter,
        "seed": seed,
        "init": "jax.random.normal(jax.random.key(seed)), projected to unit norm",
        "objective_first": float(obj[0]),
        "objective_final": float(obj[-1]),
        "objective_every_25": [float(v) for v in obj[::25]],
        "seconds": round(time.time() - t0, 1),
        "device": jax.devices()[0].platform,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_text(out / f"{name}.json", json.dumps(manifest, indent=2) + "\n", overwrite=overwrite)
    return manifest
