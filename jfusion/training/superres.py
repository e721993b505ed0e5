"""Training of the SRCNNs of fusion with super-resolution (``uwt-srcnn``, ``srcnn-fusion``; methods_spec 6.0-6.2).

Recipes ``jfusion train srcnn-x<s>`` (image super-resolution, the network of ``srcnn-fusion``) and
``jfusion train uwt-srcnn-x<s>`` (the network of ``uwt-srcnn``), one network per scale ``s``.

Data: the luma Y (BT.601, :func:`jfusion.ops.colour.rgb_to_ycbcr`) of the natural images under ``data``
(``shared/data/natural``: BSDS500 train+val and T91). LR = bicubic down-then-up by the scale
(antialiased bicubic downsampling, as MATLAB ``imresize``; the image first cropped to a multiple of the
scale). ``target="image"``: input the LR-up image, target the HR image. ``target="uwt"``: input a
high-frequency band of the undecimated wavelet transform (``wavelet``, ``levels``; computed on the
whole image, as the method does) of the LR-up image, target the same band of the HR image; every
band of every level and orientation goes to the one network. Random ``patch x patch`` sub-images
(Dong et al.: 33 x 33); the loss is the MSE on the centre, ``receptive_margin`` pixels in from each
side (the part of a 'valid' network's output).

Split (fixed, by image, no randomness): ``sha256`` of the image's path relative to ``data``, first
byte mod 10: 0 -> **test**, 1 -> **validation**, else **train** (:func:`split_images`). The test images
are returned only inside :func:`jfusion.training.protocol.reading_test`, which only
:func:`final_evaluation` enters, once per written asset (the manifest records ``test_read``).
Step count: early stopping on the validation loss (``keep_best``); the ship rule (:data:`SHIP_RULE`):
the network beats bicubic interpolation in PSNR on the validation crops.

Deviations from Dong et al. (TPAMI 2016), chosen for a CPU budget of minutes: residual learning (the
network adds its output to its input, as VDSR; it converges in hundreds instead of 10^8 steps); Adam
at a constant rate (the last layer at a tenth, Dong's per-layer ratio, through ``optax.multi_transform``)
instead of SGD; 'same' padding with the loss on the valid centre; natural images of BSDS500 + T91 instead
of T91 or ILSVRC alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jfusion.models.pansharpening import SRCNN, receptive_margin
from jfusion.training import protocol
from jfusion.training.loop import TrainResult, train

__all__ = [
    "SRTrainConfig", "CONFIGS", "SHIP_RULE", "split_images", "load_luma", "degrade", "SRData", "build_data",
    "make_optimizer", "train_srcnn", "score_crops", "ship_decision", "final_evaluation", "train_and_evaluate",
]

SHIP_RULE = "beats bicubic interpolation in PSNR (Y) on the validation crops"


@dataclasses.dataclass(frozen=True)
class SRTrainConfig:
    """Everything that defines an SRCNN run of fusion with super-resolution (stored in the manifest).

    Attributes:
      name: the recipe and shipped weights folder (``-`` as ``_``).
      target: ``"image"`` (SR of the image) or ``"uwt"`` (SR of UWT high-frequency bands).
      scale: super-resolution factor.
      features, kernels, residual: the SRCNN (:class:`jfusion.models.pansharpening.SRCNN`).
      wavelet, levels: the UWT of ``target="uwt"``.
      steps, batch, lr: Adam at a constant ``lr`` (layer 3 at ``lr / 10``), ``steps`` of ``batch`` sub-images.
      patch: sub-image side; ``per_image``: training sub-images drawn per image.
      val_crop, val_crops: side and number per validation image of the validation crops; the PSNR is
        taken ``val_border`` pixels in from each side.
      seed: initialisation and sub-image sampling.
      data: folder of natural images.
      checkpoint_every, validate_every: intervals in steps.
    """

    name: str = dataclasses.field(default="srcnn-x2", metadata={"cli": False})
    target: str = dataclasses.field(default="image", metadata={"cli": False})
    scale: int = dataclasses.field(default=2, metadata={"cli": False})
    features: tuple[int, int] = (64, 32)
    kernels: tuple[int, int, int] = (9, 5, 5)
    residual: bool = dataclasses.field(default=True, metadata={"cli": False})
    wavelet: str = dataclasses.field(default="haar", metadata={"cli": False})
    levels: int = dataclasses.field(default=2, metadata={"cli": False})
    steps: int = dataclasses.field(default=1000, metadata={"help": "Optimiser steps (early stopping on validation keeps the best)."})
    batch: int = dataclasses.field(default=32, metadata={"help": "Sub-images per step."})
    lr: float = dataclasses.field(default=1e-3, metadata={"help": "Adam learning rate (layer 3: a tenth of it)."})
    patch: int = dataclasses.field(default=33, metadata={"help": "Side of the training sub-images."})
    per_image: int = dataclasses.field(default=24, metadata={"help": "Training sub-images per image."})
    val_crop: int = dataclasses.field(default=64, metadata={"help": "Side of the validation crops."})
    val_crops: int = dataclasses.field(default=2, metadata={"help": "Validation crops per validation image."})
    val_border: int = dataclasses.field(default=12, metadata={"help": "Border excluded from the validation PSNR."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed of initialisation and sampling."})
    data: str = dataclasses.field(default="../shared/data/natural", metadata={"help": "Folder of natural images (searched recursively)."})
    checkpoint_every: int = dataclasses.field(default=100, metadata={"help": "Orbax checkpoint interval in steps."})
    validate_every: int = dataclasses.field(default=100, metadata={"help": "Validation interval in steps."})


def _config(target: str, scale: int, **kw: Any) -> SRTrainConfig:
    name = ("srcnn" if target == "image" else "uwt-srcnn") + f"-x{scale}"
    return SRTrainConfig(name=name, target=target, scale=scale, **kw)


CONFIGS: dict[str, SRTrainConfig] = {c.name: c for c in (_config(t, s) for t in ("image", "uwt") for s in (2, 3, 4))}
"""The recipes ``jfusion train srcnn-x2 | srcnn-x3 | srcnn-x4 | uwt-srcnn-x2 | uwt-srcnn-x3 | uwt-srcnn-x4``."""

SHIPPED: dict[str, SRTrainConfig] = {name: dataclasses.replace(config, steps=400) for name, config in CONFIGS.items()}
"""Presets of the shipped assets (``weights/<name with _>/weights``): ``jfusion train <name> --steps 400`` for every
recipe (x2: 2 shared CPU cores, load average 8-29, 2026-12-02; x3, x4: 2 CPU cores, load 2-4, 2026-12-03)."""


# ----------------------------------------------------------------------------- data
def _split_of(rel: str) -> str:
    b = hashlib.sha256(rel.encode()).digest()[0] % 10
    return "test" if b == 0 else "validation" if b == 1 else "train"


def _data(config: Any) -> Path:
    """``config.data`` resolved (:func:`jfusion.training.recipes.data_folder`: ``$JFUSION_DATA/natural`` when the
    recorded default is not beside the working directory)."""
    from jfusion.training.recipes import data_folder

    return data_folder(config.data, default=type(config).data)


def split_images(source: str | os.PathLike) -> dict[str, list[str]]:
    """The fixed split of the images under ``source``: ``{"train": [...], "validation": [...]}`` (+ ``"test"`` only
    inside :func:`jfusion.training.protocol.reading_test`). Rule: first byte of ``sha256(relative path)`` mod 10."""
    from jfusion.data.folder import image_paths

    root = Path(source)
    out: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for p in image_paths(root):
        out[_split_of(Path(p).resolve().relative_to(root.resolve()).as_posix())].append(p)
    if not protocol.test_allowed():
        del out["test"]
    return out


def load_luma(path: str | os.PathLike) -> np.ndarray:
    """The luma Y in [0, 1] (BT.601 full range) of an image file, ``(H, W)`` float32."""
    from jfusion.io import read_image
    from jfusion.ops.colour import rgb_to_ycbcr

    img = np.asarray(read_image(path), np.float32)
    if img.ndim == 3 and img.shape[-1] >= 3:
        return np.asarray(rgb_to_ycbcr(img[..., :3])[..., 0], np.float32)
    return img if img.ndim == 2 else img[..., 0]


def degrade(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(hr', lr_up)``: ``hr`` cropped to a multiple of ``scale`` and its bicubic down-then-up version (same size)."""
    from jfusion.ops.resample import resize

    h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
    hr = hr[:h, :w]
    lr = resize(hr, (h // scale, w // scale), method="bicubic", antialias=True)
    up = resize(lr, (h, w), method="bicubic")
    return hr, np.asarray(up, np.float32)


def _bands(x: np.ndarray, config: SRTrainConfig) -> np.ndarray:
    """The UWT high-frequency bands ``(3 levels, H, W)`` of an image (the method's transform, whole image)."""
    from jfusion.methods.superres import _uwt

    coeffs, h, w = _uwt(jnp.asarray(x), config.wavelet, config.levels)
    return np.stack([np.asarray(c)[:h, :w] for det in coeffs[1:] for c in det])


@dataclasses.dataclass(frozen=True)
class SRData:
    """Training sub-images ``(N, p, p)`` (input, target) and the validation crops (LR-up, HR) ``(M, c, c)``."""

    inputs: np.ndarray
    targets: np.ndarray
    val_up: np.ndarray
    val_hr: np.ndarray
    n_train_images: int
    n_val_images: int


def _crops(rng: np.random.Generator, arrays: list[np.ndarray], size: int, n: int) -> list[np.ndarray]:
    h, w = arrays[0].shape[-2:]
    if h < size or w < size:
        arrays = [np.pad(a, [(0, 0)] * (a.ndim - 2) + [(0, max(0, size - h)), (0, max(0, size - w))], mode="symmetric")
                  for a in arrays]
        h, w = arrays[0].shape[-2:]
    ys, xs = rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)
    return [np.stack([a[..., y : y + size, x : x + size] for y, x in zip(ys, xs)]) for a in arrays]


def eval_crops(paths: list[str], config: SRTrainConfig, *, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (LR-up, HR) crops ``(len(paths) * val_crops, c, c)`` of whole-image degradations (seeded by ``salt``)."""
    rng = np.random.default_rng([config.seed, salt])
    ups, hrs = [], []
    for p in paths:
        hr, up = degrade(load_luma(p), config.scale)
        u, h = _crops(rng, [up, hr], config.val_crop, config.val_crops)
        ups.append(u)
        hrs.append(h)
    return np.concatenate(ups), np.concatenate(hrs)


def build_data(config: SRTrainConfig) -> SRData:
    """Sub-images of the training images and validation crops of the validation images (:func:`split_images`)."""
    split = split_images(_data(config))
    rng = np.random.default_rng(config.seed)
    ins, tgs = [], []
    for p in split["train"]:
        hr, up = degrade(load_luma(p), config.scale)
        if config.target == "uwt":
            bu, bh = _bands(up, config), _bands(hr, config)
            band = rng.integers(0, bu.shape[0], config.per_image)
            cu, ch = _crops(rng, [bu, bh], config.patch, config.per_image)
            idx = np.arange(config.per_image)
            ins.append(cu[idx, band])
            tgs.append(ch[idx, band])
        else:
            cu, ch = _crops(rng, [up, hr], config.patch, config.per_image)
            ins.append(cu)
            tgs.append(ch)
    val_up, val_hr = eval_crops(split["validation"], config, salt=1)
    return SRData(np.concatenate(ins), np.concatenate(tgs), val_up, val_hr, len(split["train"]), len(split["validation"]))


# ----------------------------------------------------------------------------- model, loss, optimiser
def build_model(config: SRTrainConfig, *, key: jax.Array | None = None) -> SRCNN:
    key = jax.random.key(config.seed) if key is None else key
    return SRCNN(channels=1, features=tuple(config.features), kernels=tuple(config.kernels), residual=config.residual,
                 rngs=nnx.Rngs(jax.random.fold_in(key, 1)))


def make_optimizer(config: SRTrainConfig) -> optax.GradientTransformation:
    """Adam at ``lr`` for layers 1-2 and ``lr / 10`` for layer 3 (Dong et al.'s ratio), constant in time."""

    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "last" if any(getattr(k, "key", None) == "conv3" for k in path) else "rest", params)

    return optax.multi_transform({"rest": optax.adam(config.lr), "last": optax.adam(config.lr * 0.1)}, labels)


def _loss(margin: int):
    def loss_fn(model: SRCNN, batch: dict[str, jax.Array]):
        out = model(batch["x"][..., None])[..., 0]
        m = margin
        err = (out - batch["y"])[:, m:-m, m:-m] if m else out - batch["y"]
        mse = jnp.mean(err * err)
        return mse, {"rmse": jnp.sqrt(mse)}

    return loss_fn


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float(10 * np.log10(1.0 / max(mse, 1e-20)))


def _predict(model: SRCNN, up: np.ndarray, config: SRTrainConfig) -> np.ndarray:
    """The network's super-resolution of LR-up crops ``(M, c, c)`` (UWT: each crop's bands enhanced, inverse UWT)."""
    from jfusion.methods.superres import srcnn_apply, uwt_enhance

    graphdef, state = nnx.split(model)
    if config.target == "uwt":
        fn = jax.jit(lambda st, x: jax.lax.map(
            lambda c: uwt_enhance(nnx.merge(graphdef, st), c, wavelet=config.wavelet, levels=config.levels), x))
    else:
        fn = jax.jit(lambda st, x: srcnn_apply(nnx.merge(graphdef, st), x))
    return np.asarray(fn(state, jnp.asarray(up)))


def score_crops(model: SRCNN, up: np.ndarray, hr: np.ndarray, config: SRTrainConfig) -> dict[str, float]:
    """Mean PSNR (dB, Y, ``val_border`` px excluded) of the network and of bicubic over crops; the network's MSE."""
    b = config.val_border
    pred = np.clip(_predict(model, up, config), 0.0, 1.0)
    sl = (slice(None), slice(b, -b or None), slice(b, -b or None))
    p_net = [_psnr(p[sl[1:]], h[sl[1:]]) for p, h in zip(pred, hr)]
    p_bic = [_psnr(u[sl[1:]], h[sl[1:]]) for u, h in zip(up, hr)]
    mse = float(np.mean((pred[sl] - hr[sl]) ** 2))
    return {"psnr": float(np.mean(p_net)), "psnr_bicubic": float(np.mean(p_bic)),
            "psnr_gain": float(np.mean(p_net) - np.mean(p_bic)), "mse": mse, "crops": int(len(up))}


def ship_decision(validation: dict[str, float]) -> bool:
    """:data:`SHIP_RULE` on the validation scores of :func:`score_crops`."""
    return bool(validation["psnr"] > validation["psnr_bicubic"])


def train_srcnn(
    config: SRTrainConfig, *, checkpoint_dir: str | os.PathLike | None = None, progress: bool = True, data: SRData | None = None,
) -> tuple[SRCNN, TrainResult, SRData]:
    """Train the SRCNN of ``config``; batches are a pure function of ``(seed, step)`` (a killed run resumes exactly)."""
    data = build_data(config) if data is None else data
    model = build_model(config)
    xs, ys = jnp.asarray(data.inputs), jnp.asarray(data.targets)
    sample_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    n = xs.shape[0]

    def batch_fn(step: int) -> dict[str, jax.Array]:
        idx = jax.random.randint(jax.random.fold_in(sample_key, step), (config.batch,), 0, n)
        return {"x": xs[idx], "y": ys[idx]}

    def validate(m: SRCNN, step: int) -> dict[str, float]:
        del step
        r = score_crops(m, data.val_up, data.val_hr, config)
        return {"val_loss": r["mse"], "val_psnr": r["psnr"], "val_psnr_gain": r["psnr_gain"]}

    result = train(
        model, make_optimizer(config), _loss(receptive_margin(config.kernels)), batch_fn, steps=config.steps,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), checkpoint_every=config.checkpoint_every,
        validate=validate, validate_every=config.validate_every, progress=progress, desc=f"train {config.name}",
        keep_best="val_loss",
    )
    return model, result, data


# ----------------------------------------------------------------------------- assets
def final_evaluation(folder: str | os.PathLike, config: SRTrainConfig) -> dict[str, Any]:
    """Score the asset in ``folder`` on the test images, once: the one reader of the test split.

    The manifest records the scores (``scores.test``) and the sha256 of the weights file it scored
    (``test_read``); called again on the same file it returns the recorded scores without reading the test images.
    """
    from jfusion.methods.superres import _read

    path = Path(folder) / "weights"
    (graphdef, params, rest), _ = _read(path)
    model = nnx.merge(graphdef, params, rest)

    def score() -> dict[str, Any]:
        test_paths = split_images(_data(config))["test"]
        up, hr = eval_crops(test_paths, config, salt=2)
        return {**score_crops(model, up, hr, config), "images": len(test_paths)}

    return protocol.score_test_once(path, score)


def train_and_evaluate(
    config: SRTrainConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False, progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, write ``<workdir>/weights`` (asset + manifest with recipe, split, validation scores), then, if it passes
    :data:`SHIP_RULE` on validation, the final evaluation on the test images (once) and with ``install`` the copy into
    ``jfusion/weights/<name with _>`` (:func:`jfusion.training.recipes.train_validate_ship`). Resumes from
    ``workdir/checkpoints``."""
    from jfusion.methods.superres import _read
    from jfusion.training.recipes import radiometric_stats, train_validate_ship

    def data_record(data: SRData) -> dict[str, Any]:
        split = split_images(_data(config))
        return {
            "source": config.data,
            "n_train_images": data.n_train_images,
            "n_val_images": data.n_val_images,
            "train_subimages": int(data.inputs.shape[0]),
            "split": "by image: sha256(path relative to data) first byte mod 10: 0 test, 1 validation, else train",
            "validation_images": [Path(p).resolve().relative_to(_data(config).resolve()).as_posix() for p in split["validation"]],
            "degradation": f"Y (BT.601) cropped to a multiple of {config.scale}; bicubic down (antialiased) then up by {config.scale}",
            "target": "UWT high-frequency bands (%s, %d levels) of the HR image from those of the LR-up image" % (config.wavelet, config.levels)
            if config.target == "uwt" else "HR image from the LR-up image",
        }

    def validate(stem: Path, data: SRData) -> dict[str, Any]:
        (graphdef, params, rest), _ = _read(stem)
        return {**score_crops(nnx.merge(graphdef, params, rest), data.val_up, data.val_hr, config), "images": data.n_val_images}

    return train_validate_ship(
        config, workdir, model=config.name, asset_name=config.name.replace("-", "_"),
        train=lambda ckpt: train_srcnn(config, checkpoint_dir=ckpt, progress=progress),
        data_record=data_record, validate=validate, ship_decision=ship_decision, ship_rule=SHIP_RULE,
        final_evaluation=lambda folder: final_evaluation(folder, config),
        deviations=__doc__.split("Deviations from")[1].split("\n\n")[0].replace("\n", " ").strip(),
        radiometry=lambda data: {"normalisation": "luma Y in [0, 1]", "input": radiometric_stats(data.inputs, per_channel=False)},
        command=command, install=install, force=force,
    )


def _register_recipes() -> None:
    from jfusion.training.recipes import register_recipe

    for name, config in CONFIGS.items():
        key = f"weights/{name.replace('-', '_')}/weights"
        register_recipe(
            name, fn=train_and_evaluate, config=config, family="superres",
            presets={key: SHIPPED[name]} if name in SHIPPED else {},
            summary=f"Train the SRCNN of {'uwt-srcnn (UWT bands)' if config.target == 'uwt' else 'srcnn-fusion (images)'} "
            f"for scale {config.scale} on Y of natural images (fixed image split).",
            reference="Dong, Loy, He, Tang, IEEE TPAMI 38(2) 2016; Zhong et al. CCPR 2016; Yang et al. IJWMIP 15(4) 2017",
        )


_register_recipes()
