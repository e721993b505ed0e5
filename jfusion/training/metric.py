"""Training recipe of the learned fusion metric ``cnn_metric`` (survey Fig. 8): ``jfusion train cnn-metric``.

Protocol (the "Protocol for learned models" of ``benchmarks/README.md``): the natural images
(``shared/data/natural``, BSDS500 train+val and T91) are split **by image** into train / validation /
test by one fixed permutation (:func:`natural_split`, seed :data:`SPLIT_SEED`, independent of the
training seed). The optimiser sees pairs cut from the train images only, with the training distortion
types (:data:`jfusion.data.distort.TRAIN_KINDS`). Early stopping (``keep_best`` on the validation
cross-entropy) and the ship decision use the validation images. The test images are read once, by
:func:`final_evaluation` at the end of :func:`train_and_evaluate` (inside
:func:`jfusion.training.protocol.reading_test`; :func:`NaturalSplit.test_paths` raises
:class:`~jfusion.training.protocol.ProtocolError` elsewhere), and its scores go to ``scores.test`` of
the manifest whatever they are, with ``test_read`` (the sha256 of the weights it scored).

The final evaluation is the validation the survey asks for: on the test images, Spearman and Kendall
rank correlations of ``cnn_metric`` with SSIM and Q^AB/F over (i) the held-out distortion type
(JPEG-like block-DCT quantisation, never trained on) and (ii) the training types; and on a synthetic
multi-focus set (all-in-focus test image, random blur masks, several jfusion methods as the fused
images) with the full-reference PSNR and SSIM of the fused image against the all-in-focus truth.

Deviations, stated in the manifest: labels are the patch SSIM banded into K classes (the survey leaves
the mapping open); Adam with warm-up and cosine decay; a narrow network (widths 16-32-64, hidden 128)
for a CPU budget of minutes.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jfusion.data.distort import HELD_OUT_KINDS, KINDS, TRAIN_KINDS, distort, sample_metric_batch
from jfusion.models.focus_cnn import WeightNet, WeightNetConfig, class_weights
from jfusion.ops.precision import matmul
from jfusion.training.loop import TrainResult, train
from jfusion.training.protocol import ProtocolError, reading_test, test_allowed

__all__ = [
    "MetricTrainConfig", "CONFIG", "SPLIT_SEED", "NaturalSplit", "natural_split", "build_data", "evaluate_pairs",
    "train_metric", "correlation_study", "final_evaluation", "train_and_evaluate",
]

SPLIT_SEED = 20261202
"""Seed of the fixed train / validation / test permutation of the natural images."""


@dataclasses.dataclass(frozen=True)
class MetricTrainConfig:
    """Everything that defines a ``cnn-metric`` training run (stored in the manifest)."""

    model: WeightNetConfig = WeightNetConfig(arch="2ch", head="fc256", widths=(16, 32, 64), hidden=128, n_classes=11)
    steps: int = dataclasses.field(default=2000, metadata={"help": "Optimiser steps (the most; early stopping keeps the best)."})
    batch: int = dataclasses.field(default=128, metadata={"help": "Pairs per step."})
    lr: float = dataclasses.field(default=2e-3, metadata={"help": "Peak Adam learning rate (cosine decay)."})
    warmup: int = dataclasses.field(default=100, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = dataclasses.field(default=1e-4, metadata={"help": "Decoupled weight decay."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed of initialisation and pair sampling."})
    crop: int = dataclasses.field(default=64, metadata={"help": "Side of the grey crops taken from each image."})
    per_image: int = dataclasses.field(default=8, metadata={"help": "Crops per image."})
    val_fraction: float = dataclasses.field(default=0.1, metadata={"help": "Share of the images held out for validation."})
    test_fraction: float = dataclasses.field(default=0.1, metadata={"help": "Share of the images held out for the test."})
    val_pairs: int = dataclasses.field(default=2048, metadata={"help": "Validation pairs (validation images)."})
    identical_fraction: float = dataclasses.field(default=0.08, metadata={"help": "Share of identical pairs (class 1.0)."})
    checkpoint_every: int = dataclasses.field(default=100, metadata={"help": "Orbax checkpoint interval in steps."})
    validate_every: int = dataclasses.field(default=250, metadata={"help": "Validation interval in steps (early stopping)."})
    test_images: int = dataclasses.field(default=0, metadata={"help": "Test images the final evaluation uses (0: all)."})
    test_side: int = dataclasses.field(default=64, metadata={"help": "Side of the grey centre crop of each test image."})
    name: str = dataclasses.field(default="cnn-metric", metadata={"cli": False})
    data: str = dataclasses.field(default="../shared/data/natural", metadata={"help": "Folder of natural images (searched recursively)."})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


CONFIG = MetricTrainConfig()


# ------------------------------------------------------------------------------------------
# the fixed split
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NaturalSplit:
    """Train / validation / test image paths; the test list only inside :func:`reading_test`."""

    train: tuple[str, ...]
    validation: tuple[str, ...]
    _test: tuple[str, ...]

    def test_paths(self) -> tuple[str, ...]:
        """The test images (only inside :func:`jfusion.training.protocol.reading_test`).

        Raises:
          ProtocolError: called outside the final evaluation.
        """
        if not test_allowed():
            raise ProtocolError(
                "the test images are read only by the final evaluation (jfusion.training.metric.final_evaluation); "
                "train, choose steps and decide what ships on the validation images"
            )
        return self._test

    def describe(self) -> dict[str, Any]:
        """The manifest's ``split``: counts and the file names of validation and test (not their pixels)."""
        return {
            "rule": f"one permutation of the sorted image paths (numpy default_rng({SPLIT_SEED})): first test, then "
            "validation, the rest train; by image",
            "n_train": len(self.train), "n_validation": len(self.validation), "n_test": len(self._test),
            "validation": [Path(p).name for p in self.validation],
            "test": [Path(p).name for p in self._test],
        }


