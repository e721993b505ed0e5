"""Training of the Deep HDR merge network (``jfusion train deep-hdr``; issue 14.1, spec 4.4).

Data: synthetic dynamic stacks (:mod:`jfusion.data.hdr`) from the natural images, split by
source image (:func:`jfusion.data.hdr.split_sources`); every non-reference exposure is aligned to
the reference with jfusion's TV-L1 flow before training, as the paper aligns with Liu's flow.
Batches are random ``patch`` crops of the aligned training stacks with the paper's augmentation
(8 flips/rotations x 6 colour-channel permutations), a pure function of ``(seed, step)``.
Loss: the mu-law L2 (:func:`jfusion.hdr.mu_law_loss`) on the patch interior (the 6-px border that
sees zero padding is skipped). WIE: for the first ``wie_warmup`` steps the refined images are
also pulled towards the aligned inputs (the paper's initial phase). The shipped step is chosen on
validation PSNR-mu only; the test split is scored once, at the end.

Deviations from Kalantari & Ramamoorthi 2017, for a CPU budget of minutes instead of ~2e6
iterations on captured scenes: synthetic stacks from 8-bit natural images (gamma camera
response, random motion) instead of the authors' captured static/dynamic sets; far fewer steps;
Adam 1e-4 with a short linear warm-up; the loss averaged (not summed) over the patch.
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

from jfusion import hdr
from jfusion.data.folder import image_paths
from jfusion.data.hdr import HDRSynthConfig, align_batch, load_rgb_crops, split_sources, synthesize_batch
from jfusion.models.hdr import BORDER, HDRMergeNet, HDRNetConfig, merge
from jfusion.training.loop import TrainResult, train

__all__ = ["HDRTrainConfig", "HDRData", "SHIP_RULE", "build_data", "evaluate_stacks", "baselines", "ship_decision",
           "train_and_evaluate"]


@dataclasses.dataclass(frozen=True)
class HDRTrainConfig:
    """Everything that defines a ``deep-hdr`` training run (hashable; stored in the manifest).

    Attributes:
      model: the network (:class:`~jfusion.models.hdr.HDRNetConfig`; ``arch`` picks the variant).
      synth: how stacks are synthesised (:class:`~jfusion.data.hdr.HDRSynthConfig`).
      source: folder of natural images.
      steps, batch, lr, warmup, seed: optimiser steps, patches per step, Adam peak rate and warm-up.
      patch: training patch side (paper: 40).
      crop, per_image: side and count of the training stacks cut from each training image.
      eval_crop: side of the validation and test stacks (one per image).
      max_images: cap on the training images (``None``: all).
      validate_every, checkpoint_every: intervals in steps.
      wie_warmup: steps of WIE's initial phase.
      flow_iterations, flow_warps: TV-L1 settings of the alignment.
    """

    model: HDRNetConfig = HDRNetConfig()
    synth: HDRSynthConfig = HDRSynthConfig()
    source: str = "../shared/data/natural"
    steps: int = 2000
    batch: int = 16
    lr: float = 1e-4
    warmup: int = 20
    seed: int = 0
    patch: int = 40
    crop: int = 64
    per_image: int = 2
    eval_crop: int = 96
    max_images: int | None = None
    validate_every: int = 250
    checkpoint_every: int = 250
    wie_warmup: int = 500
    flow_iterations: int = 100
    flow_warps: int = 3

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d


@dataclasses.dataclass(frozen=True)
class HDRData:
    """Aligned stacks per split: ``{"ldr", "aligned", "times", "radiance"}`` arrays each."""

    train: dict[str, jax.Array]
    val: dict[str, jax.Array]
    test: dict[str, jax.Array]
    n_images: dict[str, int]


def _split_stacks(key, paths, *, crop, per_image, seed, config: HDRTrainConfig) -> dict[str, jax.Array]:
    images = load_rgb_crops(paths, crop=crop, per_image=per_image, seed=seed)
    st = synthesize_batch(key, images, config=config.synth)
    opts = {"iterations": config.flow_iterations, "warps": config.flow_warps}
    aligned = align_batch(st["ldr"], st["times"], reference=config.synth.reference, flow_options=opts)
    return {"ldr": st["ldr"], "aligned": aligned, "times": st["times"], "radiance": st["radiance"]}


def source_folder(config: HDRTrainConfig) -> Path:
    """The natural-image folder of a run: ``config.source`` (relative to the working directory, as the
    manifest records it), or, when that default is not there, ``$JFUSION_DATA/natural`` / the checkout's data."""
    from jfusion.training.recipes import data_folder

    return data_folder(config.source, default=HDRTrainConfig.source)


