"""Training of the learned pan-sharpening methods under Wald's protocol.

Data: the **training part** of a scene (left three quarters, :func:`jfusion.pansharpening.wald.split_test_region`)
is degraded by the sensor MTF and decimated (Wald's protocol); the network maps the degraded
pair to the original MS. The right quarter is never seen and is used for the scores in the
manifest (reduced resolution, reference = original MS, against EXP = 23-tap interpolation).

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
import os
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
from jfusion.training.recipes import RECIPES, command_line, config_dict, prepare_workdir, radiometric_stats

__all__ = [
    "PansharpeningConfig", "Cnn3dConfig", "pansharpening_config", "register_pansharpening_recipe", "train_and_evaluate",
    "train_cnn3d_and_evaluate", "fit", "training_arrays", "train_pansharpening", "score_on_test_region", "score_shipped",
    "train_cnn3d_mshs", "score_cnn3d_mshs", "beats_baseline",
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
) -> list[float]:
    """Optimise ``model`` in place with jfusion's shared loop (:func:`jfusion.training.loop.train`).

    ``loss_fn(model, batch) -> scalar``; ``batch_fn(step) -> batch``. Returns the per-step losses
    (restored ones included when resumed from ``checkpoint_dir``). ``log`` (default ``print``) turns
    the progress bar on.
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
    )
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
    xi, yi = crop_batch(key, x, y, patch=patch, margin=0, batch=batch)
    xi = xi.reshape(batch, -1)
    yi = yi.reshape(batch, -1)
    mu = xi.mean(-1, keepdims=True)  # the LR patch's mean, removed from both (known at test time)
    g = learned.SAE_GAIN
    return (xi - mu) * g + 0.5, (yi - mu) * g + 0.5


def _train_sae(model, x, y, *, key, steps, batch, lr, log, rho=0.05, beta=0.1, lam=1e-5, checkpoint_dir=None, checkpoint_every=100,
               optimizer="adam"):
    patch = learned.sae_patch_size(learned.SPECS["sae"])
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

    batches = jax.jit(lambda i: _sae_patches(jax.random.fold_in(key, i), x, y, patch=patch, batch=batch))
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
def score_on_test_region(scene: Scene, method: str, **options: Any) -> dict[str, float]:
    """Reduced-resolution Q2n, SAM (degrees) and ERGAS of ``method`` on the scene's held-out right quarter."""
    import jfusion
    from jfusion.metrics import remote as rm

    _, (ms, pan) = wald.split_test_region(scene.ms, scene.pan, scene.ratio)
    pair = wald.reduced_resolution(ms, pan, ratio=scene.ratio, sensor=scene.sensor)
    out = jfusion.pansharpen(pair.ms_lr, pair.pan_lr, method=method, sensor=scene.sensor, bit_depth=scene.bit_depth, **options)
    ref = pair.reference
    return {
        "q2n": float(rm.q2n(ref, out)),
        "sam": float(rm.sam(ref, out)),
        "ergas": float(rm.ergas(ref, out, ratio=scene.ratio)),
    }


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
      select_steps: early stopping on a validation strip of the training part.
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
    select_steps: bool = dataclasses.field(default=False, metadata=_meta(
        "Early stopping: pick the step count (<= --steps) on a validation strip of the training part."))
    noise: float = dataclasses.field(default=0.01, metadata=_meta("Input noise, share of the component scale."))
    optimizer: str = dataclasses.field(default="adam", metadata=_meta("optax optimiser (adam, adamw, sgd, ...)."))
    checkpoint_every: int = dataclasses.field(default=100, metadata=_meta("Orbax checkpoint interval in steps."))


DEFAULTS = {
    "pnn": dict(steps=600, batch=16, patch=17, lr=1e-3),
    "pnn-residual": dict(steps=400, batch=16, patch=17, lr=5e-4),
    "drpnn": dict(steps=300, batch=8, patch=24, lr=5e-4),
    "srcnn-gs": dict(steps=1500, batch=4, patch=96, lr=5e-4),
    "sae": dict(steps=2000, batch=256, patch=7, lr=1e-3),
}
"""The default settings of each pan-sharpening recipe (the shipped assets' steps are in :data:`SHIPPED_STEPS`)."""

