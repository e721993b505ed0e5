"""Synthetic dynamic exposure stacks for Deep HDR training (Kalantari & Ramamoorthi 2017, issue 14.1).

The paper's training scenes are captured (a static stack for the ground truth, a dynamic stack
as input); jfusion synthesises the same structure from the natural images it has
(``shared/data/natural``: BSDS500 train+val and T91):

1. radiance from the 8-bit image by inverse gamma (``lin = I^2.2``), its dynamic range stretched
   by a random power ``lin^p`` (``p`` in ``power``) and scaled by a random brightness ``b`` so
   that the reference exposure saturates in places; times relative to the lowest exposure,
   ``t_i = 2^(ev_i - ev_min)`` (Kalantari's convention: radiance in [0, 1]);
2. independent motion of the non-reference exposures: a random translation plus a smooth field
   (bicubic upsampling of a 4x4 random grid), applied to the radiance by backward warping;
3. every exposure through the gamma camera response, clipped, with Gaussian read noise and
   8-bit quantisation;
4. ground truth: the reference's radiance, unwarped (the static reference of the paper).

Everything is a pure function of a ``jax.random`` key. :func:`split_sources` fixes the
train / validation / test split of the source images (every 10th image in sorted order to test,
every 10th from the 5th to validation). The real exposure sequences of ``shared/data/mef`` have no
ground truth; they are used for the qualitative comparison only (notebooks / benchmarks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jfusion import hdr
from jfusion.io import read_image
from jfusion.ops.flow import warp

__all__ = ["HDRSynthConfig", "split_sources", "load_rgb_crops", "random_flow", "synthesize_stack", "synthesize_batch",
           "align_batch"]


@dataclasses.dataclass(frozen=True)
class HDRSynthConfig:
    """How a synthetic stack is made.

    Attributes:
      ev: exposure values of the stack (EV steps; the middle one is the reference).
      gamma: camera response exponent (``I = (H t)^(1/gamma)``).
      bits: quantisation of the LDR exposures.
      noise: read-noise standard deviation (LDR units, before quantisation).
      power: range of the dynamic-range stretch exponent ``p``.
      brightness: range of the reference-exposure brightness ``b`` (``> 1`` saturates).
      max_shift: translation of a non-reference exposure, uniform in ``[-max_shift, max_shift]`` px.
      warp_amplitude: standard deviation (px) of the smooth part of the motion.
    """

    ev: tuple[float, ...] = (-2.0, 0.0, 2.0)
    gamma: float = hdr.GAMMA
    bits: int = 8
    noise: float = 0.002
    power: tuple[float, float] = (1.0, 1.6)
    brightness: tuple[float, float] = (0.8, 2.0)
    max_shift: float = 3.0
    warp_amplitude: float = 1.0

    @property
    def times(self) -> np.ndarray:
        ev = np.asarray(self.ev, np.float64)
        return np.exp2(ev - ev.min()).astype(np.float32)

    @property
    def reference(self) -> int:
        return len(self.ev) // 2


def split_sources(paths: Sequence[str]) -> dict[str, list[str]]:
    """Fixed split of sorted source images: index % 10 == 0 -> test, == 5 -> val, others -> train."""
    paths = sorted(str(p) for p in paths)
    out = {"train": [], "val": [], "test": []}
    for i, p in enumerate(paths):
        out["test" if i % 10 == 0 else "val" if i % 10 == 5 else "train"].append(p)
    return out


def load_rgb_crops(paths: Sequence[str], *, crop: int, per_image: int, seed: int) -> np.ndarray:
    """``(len(paths) * per_image, crop, crop, 3)`` float32 RGB crops in [0, 1] (numpy RNG ``seed``).

    Grey images are repeated to three channels; images smaller than ``crop`` are padded
    symmetrically.
    """
    rng = np.random.default_rng(seed)
    out = []
    for p in paths:
        img = np.asarray(read_image(p), np.float32)
        img = np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]
        h, w = img.shape[:2]
        if h < crop or w < crop:
            img = np.pad(img, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="symmetric")
            h, w = img.shape[:2]
        ys = rng.integers(0, h - crop + 1, per_image)
        xs = rng.integers(0, w - crop + 1, per_image)
        out.extend(img[y : y + crop, x : x + crop] for y, x in zip(ys, xs))
    return np.stack(out).astype(np.float32)


def random_flow(key: jax.Array, shape: tuple[int, int], *, max_shift: float, amplitude: float) -> jax.Array:
    """``(H, W, 2)`` motion: uniform translation in ``[-max_shift, max_shift]`` plus a smooth field."""
    kt, ks = jax.random.split(key)
    shift = jax.random.uniform(kt, (2,), minval=-max_shift, maxval=max_shift)
    coarse = amplitude * jax.random.normal(ks, (4, 4, 2))
    smooth = jax.image.resize(coarse, tuple(shape) + (2,), method="cubic")
    return smooth + shift


def synthesize_stack(key: jax.Array, image: jax.Array, *, config: HDRSynthConfig = HDRSynthConfig()) -> dict[str, jax.Array]:
    """One dynamic stack from one ``(H, W, 3)`` image in [0, 1].

    Returns:
      ``{"ldr": (S, H, W, 3) in [0, 1], "times": (S,), "radiance": (H, W, 3) ground truth in
      [0, 1], "motion": (S, H, W, 2) the true backward motion of each exposure}``.
    """
    image = jnp.asarray(image, jnp.float32)
    h, w = image.shape[:2]
    s = len(config.ev)
    ref = config.reference
    times = jnp.asarray(config.times)
    kp, kb, km, kn = jax.random.split(key, 4)
    p = jax.random.uniform(kp, (), minval=config.power[0], maxval=config.power[1])
    b = jax.random.uniform(kb, (), minval=config.brightness[0], maxval=config.brightness[1])
    lin = jnp.clip(image, 0.0, 1.0) ** config.gamma
    radiance = jnp.clip(b * lin**p / times[ref], 0.0, 1.0)
    mkeys = jax.random.split(km, s)
    motions = jnp.stack([
        jnp.zeros((h, w, 2)) if i == ref
        else random_flow(mkeys[i], (h, w), max_shift=config.max_shift, amplitude=config.warp_amplitude)
        for i in range(s)
    ])
    levels = float(2**config.bits - 1)
    nkeys = jax.random.split(kn, s)
    ldr = []
    for i in range(s):
        moved = radiance if i == ref else warp(radiance, motions[i])
        z = hdr.hdr_to_ldr(moved, times[i], gamma=config.gamma)
        z = z + config.noise * jax.random.normal(nkeys[i], z.shape)
        ldr.append(jnp.round(jnp.clip(z, 0.0, 1.0) * levels) / levels)
    return {"ldr": jnp.stack(ldr), "times": times, "radiance": radiance, "motion": motions}


def synthesize_batch(key: jax.Array, images: np.ndarray, *, config: HDRSynthConfig = HDRSynthConfig()) -> dict[str, jax.Array]:
    """:func:`synthesize_stack` for every image of ``(N, H, W, 3)`` (keys folded in by index)."""
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(images.shape[0]))
    return jax.jit(jax.vmap(lambda k, im: synthesize_stack(k, im, config=config)))(keys, jnp.asarray(images))


def align_batch(ldr: jax.Array, times: jax.Array, *, reference: int = 1, chunk: int = 32,
                flow_options: dict | None = None) -> jax.Array:
    """Flow-align ``(N, S, H, W, 3)`` stacks to their reference exposure (:func:`jfusion.hdr.align_exposures`)."""
    fn = jax.jit(jax.vmap(lambda z, t: hdr.align_exposures(z, t, reference=reference, flow_options=flow_options)[0]))
    n = ldr.shape[0]
    parts = []
    for i in range(0, n, chunk):  # fixed-size chunks (last one padded) so the alignment compiles once
        z, t = ldr[i : i + chunk], times[i : i + chunk]
        pad = chunk - z.shape[0]
        if pad:
            z = jnp.concatenate([z, jnp.repeat(z[-1:], pad, 0)])
            t = jnp.concatenate([t, jnp.repeat(t[-1:], pad, 0)])
        parts.append(fn(z, t)[: chunk - pad])
    return jnp.concatenate(parts)