def natural_split(paths: Sequence[str], *, val_fraction: float = 0.1, test_fraction: float = 0.1) -> NaturalSplit:
    """The fixed split of ``paths`` (sorted first, so it depends on the file set only)."""
    paths = sorted(str(p) for p in paths)
    n = len(paths)
    n_test, n_val = int(round(test_fraction * n)), int(round(val_fraction * n))
    if n_test < 1 or n_val < 1 or n - n_test - n_val < 1:
        raise ValueError(f"{n} images are too few for a train / validation / test split")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    pick = lambda idx: tuple(sorted(paths[i] for i in idx))  # noqa: E731
    return NaturalSplit(pick(order[n_test + n_val:]), pick(order[n_test:n_test + n_val]), pick(order[:n_test]))


# ------------------------------------------------------------------------------------------
# data, validation, training
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MetricData:
    train_pool: np.ndarray
    val_batch: dict[str, jax.Array]
    val_held_out: dict[str, jax.Array]
    split: NaturalSplit


def build_data(config: MetricTrainConfig, source: str | os.PathLike) -> MetricData:
    """Crop pools of the train and validation images, and the fixed validation pairs (training types and held-out type)."""
    from jfusion.data.folder import image_paths, load_crop_pool

    split = natural_split(image_paths(source), val_fraction=config.val_fraction, test_fraction=config.test_fraction)
    kw = dict(crop=config.crop, per_image=config.per_image, seed=config.seed)
    train_pool = load_crop_pool(list(split.train), **kw)
    val_pool = load_crop_pool(list(split.validation), **kw)
    key = jax.random.fold_in(jax.random.key(config.seed), 10**6)
    k = config.model.n_classes
    val = sample_metric_batch(key, val_pool, batch=config.val_pairs, n_classes=k, identical_fraction=config.identical_fraction)
    held = sample_metric_batch(key, val_pool, batch=config.val_pairs, n_classes=k, identical_fraction=0.0,
                               kinds=tuple(KINDS.index(h) for h in HELD_OUT_KINDS))
    return MetricData(train_pool, val, held, split)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def evaluate_pairs(model: WeightNet, batch: dict[str, jax.Array], *, chunk: int = 512) -> dict[str, float]:
    """Cross-entropy, accuracy, |expected score - class score|, |expected score - SSIM| and Spearman(score, SSIM) on pairs."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def logits_of(state, a, b):
        return nnx.merge(graphdef, state)(a, b)

    n = batch["label"].shape[0]
    logits = jnp.concatenate([logits_of(state, batch["a"][i:i + chunk], batch["b"][i:i + chunk]) for i in range(0, n, chunk)])
    s = class_weights(model.config.n_classes)
    score = matmul(jax.nn.softmax(logits, -1), s)
    label = batch["label"]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, label).mean()
    return {
        "loss": float(ce),
        "acc": float(jnp.mean(jnp.argmax(logits, -1) == label)),
        "score_mae": float(jnp.mean(jnp.abs(score - s[label]))),
        "ssim_mae": float(jnp.mean(jnp.abs(score - jnp.clip(batch["ssim"], 0, 1)))),
        "spearman_ssim": _spearman(np.asarray(score), np.asarray(batch["ssim"])),
    }


def _loss(model: WeightNet, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    logits = model(batch["a"], batch["b"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
    return loss, {"acc": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}


def make_optimizer(config: MetricTrainConfig) -> optax.GradientTransformation:
    sched = optax.warmup_cosine_decay_schedule(
        0.0, config.lr, warmup_steps=config.warmup, decay_steps=max(config.steps, config.warmup + 1), end_value=config.lr * 0.01,
    )
    return optax.adamw(sched, weight_decay=config.weight_decay)


def train_metric(
    config: MetricTrainConfig, source: str | os.PathLike, *, checkpoint_dir: str | os.PathLike | None = None,
    progress: bool = True, data: MetricData | None = None,
) -> tuple[WeightNet, TrainResult, MetricData]:
    """Train the metric network; batches are a pure function of ``(seed, step)`` (resumable); early stopping on validation."""
    data = build_data(config, source) if data is None else data
    key = jax.random.key(config.seed)
    model = WeightNet(config=config.model, rngs=nnx.Rngs(jax.random.fold_in(key, 1)))
    pool = jnp.asarray(data.train_pool)
    sample_key = jax.random.fold_in(key, 2)
    n_cls, frac = config.model.n_classes, config.identical_fraction

    @jax.jit
    def draw(k):
        return sample_metric_batch(k, pool, batch=config.batch, n_classes=n_cls, identical_fraction=frac)

    def batch_fn(step: int) -> dict[str, jax.Array]:
        b = draw(jax.random.fold_in(sample_key, step))
        return {"a": b["a"], "b": b["b"], "label": b["label"]}

    def validate(m: WeightNet, step: int) -> dict[str, float]:
        r = evaluate_pairs(m, data.val_batch)
        h = evaluate_pairs(m, data.val_held_out)
        return {"val_loss": r["loss"], "val_acc": r["acc"], "val_score_mae": r["score_mae"],
                "val_spearman_ssim": r["spearman_ssim"], "val_heldout_spearman_ssim": h["spearman_ssim"]}

    result = train(
        model, make_optimizer(config), _loss, batch_fn, steps=config.steps,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), checkpoint_every=config.checkpoint_every,
        validate=validate, validate_every=config.validate_every, progress=progress, desc="train cnn-metric",
        keep_best="val_loss",
    )
    return model, result, data


# ------------------------------------------------------------------------------------------
# the correlation study (final evaluation on the test images; the benchmark on validation images)
# ------------------------------------------------------------------------------------------
STRENGTHS = (0.1, 0.35, 0.6, 0.85)
FUSION_METHODS = ("laplacian", "dwt", "gff", "sf-block", "cnn-focus", "average")


def _grey_crops(paths: Sequence[str], side: int) -> np.ndarray:
    from jfusion.io import read_image

    out = []
    for p in paths:
        img = np.asarray(read_image(p), np.float32)
        if img.ndim == 3:
            img = img[..., :3] @ np.array([0.2989, 0.5870, 0.1140], np.float32)
        h, w = img.shape
        s = min(side, h, w) // 8 * 8
        y, x = (h - s) // 2, (w - s) // 2
        out.append(img[y:y + s, x:x + s])
    sides = {o.shape for o in out}
    if len(sides) != 1:  # smaller images (T91): crop every image to the smallest side
        s = min(o.shape[0] for o in out)
        out = [o[(o.shape[0] - s) // 2:(o.shape[0] - s) // 2 + s, (o.shape[1] - s) // 2:(o.shape[1] - s) // 2 + s] for o in out]
    return np.stack(out)


def _rank(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau, spearmanr

    return {"spearman": float(spearmanr(x, y).statistic), "kendall": float(kendalltau(x, y).statistic), "n": int(len(x))}


def _distorted_set(images: np.ndarray, kinds: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every image under every kind at every strength of :data:`STRENGTHS`: (references, distorted, kind names)."""
    key = jax.random.key(seed)
    f = jax.jit(jax.vmap(distort, in_axes=(0, 0, None, None)), static_argnums=())
    refs, dist, names = [], [], []
    for kd in kinds:
        for j, u in enumerate(STRENGTHS):
            keys = jax.random.split(jax.random.fold_in(key, KINDS.index(kd) * 100 + j), len(images))
            dist.append(np.asarray(f(keys, jnp.asarray(images), KINDS.index(kd), u)))
            refs.append(images)
            names += [kd] * len(images)
    return np.concatenate(refs), np.concatenate(dist), names


