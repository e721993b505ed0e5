"""Training recipe of the weight-map CNNs (focus CNN, its ``direct`` head, the Fig. 5 K-class net).

One config dataclass per model (:data:`CONFIGS`); :func:`train_weightnet` runs the generic
loop (:func:`jfusion.training.loop.train`) on synthetic pairs from a folder of natural
images (:mod:`jfusion.data`) and :func:`ship` writes weights plus manifest.

Deviations from Liu et al. 2017 (section 1.3 of the spec), chosen for a CPU budget of
minutes instead of ~10 epochs over 2 M pairs, and stated in every manifest:
Adam with a cosine-decayed learning rate instead of SGD 1e-4 with momentum; natural images
from ``shared/data/natural`` (BSDS500 train+val, T91) instead of ILSVRC; textureless
patches (std < ``min_std``) skipped, since they carry no focus information; the multi-focus
net at Liu's full size (64/128/256, 256 hidden units) ships at float16 (its fc layer alone is
33 MB at float32), the multi-scale net (Du & Gao 2017) and the ``direct`` / K-class nets at
halved widths for the CPU budget; far fewer pairs than ~10 epochs over 2 M pairs (steps x batch,
in the manifest).

Splits: the natural images are split by image (:func:`jfusion.data.folder.split_paths_with_test`)
into train, validation and (``test_fraction > 0``) test; training sees the train images only,
the step kept (``select="val_loss"``: lowest validation cross-entropy, early stopping) and the
ship decision use validation pairs only, and the test images are read only by the ground-truth
multi-focus benchmark (:func:`jfusion.data.synth.focus_truth_scenes`).
"""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jfusion.models.focus_cnn import WeightNet, WeightNetConfig, class_weights
from jfusion.ops.precision import matmul
from jfusion.training.loop import TrainResult, cross_entropy_loss, train

__all__ = ["FocusTrainConfig", "CONFIGS", "build_data", "evaluate_pairs", "train_weightnet", "ship", "train_and_evaluate"]


