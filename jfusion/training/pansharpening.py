"""Training of the learned pan-sharpening methods under Wald's protocol.

Data: the **train strip** of a scene (:mod:`jfusion.training.protocol`: the left 9/16 of the
columns) is degraded by the sensor MTF and decimated (Wald's protocol); the network maps the
degraded pair to the original MS. The **validation strip** (the next 3/16) chooses the step count
(early stopping on the validation loss, ``select_steps``) and decides whether the model ships
(:func:`jfusion.training.protocol.ship_decision`: better than EXP on Q2n, SAM and ERGAS there);
its reduced-resolution scores go to ``scores.validation``. The **test strip** (right quarter) is
read only by the final report (:mod:`jfusion.training.report`).

* PNN family / DRPNN: random ``patch``-sized crops of ``[MS~, PAN(, indices)] / 2**L`` (with the
  receptive margin of 'valid' nets) -> crops of ``MS / 2**L``.
* SRCNN (+GS) learns super-resolution of the MS alone: bicubic-interpolated degraded MS -> MS
  (all bands; random ``patch``-sized crops); the GS step with the PAN is not part of training.
* The stacked SAE learns on the PAN alone: the MTF-degraded, decimated and re-interpolated PAN
  -> the PAN (Huang et al. train on PAN patches of the same sensor).
* SAE: layer-wise pre-training (layer 1 on LR -> HR patches; layer 2 on the layer-1 codes of
  LR -> HR patches) with KL sparsity and weight decay, then end-to-end fine-tuning.

Optimiser: Adam (optax) with the step counts given; batches come from ``jax.random`` keys
derived from the seed, so a run is reproducible.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.models.pansharpening import receptive_margin
from jfusion.pansharpening import learned, wald
from jfusion.pansharpening.io import Scene, read_scene
from jfusion.training import protocol
from jfusion.training.recipes import RECIPES, command_line, config_dict, prepare_workdir, radiometric_stats

__all__ = [
    "PansharpeningConfig", "SaeMraConfig", "Cnn3dConfig", "sae_batches", "pansharpening_config", "register_pansharpening_recipe", "train_and_evaluate",
    "train_cnn3d_and_evaluate", "fit", "training_arrays", "train_pansharpening", "score_strip", "score_on_validation_region",
    "score_on_test_region", "train_cnn3d_mshs", "score_cnn3d_mshs", "scaled_arch",
]



# ----------------------------------------------------------------------------- the shared optax loop
def fit(
    model: nnx.Module,
    optimizer: optax.GradientTransformation,
    loss_fn: Callable[[nnx.Module, Any], jax.Array],
    batch_fn: Callable[[int], Any],
    *,
    steps: int,
    log_every: int = 50,
    log: Callable[[str], None] | None = print,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 100,
    validate: Callable[[nnx.Module, int], dict[str, float]] | None = None,
    validate_every: int = 0,
    keep_best: str | None = None,
    result_out: list | None = None,
) -> list[float]:
    """Optimise ``model`` in place with jfusion's shared loop (:func:`jfusion.training.loop.train`).

    ``loss_fn(model, batch) -> scalar``; ``batch_fn(step) -> batch``. Returns the per-step losses
    (restored ones included when resumed from ``checkpoint_dir``). ``log`` (default ``print``) turns
    the progress bar on. ``validate``, ``validate_every`` and ``keep_best`` are the loop's early
    stopping; ``result_out`` (a list) receives the loop's :class:`~jfusion.training.loop.TrainResult`.
    """
    from jfusion.training.loop import train

    result = train(
        model,
        optimizer,
        lambda m, b: (loss_fn(m, b), {}),
        batch_fn,
        steps=steps,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        progress=log is not None,
        desc="pansharpening",
        validate=validate,
        validate_every=validate_every,
        keep_best=keep_best,
    )
    if result_out is not None:
        result_out.append(result)
    return [float(row["loss"]) for row in result.history]


# ----------------------------------------------------------------------------- data
def _degraded_pan_input(pan: np.ndarray, ratio: int, sensor: str) -> jax.Array:
    pan = jnp.asarray(pan, jnp.float32)
    lr = wald.decimate(wald.mtf_filter_pan(pan, ratio=ratio, sensor=sensor), ratio)
    return wald.interp23tap(lr, ratio)


def training_arrays(
    name: str, ms: np.ndarray, pan: np.ndarray, *, ratio: int, sensor: str, bit_depth: int, spec: learned.ModelSpec | None = None
) -> tuple[jax.Array, jax.Array, int]:
    """Full-size network input and target of one scene part under Wald's protocol.

    Returns ``(inputs (H + 2m, W + 2m, C), target (H, W, T), m)`` scaled by ``2**bit_depth``,
    with ``m`` the receptive margin of a 'valid' network (inputs replicate-padded by it);
    ``spec`` defaults to ``SPECS[name]``.
    """
    spec = learned.SPECS[name] if spec is None else spec
    scale = 2.0**bit_depth
    if spec.kind == "srcnn":
        ms_lr, _ = wald.degrade(ms, pan, ratio=ratio, sensor=sensor)
        return wald.upsample_ms(ms_lr, ratio, interp="bicubic") / scale, jnp.asarray(ms, jnp.float32) / scale, 0
    if spec.kind == "sae":
        x = _degraded_pan_input(pan, ratio, sensor)[..., None] / scale
        y = jnp.asarray(pan, jnp.float32)[..., None] / scale
        return x, y, 0
    ms_lr, pan_lr = wald.degrade(ms, pan, ratio=ratio, sensor=sensor)
    x = learned.network_inputs(ms_lr, pan_lr, ratio=ratio, bit_depth=bit_depth, indices=spec.indices)
    y = jnp.asarray(ms, jnp.float32) / scale
    m = receptive_margin(spec.kernels) if spec.kind == "pnn" else 0
    if m:
        x = jnp.pad(x, ((m, m), (m, m), (0, 0)), mode="edge")
    return x, y, m


def crop_batch(key: jax.Array, x: jax.Array, y: jax.Array, *, patch: int, margin: int, batch: int) -> tuple[jax.Array, jax.Array]:
    """``batch`` random aligned crops: inputs ``(N, patch + 2m, patch + 2m, C)``, targets ``(N, patch, patch, T)``."""
    h, w = y.shape[:2]
    ky, kx = jax.random.split(key)
    ys = jax.random.randint(ky, (batch,), 0, h - patch + 1)
    xs = jax.random.randint(kx, (batch,), 0, w - patch + 1)

    def one(r, c):
        xi = jax.lax.dynamic_slice(x, (r, c, 0), (patch + 2 * margin, patch + 2 * margin, x.shape[-1]))
        yi = jax.lax.dynamic_slice(y, (r, c, 0), (patch, patch, y.shape[-1]))
        return xi, yi

    return jax.vmap(one)(ys, xs)


def _pixel_loss(kind: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    if kind == "l1":
        return lambda a, b: jnp.mean(jnp.abs(a - b))
    return lambda a, b: jnp.mean((a - b) ** 2)


# ----------------------------------------------------------------------------- SAE
def _kl_sparsity(h: jax.Array, rho: float) -> jax.Array:
    rho_hat = jnp.clip(h.mean(0), 1e-6, 1 - 1e-6)
    return jnp.sum(rho * jnp.log(rho / rho_hat) + (1 - rho) * jnp.log((1 - rho) / (1 - rho_hat)))


def _sae_patches(key, x, y, *, patch, batch):
    """``batch`` random LR / HR patch pairs of ``(x, y)``, flattened, mean-removed by the LR patch's mean, scaled
    into the sigmoid range: ``((batch, patch**2), (batch, patch**2))``."""
    xi, yi = crop_batch(key, x, y, patch=patch, margin=0, batch=batch)
    xi = xi.reshape(batch, -1)
    yi = yi.reshape(batch, -1)
    mu = xi.mean(-1, keepdims=True)  # the LR patch's mean, removed from both (known at test time)
    g = learned.SAE_GAIN
    return (xi - mu) * g + 0.5, (yi - mu) * g + 0.5


def sae_batches(key: jax.Array, x: jax.Array, y: jax.Array, *, patch: int, batch: int, samples: int = 0) -> Callable[[int], Any]:
    """The SAE's batch function ``step -> (LR patches, HR patches)`` (jitted).

    ``samples == 0``: fresh random patches at every step. ``samples > 0``: a fixed training set of
    ``samples`` patch pairs drawn once from ``(x, y)`` (key ``fold_in(key, 2**31 - 1)``, never a step's), each step's
    ``batch`` drawn from it with replacement (the training-sample count of Azarang & Ghassemian's study).
    """
    if samples <= 0:
        return jax.jit(lambda i: _sae_patches(jax.random.fold_in(key, i), x, y, patch=patch, batch=batch))
    pool_x, pool_y = jax.jit(lambda k: _sae_patches(k, x, y, patch=patch, batch=samples))(jax.random.fold_in(key, 2**31 - 1))

    def one(i):
        idx = jax.random.randint(jax.random.fold_in(key, i), (batch,), 0, samples)
        return pool_x[idx], pool_y[idx]

    return jax.jit(one)


def _train_sae(model, x, y, *, key, steps, batch, lr, log, rho=0.05, beta=0.1, lam=1e-5, checkpoint_dir=None, checkpoint_every=100,
               optimizer="adam", spec=None, samples=0):
    patch = learned.sae_patch_size(learned.SPECS["sae"] if spec is None else spec)
    pre = max(1, steps // 4)

    def wd(*lins):
        return sum(jnp.sum(lin.kernel[...] ** 2) for lin in lins)

    def loss1(m, b):
        xi, yi = b
        h = m.ae1.encode(xi)
        return jnp.mean(jnp.sum((m.ae1.decode(h) - yi) ** 2, -1)) / 2 + beta * _kl_sparsity(h, rho) + lam / 2 * wd(m.ae1.enc, m.ae1.dec)

    def loss2(m, b):
        xi, yi = b
        hx, hy = m.ae1.encode(xi), m.ae1.encode(yi)
        h2 = m.ae2.encode(hx)
        return jnp.mean(jnp.sum((m.ae2.decode(h2) - jax.lax.stop_gradient(hy)) ** 2, -1)) / 2 + beta * _kl_sparsity(h2, rho) + lam / 2 * wd(m.ae2.enc, m.ae2.dec)

    def loss_ft(m, b):
        xi, yi = b
        return jnp.mean(jnp.sum((m(xi) - yi) ** 2, -1)) / 2 + lam / 2 * wd(m.ae1.enc, m.ae1.dec, m.ae2.enc, m.ae2.dec)

    batches = sae_batches(key, x, y, patch=patch, batch=batch, samples=samples)

    def ckpt(phase: str) -> dict[str, Any]:
        return {"checkpoint_dir": None if checkpoint_dir is None else Path(checkpoint_dir) / phase, "checkpoint_every": checkpoint_every}

    hist = fit(model, make_optimizer(optimizer, lr), loss1, batches, steps=pre, log=log, **ckpt("layer1"))
    # layer 2 sees layer-1 codes; layer-1 parameters are held fixed by masking their updates
    mask = nnx.state(model, nnx.Param)
    mask = jax.tree_util.tree_map_with_path(lambda p, _: "ae2" in jax.tree_util.keystr(p), mask)
    hist += fit(model, optax.masked(make_optimizer(optimizer, lr), mask), loss2, lambda i: batches(i + pre), steps=pre, log=log, **ckpt("layer2"))
    hist += fit(model, make_optimizer(optimizer, lr / 2), loss_ft, lambda i: batches(i + 2 * pre), steps=steps - 2 * pre, log=log,
                **ckpt("finetune"))
    return hist


# ----------------------------------------------------------------------------- scoring
def score_strip(ms: np.ndarray, pan: np.ndarray, method: str, *, ratio: int, sensor: str, bit_depth: int,
                **options: Any) -> dict[str, float]:
    """Reduced-resolution Q2n, SAM (degrees) and ERGAS of ``method`` on one strip ``(ms, pan)`` of a scene
    (Wald's protocol: the strip degraded by ``ratio``, the original MS the reference)."""
    import jfusion
    from jfusion.metrics import remote as rm

    pair = wald.reduced_resolution(ms, pan, ratio=ratio, sensor=sensor)
    out = jfusion.pansharpen(pair.ms_lr, pair.pan_lr, method=method, sensor=sensor, bit_depth=bit_depth, **options)
    ref = pair.reference
    return {
        "q2n": float(rm.q2n(ref, out)),
        "sam": float(rm.sam(ref, out)),
        "ergas": float(rm.ergas(ref, out, ratio=ratio)),
    }


def score_on_validation_region(scene: Scene, method: str, **options: Any) -> dict[str, float]:
    """:func:`score_strip` on the scene's validation strip (:mod:`jfusion.training.protocol`)."""
    split = protocol.column_split(scene.ms.shape[1], scene.ratio)
    ms, pan = protocol.validation_strip(split, scene.ms, scene.pan)
    return score_strip(ms, pan, method, ratio=scene.ratio, sensor=scene.sensor, bit_depth=scene.bit_depth, **options)


def score_on_test_region(scene: Scene, method: str, **options: Any) -> dict[str, float]:
    """:func:`score_strip` on the scene's held-out right quarter; only inside
    :func:`jfusion.training.protocol.reading_test` (the final report).

    Raises:
      ProtocolError: called outside the final report.
    """
    split = protocol.column_split(scene.ms.shape[1], scene.ratio)
    ms, pan = protocol.test_strip(split, scene.ms, scene.pan)
    return score_strip(ms, pan, method, ratio=scene.ratio, sensor=scene.sensor, bit_depth=scene.bit_depth, **options)


# ----------------------------------------------------------------------------- recipes
def _meta(help: str, flag: str | None = None, cli: bool = True) -> dict[str, Any]:
    return {"help": help, **({"flag": flag} if flag else {}), "cli": cli}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PansharpeningConfig:
    """Everything one pan-sharpening training run depends on (stored in ``workdir/config.json`` and the manifest).

    Attributes:
      model: the learned method (:data:`jfusion.pansharpening.learned.SPECS` key).
      arch: its architecture and input convention (:class:`~jfusion.pansharpening.learned.ModelSpec`;
        its ``loss`` is the training loss).
      scene: scene ``.mat`` (``I_MS``, ``I_PAN``, ``sensor``, ``L``): a path, or a file name under
        ``<data>/pansharpening`` (``$JFUSION_DATA``, default ``../shared/data``).
      steps, batch, patch, lr: Adam steps, crops per step, crop side (PAN pixels; SAE: patch side), learning rate.
      seed: initialisation and crop positions.
      optimizer: the optax optimiser (:func:`make_optimizer`; the SAE's fine-tuning uses half ``lr``).
      checkpoint_every: orbax checkpoint interval in steps.
      width: layer widths as a share of ``arch``'s (the papers'); :func:`scaled_arch`.
      select_steps, validate_every: early stopping on the validation strip's loss (``steps`` is then the most).
    """

    model: str = dataclasses.field(metadata=_meta("learned method", cli=False))
    arch: learned.ModelSpec = dataclasses.field(metadata=_meta("architecture", cli=False))
    scene: str = dataclasses.field(default="", metadata=_meta(
        "Scene .mat file (I_MS, I_PAN, sensor, L): a path or a file name under $JFUSION_DATA/pansharpening, e.g. imgIK.mat."))
    steps: int = dataclasses.field(default=600, metadata=_meta("Optimiser steps."))
    batch: int = dataclasses.field(default=16, metadata=_meta("Crops per step."))
    patch: int = dataclasses.field(default=17, metadata=_meta("Crop side in PAN pixels."))
    lr: float = dataclasses.field(default=1e-3, metadata=_meta("Adam learning rate."))
    seed: int = dataclasses.field(default=0, metadata=_meta("Seed of initialisation and crops."))
    optimizer: str = dataclasses.field(default="adam", metadata=_meta("optax optimiser (adam, adamw, sgd, ...)."))
    checkpoint_every: int = dataclasses.field(default=100, metadata=_meta("Orbax checkpoint interval in steps."))
    width: float = dataclasses.field(default=1.0, metadata=_meta(
        "Layer widths as a share of the paper's (1 = the paper's; 0.5 = the narrowed variant)."))
    select_steps: bool = dataclasses.field(default=True, metadata=_meta(
        "Early stopping: keep the parameters of the lowest validation loss (validation strip, every --validate-every steps)."))
    validate_every: int = dataclasses.field(default=100, metadata=_meta("Validation interval in steps."))

    @property
    def loss(self) -> str:
        return self.arch.loss


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cnn3dConfig:
    """Everything one 3-D CNN MS/HS training run depends on (see :func:`train_cnn3d_mshs`).

    Attributes:
      scene: HS + high-resolution image ``.mat``: a path or a file name under ``<data>/hyperspectral``.
      steps: Adam steps (with ``select_steps``: the longest run; the final step count is chosen on a validation strip).
      batch, patch, lr, seed: crops per step, crop side (high-resolution pixels), learning rate, seed.
      n_components: PCA components of the HS.
      select_steps: early stopping on the validation strip (:mod:`jfusion.training.protocol`).
      noise: input noise (share of the component scale, Palsson et al.).
      optimizer: the optax optimiser (:func:`make_optimizer`).
      checkpoint_every: orbax checkpoint interval in steps.
    """

    scene: str = dataclasses.field(default="", metadata=_meta(
        "HS + high-resolution .mat (a path or a file name under $JFUSION_DATA/hyperspectral): houston_dataset.mat, "
        "paris_data_hs_ms.mat, paris_data_hs_pan.mat."))
    steps: int = dataclasses.field(default=300, metadata=_meta("Optimiser steps (the most, with --select-steps)."))
    batch: int = dataclasses.field(default=8, metadata=_meta("Crops per step."))
    patch: int = dataclasses.field(default=24, metadata=_meta("Crop side in high-resolution pixels."))
    lr: float = dataclasses.field(default=1e-3, metadata=_meta("Adam learning rate."))
    seed: int = dataclasses.field(default=0, metadata=_meta("Seed of initialisation, crops and noise."))
    n_components: int = dataclasses.field(default=8, metadata=_meta("PCA components of the HS.", flag="--components"))
    select_steps: bool = dataclasses.field(default=True, metadata=_meta(
        "Early stopping: keep the parameters of the lowest validation loss (validation strip, every 25 steps)."))
    noise: float = dataclasses.field(default=0.01, metadata=_meta("Input noise, share of the component scale."))
    optimizer: str = dataclasses.field(default="adam", metadata=_meta("optax optimiser (adam, adamw, sgd, ...)."))
    checkpoint_every: int = dataclasses.field(default=100, metadata=_meta("Orbax checkpoint interval in steps."))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SaeMraConfig(PansharpeningConfig):
    """A :class:`PansharpeningConfig` of the SAE in the MRA framework (``jfusion train sae-mra``), plus the
    training-sample count of Azarang & Ghassemian's study.

    Attributes:
      samples: patch pairs of the fixed training set drawn once from the train strip (0: fresh patches every step).
      patch: the SAE's patch side (its input is ``patch**2`` pixels).
    """

    samples: int = dataclasses.field(default=8000, metadata=_meta(
        "Training patch pairs drawn once from the train strip (0: fresh random patches every step)."))


DEFAULTS = {
    "pnn": dict(steps=600, batch=16, patch=17, lr=1e-3),
    "pnn-residual": dict(steps=400, batch=16, patch=17, lr=5e-4),
    "drpnn": dict(steps=300, batch=8, patch=24, lr=5e-4),
    "srcnn-gs": dict(steps=1500, batch=4, patch=96, lr=5e-4),
    "sae": dict(steps=2000, batch=256, patch=7, lr=1e-3),
}
"""The default settings of each pan-sharpening recipe (the shipped assets' steps are in :data:`SHIPPED_STEPS`)."""

SAE_MRA_DEFAULTS = dict(steps=6000, batch=256, patch=7, lr=1e-3, samples=8000)
"""The default settings of ``jfusion train sae-mra``; its shipped presets use them for every sensor
(``benchmarks/sae_mra_study.py`` compares other patch sides and sample counts on the validation strips)."""

SCENES = {"IKONOS": "imgIK.mat", "GeoEye1": "imgGE1.mat", "WV2": "imgWV2.mat"}
"""The scene each sensor's shipped weights were trained on (``shared/data/pansharpening``)."""

SHIPPED_STEPS = {
    "pnn": {"GeoEye1": 4000, "IKONOS": 4000, "WV2": 4000},
    "pnn-residual": {"GeoEye1": 4000, "IKONOS": 4000, "WV2": 4000},
    "drpnn": {"GeoEye1": 1200, "IKONOS": 400, "WV2": 400},
    "srcnn-gs": {"GeoEye1": 500, "IKONOS": 500, "WV2": 500},
    "sae": {"GeoEye1": 12000, "IKONOS": 12000, "WV2": 12000},
}
"""The most steps of each shipped asset's run (``jfusion train <model> --scene <scene> --steps N``; the step
actually kept is chosen on the validation strip and recorded in the manifest). Paper widths throughout: these
counts are what two shared CPU cores trained in one session (``trained_on`` in each manifest)."""

SHIPPED_VALIDATE_EVERY = {"pnn": 250, "pnn-residual": 250, "drpnn": 25, "srcnn-gs": 50, "sae": 100}
"""The validation interval of each shipped run."""


def scaled_arch(arch: learned.ModelSpec, width: float) -> learned.ModelSpec:
    """``arch`` with its layer widths times ``width`` (rounded, at least 1); ``width == 1`` returns ``arch``.

    Raises:
      FusionInputError: ``width`` is not positive, or ``arch`` has its own ``build`` (fixed widths).
    """
    if not width > 0:
        raise FusionInputError(f"width={width!r}: pass a positive share of the paper's layer widths (1 = the paper's).")
    if width == 1:
        return arch
    if arch.build is not None:
        raise FusionInputError("width: this architecture builds its own layers; leave width at 1.")
    return dataclasses.replace(arch, features=tuple(max(1, round(f * width)) for f in arch.features))


def pansharpening_config(name: str, **settings: Any) -> PansharpeningConfig:
    """The default config of method ``name`` (``SPECS[name]`` as architecture), with ``settings`` replaced."""
    return dataclasses.replace(PansharpeningConfig(model=name, arch=learned.SPECS[name], **DEFAULTS.get(name, {})), **settings)


def register_pansharpening_recipe(
    name: str, config: PansharpeningConfig, *, presets: dict[str, PansharpeningConfig] | None = None, reference: str = ""
) -> None:
    """Register the recipe ``jfusion train <name>`` of a learned pan-sharpening method (``config.model == name``).

    A new learned model calls this next to its :func:`jfusion.pansharpening.registry.register`
    (its architecture in ``config.arch``, registered in ``learned.SPECS``).
    """
    from jfusion.training.recipes import register_recipe

    register_recipe(name, fn=train_and_evaluate, config=config, family="pansharpening", presets=presets,
                    summary=f"Train {name} on a scene's left 3/4 under Wald's protocol (right 1/4 held out).", reference=reference)


def _register_recipes() -> None:
    from jfusion.training.recipes import register_recipe

    for name in DEFAULTS:
        presets = {
            f"weights/pansharpening/{name}-{sensor}": pansharpening_config(
                name, scene=SCENES[sensor], steps=steps, validate_every=SHIPPED_VALIDATE_EVERY[name])
            for sensor, steps in SHIPPED_STEPS[name].items()
        }
        register_pansharpening_recipe(name, pansharpening_config(name), presets=presets)
    sae_mra = SaeMraConfig(model="sae-mra", arch=learned.SPECS["sae-mra"], **SAE_MRA_DEFAULTS)
    register_pansharpening_recipe(
        "sae-mra", sae_mra, reference="Azarang & Ghassemian, IPRIA 2017",
        presets={f"weights/pansharpening/sae-mra-{sensor}": dataclasses.replace(sae_mra, scene=scene) for sensor, scene in SCENES.items()},
    )
    register_recipe(
        "cnn3d-mshs", fn=train_cnn3d_and_evaluate, config=Cnn3dConfig(), family="mshs",
        summary="Train the 3-D CNN MS/HS fusion (Palsson et al. 2017) on an HS scene (right quarter held out).",
        presets={
            "weights/pansharpening/cnn3d-mshs-houston": Cnn3dConfig(scene="houston_dataset.mat"),
            "weights/pansharpening/cnn3d-mshs-paris-ms": Cnn3dConfig(scene="paris_data_hs_ms.mat", lr=3e-4),
            "weights/pansharpening/cnn3d-mshs-paris-pan": Cnn3dConfig(scene="paris_data_hs_pan.mat", lr=3e-4),
        },
    )


def make_optimizer(name: str, lr: float) -> optax.GradientTransformation:
    """The optax optimiser ``name`` (``"adam"``, ``"adamw"``, ``"sgd"``, ...) at learning rate ``lr``.

    Raises:
      FusionInputError: ``name`` is not an optax optimiser taking a learning rate.
    """
    fn = getattr(optax, name, None)
    try:
        tx = fn(lr) if callable(fn) else None
    except TypeError:
        tx = None
    if not isinstance(tx, optax.GradientTransformation):
        raise FusionInputError(f"optimizer={name!r}: not an optax optimiser; pass e.g. 'adam', 'adamw' or 'sgd'.")
    return tx


def _data_root() -> Path:
    from jfusion.training.recipes import shared_data_root

    return shared_data_root()


def resolve_scene(scene: str, folder: str) -> Path:
    """``scene`` as a path: itself when it exists, else ``<data>/<folder>/<scene>``.

    Raises:
      FusionInputError: neither exists (or no scene given).
    """
    if not scene:
        raise FusionInputError("scene: no scene given; pass --scene FILE.mat (scene=...).")
    p = Path(scene)
    if p.exists():
        return p
    q = _data_root() / folder / scene
    if q.exists():
        return q
    raise FusionInputError(f"scene {scene!r}: no such file (nor {q}); pass the path of the scene .mat.")


def train_and_evaluate(
    config: PansharpeningConfig, workdir: str | Path, *, install: bool = False, force: bool = False, score: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``config`` and write the asset ``<workdir>/<model>-<sensor>`` with its manifest; returns the manifest.

    The protocol (:mod:`jfusion.training.protocol`): the optimiser sees the scene's train strip
    only; with ``select_steps`` the model keeps the parameters of its lowest validation loss
    (validated every ``validate_every`` steps on the whole validation strip), ``steps`` being the
    most. The run goes through the shared loop (:func:`jfusion.training.loop.train`) with orbax
    checkpoints under ``workdir/checkpoints`` (a killed run called again with the same workdir
    resumes and ends with the same parameters and losses); ``workdir/history.json`` holds the
    per-step losses. With ``score`` the written asset is scored on the validation strip
    (``scores.validation``: model and EXP) and the ship decision is taken there
    (``ships``, :func:`jfusion.training.protocol.ship_decision`); ``install=True`` copies the asset
    into the package only when it ships. The test strip is never read here. Existing assets (in
    ``workdir``, and with ``install`` in the package) are refused before training unless ``force``.
    """
    name = config.model
    spec = scaled_arch(config.arch, config.width)
    samples = int(getattr(config, "samples", 0))
    if spec.kind == "sae" and config.patch != learned.sae_patch_size(spec):  # the SAE's patch side is the recipe's patch
        if config.patch < 2:
            raise FusionInputError(f"patch={config.patch}: pass an SAE patch side of at least 2 pixels.")
        spec = dataclasses.replace(spec, kernels=(config.patch,))
    if samples < 0:
        raise FusionInputError(f"samples={samples}: pass a positive number of training patches (or 0 for fresh patches every step).")
    make_optimizer(config.optimizer, config.lr)  # a bad name fails before any work
    if config.select_steps and config.validate_every < 1:
        raise FusionInputError(f"validate_every={config.validate_every}: pass a positive step interval (or --no-select-steps).")
    scene_path = resolve_scene(config.scene, "pansharpening")
    scene = read_scene(scene_path)
    sensor = wald.sensor_mtf(scene.sensor).name
    out_dir, shipped = _check_targets(workdir, name, f"{name}-{sensor}", install=install, force=force)
    ckpt = prepare_workdir(out_dir, config, extendable=spec.kind != "sae")  # constant-rate optax: steps may grow
    split = protocol.column_split(scene.ms.shape[1], scene.ratio)
    ms_tr, pan_tr = protocol.train_strip(split, scene.ms, scene.pan)
    ms_va, pan_va = protocol.validation_strip(split, scene.ms, scene.pan)
    bands = 1 if spec.kind == "sae" else scene.ms.shape[-1]
    model = learned.build_model(name, bands, seed=config.seed, spec=spec)
    kw = dict(ratio=scene.ratio, sensor=sensor, bit_depth=scene.bit_depth, spec=spec)
    x, y, margin = training_arrays(name, ms_tr, pan_tr, **kw)
    key = jax.random.key(config.seed)
    log = print if progress else None
    t0 = time.time()
    selection: dict[str, Any] = {}
    if spec.kind == "sae":
        history = _train_sae(model, x, y, key=key, steps=config.steps, batch=config.batch, lr=config.lr, log=log,
                             checkpoint_dir=ckpt, checkpoint_every=config.checkpoint_every, optimizer=config.optimizer,
                             spec=spec, samples=samples)
        steps = config.steps
    else:
        pixel = _pixel_loss(spec.loss)

        def loss_fn(m, b):
            return pixel(m(b[0]), b[1])

        validate = None
        if config.select_steps:
            xv, yv, _ = training_arrays(name, ms_va, pan_va, **kw)
            val_loss = jax.jit(lambda m: pixel(m(xv[None]), yv[None]))

            def validate(m, step):
                return {"val_loss": float(val_loss(m))}

        batches = jax.jit(lambda i: crop_batch(jax.random.fold_in(key, i), x, y, patch=config.patch, margin=margin, batch=config.batch))
        out: list = []
        history = fit(model, make_optimizer(config.optimizer, config.lr), loss_fn, batches, steps=config.steps, log=log,
                      checkpoint_dir=ckpt / "main", checkpoint_every=config.checkpoint_every, validate=validate,
                      validate_every=config.validate_every if validate else 0, keep_best="val_loss" if validate else None,
                      result_out=out)
        result = out[0] if out else None  # (a replaced ``fit`` may return losses only)
        steps = int(result.best_step) if (validate and result is not None) else config.steps
        if validate and result is not None:
            selection = {
                "step_selection": f"lowest loss on the validation strip, validated every {config.validate_every} steps "
                f"of {config.steps}: step {steps}",
                "val_losses": {str(int(v["step"])): round(float(v["val_loss"]), 8) for v in result.validation},
                "max_steps": config.steps,
            }
    seconds = time.time() - t0
    _write_history(out_dir, history)
    meta: dict[str, Any] = {
        "model": name,
        "sensor": sensor,
        "bands": bands,
        "scene": scene_path.name,
        "protocol": f"Wald's protocol (MTF-degraded and decimated by {scene.ratio}); fixed train / validation / test "
        "column strips (jfusion.training.protocol)",
        **split.describe(),
        "bit_depth": scene.bit_depth,
        "seed": config.seed,
        "optimizer": config.optimizer,
        "steps": steps, "batch": config.batch, "patch": config.patch, "lr": config.lr,
        "loss": spec.loss,
        "arch": {"kind": spec.kind, "features": list(spec.features), "kernels": list(spec.kernels),
                 "residual": spec.residual, "indices": spec.indices, "width": config.width},
        **selection,
        "final_loss": float(np.mean(history[-20:])),
        "train_seconds": round(seconds, 1),
        "trained_on": _device_name(),
        "command": command_line(name, config) if name in RECIPES else f"jfusion train {name} --scene {scene_path.name}",
        "date": datetime.date.today().isoformat(),
        "recipe": config_dict(config),
        "radiometry": pansharpening_radiometry(ms_tr, pan_tr, bit_depth=scene.bit_depth),
    }
    if spec.kind == "sae":
        meta["patch"] = learned.sae_patch_size(spec)
    if hasattr(config, "samples"):
        meta["samples"] = samples
    path = learned.save_weights(model, out_dir / f"{name}-{sensor}", asset_manifest(meta), force=force)
    full = None
    if path.stat().st_size > assets.SHIP_BYTES:
        # Too large to ship at float32: the asset is stored at float16; the float32 one stays beside it in the run.
        full = learned.save_weights(model, out_dir / f"{name}-{sensor}-float32", asset_manifest(meta), force=True)
        path = learned.save_weights(model, out_dir / f"{name}-{sensor}", asset_manifest(meta), force=True, dtype="float16")
    validation = None
    if score:
        w = {"weights": str(path)}
        validation = {"model": score_strip(ms_va, pan_va, name, **_strip_kw(scene), **w),
                      "exp": score_strip(ms_va, pan_va, "exp", **_strip_kw(scene))}
        if full is not None:
            assets.update_manifest(path, {"storage": storage_loss(ms_va, pan_va, name, scene, full=full, stored=path,
                                                                   stored_scores=validation["model"])})
    return _decide_and_install(path, validation, shipped, force=force, log=log)


def storage_loss(ms: np.ndarray, pan: np.ndarray, name: str, scene: Scene, *, full: Path, stored: Path,
                 stored_scores: dict[str, float]) -> dict[str, Any]:
    """The accuracy lost by storing an asset at reduced precision, measured on one strip (the validation strip).

    Returns the manifest's ``storage``: dtype and file sizes, the float32 asset's scores beside the stored
    one's, and the largest absolute difference of the two fused images (reduced resolution, in DN and as a share
    of ``2**bit_depth``).
    """
    import jfusion

    kw = _strip_kw(scene)
    pair = wald.reduced_resolution(ms, pan, ratio=scene.ratio, sensor=scene.sensor)
    outs = [np.asarray(jfusion.pansharpen(pair.ms_lr, pair.pan_lr, method=name, weights=str(p), **kw), np.float64)
            for p in (full, stored)]
    diff = float(np.max(np.abs(outs[0] - outs[1])))
    full_scores = score_strip(ms, pan, name, **kw, weights=str(full))
    return {
        "dtype": assets.read_manifest(stored).get("stored_dtype", "float32"),
        "bytes": stored.stat().st_size,
        "float32_bytes": full.stat().st_size,
        "limit_bytes": assets.SHIP_BYTES,
        "strip": "validation",
        "float32_scores": full_scores,
        "stored_scores": dict(stored_scores),
        "score_change": {k: float(stored_scores[k] - full_scores[k]) for k in full_scores},
        "max_abs_output_diff_dn": diff,
        "max_abs_output_diff_rel": diff / 2.0**scene.bit_depth,
    }


def _decide_and_install(
    path: Path, validation: dict[str, Any] | None, shipped: Path | None, *, force: bool, log: Callable[[str], None] | None
) -> dict[str, Any]:
    """Record the validation scores and the ship decision in the asset's manifest; install it into the package
    (``shipped``) only when it ships (or was not scored). Returns the final manifest."""
    ships = None
    if validation is not None:
        ships = protocol.ship_decision(validation)
        assets.update_manifest(path, {"scores": {"validation": validation, "test": {}}, "ships": ships,
                                      "ship_rule": protocol.SHIP_RULE})
    if shipped is not None:
        if ships is False:
            if log:
                log(f"{path.stem}: not installed: it does not ship ({protocol.SHIP_RULE}); the run's asset is {path}")
        else:
            path = _install_asset(path, shipped, force=force)
    return assets.read_manifest(path)


def _strip_kw(scene: Scene) -> dict[str, Any]:
    return {"ratio": scene.ratio, "sensor": scene.sensor, "bit_depth": scene.bit_depth}


def _device_name() -> str:
    d = jax.devices()[0]
    return f"{d.platform}:{d.device_kind}"


def pansharpening_radiometry(ms: np.ndarray, pan: np.ndarray, *, bit_depth: int) -> dict[str, Any]:
    """The manifest's ``radiometry`` of a pan-sharpening run: statistics of the training part's MS ``(h, w, B)`` and
    PAN ``(H, W)`` divided by ``2**bit_depth`` (what the networks see), per MS band."""
    scale = 2.0**bit_depth
    return {
        "normalisation": f"DN / 2**bit_depth (bit_depth {bit_depth}), training part of the scene",
        "bit_depth": int(bit_depth),
        "ms": radiometric_stats(np.asarray(ms, np.float64) / scale),
        "pan": radiometric_stats(np.asarray(pan, np.float64) / scale, per_channel=False),
    }


def _write_history(out_dir: Path, history: list[float]) -> None:
    from jfusion.io import atomic_output

    with atomic_output(out_dir / "history.json", overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps({"loss": [float(v) for v in history]}) + "\n")


def train_pansharpening(
    name: str,
    scene_path: str | Path,
    *,
    steps: int | None = None,
    batch: int | None = None,
    patch: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    score: bool = True,
    install: bool = False,
    log: Callable[[str], None] | None = print,
    force: bool = False,
) -> dict[str, Any]:
    """Train method ``name`` on a scene's training part and write the asset ``<out_dir>/<name>-<sensor>``.

    The recipe ``name``'s config with the settings given (:func:`train_and_evaluate`);
    ``out_dir`` defaults to ``./runs/<name>``; ``install=True`` also copies the asset into the
    package (where ``jfusion.pansharpen`` finds it). Returns the asset's manifest (scene, split,
    steps, seed, loss, ``scores.test`` of the model and of EXP when ``score``, date, sha256).
    Existing assets (in the run folder or the package) are refused before training starts unless ``force=True``.
    """
    from jfusion.training.recipes import configure, get_recipe
    from jfusion.weights import default_run_dir

    if name not in learned.SPECS:
        raise FusionInputError(f"unknown model {name!r}; trainable: {', '.join(learned.SPECS)}")
    config = configure(get_recipe(name).config, scene=str(scene_path), steps=steps, batch=batch, patch=patch, lr=lr, seed=seed)
    workdir = Path(out_dir) if out_dir is not None else default_run_dir(name)
    return train_and_evaluate(config, workdir, install=install, force=force, score=score, progress=log is not None)


_CONFIG_KEYS = ("optimizer", "batch", "patch", "lr", "loss", "max_steps", "samples")
_DATA_KEYS = ("scene", "protocol", "train_region", "validation_region", "test_region")


def asset_manifest(meta: dict[str, Any]) -> dict[str, Any]:
    """The :mod:`jfusion.assets` manifest of a pan-sharpening / MS-HS training run's ``meta``.

    ``config`` and ``data`` gather the training settings and the scene split; every key of
    ``meta`` also stays at the top level (the loaders read ``bands``, ``sensor``, ``pca_scale``, ...);
    test scores (``scores_test`` in old files) go under ``scores.test``.
    """
    flat = {k: v for k, v in meta.items() if k not in ("model", "command", "steps", "seed", "date", "scores_test")}
    return assets.new_manifest(
        model=meta["model"], config={k: meta[k] for k in _CONFIG_KEYS if k in meta},
        data={k: meta[k] for k in _DATA_KEYS if k in meta}, command=meta["command"], steps=meta["steps"], seed=meta["seed"],
        date=meta["date"], test=meta.get("scores_test"), **flat,
    )


def _check_targets(
    out_dir: str | Path | None, run_name: str, asset: str, *, install: bool, force: bool
) -> tuple[Path, Path | None]:
    """The run folder and (when installing) the package path of the asset ``asset``, both checked before any work."""
    from jfusion.io import check_output_path
    from jfusion.weights import default_run_dir

    out = Path(out_dir) if out_dir is not None else default_run_dir(run_name)
    in_package = out.resolve() == learned.WEIGHTS_DIR.resolve()
    targets = [out / asset] + ([learned.WEIGHTS_DIR / asset] if install and not in_package else [])
    for target in targets:
        for suffix in (".npz", ".json"):
            check_output_path(target.with_name(target.name + suffix), overwrite=force)
    return out, (learned.WEIGHTS_DIR / asset if (install or in_package) else None)


def _install_asset(path: Path, shipped: Path, *, force: bool) -> Path:
    """Copy the asset at ``path`` (its ``.npz`` and ``.json``) to ``shipped``; returns the installed asset's path."""
    if path.resolve() == shipped.resolve():
        return path
    arrays = assets.read_asset(path)
    return assets.write_asset(shipped, dict(arrays.arrays), arrays.manifest, force=force)


# ----------------------------------------------------------------------------- 3-D CNN MS/HS fusion
def _hs_parts(hs_path: str | Path):
    """``(scene, split, q)``: the scene, its fixed column split (:func:`jfusion.training.protocol.column_split`
    in HS columns; the test strip is :func:`jfusion.pansharpening.mshs.split_columns`' right quarter) and the HS
    ratio ``q`` of its training/test protocol."""
    from jfusion.pansharpening import mshs
    from jfusion.pansharpening.io import read_hs_scene

    scene = read_hs_scene(hs_path)
    q = scene.ratio if scene.ratio > 1 else mshs.SIMULATED_RATIO
    first, _ = mshs.split_columns(scene.hs.shape[1], q)
    return scene, protocol.column_split(scene.hs.shape[1], q, first=first), q


def _cnn3d_arrays(hs: np.ndarray, hr: np.ndarray, scene_ratio: int, pca, ms_scale: float) -> tuple[jax.Array, jax.Array]:
    """Network input ``(h, w, P + C)`` and target components ``(h, w, P)`` of one scene part."""
    from jfusion.pansharpening import mshs

    hs_lr, hr_in, q = mshs.training_pair(hs, hr, scene_ratio=scene_ratio)
    x = mshs.volume(hs_lr, hr_in, pca, ratio=q, ms_scale=ms_scale)[..., 0]
    return x, mshs.to_components(jnp.asarray(hs), pca)


def _fit_cnn3d(x, y, *, steps, batch, patch, lr, seed, log, val=None, val_every=25, noise=0.01, checkpoint_dir=None,
               checkpoint_every=100, optimizer="adam"):
    """Train a fresh 3-D CNN on crops of ``(x, y)``; with ``val = (xv, yv)`` keep the parameters of the lowest
    validation loss and also return the validation losses and that step."""
    from jfusion.pansharpening import mshs
    from jfusion.training.loop import train

    n_pc = y.shape[-1]
    model = mshs.build_cnn3d(seed=seed)
    key = jax.random.key(seed)

    def batch_fn(i):
        k1, k2 = jax.random.split(jax.random.fold_in(key, i))
        xi, yi = crop_batch(k1, x, y, patch=patch, margin=0, batch=batch)
        xi = xi + noise * jax.random.normal(k2, xi.shape)
        return xi[..., None], yi

    def loss_fn(m, b):
        return jnp.mean((m(b[0])[..., :n_pc, 0] - b[1]) ** 2), {}

    validate = None
    if val is not None:
        xv, yv = val

        def validate(m, step):
            return {"val_loss": float(jnp.mean((m(xv[None, ..., None])[0, ..., :n_pc, 0] - yv) ** 2))}

    result = train(model, make_optimizer(optimizer, lr), loss_fn, jax.jit(batch_fn), steps=steps, validate=validate,
                   validate_every=val_every if val is not None else 0, progress=log is not None, desc="cnn3d-mshs",
                   checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                   keep_best="val_loss" if val is not None else None)
    return model, [float(r["loss"]) for r in result.history], result.validation, result.best_step


def train_cnn3d_and_evaluate(
    config: Cnn3dConfig, workdir: str | Path, *, install: bool = False, force: bool = False, score: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the 3-D CNN MS/HS fusion of ``config`` and write the asset ``<workdir>/cnn3d-mshs-<scene key>``; returns its manifest.

    The protocol (:mod:`jfusion.training.protocol`, in HS columns): the optimiser sees the train
    strip; the PCA basis is fitted on it. Inputs follow the scene's protocol
    (:func:`jfusion.pansharpening.mshs.training_pair`: Wald's protocol for a real HS +
    high-resolution pair, HS degradation by 3 for HS and MS on one grid). Noise (``noise`` of the
    component scale) is added to the inputs as in Palsson et al. ``select_steps``: validated
    every 25 steps on the validation strip, the model keeps its lowest-validation-loss parameters
    (``steps`` the most).

    Orbax checkpoints under ``workdir/checkpoints`` make a killed run resumable; ``score`` adds
    the validation strip's scores of the written asset (``scores.validation``) and the ship
    decision (``ships``); ``install`` copies the asset into the package when it ships. The test
    strip is never read here. Existing assets are refused before training unless ``force``.
    """
    from jfusion.pansharpening import mshs

    make_optimizer(config.optimizer, config.lr)  # a bad name fails before any work
    hs_path = resolve_scene(config.scene, "hyperspectral")
    name = mshs.scene_key(str(hs_path))
    out_dir, shipped = _check_targets(workdir, "cnn3d-mshs", f"cnn3d-mshs-{name}", install=install, force=force)
    ckpt = prepare_workdir(out_dir, config)
    log = print if progress else None
    steps, batch, patch, lr, seed = config.steps, config.batch, config.patch, config.lr, config.seed
    scene, split, q = _hs_parts(hs_path)
    r = scene.ratio
    hs_tr, hr_tr = protocol.train_strip(split, scene.hs, scene.hr, scale=r)
    hs_va, hr_va = protocol.validation_strip(split, scene.hs, scene.hr, scale=r)
    pca = mshs.fit_pca(hs_tr, n_components=config.n_components)
    ms_scale = float(2 ** int(np.ceil(np.log2(scene.hr.max() + 1))))
    t0 = time.time()
    selection: dict[str, Any] = {}
    fit_kw = dict(batch=batch, patch=patch, lr=lr, seed=seed, log=log, noise=config.noise, checkpoint_every=config.checkpoint_every,
                  optimizer=config.optimizer)
    x, y = _cnn3d_arrays(hs_tr, hr_tr, r, pca, ms_scale)
    val = _cnn3d_arrays(hs_va, hr_va, r, pca, ms_scale) if config.select_steps else None
    model, history, vals, best_step = _fit_cnn3d(x, y, steps=steps, val=val, checkpoint_dir=ckpt / "main", **fit_kw)
    final_steps = int(best_step) if val is not None else steps
    if val is not None:
        selection = {
            "step_selection": f"lowest loss on the validation strip, validated every 25 steps of {steps}: step {final_steps}",
            "val_losses": {str(int(v["step"])): round(float(v["val_loss"]), 6) for v in vals},
            "max_steps": steps,
        }
    _write_history(out_dir, history)
    n_pc = int(y.shape[-1])
    if r > 1:
        protocol_text = f"real pair, Wald-degraded by {r} (HS and high-resolution image)"
    else:
        protocol_text = f"HS and MS on one grid: HS degraded by {q} (generic MTF Gaussian + decimation), MS kept, original HS = target"
    unused = "column 0" if split.first == 1 else f"columns 0-{split.first - 1}"
    regions = split.describe(unit="HS", hr_unit=None)
    if split.first:
        regions["train_region"] += f"; HS {unused} unused (whole low-resolution pixels)"
    meta = {
        "model": "cnn3d-mshs", "sensor": name, "bands": int(scene.hs.shape[-1]), "ms_bands": int(scene.hr.shape[-1]),
        "scene": hs_path.name, "ratio": q, "n_components": n_pc, "pca_scale": pca.scale, "ms_scale": ms_scale,
        "protocol": protocol_text + "; fixed train / validation / test column strips (jfusion.training.protocol)",
        **regions,
        "seed": seed, "steps": final_steps, "batch": batch, "patch": patch, "lr": lr, "optimizer": config.optimizer, "loss": "l2",
        **selection,
        "final_loss": float(np.mean(history[-20:])), "train_seconds": round(time.time() - t0, 1),
        "trained_on": _device_name(),
        "command": command_line("cnn3d-mshs", config), "date": datetime.date.today().isoformat(),
        "recipe": config_dict(config),
        "radiometry": {
            "normalisation": "HS in the scene's units; high-resolution image / ms_scale; training part of the scene",
            "hs": radiometric_stats(hs_tr), "hr": radiometric_stats(np.asarray(hr_tr, np.float64) / ms_scale),
            "ms_scale": ms_scale,
        },
    }
    arrays = {"pca_mean": np.asarray(pca.mean), "pca_basis": np.asarray(pca.basis), **assets.params_to_arrays(nnx.state(model, nnx.Param))}
    path = assets.write_asset(out_dir / f"cnn3d-mshs-{name}", arrays, asset_manifest(meta), force=force)
    validation = score_cnn3d_mshs(hs_path, weights=str(path), region="validation") if score else None
    return _decide_and_install(path, validation, shipped, force=force, log=log)


def train_cnn3d_mshs(
    hs_path: str | Path,
    *,
    steps: int = 300,
    batch: int = 8,
    patch: int = 24,
    lr: float = 1e-3,
    n_components: int | None = None,
    select_steps: bool = False,
    seed: int = 0,
    out_dir: str | Path | None = None,
    install: bool = False,
    log: Callable[[str], None] | None = print,
    force: bool = False,
    score: bool = False,
) -> dict[str, Any]:
    """Train the 3-D CNN MS/HS fusion on one HS scene and write the asset ``cnn3d-mshs-<scene key>`` (:func:`train_cnn3d_and_evaluate`).

    Written to ``out_dir`` (default ``./runs/cnn3d-mshs``, never the package); ``install=True``
    also copies it into the package.
    """
    from jfusion.weights import default_run_dir

    config = Cnn3dConfig(scene=str(hs_path), steps=steps, batch=batch, patch=patch, lr=lr, seed=seed,
                         n_components=n_components or Cnn3dConfig().n_components, select_steps=select_steps)
    workdir = Path(out_dir) if out_dir is not None else default_run_dir("cnn3d-mshs")
    return train_cnn3d_and_evaluate(config, workdir, install=install, force=force, score=score, progress=log is not None)


def score_cnn3d_mshs(
    hs_path: str | Path, *, full_resolution: bool = False, weights: str | None = None, region: str = "test"
) -> dict[str, dict[str, float]]:
    """Reduced-resolution scores of the shipped 3-D CNN and of the bicubic HS ("EXP") on one strip of the scene.

    ``region``: ``"test"`` (the held-out right quarter; only inside
    :func:`jfusion.training.protocol.reading_test`, the final report) or ``"validation"``.

    Q2n (hypercomplex, 32x32 blocks) where the test region is at least 32 pixels wide and the
    cube has at most 64 bands; otherwise ``q`` (per-band UIQI, 8x8 windows: the Paris test
    region is 15-18 pixels wide and has 128 bands). SAM in degrees, ERGAS with the scene's ratio.
    ``full_resolution`` adds D_lambda, D_s and QNR of the original test pair (no reference) for a
    real HS + PAN pair (Paris HS+PAN, ratio 3; PST conventions with bicubic HS interpolation; the
    metrics read the largest top-right window of whole 32x32 blocks, 192x32 PAN pixels), under ``"model_full"`` / ``"exp_full"``.
    ``weights``: score that asset (e.g. a training run's) instead of the shipped one.
    """
    import jfusion
    from jfusion.metrics import remote as rm
    from jfusion.pansharpening import mshs

    scene, split, _ = _hs_parts(hs_path)
    r = scene.ratio
    if region not in ("test", "validation"):
        raise FusionInputError(f"region={region!r}: pass 'test' or 'validation'.")
    strip = protocol.test_strip if region == "test" else protocol.validation_strip
    hs_te, hr_te = strip(split, scene.hs, scene.hr, scale=r)
    hs_lr, hr_in, q = mshs.training_pair(hs_te, hr_te, scene_ratio=r)
    name = mshs.scene_key(str(hs_path))
    wkw = {} if weights is None else {"weights": weights}
    out = jfusion.pansharpen(hs_lr, hr_in, method="cnn3d-mshs", scene=name, **wkw)
    exp = wald.upsample_ms(hs_lr, q, interp="bicubic")
    ref = jnp.asarray(hs_te)
    use_q2n = hs_te.shape[1] >= 32 and hs_te.shape[-1] <= 64

    def s(f):
        quality = {"q2n": float(rm.q2n(ref, f, cast_uint16=False))} if use_q2n else {"q": float(rm.uiqi(ref, f, block=8))}
        return {**quality, "sam": float(rm.sam(ref, f)), "ergas": float(rm.ergas(ref, f, ratio=q))}

    scores = {"model": s(out), "exp": s(exp)}
    if full_resolution and r > 1 and hr_te.shape[-1] == 1:
        hs_up = wald.upsample_ms(hs_te, r, interp="bicubic")
        pan = jnp.asarray(hr_te).mean(-1)
        full = jfusion.pansharpen(hs_te, hr_te, method="cnn3d-mshs", scene=name, **wkw)

        hb, wb = pan.shape[0] // 32 * 32, pan.shape[1] // 32 * 32  # whole 32x32 blocks (PST block size)

        def nr(f):
            crop = (slice(0, hb), slice(pan.shape[1] - wb, None))
            dl = float(rm.d_lambda(hs_up[crop], f[crop], ratio=r))
            ds = float(rm.d_s(hs_up[crop], pan[crop], f[crop], ratio=r))
            return {"d_lambda": dl, "d_s": ds, "qnr": (1 - dl) * (1 - ds)}

        scores["model_full"], scores["exp_full"] = nr(full), nr(hs_up)
    return scores


_register_recipes()