def _blur_masks(key: jax.Array, n: int, side: int) -> np.ndarray:
    """Smooth random focus masks: a half-plane at a random angle and offset, softened by a Gaussian edge of 2 px."""
    k1, k2 = jax.random.split(key)
    ang = jax.random.uniform(k1, (n,), minval=0, maxval=2 * np.pi)
    off = jax.random.uniform(k2, (n,), minval=-0.25, maxval=0.25) * side
    yy, xx = np.mgrid[0:side, 0:side] - (side - 1) / 2
    d = np.cos(np.asarray(ang))[:, None, None] * xx + np.sin(np.asarray(ang))[:, None, None] * yy - np.asarray(off)[:, None, None]
    return (1 / (1 + np.exp(-d / 2.0))).astype(np.float32)


def multifocus_set(images: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic multi-focus pairs: ``(sources (N, 2, H, W), truth (N, H, W))``; blur sigma 2.5 outside each source's focus."""
    from jfusion.data.distort import _gauss_blur

    masks = _blur_masks(jax.random.key(seed + 7), len(images), images.shape[-1])
    blurred = np.asarray(jax.jit(jax.vmap(lambda x: _gauss_blur(x, jnp.float32(2.5))))(jnp.asarray(images)))
    a = masks * images + (1 - masks) * blurred
    b = (1 - masks) * images + masks * blurred
    return np.stack([a, b], 1), images


def correlation_study(weights: str, images: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Rank correlations of ``cnn_metric`` (weights ``weights``) with SSIM / Q^AB/F and with full-reference PSNR / SSIM.

    Args:
      weights: shipped name or weights folder.
      images: ``(N, H, W)`` grey images in [0, 1] (held-out images).

    Returns:
      ``{"held_out_distortion": {...}, "training_distortions": {...}, "multi_focus": {...}}`` with
      Spearman / Kendall and counts (see the module docstring).
    """
    from jfusion import fuse
    from jfusion.metrics import evaluate_batch

    opts = {"cnn_metric": {"weights": str(weights)}}
    out: dict[str, Any] = {}
    for label, kinds in (("held_out_distortion", HELD_OUT_KINDS), ("training_distortions", TRAIN_KINDS)):
        refs, dist, names = _distorted_set(images, kinds, seed)
        src = np.stack([refs, refs], 1)  # a reference image as both "sources": the pair metric of (ref, distorted)
        vals = evaluate_batch(src, np.clip(dist, 0, 1), metrics=["cnn_metric", "ssim", "qabf"], options=opts)
        cnn, ssim, qabf = (np.asarray(vals[k]) for k in ("cnn_metric", "ssim", "qabf"))
        out[label] = {
            "kinds": list(kinds), "strengths": list(STRENGTHS),
            "vs_ssim": _rank(cnn, ssim), "vs_qabf": _rank(cnn, qabf),
            "qabf_vs_ssim": _rank(qabf, ssim),
            "cnn_mean_by_strength": [float(np.mean(cnn[i * len(images):(i + 1) * len(images)])) for i in range(len(names) // len(images))],
        }
    sources, truth = multifocus_set(images, seed)
    fused = []
    for m in FUSION_METHODS:
        if m == "average":
            fused.append(sources.mean(1))
        else:
            fused.append(np.stack([np.asarray(fuse([s[0], s[1]], method=m)) for s in sources]))
    fused = np.clip(np.concatenate(fused), 0, 1)
    src = np.concatenate([sources] * len(FUSION_METHODS))
    tru = np.concatenate([truth] * len(FUSION_METHODS))
    nr = evaluate_batch(src, fused, metrics=["cnn_metric", "qabf", "ssim"], options=opts)
    fr = evaluate_batch(np.stack([tru, tru], 1), fused, metrics=["psnr", "ssim"])
    cnn, qabf, ssim_src = (np.asarray(nr[k]) for k in ("cnn_metric", "qabf", "ssim"))
    psnr_gt, ssim_gt = np.asarray(fr["psnr"]), np.asarray(fr["ssim"]) / 2  # vifb SSIM sums over the two (equal) sources
    n = len(images)
    out["multi_focus"] = {
        "methods": list(FUSION_METHODS), "n_scenes": n, "blur_sigma": 2.5,
        "cnn_vs_psnr_gt": _rank(cnn, psnr_gt), "cnn_vs_ssim_gt": _rank(cnn, ssim_gt),
        "qabf_vs_psnr_gt": _rank(qabf, psnr_gt), "qabf_vs_ssim_gt": _rank(qabf, ssim_gt),
        "ssim_sources_vs_ssim_gt": _rank(ssim_src, ssim_gt),
        "per_method": {m: {"cnn_metric": float(cnn[i * n:(i + 1) * n].mean()), "qabf": float(qabf[i * n:(i + 1) * n].mean()),
                           "psnr_gt": float(psnr_gt[i * n:(i + 1) * n].mean()), "ssim_gt": float(ssim_gt[i * n:(i + 1) * n].mean())}
                       for i, m in enumerate(FUSION_METHODS)},
    }
    return out


def final_evaluation(weights: str | os.PathLike, config: MetricTrainConfig, split: NaturalSplit) -> dict[str, Any]:
    """The one read of the test images: the pair scores and :func:`correlation_study` on them."""
    from jfusion.data.folder import load_crop_pool

    with reading_test():
        paths = list(split.test_paths())
        if config.test_images:
            paths = paths[: config.test_images]
        images = _grey_crops(paths, config.test_side)
        pool = load_crop_pool(paths, crop=config.crop, per_image=config.per_image, seed=config.seed)
    from jfusion.weights import load_weightnet

    model = load_weightnet(weights)
    key = jax.random.fold_in(jax.random.key(config.seed), 2 * 10**6)
    k = config.model.n_classes
    pairs = evaluate_pairs(model, sample_metric_batch(key, pool, batch=config.val_pairs, n_classes=k,
                                                      identical_fraction=config.identical_fraction))
    held = evaluate_pairs(model, sample_metric_batch(key, pool, batch=config.val_pairs, n_classes=k, identical_fraction=0.0,
                                                     kinds=tuple(KINDS.index(h) for h in HELD_OUT_KINDS)))
    study = correlation_study(str(weights), images, seed=config.seed)
    return {"n_images": len(paths), "side": int(images.shape[-1]), "pairs": pairs, "pairs_held_out_distortion": held, **study}


# ------------------------------------------------------------------------------------------
# the recipe
# ------------------------------------------------------------------------------------------
def _ship(model, config, data, result, folder: Path, *, command: str, force: bool) -> dict[str, Any]:
    from jfusion import assets
    from jfusion.weights import ASSET, read_weightnet, save_params

    manifest = assets.new_manifest(
        model=config.name,
        config={"model": config.model.to_dict(), "train": {**config.to_dict(), "max_steps": config.steps}},
        data={
            "source": config.data, "split": data.split.describe(),
            "synthesis": "jfusion.data.distort.sample_metric_batch: 16x16 natural patches and copies under "
            f"{', '.join(TRAIN_KINDS)} at uniform random strengths; label floor(10 SSIM) (patch SSIM, 11x11 Gaussian "
            "window), capped at 0.9 unless identical (1.0); held-out type for validation: " + ", ".join(HELD_OUT_KINDS),
        },
        command=command, steps=int(result.best_step or config.steps), max_steps=config.steps, seed=config.seed,
        final_train_loss=float(np.mean([h["loss"] for h in result.history[-50:]])) if result.history else None,
        jax=jax.__version__, devices=f"{jax.device_count()} x {jax.devices()[0].platform}", host=platform.machine(),
        trained_on=f"{jax.device_count()} x {jax.devices()[0].platform} ({platform.machine()}, {os.cpu_count()} cores shared)",
        deviations=__doc__.split("Deviations, stated in the manifest: ")[1].strip().replace("\n", " "),
        experimental=True,
    )
    save_params(model, folder, manifest, force=force)
    stored = nnx.merge(*read_weightnet(folder))
    val = evaluate_pairs(stored, data.val_batch)
    held = evaluate_pairs(stored, data.val_held_out)
    return assets.update_manifest(folder / ASSET, {
        "scores": {"validation": {"pairs": int(data.val_batch["label"].shape[0]), **val, "held_out_distortion": held,
                                  "note": "validation images; kept step = lowest validation cross-entropy"}, "test": {}},
        "history": {"validation": result.validation},
    })


def train_and_evaluate(
    config: MetricTrainConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False,
    progress: bool = True, command: str | None = None,
) -> dict[str, Any]:
    """Train, write ``<workdir>/weights`` (asset + manifest), run the final evaluation on the test images once.

    Orbax checkpoints go to ``workdir/checkpoints`` (a killed run resumes with the same batches);
    ``install=True`` copies the asset into ``jfusion/weights/cnn_metric`` when it ships (validation
    cross-entropy below the uniform guess ``log K`` and validation Spearman with SSIM above 0.5).
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
    model, result, data = train_metric(config, config.data, checkpoint_dir=ckpt, progress=progress)
    man = _ship(model, config, data, result, folder, command=command or command_line(config.name, config), force=force)
    val = man["scores"]["validation"]
    ships = bool(val["loss"] < np.log(config.model.n_classes) and val["spearman_ssim"] > 0.5)
    rule = "validation cross-entropy below log K (uniform guess) and Spearman(score, SSIM) > 0.5 on validation pairs"
    man = assets.update_manifest(folder / "weights", {
        "ships": ships, "ship_rule": rule,
        "radiometry": {"normalisation": "grey crops in [0, 1]", "grey": radiometric_stats(data.train_pool, per_channel=False)},
    })
    test = final_evaluation(folder, config, data.split)
    man = assets.update_manifest(folder / "weights", {
        "scores": {"validation": val, "test": test}, "test_read": {"sha256": man["sha256"], "date": man["date"]},
    })
    if install and ships and not same:
        weights_mod.install(files, package_dir, overwrite=force)
    return man


def _register() -> None:
    from jfusion.training.recipes import register_recipe

    register_recipe(
        "cnn-metric", fn=train_and_evaluate, config=CONFIG, family="metric",
        presets={"weights/cnn_metric/weights": CONFIG},
        summary="Train the learned fusion metric (survey Fig. 8): 2-channel CNN, 11 similarity classes, on distorted "
        "natural patch pairs; final evaluation on the test images.",
        reference="Liu, Chen, Wang, Wang, Ward, Wang, Information Fusion 42, 2018, section 5.3 / Fig. 8",
    )


_register()