@dataclasses.dataclass(frozen=True)
class FocusTrainConfig:
    """Everything that defines a weight-net training run (hashable; stored in the manifest).

    Attributes:
      name: the recipe (and shipped weights folder, ``-`` as ``_``) the run trains.
      data: folder of natural images (searched recursively).
      model: the network (:class:`~jfusion.models.WeightNetConfig`).
      steps: optimiser steps.
      batch: global batch of pairs per step (split over devices).
      lr: peak learning rate of Adam (cosine decay to 1 % over ``steps``, ``warmup`` linear warm-up).
      warmup: warm-up steps.
      weight_decay: decoupled weight decay (Liu: 5e-4).
      seed: seed of initialisation, crops and pair sampling.
      crop: side of the grey crops taken from each image; ``per_image`` crops per image.
      val_fraction: share of the images held out for validation (pairs come from unseen images).
      val_pairs: number of held-out validation pairs.
      min_std: textureless-patch threshold (see :func:`jfusion.data.synth.sample_focus_batch`).
      checkpoint_every, validate_every: intervals in steps.
      test_fraction: share of the images held out as test images (0: train / validation only,
        the split of the older recipes); the validation images do not depend on it.
      scales: patch sizes of the training pairs, ``"16"`` (Liu) or e.g. ``"16,32,64"`` (Du & Gao:
        each pair is cut at one of the sizes and area-resized to 16x16).
      select: ``"val_loss"`` ends with the parameters of the lowest validation cross-entropy
        (checked every ``validate_every`` steps); ``""`` keeps the last step.
    """

    model: WeightNetConfig = WeightNetConfig()
    steps: int = dataclasses.field(default=1500, metadata={"help": "Optimiser steps."})
    batch: int = dataclasses.field(default=64, metadata={"help": "Global batch of pairs (split over devices)."})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Peak Adam learning rate (cosine decay)."})
    warmup: int = dataclasses.field(default=50, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = dataclasses.field(default=5e-4, metadata={"help": "Decoupled weight decay."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed of initialisation and data."})
    crop: int = dataclasses.field(default=96, metadata={"help": "Side of the grey crops taken from each image."})
    per_image: int = dataclasses.field(default=3, metadata={"help": "Crops per image."})
    val_fraction: float = dataclasses.field(default=0.1, metadata={"help": "Share of the images held out for validation."})
    val_pairs: int = dataclasses.field(default=2048, metadata={"help": "Held-out validation pairs."})
    min_std: float = dataclasses.field(default=0.02, metadata={"help": "Textureless-patch threshold."})
    checkpoint_every: int = dataclasses.field(default=100, metadata={"help": "Orbax checkpoint interval in steps."})
    validate_every: int = dataclasses.field(default=250, metadata={"help": "Validation interval in steps."})
    test_fraction: float = dataclasses.field(default=0.0, metadata={"help": "Share of the images held out as test images (never trained on)."})
    scales: str = dataclasses.field(default="16", metadata={"help": "Patch sizes of the pairs, comma-separated multiples of 16 (Du & Gao: 16,32,64)."})
    select: str = dataclasses.field(default="", metadata={"help": "Early stopping: 'val_loss' keeps the step of lowest validation loss ('' the last)."})
    name: str = dataclasses.field(default="focus-cnn", metadata={"cli": False})
    data: str = dataclasses.field(default="../shared/data/natural", metadata={"help": "Folder of natural images (searched recursively)."})

    @property
    def scale_tuple(self) -> tuple[int, ...]:
        """``scales`` as a tuple of ints."""
        return tuple(int(v) for v in self.scales.split(","))

    def __post_init__(self) -> None:
        if not self.scales or any(not v.strip().isdigit() or int(v) % 16 or int(v) <= 0 for v in self.scales.split(",")):
            raise ValueError(f"scales must be comma-separated positive multiples of 16, got {self.scales!r}")
        if self.select not in ("", "val_loss"):
            raise ValueError(f"select must be '' or 'val_loss', got {self.select!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


NARROW = WeightNetConfig(arch="siamese", head="fc256", widths=(32, 64, 128), hidden=64, n_classes=2)
"""The halved multi-focus net (widths 32/64/128, 64 hidden units): ``focus-cnn-narrow`` and ``focus-cnn-multiscale``."""

CONFIGS: dict[str, FocusTrainConfig] = {
    # Liu 2017 multi-focus network at the paper's size (64/128/256, fc 256), images split train / val / test.
    "focus-cnn": FocusTrainConfig(
        name="focus-cnn", model=WeightNetConfig(arch="siamese", head="fc256", widths=(64, 128, 256), hidden=256, n_classes=2),
        steps=600, batch=64, lr=5e-4, per_image=16, val_pairs=2048, validate_every=100, checkpoint_every=50,
        test_fraction=0.1, select="val_loss",
    ),
    # The earlier shipped, narrowed net (a named option: weights="focus_cnn_narrow"), its recipe unchanged.
    "focus-cnn-narrow": FocusTrainConfig(name="focus-cnn-narrow", model=NARROW, steps=1500),
    # Du & Gao 2017: the siamese net trained on 16/32/64 px pairs area-resized to 16x16 (halved widths).
    "focus-cnn-multiscale": FocusTrainConfig(
        name="focus-cnn-multiscale", model=NARROW, steps=1500, per_image=16, validate_every=150, checkpoint_every=50,
        test_fraction=0.1, scales="16,32,64", select="val_loss",
    ),
    # The `direct` head of the released IR/visible + medical network (no hidden fc layer).
    "focus-cnn-direct": FocusTrainConfig(
        name="focus-cnn-direct", model=WeightNetConfig(arch="siamese", head="direct", widths=(32, 64, 128), n_classes=2),
        steps=600,
    ),
    # Survey Fig. 5: K = 5 weight-assignment classes, 2-channel input.
    "weight-net": FocusTrainConfig(
        name="weight-net", model=WeightNetConfig(arch="2ch", head="direct", widths=(32, 64, 128), n_classes=5),
        steps=800,
    ),
}
"""The recipes ``jfusion train focus-cnn | focus-cnn-direct | weight-net`` (the shipped weights' configs);
shipped weights live under the same name (``-`` as ``_``)."""


@dataclasses.dataclass(frozen=True)
class FocusData:
    """Train and validation crop pools and the fixed validation batch."""

    train_pool: np.ndarray
    val_pool: np.ndarray
    val_batch: dict[str, jax.Array]
    val_batch_all: dict[str, jax.Array]
    n_train_images: int
    n_val_images: int
    n_test_images: int = 0


def build_data(config: FocusTrainConfig, source: str | os.PathLike) -> FocusData:
    """Crop pools from the images under ``source`` (split by image) and the held-out validation pairs.

    ``val_batch`` uses the training distribution (``min_std``), ``val_batch_all`` keeps every
    location, textureless ones included.
    """
    from jfusion.data.folder import image_paths, load_crop_pool, split_paths, split_paths_with_test  # grain: on use

    paths = image_paths(source)
    if config.test_fraction > 0:
        tr, va, _ = split_paths_with_test(paths, val_fraction=config.val_fraction, test_fraction=config.test_fraction,
                                          seed=config.seed)
    else:
        tr, va = split_paths(paths, val_fraction=config.val_fraction, seed=config.seed)
    kw = dict(crop=config.crop, per_image=config.per_image, seed=config.seed)
    train_pool = load_crop_pool(tr, **kw)
    val_pool = load_crop_pool(va, **kw)
    key = jax.random.fold_in(jax.random.key(config.seed), 10**6)
    val = sample_pairs(config, key, val_pool, config.val_pairs, min_std=config.min_std)
    val_all = sample_pairs(config, key, val_pool, config.val_pairs, min_std=0.0)
    n_test = len(paths) - len(tr) - len(va)
    return FocusData(train_pool, val_pool, val, val_all, len(tr), len(va), n_test)


def test_images(config: FocusTrainConfig, source: str | os.PathLike) -> list[str]:
    """The test images of ``config``'s split of ``source`` (never trained on; empty when ``test_fraction == 0``)."""
    from jfusion.data.folder import image_paths, split_paths_with_test

    if config.test_fraction <= 0:
        return []
    return split_paths_with_test(image_paths(source), val_fraction=config.val_fraction,
                                 test_fraction=config.test_fraction, seed=config.seed)[2]


def sample_pairs(config: FocusTrainConfig, key: jax.Array, pool: Any, batch: int, *, min_std: float) -> dict[str, jax.Array]:
    """``batch`` training pairs of ``config`` from ``pool``: Liu's 16x16 pairs, or Du & Gao's multi-scale ones."""
    from jfusion.data.synth import sample_focus_batch, sample_multiscale_focus_batch

    n_cls = config.model.n_classes
    if config.scale_tuple == (16,):
        return sample_focus_batch(key, pool, batch=batch, n_classes=n_cls, min_std=min_std)
    out = sample_multiscale_focus_batch(key, pool, batch=batch, scales=config.scale_tuple, n_classes=n_cls, min_std=min_std)
    return {k: out[k] for k in ("a", "b", "label")}


def evaluate_pairs(model: WeightNet, batch: dict[str, jax.Array], *, chunk: int = 512) -> dict[str, float]:
    """Accuracy (argmax = label), mean cross-entropy and mean |expected weight - true weight| of ``model`` on pairs."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def logits_of(state, a, b):
        return nnx.merge(graphdef, state)(a, b)

    n = batch["label"].shape[0]
    logits = jnp.concatenate(
        [logits_of(state, batch["a"][i : i + chunk], batch["b"][i : i + chunk]) for i in range(0, n, chunk)]
    )
    w = class_weights(model.config.n_classes)
    pred_w = matmul(jax.nn.softmax(logits, -1), w)
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    mae = jnp.mean(jnp.abs(pred_w - w[batch["label"]]))
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
    return {"acc": float(acc), "weight_mae": float(mae), "loss": float(loss)}


def make_optimizer(config: FocusTrainConfig) -> optax.GradientTransformation:
    """Adam(W) with linear warm-up and cosine decay to 1 % of ``lr``."""
    sched = optax.warmup_cosine_decay_schedule(
        0.0, config.lr, warmup_steps=config.warmup, decay_steps=max(config.steps, config.warmup + 1),
        end_value=config.lr * 0.01,
    )
    return optax.adamw(sched, weight_decay=config.weight_decay)


def train_weightnet(
    config: FocusTrainConfig,
    source: str | os.PathLike,
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True,
    data: FocusData | None = None,
) -> tuple[WeightNet, TrainResult, FocusData]:
    """Train a :class:`WeightNet` on synthetic pairs from the images under ``source``.

    Batches are a pure function of ``(seed, step)``, so a killed run resumes from its
    last checkpoint with the same batches and losses.

    Returns:
      ``(model, result, data)``: the trained model, the loop's history and the data used.
    """
    data = build_data(config, source) if data is None else data
    key = jax.random.key(config.seed)
    model = WeightNet(config=config.model, rngs=nnx.Rngs(jax.random.fold_in(key, 1)))
    pool = jnp.asarray(data.train_pool)
    n_proc, proc = jax.process_count(), jax.process_index()
    local = config.batch // n_proc
    sample_key = jax.random.fold_in(key, 2)

    def batch_fn(step: int) -> dict[str, jax.Array]:
        k = jax.random.fold_in(jax.random.fold_in(sample_key, step), proc)
        return sample_pairs(config, k, pool, local, min_std=config.min_std)

    def validate(m: WeightNet, step: int) -> dict[str, float]:
        r = evaluate_pairs(m, data.val_batch)
        return {"val_acc": r["acc"], "val_weight_mae": r["weight_mae"], "val_loss": r["loss"]}

    result = train(
        model,
        make_optimizer(config),
        cross_entropy_loss,
        batch_fn,
        steps=config.steps,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        checkpoint_every=config.checkpoint_every,
        validate=validate,
        validate_every=config.validate_every,
        progress=progress,
        desc=f"train {config.model.arch}/{config.model.head}",
        keep_best=config.select or None,
    )
    return model, result, data


def ship(
    model: WeightNet,
    config: FocusTrainConfig,
    data: FocusData,
    result: TrainResult,
    folder: str | os.PathLike,
    *,
    name: str,
    source: str,
    command: str,
    dtype: str = "float32",
    force: bool = False,
) -> dict[str, Any]:
    """Write ``model`` to ``folder`` as the asset ``weights`` (:mod:`jfusion.assets`); validation is re-measured on the *stored* weights.

    An existing asset in ``folder`` is replaced only with ``force=True``.
    """
    from jfusion import assets
    from jfusion.weights import ASSET, read_weightnet, save_params

    synthesis = ("jfusion.data.synth.sample_focus_batch (Liu 2017 progressive Gaussian blur, sigma 2, 7x7, "
                 "5 levels; K-class partial-focus pairs when n_classes > 2)")
    if config.scale_tuple != (16,):
        synthesis = (f"jfusion.data.synth.sample_multiscale_focus_batch (Du & Gao 2017: Liu's blur pairs cut at "
                     f"{'/'.join(map(str, config.scale_tuple))} px, area-resized to 16x16)")
    kept = result.best_step if (config.select and result.best_step is not None) else config.steps
    data_record = {
        "source": source,
        "n_train_images": data.n_train_images,
        "n_val_images": data.n_val_images,
        "synthesis": synthesis,
        "pool_crops": int(data.train_pool.shape[0]),
        "pairs_seen": int(kept) * int(config.batch),
    }
    if config.test_fraction > 0:
        data_record["n_test_images"] = data.n_test_images
        data_record["split"] = (f"jfusion.data.folder.split_paths_with_test(val_fraction={config.val_fraction}, "
                                f"test_fraction={config.test_fraction}, seed={config.seed}): test images never trained on")
    manifest = assets.new_manifest(
        model=name,
        config={"model": config.model.to_dict(),
                "train": {**config.to_dict(), **({"max_steps": config.steps} if config.select else {})}},
        data=data_record,
        command=command,
        steps=int(kept),
        seed=config.seed,
        final_train_loss=float(np.mean([h["loss"] for h in result.history[-50:]])) if result.history else None,
        final_train_acc=float(np.mean([h["acc"] for h in result.history[-50:]])) if result.history else None,
        jax=jax.__version__,
        devices=f"{jax.device_count()} x {jax.devices()[0].platform}",
        trained_on=f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        host=platform.machine(),
        deviations=__doc__.split("Deviations from")[1].split("\n\n")[0].replace("\n", " ").strip(),
    )
    if config.select:
        manifest["max_steps"] = config.steps
    from jfusion import assets as _assets

    n_bytes = sum(int(np.prod(v.shape)) * 4 for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    full = None
    if dtype == "float32" and n_bytes > _assets.SHIP_BYTES:
        # too large to ship at float32: the float32 asset stays in <folder>/float32, the shipped one is float16
        full = Path(folder) / "float32"
        save_params(model, full, manifest, dtype="float32", force=True)
        dtype = "float16"
    save_params(model, folder, manifest, dtype=dtype, force=force)
    stored = nnx.merge(*read_weightnet(folder))  # fresh load of what was written
    val = evaluate_pairs(stored, data.val_batch)
    val_all = evaluate_pairs(stored, data.val_batch_all)
    validation = {
        "pairs": int(data.val_batch["label"].shape[0]),
        "accuracy": val["acc"],
        "weight_mae": val["weight_mae"],
        "loss": val["loss"],
        "accuracy_incl_textureless": val_all["acc"],
        "note": "held-out images; 'accuracy' on textured patches (std >= min_std) as in training, "
        "'accuracy_incl_textureless' on all locations",
    }
    update: dict[str, Any] = {"scores": {"validation": validation, "test": {}}, "history": {"validation": result.validation}}
    if full is not None:
        f32 = evaluate_pairs(nnx.merge(*read_weightnet(full)), data.val_batch)
        update["storage"] = {
            "dtype": dtype,
            "bytes": (Path(folder) / "weights.npz").stat().st_size,
            "float32_bytes": (full / "weights.npz").stat().st_size,
            "limit_bytes": _assets.SHIP_BYTES,
            "split": "validation pairs",
            "float32_scores": {"accuracy": f32["acc"], "loss": f32["loss"], "weight_mae": f32["weight_mae"]},
            "stored_scores": {"accuracy": val["acc"], "loss": val["loss"], "weight_mae": val["weight_mae"]},
            "score_change": {"accuracy": val["acc"] - f32["acc"], "loss": val["loss"] - f32["loss"],
                             "weight_mae": val["weight_mae"] - f32["weight_mae"]},
        }
    manifest = assets.update_manifest(Path(folder) / ASSET, update)
    return manifest


def train_and_evaluate(
    config: FocusTrainConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False, progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the weight net of ``config`` and write ``<workdir>/weights`` (asset + manifest with validation scores); returns the manifest.

    Orbax checkpoints go to ``workdir/checkpoints`` (a killed run resumes with the same batches
    and losses). ``install=True`` also copies the asset into the package
    (``jfusion/weights/<name with _>``). Existing weights (in ``workdir``, and with ``install``
    in the package) are refused before training unless ``force``.
    """
    from jfusion import assets
    from jfusion import weights as weights_mod
    from jfusion.io import check_output_path
    from jfusion.training.recipes import command_line, prepare_workdir, radiometric_stats

    folder = Path(workdir)
    package_dir = weights_mod.WEIGHTS_DIR / config.name.replace("-", "_")
    files = [folder / "weights.npz", folder / "weights.json"]
    same = folder.resolve() == package_dir.resolve()
    for f in files + ([package_dir / f.name for f in files] if install and not same else []):
        check_output_path(f, overwrite=force)
    ckpt = prepare_workdir(folder, config)
    trained, result, dat = train_weightnet(config, config.data, checkpoint_dir=ckpt, progress=progress)
    man = ship(trained, config, dat, result, folder, name=config.name, source=config.data,
               command=command or command_line(config.name, config), force=force)
    man = assets.update_manifest(folder / "weights", {"radiometry": {
        "normalisation": "grey crops in [0, 1] of the training images (pairs are blurred copies of them)",
        "grey": radiometric_stats(dat.train_pool, per_channel=False),
    }})
    if install and not same:
        weights_mod.install(files, package_dir, overwrite=force)
    return man


def _register_recipes() -> None:
    from jfusion.training.recipes import register_recipe

    for name, config in CONFIGS.items():
        register_recipe(
            name, fn=train_and_evaluate, config=config, family="focus",
            presets={f"weights/{name.replace('-', '_')}/weights": config},
            summary=f"Train the {config.model.arch}/{config.model.head} weight net ({config.model.n_classes} classes) on synthetic "
            "multi-focus pairs from natural images.",
            reference="Liu, Chen, Peng, Wang, Information Fusion 36, 2017",
            variants=tuple(CONFIGS) if name == "focus-cnn" else (),
        )


_register_recipes()