SCENES = {"IKONOS": "imgIK.mat", "GeoEye1": "imgGE1.mat", "WV2": "imgWV2.mat"}
"""The scene each sensor's shipped weights were trained on (``shared/data/pansharpening``)."""

SHIPPED_STEPS = {
    "pnn": {"GeoEye1": 3000, "IKONOS": 6000, "WV2": 600},
    "pnn-residual": {"GeoEye1": 400, "IKONOS": 400, "WV2": 400},
    "drpnn": {"GeoEye1": 300, "IKONOS": 1200, "WV2": 300},
    "srcnn-gs": {"GeoEye1": 1500, "IKONOS": 1500, "WV2": 1500},
    "sae": {"GeoEye1": 12000, "IKONOS": 2000, "WV2": 6000},
}
"""Steps of the shipped weights (``jfusion train <model> --scene <scene> --steps N``)."""


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
            f"weights/pansharpening/{name}-{sensor}": pansharpening_config(name, scene=SCENES[sensor], steps=steps)
            for sensor, steps in SHIPPED_STEPS[name].items()
        }
        register_pansharpening_recipe(name, pansharpening_config(name), presets=presets)
    register_recipe(
        "cnn3d-mshs", fn=train_cnn3d_and_evaluate, config=Cnn3dConfig(), family="mshs",
        summary="Train the 3-D CNN MS/HS fusion (Palsson et al. 2017) on an HS scene (right quarter held out).",
        presets={
            "weights/pansharpening/cnn3d-mshs-houston": Cnn3dConfig(scene="houston_dataset.mat"),
            "weights/pansharpening/cnn3d-mshs-paris-ms": Cnn3dConfig(scene="paris_data_hs_ms.mat", lr=3e-4, select_steps=True),
            "weights/pansharpening/cnn3d-mshs-paris-pan": Cnn3dConfig(scene="paris_data_hs_pan.mat", lr=3e-4, select_steps=True),
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
    return Path(os.environ.get("JFUSION_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


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

    The run goes through the shared loop (:func:`jfusion.training.loop.train`) with orbax
    checkpoints under ``workdir/checkpoints`` (a killed run called again with the same workdir
    resumes and ends with the same parameters and losses); ``workdir/history.json`` holds the
    per-step losses. With ``score`` the written asset is scored on the scene's held-out right
    quarter (``scores.test``: model and EXP). ``install=True`` also copies the asset into the
    package. Existing assets (in ``workdir``, and with ``install`` in the package) are refused
    before training unless ``force``.
    """
    name = config.model
    spec = config.arch
    make_optimizer(config.optimizer, config.lr)  # a bad name fails before any work
    scene_path = resolve_scene(config.scene, "pansharpening")
    scene = read_scene(scene_path)
    sensor = wald.sensor_mtf(scene.sensor).name
    out_dir, shipped = _check_targets(workdir, name, f"{name}-{sensor}", install=install, force=force)
    ckpt = prepare_workdir(out_dir, config)
    (ms_tr, pan_tr), _ = wald.split_test_region(scene.ms, scene.pan, scene.ratio)
    bands = 1 if spec.kind == "sae" else scene.ms.shape[-1]
    model = learned.build_model(name, bands, seed=config.seed, spec=spec)
    x, y, margin = training_arrays(name, ms_tr, pan_tr, ratio=scene.ratio, sensor=sensor, bit_depth=scene.bit_depth, spec=spec)
    key = jax.random.key(config.seed)
    log = print if progress else None
    t0 = time.time()
    if spec.kind == "sae":
        history = _train_sae(model, x, y, key=key, steps=config.steps, batch=config.batch, lr=config.lr, log=log,
                             checkpoint_dir=ckpt, checkpoint_every=config.checkpoint_every, optimizer=config.optimizer)
    else:
        pixel = _pixel_loss(spec.loss)

        def loss_fn(m, b):
            return pixel(m(b[0]), b[1])

        batches = jax.jit(lambda i: crop_batch(jax.random.fold_in(key, i), x, y, patch=config.patch, margin=margin, batch=config.batch))
        history = fit(model, make_optimizer(config.optimizer, config.lr), loss_fn, batches, steps=config.steps, log=log,
                      checkpoint_dir=ckpt / "main", checkpoint_every=config.checkpoint_every)
    seconds = time.time() - t0
    _write_history(out_dir, history)
    w = scene.ms.shape[1]
    col = (w - w // 4) // scene.ratio * scene.ratio
    meta: dict[str, Any] = {
        "model": name,
        "sensor": sensor,
        "bands": bands,
        "scene": scene_path.name,
        "train_region": f"MS columns 0-{col - 1}, PAN columns 0-{col * scene.ratio - 1} (Wald-degraded by {scene.ratio})",
        "test_region": f"MS columns {col}-{w - 1}, PAN columns {col * scene.ratio}-{w * scene.ratio - 1}",
        "bit_depth": scene.bit_depth,
        "seed": config.seed,
        "optimizer": config.optimizer,
        "steps": config.steps, "batch": config.batch, "patch": config.patch, "lr": config.lr,
        "loss": spec.loss,
        "final_loss": float(np.mean(history[-20:])),
        "train_seconds": round(seconds, 1),
        "command": command_line(name, config) if name in RECIPES else f"jfusion train {name} --scene {scene_path.name}",
        "date": datetime.date.today().isoformat(),
        "recipe": config_dict(config),
        "radiometry": pansharpening_radiometry(ms_tr, pan_tr, bit_depth=scene.bit_depth),
    }
    if spec.kind == "sae":
        meta["patch"] = learned.sae_patch_size(spec)
    path = learned.save_weights(model, out_dir / f"{name}-{sensor}", asset_manifest(meta), force=force)
    if score:
        test = {"model": score_on_test_region(scene, name, weights=str(path)), "exp": score_on_test_region(scene, "exp")}
        assets.update_manifest(path, {"scores": {"validation": {}, "test": test}, "beats_exp": beats_baseline(test)})
    if shipped is not None:
        path = _install_asset(path, shipped, force=force)
    return assets.read_manifest(path)


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


_CONFIG_KEYS = ("optimizer", "batch", "patch", "lr", "loss", "max_steps")
_DATA_KEYS = ("scene", "protocol", "train_region", "test_region")


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


def score_shipped(*, data_dir: str | Path | None = None, prune: bool = True) -> dict[str, Any]:
    """Score every weight asset of the package on its scene's held-out region and write the scores into its manifest.

    Each asset's manifest gets ``scores.test`` (model and EXP) and ``beats_exp``. With ``prune``,
    weights that do not beat EXP on all of Q2n, SAM and ERGAS are deleted (not shipped) and their
    manifests kept in ``not_shipped.json``. Returns the manifests by asset name (``"not_shipped"``:
    the pruned ones).

    Args:
      data_dir: the shared data folder (default ``../shared/data`` next to the repository).
    """
    out_dir = learned.WEIGHTS_DIR
    data_dir = Path(data_dir) if data_dir else Path(__file__).resolve().parents[3] / "shared" / "data"
    dropped_path = out_dir / "not_shipped.json"
    dropped: dict[str, Any] = json.loads(dropped_path.read_text()) if dropped_path.exists() else {}
    entries: dict[str, Any] = {}
    for npz in assets.find_assets(out_dir):
        meta = assets.read_manifest(npz)
        if meta["model"] == "cnn3d-mshs":
            scores = score_cnn3d_mshs(data_dir / "hyperspectral" / meta["scene"], full_resolution=True)
        else:
            scene = read_scene(data_dir / "pansharpening" / meta["scene"])
            scores = {"model": score_on_test_region(scene, meta["model"]), "exp": score_on_test_region(scene, "exp")}
        meta = assets.update_manifest(
            npz, {"scores": {**meta["scores"], "test": scores}, "beats_exp": beats_baseline(scores)}
        )
        if prune and not meta["beats_exp"]:
            for f in assets.asset_files(npz):
                f.unlink()
            dropped[npz.stem] = meta
        else:
            entries[npz.stem] = meta
            dropped.pop(npz.stem, None)
    if dropped:
        dropped_path.write_text(json.dumps(dropped, indent=2, sort_keys=True) + "\n")
        entries["not_shipped"] = dropped
    return entries


# ----------------------------------------------------------------------------- 3-D CNN MS/HS fusion
def _hs_parts(hs_path: str | Path):
    """``(scene, first, col, q)``: the scene, its split and the HS ratio ``q`` of its training/test protocol."""
    from jfusion.pansharpening import mshs
    from jfusion.pansharpening.io import read_hs_scene

    scene = read_hs_scene(hs_path)
    q = scene.ratio if scene.ratio > 1 else mshs.SIMULATED_RATIO
    first, col = mshs.split_columns(scene.hs.shape[1], q)
    return scene, first, col, q


def _cnn3d_arrays(hs: np.ndarray, hr: np.ndarray, scene_ratio: int, pca, ms_scale: float) -> tuple[jax.Array, jax.Array]:
    """Network input ``(h, w, P + C)`` and target components ``(h, w, P)`` of one scene part."""
    from jfusion.pansharpening import mshs

    hs_lr, hr_in, q = mshs.training_pair(hs, hr, scene_ratio=scene_ratio)
    x = mshs.volume(hs_lr, hr_in, pca, ratio=q, ms_scale=ms_scale)[..., 0]
    return x, mshs.to_components(jnp.asarray(hs), pca)


def _fit_cnn3d(x, y, *, steps, batch, patch, lr, seed, log, val=None, val_every=25, noise=0.01, checkpoint_dir=None,
               checkpoint_every=100, optimizer="adam"):
    """Train a fresh 3-D CNN on crops of ``(x, y)``; with ``val = (xv, yv)`` also return the validation losses."""
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
                   checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every)
    return model, [float(r["loss"]) for r in result.history], result.validation


def train_cnn3d_and_evaluate(
    config: Cnn3dConfig, workdir: str | Path, *, install: bool = False, force: bool = False, score: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the 3-D CNN MS/HS fusion of ``config`` and write the asset ``<workdir>/cnn3d-mshs-<scene key>``; returns its manifest.

    The right quarter of the scene (:func:`jfusion.pansharpening.mshs.split_columns`) is held
    out; the PCA basis is fitted on the training part's HS. Inputs follow the scene's protocol
    (:func:`jfusion.pansharpening.mshs.training_pair`: Wald's protocol for a real HS +
    high-resolution pair, HS degradation by 3 for HS and MS on one grid). Noise (``noise`` of the
    component scale) is added to the inputs as in Palsson et al.

    ``select_steps`` (early stopping without the test region, for the small Paris scenes): the
    training part is split again, its right quarter becomes a validation strip; a run of
    ``steps`` steps on the rest is validated every 25 steps, and the final model is trained on
    the whole training part for the step count with the lowest validation loss.

    Orbax checkpoints under ``workdir/checkpoints`` (``select`` and ``final`` runs) make a killed
    run resumable; ``score`` adds the held-out scores of the written asset (``scores.test``);
    ``install`` also copies the asset into the package. Existing assets are refused before
    training unless ``force``.
    """
    from jfusion.pansharpening import mshs

    make_optimizer(config.optimizer, config.lr)  # a bad name fails before any work
    hs_path = resolve_scene(config.scene, "hyperspectral")
    name = mshs.scene_key(str(hs_path))
    out_dir, shipped = _check_targets(workdir, "cnn3d-mshs", f"cnn3d-mshs-{name}", install=install, force=force)
    ckpt = prepare_workdir(out_dir, config)
    log = print if progress else None
    steps, batch, patch, lr, seed = config.steps, config.batch, config.patch, config.lr, config.seed
    scene, first, col, q = _hs_parts(hs_path)
    r = scene.ratio
    hs_tr, hr_tr = scene.hs[:, first:col], scene.hr[:, first * r : col * r]
    pca = mshs.fit_pca(hs_tr, n_components=config.n_components)
    ms_scale = float(2 ** int(np.ceil(np.log2(scene.hr.max() + 1))))
    t0 = time.time()
    selection: dict[str, Any] = {}
    final_steps = steps
    fit_kw = dict(batch=batch, patch=patch, lr=lr, seed=seed, log=log, noise=config.noise, checkpoint_every=config.checkpoint_every,
                  optimizer=config.optimizer)
    if config.select_steps:
        vfirst, vcol = mshs.split_columns(col - first, q)
        vcol += first  # vfirst == 0: the training part is whole LR pixels already
        xf, yf = _cnn3d_arrays(scene.hs[:, first:vcol], scene.hr[:, first * r : vcol * r], r, pca, ms_scale)
        xv, yv = _cnn3d_arrays(scene.hs[:, vcol:col], scene.hr[:, vcol * r : col * r], r, pca, ms_scale)
        _, _, vals = _fit_cnn3d(xf, yf, steps=steps, val=(xv, yv), checkpoint_dir=ckpt / "select", **fit_kw)
        best = min(vals, key=lambda v: v["val_loss"])
        final_steps = max(int(best["step"]), 25)
        selection = {
            "step_selection": f"validation strip HS columns {vcol}-{col - 1} (right quarter of the training part), model trained "
            f"on columns {first}-{vcol - 1} for {steps} steps, validated every 25: lowest loss at step {final_steps}; "
            f"final model trained on the whole training part for {final_steps} steps",
            "val_losses": {str(int(v["step"])): round(float(v["val_loss"]), 6) for v in vals},
            "max_steps": steps,
        }
    x, y = _cnn3d_arrays(hs_tr, hr_tr, r, pca, ms_scale)
    model, history, _ = _fit_cnn3d(x, y, steps=final_steps, checkpoint_dir=ckpt / "final", **fit_kw)
    _write_history(out_dir, history)
    n_pc = int(y.shape[-1])
    w = scene.hs.shape[1]
    if r > 1:
        protocol = f"real pair, Wald-degraded by {r} (HS and high-resolution image)"
    else:
        protocol = f"HS and MS on one grid: HS degraded by {q} (generic MTF Gaussian + decimation), MS kept, original HS = target"
    unused = "column 0" if first == 1 else f"columns 0-{first - 1}"
    dropped = f"; HS {unused} unused (whole low-resolution pixels)" if first else ""
    meta = {
        "model": "cnn3d-mshs", "sensor": name, "bands": int(scene.hs.shape[-1]), "ms_bands": int(scene.hr.shape[-1]),
        "scene": hs_path.name, "ratio": q, "n_components": n_pc, "pca_scale": pca.scale, "ms_scale": ms_scale,
        "protocol": protocol,
        "train_region": f"HS columns {first}-{col - 1}{dropped}", "test_region": f"HS columns {col}-{w - 1} (right quarter)",
        "seed": seed, "steps": final_steps, "batch": batch, "patch": patch, "lr": lr, "optimizer": config.optimizer, "loss": "l2",
        **selection,
        "final_loss": float(np.mean(history[-20:])), "train_seconds": round(time.time() - t0, 1),
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
    if score:
        test = score_cnn3d_mshs(hs_path, weights=str(path))
        assets.update_manifest(path, {"scores": {"validation": {}, "test": test}, "beats_exp": beats_baseline(test)})
    if shipped is not None:
        path = _install_asset(path, shipped, force=force)
    return assets.read_manifest(path)


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


def score_cnn3d_mshs(hs_path: str | Path, *, full_resolution: bool = False, weights: str | None = None) -> dict[str, dict[str, float]]:
    """Reduced-resolution scores of the shipped 3-D CNN and of the bicubic HS ("EXP") on the held-out quarter.

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

    scene, first, col, _ = _hs_parts(hs_path)
    r = scene.ratio
    hs_te, hr_te = scene.hs[:, col:], scene.hr[:, col * r :]
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


def beats_baseline(scores: dict[str, dict[str, float]]) -> bool:
    """Model better than the baseline on the quality index (Q2n, else Q), SAM and ERGAS."""
    m, e = scores["model"], scores["exp"]
    qk = "q2n" if "q2n" in m else "q"
    return bool(m[qk] > e[qk] and m["sam"] < e["sam"] and m["ergas"] < e["ergas"])


_register_recipes()