def build_data(config: HDRTrainConfig) -> HDRData:
    """Synthesise and align the train / validation / test stacks (keyed by ``config.seed``)."""
    split = split_sources(image_paths(source_folder(config)))
    if config.max_images is not None:
        split = {k: v[: config.max_images] if k == "train" else v[: max(4, config.max_images // 8)] for k, v in split.items()}
    key = jax.random.key(config.seed)
    out = {}
    for i, name in enumerate(("train", "val", "test")):
        crop, per = (config.crop, config.per_image) if name == "train" else (config.eval_crop, 1)
        out[name] = _split_stacks(jax.random.fold_in(key, 100 + i), split[name], crop=crop, per_image=per,
                                  seed=config.seed + i, config=config)
    return HDRData(out["train"], out["val"], out["test"], {k: len(v) for k, v in split.items()})


def _augment(key, aligned, radiance):
    """One of the 8 flips/rotations and one of the 6 channel permutations, the same for a whole stack."""
    kg, kc = jax.random.split(key)
    g = jax.random.randint(kg, (), 0, 8)
    perm = jnp.asarray([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])[jax.random.randint(kc, (), 0, 6)]
    aligned, radiance = aligned[..., perm], radiance[..., perm]

    def geo(x, axes):  # x (..., H, W, C) with spatial axes ``axes``
        x = jnp.where(g % 2 == 1, jnp.flip(x, axes[1]), x)
        r = g // 2
        branches = [lambda y, k=k: jnp.rot90(y, k, axes=axes) for k in range(4)]
        return jax.lax.switch(r, branches, x)

    return geo(aligned, (1, 2)), geo(radiance, (0, 1))


def _make_batch_fn(data: dict[str, jax.Array], config: HDRTrainConfig):
    n, _, h, w, _ = data["aligned"].shape
    p = config.patch
    base = jax.random.fold_in(jax.random.key(config.seed), 7)

    @jax.jit
    def sample(step):
        k = jax.random.fold_in(base, step)
        ki, ky, kx, ka = jax.random.split(k, 4)
        idx = jax.random.randint(ki, (config.batch,), 0, n)
        ys = jax.random.randint(ky, (config.batch,), 0, h - p + 1)
        xs = jax.random.randint(kx, (config.batch,), 0, w - p + 1)

        def one(i, y, x, kk):
            a = jax.lax.dynamic_slice(data["aligned"][i], (0, y, x, 0), (3, p, p, 3))
            r = jax.lax.dynamic_slice(data["radiance"][i], (y, x, 0), (p, p, 3))
            return _augment(kk, a, r)

        a, r = jax.vmap(one)(idx, ys, xs, jax.random.split(ka, config.batch))
        return {"aligned": a, "times": data["times"][idx], "radiance": r}

    return lambda step: sample(jnp.asarray(step))


def _loss_fn(config: HDRTrainConfig):
    b = BORDER

    def loss(model, batch):
        est, refined = merge(model, batch["aligned"], batch["times"])
        inner = lambda x: x[..., b:-b, b:-b, :]  # noqa: E731
        l_mu = hdr.mu_law_loss(inner(est), inner(batch["radiance"]))
        total = l_mu
        if refined is not None:
            w = jnp.mean(batch["phase"]) if "phase" in batch else 0.0
            total = l_mu + w * jnp.mean((inner(refined) - inner(batch["aligned"])) ** 2)
        return total, {"mu_loss": l_mu}

    return loss


def evaluate_stacks(model: HDRMergeNet, data: dict[str, jax.Array], *, chunk: int = 16) -> dict[str, float]:
    """Mean PSNR-mu, PSNR-L and SSIM-mu of ``model`` over stacks (6-px border excluded)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, a, t):
        return merge(nnx.merge(graphdef, state), a, t)[0]

    n = data["aligned"].shape[0]
    est = jnp.concatenate([run(state, data["aligned"][i : i + chunk], data["times"][i : i + chunk]) for i in range(0, n, chunk)])
    return score(est, data["radiance"])


def score(estimate: jax.Array, target: jax.Array) -> dict[str, float]:
    """Mean PSNR-mu / PSNR-L / SSIM-mu over a batch ``(N, H, W, 3)`` (6-px border excluded)."""
    b = BORDER
    e, t = estimate[:, b:-b, b:-b], target[:, b:-b, b:-b]
    return {
        "psnr_mu": float(jnp.mean(jax.vmap(hdr.psnr_mu)(e, t))),
        "psnr_l": float(jnp.mean(jax.vmap(hdr.psnr_l)(e, t))),
        "ssim_mu": float(jnp.mean(jax.vmap(hdr.ssim_mu)(e, t))),
    }


def _hat(z: jax.Array) -> jax.Array:
    """Debevec-Malik triangle weight of an LDR value (0 at 0 and 1, 1 at 0.5), floored for stability."""
    return jnp.maximum(1.0 - jnp.abs(2.0 * z - 1.0), 1e-3)


def baselines(data: dict[str, jax.Array], *, gamma: float = hdr.GAMMA, reference: int = 1) -> dict[str, dict[str, float]]:
    """Scores of the non-learned comparisons on the same stacks.

    * ``mertens``: Mertens exposure fusion of the *unaligned* stack (jfusion's ``mertens``), read
      as an LDR image at the reference exposure (``H = F^gamma / t_ref``);
    * ``flow_average``: plain mean of the flow-aligned HDR-domain images ``H_j``;
    * ``flow_hat_average``: the same mean weighted by the Debevec triangle of each aligned pixel.
    """
    from jfusion.methods.registry import get_method

    mertens = jax.jit(jax.vmap(get_method("mertens")))
    t = data["times"][:, :, None, None, None]
    h = hdr.ldr_to_hdr(data["aligned"], t, gamma=gamma)
    fused = mertens(data["ldr"])
    w = _hat(data["aligned"])
    return {
        "mertens": score(hdr.ldr_to_hdr(fused, data["times"][:, reference, None, None, None], gamma=gamma), data["radiance"]),
        "flow_average": score(jnp.mean(h, axis=1), data["radiance"]),
        "flow_hat_average": score(jnp.sum(w * h, 1) / jnp.sum(w, 1), data["radiance"]),
    }


SHIP_RULE = "beats every non-learned baseline (mertens, flow_average, flow_hat_average) in PSNR-mu on the validation stacks"


def ship_decision(validation: dict[str, Any]) -> bool:
    """:data:`SHIP_RULE` on a manifest's ``validation`` record (``psnr_mu`` and ``baselines``)."""
    return all(validation["psnr_mu"] > b["psnr_mu"] for b in validation["baselines"].values())


def train_and_evaluate(
    config: HDRTrainConfig,
    workdir: str | os.PathLike,
    *,
    command: str = "jfusion train deep-hdr",
    progress: bool = True,
    force: bool = False,
    data: HDRData | None = None,
) -> dict[str, Any]:
    """Train, pick the step with the best validation PSNR-mu, write ``workdir/deep_hdr/<arch>`` asset.

    Checkpoints go to ``workdir/checkpoints/<arch>`` (a killed run resumes there). The asset's
    manifest holds config, data, command, steps (the chosen one), seed, the validation history, the
    validation scores of the network and of the baselines, the ship decision (:data:`SHIP_RULE`,
    on validation only) and, only for an asset that ships, the test scores of the network and the
    baselines (the one read of the test split). Returns the manifest.
    """
    from jfusion import assets

    workdir = Path(workdir)
    asset_path = workdir / "deep_hdr" / config.model.arch
    if not force and any(p.exists() for p in assets.asset_files(asset_path)):
        from jfusion.errors import FusionInputError

        raise FusionInputError(f"{asset_path}: an asset exists; pass force=True (--force) to replace it")
    data = build_data(config) if data is None else data
    key = jax.random.key(config.seed)
    model = HDRMergeNet(config=config.model, rngs=nnx.Rngs(jax.random.fold_in(key, 1)))
    batch_fn = _make_batch_fn(data.train, config)
    if config.model.arch == "wie":
        inner_batch = batch_fn
        batch_fn = lambda step: {**inner_batch(step), "phase": jnp.full((config.batch,), 1.0 if step < config.wie_warmup else 0.0)}  # noqa: E731
    sched = optax.join_schedules([optax.linear_schedule(0.0, config.lr, config.warmup), optax.constant_schedule(config.lr)],
                                 [config.warmup])

    def validate(m: HDRMergeNet, step: int) -> dict[str, float]:
        s = evaluate_stacks(m, data.val)
        # keep_best minimises: the loop checkpoints the best validation beside the run (kept on resume)
        return {**{f"val_{k}": v for k, v in s.items()}, "val_neg_psnr_mu": -s["psnr_mu"]}

    result: TrainResult = train(
        model, optax.adam(sched, b1=0.9, b2=0.999), _loss_fn(config), batch_fn, steps=config.steps,
        checkpoint_dir=workdir / "checkpoints" / config.model.arch, checkpoint_every=config.checkpoint_every,
        validate=validate, validate_every=config.validate_every, progress=progress, desc=f"deep-hdr/{config.model.arch}",
        keep_best="val_neg_psnr_mu",
    )
    chosen = next(v for v in result.validation if v["step"] == result.best_step)
    best = {"step": result.best_step,
            "scores": {k[4:]: v for k, v in chosen.items() if k.startswith("val_") and k != "val_neg_psnr_mu"}}
    validation = {**best.get("scores", {}), "step": int(best["step"]), "chosen_on": "val psnr_mu",
                  "baselines": baselines(data.val, reference=config.synth.reference)}
    ships = ship_decision(validation)
    test = ({"stacks": int(data.test["aligned"].shape[0]), "crop": config.eval_crop, "deep-hdr": evaluate_stacks(model, data.test),
             **baselines(data.test, reference=config.synth.reference)} if ships else {})
    manifest = assets.new_manifest(
        model=f"deep-hdr/{config.model.arch}",
        config={"model": config.model.to_dict(), "train": config.to_dict()},
        data={
            "source": config.source,
            "split": "jfusion.data.hdr.split_sources (sorted index % 10: 0 test, 5 val, else train)",
            "n_images": data.n_images,
            "n_stacks": {k: int(getattr(data, k)["aligned"].shape[0]) for k in ("train", "val", "test")},
            "synthesis": dataclasses.asdict(config.synth),
            "alignment": f"jfusion.ops.flow.tvl1_flow (warps {config.flow_warps}, iterations {config.flow_iterations})",
        },
        command=command,
        steps=int(best["step"]),
        seed=config.seed,
        validation=validation,
        test=test,
        ship_rule=SHIP_RULE,
        ships=ships,
        steps_run=config.steps,
        history={"validation": result.validation},
        final_train_loss=float(np.mean([r["mu_loss"] for r in result.history[-50:]])) if result.history else None,
        jax=jax.__version__,
        devices=f"{jax.device_count()} x {jax.devices()[0].platform}",
        host=platform.machine(),
        deviations=__doc__.split("Deviations from")[1].split("\n\n")[0].replace("\n", " ").strip(),
    )
    arrays = assets.params_to_arrays(nnx.state(model, nnx.Param))
    assets.write_asset(asset_path, arrays, manifest, force=force)
    return manifest


def train_recipe(
    config: HDRTrainConfig, workdir: str | os.PathLike, *, install: bool = False, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """The ``deep-hdr`` recipes' ``train_and_evaluate``: train into ``workdir``, with ``install`` copy the asset into the package.

    The package targets are checked before training (``force`` to replace them).
    """
    from jfusion import assets
    from jfusion.io import check_output_path
    from jfusion.training.recipes import command_line
    from jfusion.weights import WEIGHTS_DIR
    from jfusion.weights import install as install_files

    package_dir = WEIGHTS_DIR / "deep_hdr"
    files = list(assets.asset_files(Path(workdir) / "deep_hdr" / config.model.arch))
    if install:
        for f in files:
            check_output_path(package_dir / f.name, overwrite=force)
    name = "deep-hdr" if config.model.arch == "we" else f"deep-hdr-{config.model.arch}"
    man = train_and_evaluate(config, workdir, command=command_line(name, config), progress=progress, force=force)
    if install and not man["ships"]:
        from jfusion.errors import FusionInputError

        v = man["scores"]["validation"]
        best = max(v["baselines"].items(), key=lambda kv: kv[1]["psnr_mu"])
        raise FusionInputError(
            f"{name}: not installed: it does not ship ({SHIP_RULE}): validation PSNR-mu {v['psnr_mu']:.2f} dB at step "
            f"{v['step']} vs {best[0]} {best[1]['psnr_mu']:.2f} dB; the run's asset is kept in {Path(workdir) / 'deep_hdr'}. "
            "Train longer (--steps, resumed from the run folder) and install again."
        )
    if install:
        install_files(files, package_dir, overwrite=force)
    return man


_SHIPPED_RUN = dict(steps=120, batch=8, per_image=1, validate_every=40, checkpoint_every=40, wie_warmup=40, flow_iterations=50)
_DIRECT_RUN = dict(_SHIPPED_RUN, steps=6000, validate_every=100, checkpoint_every=100)
SHIPPED_PRESETS = {
    "we": {"weights/deep_hdr/we": dataclasses.replace(
        HDRTrainConfig(), model=dataclasses.replace(HDRTrainConfig().model, arch="we"), **_SHIPPED_RUN)},
    "direct": {"weights/deep_hdr/direct": dataclasses.replace(
        HDRTrainConfig(), model=dataclasses.replace(HDRTrainConfig().model, arch="direct"), **_DIRECT_RUN)},
}
"""The shipped deep-hdr assets' runs: ``we`` (120 steps) and ``direct`` (6000 steps, chosen step 5600; it did not pass the
ship rule at 200, 1200 or 3000 steps). ``wie`` does not ship (below the flow-aligned triangle-weighted average on
validation; benchmarks/README.md, *HDR*)."""


def _register_recipes() -> None:
    from jfusion.training.recipes import register_recipe

    base = HDRTrainConfig()
    for arch in ("we", "direct", "wie"):
        register_recipe(
            "deep-hdr" if arch == "we" else f"deep-hdr-{arch}",
            fn=train_recipe,
            config=dataclasses.replace(base, model=dataclasses.replace(base.model, arch=arch)),
            family="hdr",
            summary=f"Train the Deep HDR merge network ({arch}, Kalantari & Ramamoorthi 2017) on synthetic dynamic stacks.",
            reference="Kalantari, Ramamoorthi, ACM TOG 36(4) 2017",
            variants=("deep-hdr-direct", "deep-hdr-wie") if arch == "we" else (),
            presets=SHIPPED_PRESETS.get(arch, {}),
        )


_register_recipes()
