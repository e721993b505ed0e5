"""Training of the regression-type fusion network (``cnn-regression``; survey Fig. 5, Section 5.1).

Recipe ``jfusion train cnn-regression [--task multi-exposure | multi-focus | both]``: the network trained end to
end on synthetic ground truth, one asset per task (``cnn_regression_exposure``, ``cnn_regression_focus``; ``both``:
one network for the two, ``cnn_regression``).

Data: the luma Y (BT.601) of the natural images under ``data`` (``shared/data/natural``: BSDS500
train+val and T91), split **by image** with the fixed rule of the super-resolution recipes
(:func:`jfusion.training.superres.split_images`: ``sha256`` of the relative path, first byte mod 10:
0 test, 1 validation, else train). Every step draws ``batch`` crops of the training images (``per_image``
crops of each held in memory, flipped / transposed at random) and makes them multi-focus scenes
(:func:`jfusion.data.synth.multifocus_scene`: a smooth random partition, each source sharp on its region
and Gaussian-blurred elsewhere, sigma in ``sigma_range``) or multi-exposure stacks
(:func:`jfusion.data.synth.exposure_scene`: radiance ``(Y^gamma)^p`` rendered at spaced exposures; the
truth is the well-exposed crop itself); ``both``: half of each. Steps alternate between ``S = 2`` and
``S = 3`` sources, so the network sees both. Batches are a pure function of ``(seed, step)``: a killed run
resumes exactly.

Loss: the mean squared error to the truth, ``border`` pixels in from each side (``loss="log-mse"``: for
``both``, the mean over the tasks of the log of their MSE, so that the exposure stacks' errors, about ten
times the multi-focus scenes', do not drown them). Adam at a constant ``lr``.
Validation: fixed scenes of the validation images (one ``val_crop`` crop each; multi-focus with 2
sources, multi-exposure with 3), PSNR to the truth of the network, of the sources' average and of
the classical method of each task (``laplacian`` for multi-focus, ``mertens`` for multi-exposure);
early stopping keeps the step of least validation ``log_mse``.

Choices made on validation (seed 0; figures: PSNR dB, multi-focus / multi-exposure, sources' average
33.4 / 22.15): ``both`` with ``mse`` at lr 5e-4: 31.15 / 23.33 at step 100, 29.7 / 24.17 at 200, 28.63 / 24.44
at 500 (the exposure stacks learnt, the multi-focus scenes made worse than averaging); ``both`` with
``log-mse`` at lr 5e-4 and 1e-3, and ``mse`` at 1e-3: at the average (33.1-33.4 / 22.1-22.2) for 400-500 steps.
Hence one network per task, ``mse`` at 5e-4 (the default). The multi-focus network alone (``--task multi-focus
--steps 1500``) learns: validation 35.3 dB at step 100, 40.1 at 500, 41.6 at 1400 (the best; average 33.4, ``laplacian``
47.8), and ships as ``cnn_regression_focus``.

Ship rule (:data:`SHIP_RULE`): the network beats the sources' average in PSNR on the validation scenes
of every task it was trained for. The test scenes are built only inside
:func:`jfusion.training.protocol.reading_test`, which only :func:`final_evaluation` enters, once per
written asset (:func:`jfusion.training.protocol.score_test_once`).

Deviations from DeepFuse (Prabhakar et al. 2017), chosen for the CPU budget and the survey's framework:
trained with synthetic ground truth and an MSE loss (the survey's regression framework) instead of
DeepFuse's no-reference MEF-SSIM loss; S-source mean + max fusion layer and a residual over the sources'
mean (see :mod:`jfusion.models.regression`); natural images of BSDS500 + T91; 10^3 steps.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jfusion.data.synth import exposure_scene, multifocus_scene
from jfusion.models.regression import RegressionFusionNet, RegressionNetConfig
from jfusion.training import protocol
from jfusion.training.loop import TrainResult, train
from jfusion.training.superres import _crops as superres_crops
from jfusion.training.superres import _data, _psnr, load_luma, split_images

__all__ = [
    "RegressionTrainConfig", "SHIPPED", "SHIPPED_FOCUS", "SHIP_RULE", "TASK_BASELINES", "RegressionData", "build_data", "sample_batch",
    "eval_scenes", "score_scenes", "ship_decision", "train_regression", "final_evaluation", "train_and_evaluate",
]

SHIP_RULE = "beats the sources' average in PSNR to the truth on the validation scenes of every task it was trained for"
TASK_BASELINES: dict[str, str] = {"multi-focus": "laplacian", "multi-exposure": "mertens"}
"""The classical method each task's scores are compared with."""
_VAL_SOURCES = {"multi-focus": 2, "multi-exposure": 3}


