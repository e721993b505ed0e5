"""Recipe of the shipped convolutional dictionary (``jfusion train dictionary``, CSR fusion).

Grey crops of natural images, high-passed by the Tikhonov split (lmbda 5, pad 16, the CSR
convention), learned by CBPDN + consensus CCMOD (:mod:`jfusion.sparse.dictlearn`). Dictionary
learning is ADMM, not a gradient method, so it does not use the optax loop; it runs in chunks of
``checkpoint_every`` outer iterations on ``lax.scan`` and saves the whole ADMM state with the
same orbax :class:`~jfusion.training.checkpoint.Checkpointer` after each chunk, so a killed run
resumes from ``workdir/checkpoints`` and ends with the same dictionary.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DictionaryConfig", "learn_resumable", "train_and_evaluate"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DictionaryConfig:
    """Everything one dictionary-learning run depends on.

    Attributes:
      name: asset name (``<name>.npz`` + ``<name>.json``).
      data: folder of natural images (``""``: ``$JFUSION_DATA/natural``, default ``../shared/data/natural``).
      num_filters, filter_size: dictionary shape ``(filter_size, filter_size, num_filters)``.
      lmbda: l1 weight of the coding step.
      iterations: outer iterations (one CBPDN and one dictionary ADMM step each).
      num_images, crop, seed: training crops (one per image, random position) and the seed of
        the crop choice and the random initial filters.
      checkpoint_every: iterations per chunk (an orbax checkpoint after each).
    """

    name: str = dataclasses.field(default="csr32", metadata={"help": "Dictionary name (asset files <name>.npz and <name>.json)."})
    data: str = dataclasses.field(default="", metadata={"help": "Folder of natural images (default: $JFUSION_DATA/natural, ../shared/data/natural)."})
    num_filters: int = dataclasses.field(default=32, metadata={"help": "Number of filters M."})
    filter_size: int = dataclasses.field(default=8, metadata={"help": "Filter size h = w."})
    lmbda: float = dataclasses.field(default=0.1, metadata={"help": "l1 weight of the coding step."})
    iterations: int = dataclasses.field(default=300, metadata={"help": "Outer iterations (one CBPDN + one dictionary ADMM step each)."})
    num_images: int = dataclasses.field(default=12, metadata={"help": "Number of training crops (one per image)."})
    crop: int = dataclasses.field(default=128, metadata={"help": "Crop size in pixels."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed of the crop choice and the random initial filters."})
    checkpoint_every: int = dataclasses.field(default=50, metadata={"help": "Iterations between orbax checkpoints."})

    @property
    def steps(self) -> int:
        return self.iterations


def data_folder(config: DictionaryConfig) -> Path:
    """The image folder of ``config`` (its ``data``, else ``$JFUSION_DATA/natural``)."""
    if config.data:
        return Path(config.data)
    from jfusion.training.recipes import shared_data_root

    return shared_data_root() / "natural"


def learn_resumable(
    key: jax.Array, images: jax.Array, *, num_filters: int, filter_size: int, lmbda: float, num_iter: int,
    checkpoint_dir: str | Path | None = None, checkpoint_every: int = 50,
) -> tuple[jax.Array, np.ndarray]:
    """:func:`jfusion.sparse.dictlearn.learn_dictionary` in chunks of ``checkpoint_every`` iterations, resumable.

    Returns ``(dictionary (h, w, M), objective per iteration (num_iter,))``. With
    ``checkpoint_dir`` the ADMM state and the objective so far are saved after every chunk; a
    call with the same folder continues from the newest checkpoint.
    """
    from jfusion.sparse import dictlearn
    from jfusion.training.checkpoint import Checkpointer

    s = jnp.asarray(images)
    d0 = jax.random.normal(key, (filter_size, filter_size, num_filters), s.dtype)
    size = (filter_size, filter_size)
    st = dictlearn.init(d0, s, lmbda)
    objective: list[float] = []
    done = 0
    every = max(1, int(checkpoint_every))
    ckpt = Checkpointer(checkpoint_dir, every=every) if checkpoint_dir is not None else None
    try:
        if ckpt is not None and ckpt.latest_step() is not None:
            done, restored, record = ckpt.restore({"state": st})
            st = restored["state"]
            objective = [float(v) for v in record["objective"]]
        while done < num_iter:
            n = min(every, num_iter - done)
            st, hist = dictlearn.learn(st, s, lmbda, num_iter=n, size=size)
            objective += [float(v) for v in np.asarray(hist.objective)]
            done += n
            if ckpt is not None:
                ckpt.save(done, {"state": st}, {"objective": objective}, force=True)
    finally:
        if ckpt is not None:
            ckpt.close()
    return dictlearn._crop(st.g, size), np.asarray(objective, np.float64)


def train_and_evaluate(
    config: DictionaryConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False, progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Learn the dictionary of ``config`` and write the asset ``<workdir>/<name>``; returns its manifest.

    Checkpoints under ``workdir/checkpoints``; ``install=True`` also copies the asset into
    ``jfusion/sparse/dictionaries``. Existing files are refused before any work unless ``force``.
    """
    from jfusion import assets
    from jfusion.io import check_output_path
    from jfusion.sparse import dictionary
    from jfusion.sparse.dictionary import ARRAY
    from jfusion.sparse.tikhonov import tikhonov_split
    from jfusion.sparse.train import training_images
    from jfusion.training.recipes import command_line, prepare_workdir, radiometric_stats
    from jfusion.weights import install as install_files

    del progress
    out = Path(workdir)
    package = dictionary.DICTIONARY_DIR
    files = [out / f"{config.name}.npz", out / f"{config.name}.json"]
    same = out.resolve() == Path(package).resolve()
    for f in files + ([Path(package) / f.name for f in files] if install and not same else []):
        check_output_path(f, overwrite=force)
    folder = data_folder(config)
    t0 = time.time()
    imgs, used = training_images(folder, num_images=config.num_images, crop=config.crop, seed=config.seed)
    ckpt = prepare_workdir(out, config)
    _, detail = tikhonov_split(jnp.asarray(imgs), lmbda=5.0, npad=16)
    d, obj = learn_resumable(
        jax.random.key(config.seed), detail, num_filters=config.num_filters, filter_size=config.filter_size,
        lmbda=config.lmbda, num_iter=config.iterations, checkpoint_dir=ckpt, checkpoint_every=config.checkpoint_every,
    )
    d = np.asarray(d, np.float32)
    manifest = assets.new_manifest(
        model="csr-dictionary",
        config={"num_filters": config.num_filters, "filter_size": config.filter_size, "lmbda": config.lmbda,
                "iterations": config.iterations},
        data={
            "folder": str(folder),
            "num_images": config.num_images,
            "crop": config.crop,
            "grey": "MATLAB rgb2gray weights",
            "preprocessing": "Tikhonov high-pass, lmbda 5, symmetric pad 16",
            "files": [Path(f).name for f in used],
        },
        command=command or command_line("dictionary", config, always=("iterations", "num_images", "seed")),
        steps=config.iterations,
        seed=config.seed,
        name=config.name,
        shape=list(d.shape),
        algorithm="CBPDN (ADMM) + consensus CCMOD (sporco ConvBPDNDictLearn xmethod='admm', dmethod='cns' "
        "interleaving), jfusion.sparse.dictlearn",
        lmbda=config.lmbda,
        iterations=config.iterations,
        init="jax.random.normal(jax.random.key(seed)), projected to unit norm",
        objective_first=float(obj[0]),
        objective_final=float(obj[-1]),
        objective_every_25=[float(v) for v in obj[::25]],
        seconds=round(time.time() - t0, 1),
        device=jax.devices()[0].platform,
        recipe=dataclasses.asdict(config),
        radiometry={
            "normalisation": "grey crops in [0, 1]; 'detail': their Tikhonov high-pass (what the dictionary codes)",
            "grey": radiometric_stats(imgs, per_channel=False),
            "detail": radiometric_stats(np.asarray(detail), per_channel=False),
        },
    )
    assets.write_asset(out / config.name, {ARRAY: d}, manifest, force=force)
    if install and not same:
        install_files(files, package, overwrite=force)
    return assets.read_manifest(out / config.name)


def _register() -> None:
    from jfusion.training.recipes import register_recipe

    register_recipe(
        "dictionary", fn=train_and_evaluate, config=DictionaryConfig(), family="dictionary",
        presets={"sparse/dictionaries/csr32": DictionaryConfig()},
        summary="Learn a convolutional dictionary (CSR fusion) from natural images.",
        reference="Liu, Chen, Ward, Wang, IEEE SPL 23(12) 2016 (CSR); Garcia-Cardona, Wohlberg 2018 (CCMOD)",
    )


_register()