@dataclasses.dataclass(frozen=True)
class RegressionTrainConfig:
    """Everything that defines a ``cnn-regression`` run (stored in the manifest).

    Attributes:
      encoder, decoder, kernels: the network (:class:`jfusion.models.regression.RegressionNetConfig`).
      steps, batch, lr, seed: Adam at a constant ``lr``; ``batch`` scenes per step (half of each task).
      patch: side of the training crops; ``per_image``: crops held per training image.
      border: pixels excluded from the loss on each side; loss: ``"log-mse"`` or ``"mse"`` (see the module docstring).
      sigma_range: blur of the multi-focus scenes (px); power_range, spread_range: dynamic-range stretch and
        EV spacing of the multi-exposure stacks (:func:`jfusion.data.synth.exposure_scene`).
      val_crop: side of the validation / test scenes (one per image).
      data: folder of natural images.
      checkpoint_every, validate_every: intervals in steps.
    """

    encoder: tuple[int, int] = (16, 32)
    decoder: tuple[int, int] = (32, 16)
    kernels: tuple[int, int, int, int, int] = (5, 7, 7, 5, 5)
    steps: int = dataclasses.field(default=1000, metadata={"help": "Optimiser steps (early stopping on validation keeps the best)."})
    batch: int = dataclasses.field(default=16, metadata={"help": "Scenes per step (half multi-focus, half multi-exposure)."})
    lr: float = dataclasses.field(default=5e-4, metadata={"help": "Adam learning rate (constant)."})
    seed: int = dataclasses.field(default=0, metadata={"help": "Seed of initialisation and sampling."})
    patch: int = dataclasses.field(default=48, metadata={"help": "Side of the training crops."})
    per_image: int = dataclasses.field(default=16, metadata={"help": "Training crops held per image."})
    border: int = dataclasses.field(default=6, metadata={"help": "Pixels excluded from the loss on each side."})
    loss: str = dataclasses.field(default="mse", metadata={"help": "mse (plain MSE over the batch) or log-mse (mean over the tasks of log MSE)."})
    task: str = dataclasses.field(default="multi-exposure", metadata={"help": "multi-exposure, multi-focus or both (one network for the two)."})
    sigma_range: tuple[float, float] = (1.0, 3.0)
    power_range: tuple[float, float] = (1.0, 2.0)
    spread_range: tuple[float, float] = (1.0, 2.0)
    val_crop: int = dataclasses.field(default=96, metadata={"help": "Side of the validation and test scenes."})
    data: str = dataclasses.field(default="../shared/data/natural", metadata={"help": "Folder of natural images (searched recursively)."})
    checkpoint_every: int = dataclasses.field(default=100, metadata={"help": "Orbax checkpoint interval in steps."})
    validate_every: int = dataclasses.field(default=100, metadata={"help": "Validation interval in steps."})

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(TASK_BASELINES) if self.task == "both" else (self.task,)

    @property
    def asset_name(self) -> str:
        """The shipped weights folder: ``cnn_regression`` (both tasks), ``cnn_regression_exposure``, ``cnn_regression_focus``."""
        return "cnn_regression" if self.task == "both" else "cnn_regression_" + self.task.split("-")[1]

    @property
    def model(self) -> RegressionNetConfig:
        return RegressionNetConfig(encoder=tuple(self.encoder), decoder=tuple(self.decoder), kernels=tuple(self.kernels))


SHIPPED = RegressionTrainConfig()
"""Preset of the shipped asset ``weights/cnn_regression_exposure/weights``: ``jfusion train cnn-regression``
(2 shared CPU cores, 2026-12-03). No two-task network ships (see the module docstring)."""
SHIPPED_FOCUS = RegressionTrainConfig(task="multi-focus", steps=1500)
"""Preset of the shipped asset ``weights/cnn_regression_focus/weights``: ``jfusion train cnn-regression --task
multi-focus --steps 1500`` (2 CPU cores, 2026-12-03; best validation step 1400)."""


# ----------------------------------------------------------------------------- data
def _crops(rng: np.random.Generator, img: np.ndarray, size: int, n: int) -> np.ndarray:
    return superres_crops(rng, [img], size, n)[0]


@dataclasses.dataclass(frozen=True)
class RegressionData:
    """The training crop pool ``(M, p, p)`` and the validation scenes (per task: sources, truth)."""

    pool: np.ndarray
    val: dict[str, dict[str, np.ndarray]]
    n_train_images: int
    n_val_images: int


def eval_scenes(paths: list[str], config: RegressionTrainConfig, *, salt: int) -> dict[str, dict[str, np.ndarray]]:
    """Fixed scenes of one ``val_crop`` crop per image, per task: ``{task: {"sources": (N, S, c, c), "truth": (N, c, c)}}``."""
    rng = np.random.default_rng([config.seed, salt])
    crops = jnp.asarray(np.concatenate([_crops(rng, load_luma(p), config.val_crop, 1) for p in paths]))
    key = jax.random.fold_in(jax.random.key(config.seed), 1000 + salt)
    keys = jax.random.split(key, crops.shape[0])
    make = {
        "multi-focus": lambda k, x: multifocus_scene(k, x, n_sources=_VAL_SOURCES["multi-focus"],
                                                     sigma_range=tuple(config.sigma_range))["sources"],
        "multi-exposure": lambda k, x: exposure_scene(k, x, n_sources=_VAL_SOURCES["multi-exposure"],
                                                      power_range=tuple(config.power_range),
                                                      spread_range=tuple(config.spread_range))["sources"],
    }
    return {t: {"sources": np.asarray(jax.vmap(make[t])(keys, crops)), "truth": np.asarray(crops)} for t in config.tasks}


def build_data(config: RegressionTrainConfig) -> RegressionData:
    """The crop pool of the training images and the validation scenes (:func:`split_images`)."""
    split = split_images(_data(config))
    rng = np.random.default_rng(config.seed)
    pool = np.concatenate([_crops(rng, load_luma(p), config.patch, config.per_image) for p in split["train"]])
    return RegressionData(pool.astype(np.float32), eval_scenes(split["validation"], config, salt=1),
                          len(split["train"]), len(split["validation"]))


def sample_batch(key: jax.Array, pool: jax.Array, *, n_sources: int, config: RegressionTrainConfig) -> dict[str, jax.Array]:
    """``{"x": (B, S, p, p), "y": (B, p, p)}``: multi-focus scenes, then exposure stacks (``both``: ``B // 2`` of the first)."""
    b = config.batch
    ki, ka, kf, ke = jax.random.split(key, 4)
    crops = pool[jax.random.randint(ki, (b,), 0, pool.shape[0])]
    aug = jax.random.randint(ka, (b,), 0, 8)

    def augment(x, a):  # the 8 flips / transposes of a square crop
        x = jnp.where(a % 2 == 1, x[::-1], x)
        x = jnp.where((a // 2) % 2 == 1, x[:, ::-1], x)
        return jnp.where(a // 4 == 1, x.T, x)

    crops = jax.vmap(augment)(crops, aug)
    nf = {"both": b // 2, "multi-focus": b, "multi-exposure": 0}[config.task]
    parts = []
    if nf:
        parts.append(jax.vmap(lambda k, x: multifocus_scene(k, x, n_sources=n_sources, sigma_range=tuple(config.sigma_range))["sources"])(
            jax.random.split(kf, nf), crops[:nf]))
    if b - nf:
        parts.append(jax.vmap(lambda k, x: exposure_scene(k, x, n_sources=n_sources, power_range=tuple(config.power_range),
                                                          spread_range=tuple(config.spread_range))["sources"])(
            jax.random.split(ke, b - nf), crops[nf:]))
    return {"x": jnp.concatenate(parts) if len(parts) > 1 else parts[0], "y": crops}


# ----------------------------------------------------------------------------- model, loss, scores
def build_model(config: RegressionTrainConfig, *, key: jax.Array | None = None) -> RegressionFusionNet:
    key = jax.random.key(config.seed) if key is None else key
    return RegressionFusionNet(config=config.model, rngs=nnx.Rngs(jax.random.fold_in(key, 1)))


def _loss(border: int, kind: str = "mse", both: bool = False):
    """Mean over the two tasks of the log of their MSE (so the exposure stacks' larger errors do not drown the
    multi-focus scenes'; equal to minimising the tasks' mean PSNR). The batch holds focus scenes, then exposure."""

    def loss_fn(model: RegressionFusionNet, batch: dict[str, jax.Array]):
        err = model(batch["x"]) - batch["y"]
        if border:
            err = err[:, border:-border, border:-border]
        per = jnp.mean(err * err, axis=(1, 2))
        nf = per.shape[0] // 2
        mse_f, mse_e = jnp.mean(per[:nf]), jnp.mean(per[nf:])
        if not both:
            mse = jnp.mean(per)
            return (jnp.log(mse + 1e-10) if kind == "log-mse" else mse), {"rmse": jnp.sqrt(mse)}
        loss = 0.5 * (jnp.log(mse_f + 1e-10) + jnp.log(mse_e + 1e-10)) if kind == "log-mse" else jnp.mean(per)
        return loss, {"rmse_focus": jnp.sqrt(mse_f), "rmse_exposure": jnp.sqrt(mse_e)}

    return loss_fn


def predict(model: RegressionFusionNet, sources: np.ndarray) -> np.ndarray:
    """The network's fused images ``(N, H, W)`` in [0, 1] of scenes ``(N, S, H, W)``, one scene at a time."""
    graphdef, state = nnx.split(model)
    return np.asarray(_predict(graphdef, state, jnp.asarray(sources)))


@functools.partial(jax.jit, static_argnums=0)
def _predict(graphdef: Any, state: Any, sources: jax.Array) -> jax.Array:
    # module-level jit keyed on the (hashable) graph: every validation of a run reuses one compiled program
    return jax.lax.map(lambda s: jnp.clip(nnx.merge(graphdef, state)(s[None])[0], 0.0, 1.0), sources)


def _baseline(method: str, sources: np.ndarray) -> np.ndarray:
    import jfusion

    return np.stack([np.asarray(jfusion.fuse(list(s), method=method)) for s in sources])


def score_scenes(model: RegressionFusionNet, scenes: dict[str, dict[str, np.ndarray]], *, baselines: bool = True) -> dict[str, Any]:
    """Per task: mean PSNR (dB) and MSE to the truth of the network, of the sources' average and (``baselines``) of
    :data:`TASK_BASELINES`; ``mse`` / ``log_mse``: the mean over the tasks of the network's MSE / its log."""
    out: dict[str, Any] = {}
    for task, sc in scenes.items():
        src, truth = sc["sources"], sc["truth"]
        pred = predict(model, src)
        row = {"psnr": float(np.mean([_psnr(p, t) for p, t in zip(pred, truth)])),
               "mse": float(np.mean((pred - truth) ** 2)),
               "psnr_average": float(np.mean([_psnr(s.mean(0), t) for s, t in zip(src, truth)])),
               "scenes": int(len(truth)), "sources": int(src.shape[1])}
        if baselines:
            base = TASK_BASELINES[task]
            row[f"psnr_{base}"] = float(np.mean([_psnr(f, t) for f, t in zip(_baseline(base, src), truth)]))
        out[task] = row
    out["mse"] = float(np.mean([out[t]["mse"] for t in scenes]))
    out["log_mse"] = float(np.mean([np.log(max(out[t]["mse"], 1e-20)) for t in scenes]))
    return out


def ship_decision(validation: dict[str, Any]) -> bool:
    """:data:`SHIP_RULE` on the validation scores of :func:`score_scenes`."""
    return all(validation[t]["psnr"] > validation[t]["psnr_average"] for t in TASK_BASELINES if t in validation)


def train_regression(
    config: RegressionTrainConfig, *, checkpoint_dir: str | os.PathLike | None = None, progress: bool = True,
    data: RegressionData | None = None,
) -> tuple[RegressionFusionNet, TrainResult, RegressionData]:
    """Train the network of ``config``; batches are a pure function of ``(seed, step)``."""
    from jfusion.errors import FusionInputError

    if config.loss not in ("log-mse", "mse"):
        raise FusionInputError(f"loss={config.loss!r}: pass 'log-mse' or 'mse'.")
    if config.task not in ("both", *TASK_BASELINES):
        raise FusionInputError(f"task={config.task!r}: pass multi-exposure, multi-focus or both.")
    data = build_data(config) if data is None else data
    model = build_model(config)
    pool = jnp.asarray(data.pool)
    sample_key = jax.random.fold_in(jax.random.key(config.seed), 2)
    samplers = {s: jax.jit(lambda k, p, s=s: sample_batch(k, p, n_sources=s, config=config)) for s in (2, 3)}

    def batch_fn(step: int) -> dict[str, jax.Array]:
        return samplers[2 + step % 2](jax.random.fold_in(sample_key, step), pool)

    def validate(m: RegressionFusionNet, step: int) -> dict[str, float]:
        del step
        r = score_scenes(m, data.val, baselines=False)
        return {"val_loss": r["log_mse"], **{f"val_psnr_{t.split('-')[1]}": r[t]["psnr"] for t in config.tasks}}

    result = train(
        model, optax.adam(config.lr), _loss(config.border, config.loss, config.task == "both"), batch_fn, steps=config.steps,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), checkpoint_every=config.checkpoint_every,
        validate=validate, validate_every=config.validate_every, progress=progress, desc="train cnn-regression",
        keep_best="val_loss",
    )
    return model, result, data


# ----------------------------------------------------------------------------- assets
def final_evaluation(folder: str | os.PathLike, config: RegressionTrainConfig) -> dict[str, Any]:
    """Score the asset in ``folder`` on the test scenes, once: the one reader of the test split.

    The manifest records the scores (``scores.test``) and the sha256 of the weights file it scored
    (``test_read``); called again on the same file it returns the recorded scores without reading the test images.
    """
    from jfusion.methods.regression import read_model

    path = Path(folder) / "weights"
    model = read_model(path)

    def score() -> dict[str, Any]:
        test_paths = split_images(_data(config))["test"]
        return {**score_scenes(model, eval_scenes(test_paths, config, salt=2)), "images": len(test_paths)}

    return protocol.score_test_once(path, score)


def train_and_evaluate(
    config: RegressionTrainConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False,
    progress: bool = True, command: str | None = None,
) -> dict[str, Any]:
    """Train, write ``<workdir>/weights`` (asset + manifest with recipe, split, validation scores), then, if it passes
    :data:`SHIP_RULE` on validation, the final evaluation on the test scenes (once) and with ``install`` the copy into
    ``jfusion/weights/<config.asset_name>`` (:func:`jfusion.training.recipes.train_validate_ship`). Resumes from
    ``workdir/checkpoints``."""
    from jfusion.methods.regression import read_model
    from jfusion.training.recipes import radiometric_stats, train_validate_ship

    def data_record(data: RegressionData) -> dict[str, Any]:
        return {
            "source": config.data,
            "n_train_images": data.n_train_images,
            "n_val_images": data.n_val_images,
            "train_crops": int(data.pool.shape[0]),
            "split": "by image: sha256(path relative to data) first byte mod 10: 0 test, 1 validation, else train",
            "task": config.task,
            "synthesis": "luma Y; multi-focus: jfusion.data.synth.multifocus_scene (sigma %s px); multi-exposure: "
            "jfusion.data.synth.exposure_scene (power %s, EV spacing %s); S = 2 and 3 on alternate steps"
            % (list(config.sigma_range), list(config.power_range), list(config.spread_range)),
            "validation_scenes": {t: {"sources": _VAL_SOURCES[t], "scenes": int(v["truth"].shape[0])} for t, v in data.val.items()},
        }

    def validate(stem: Path, data: RegressionData) -> dict[str, Any]:
        return {**score_scenes(read_model(stem), data.val), "images": data.n_val_images}

    return train_validate_ship(
        config, workdir, model="cnn-regression", asset_name=config.asset_name,
        train=lambda ckpt: train_regression(config, checkpoint_dir=ckpt, progress=progress),
        data_record=data_record, validate=validate, ship_decision=ship_decision, ship_rule=SHIP_RULE,
        final_evaluation=lambda folder: final_evaluation(folder, config),
        deviations=__doc__.split("Deviations from")[1].split("\n\n")[0].replace("\n", " ").strip(),
        radiometry=lambda data: {"normalisation": "luma Y in [0, 1]", "input": radiometric_stats(data.pool, per_channel=False)},
        command=command, install=install, force=force,
    )


def _register_recipes() -> None:
    from jfusion.training.recipes import register_recipe

    register_recipe(
        "cnn-regression", fn=train_and_evaluate, config=RegressionTrainConfig(), family="regression",
        presets={f"weights/{c.asset_name}/weights": c for c in (SHIPPED, SHIPPED_FOCUS)},
        summary="Train the regression-type fusion network (survey Fig. 5) on synthetic multi-exposure (default), "
        "multi-focus or both kinds of scenes with ground truth from natural images (fixed image split).",
        reference="Liu et al., Inf. Fusion 42 (2018) Section 5.1; Prabhakar, Srikar, Babu, DeepFuse, ICCV 2017",
    )


_register_recipes()
