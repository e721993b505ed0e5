"""Distorted patch pairs for the learned fusion metric (survey Fig. 8, spec section 9.4).

A pair is ``(clean patch, distorted patch)`` cut from the same location of a natural grey crop; its
label is a *quantised similarity*: the SSIM of the two 16x16 patches (:func:`patch_ssim`: the mean of
the 11x11 Gaussian-window SSIM map, sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, data range 1, over the
6x6 window positions inside the patch), clipped to [0, 1] and banded into ``K`` classes,

    class k = floor((K - 1) * SSIM), capped at K - 2     (non-identical pairs)
    class K - 1                                          (identical pairs only)

so class k stands for the similarity score ``s_k = k / (K - 1)`` and ``s = 1`` is reserved for
identical patches; a band's score is its lower edge.

Distortion types (:data:`TRAIN_KINDS`, each with a strength ``u`` in [0, 1] mapped to its own scale;
:func:`distort`): additive Gaussian noise, Gaussian blur, grey-level quantisation (posterisation),
salt-and-pepper noise, contrast change and brightness shift. :data:`HELD_OUT_KINDS` are never used in
training: ``"jpeg"``, a JPEG-like 8x8 block-DCT quantisation with the JPEG luminance table, which the
validation and the benchmark use as the distortion type the metric did not train on.

Everything is pure JAX (keys explicit, static shapes), jit- and vmap-able.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.precision import matmul

__all__ = [
    "TRAIN_KINDS", "HELD_OUT_KINDS", "KINDS", "PATCH", "MARGIN", "distort", "patch_ssim", "quantise_similarity",
    "sample_metric_batch", "JPEG_LUMA",
]

PATCH = 16
"""Side of the scored patches (the :class:`~jfusion.models.WeightNet` patch)."""
MARGIN = 8
"""Context on each side of a patch that the distortions see (blur support, DCT blocks): windows are 32x32."""
TRAIN_KINDS = ("noise", "blur", "quantise", "salt_pepper", "contrast", "brightness")
"""Distortion types the metric trains on."""
HELD_OUT_KINDS = ("jpeg",)
"""Distortion types it never trains on (validation of generalisation)."""
KINDS = TRAIN_KINDS + HELD_OUT_KINDS

JPEG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float32,
)
"""The JPEG standard's luminance quantisation table (Annex K), on the 0..255 scale."""


def _dct_matrix(n: int = 8) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_DCT8 = _dct_matrix(8)
_BLUR_RADIUS = MARGIN


def _gauss_blur(x: jax.Array, sigma: jax.Array) -> jax.Array:
    """Separable Gaussian blur of ``(H, W)`` with a traced ``sigma`` (radius 8, edge-replicated border)."""
    r = jnp.arange(-_BLUR_RADIUS, _BLUR_RADIUS + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (r / sigma) ** 2)
    k = k / jnp.sum(k)
    xp = jnp.pad(x, _BLUR_RADIUS, mode="edge")
    rows = jax.vmap(lambda v: jnp.convolve(v, k, mode="valid"))(xp)
    return jax.vmap(lambda v: jnp.convolve(v, k, mode="valid"), in_axes=1, out_axes=1)(rows)


def _jpeg_like(x: jax.Array, u: jax.Array) -> jax.Array:
    """8x8 block-DCT quantisation with the JPEG luminance table scaled by ``0.25 + 5.75 u`` (``H, W`` multiples of 8)."""
    h, w = x.shape
    d = jnp.asarray(_DCT8)
    q = jnp.asarray(JPEG_LUMA) * (0.25 + 5.75 * u) / 255.0
    blocks = (x - 0.5).reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
    coef = matmul(matmul(d, blocks), d.T)
    coef = jnp.round(coef / q) * q
    back = matmul(matmul(d.T, coef), d)
    return back.transpose(0, 2, 1, 3).reshape(h, w) + 0.5


def distort(key: jax.Array, x: ArrayLike, kind: int | jax.Array, strength: ArrayLike) -> jax.Array:
    """One distortion of a grey image.

    Args:
      key: ``jax.random`` key (noise realisations, signs).
      x: ``(H, W)`` grey image in [0, 1] (``H, W`` multiples of 8 for ``"jpeg"``).
      kind: index into :data:`KINDS` (may be traced).
      strength: ``u`` in [0, 1]: noise sigma ``0.005 + 0.3 u^2``; blur sigma ``0.3 + 3.2 u``;
        ``round(2 + 46 (1 - u)^2)`` grey levels; salt-and-pepper density ``0.005 + 0.25 u``;
        contrast factor ``1 -/+ (0.05 + 0.75 u)`` about the image mean (random sign); brightness
        shift ``-/+ (0.01 + 0.35 u)`` (random sign); JPEG-like table scale ``0.25 + 5.75 u``.

    Returns:
      ``(H, W)`` distorted image clipped to [0, 1].
    """
    x = jnp.asarray(x, jnp.float32)
    u = jnp.clip(jnp.asarray(strength, jnp.float32), 0.0, 1.0)
    k_noise, k_sp, k_sign = jax.random.split(key, 3)
    sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)

    def noise(x):
        return x + (0.005 + 0.3 * u**2) * jax.random.normal(k_noise, x.shape)

    def blur(x):
        return _gauss_blur(x, 0.3 + 3.2 * u)

    def quantise(x):
        levels = jnp.round(2.0 + 46.0 * (1.0 - u) ** 2)
        return jnp.round(x * (levels - 1.0)) / (levels - 1.0)

    def salt_pepper(x):
        r = jax.random.uniform(k_sp, x.shape)
        d = 0.005 + 0.25 * u
        return jnp.where(r < d / 2, 0.0, jnp.where(r < d, 1.0, x))

    def contrast(x):
        c = jnp.maximum(1.0 + sign * (0.05 + 0.75 * u), 0.05)
        m = jnp.mean(x)
        return m + c * (x - m)

    def brightness(x):
        return x + sign * (0.01 + 0.35 * u)

    def jpeg(x):
        return _jpeg_like(x, u)

    branches = (noise, blur, quantise, salt_pepper, contrast, brightness, jpeg)
    assert len(branches) == len(KINDS)
    return jnp.clip(jax.lax.switch(jnp.asarray(kind, jnp.int32), branches, x), 0.0, 1.0)


def _gauss_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    return (g / g.sum()).astype(np.float32)


_SSIM_WINDOW = _gauss_window()


def patch_ssim(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """Mean SSIM of two ``(..., P, P)`` patches: 11x11 Gaussian window (sigma 1.5), 'valid' positions, data range 1.

    ``K1 = 0.01``, ``K2 = 0.03`` (Wang et al. 2004); identical patches give exactly 1.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    p = a.shape[-1]
    n = p - _SSIM_WINDOW.shape[0] + 1
    # 'valid' separable filtering as two small matrix products (no Python loop over pixels)
    band = jnp.asarray(np.stack([np.pad(_SSIM_WINDOW, (i, p - _SSIM_WINDOW.shape[0] - i)) for i in range(n)]))  # (n, P)

    def filt(v):
        return matmul(matmul(band, v), band.T)

    ma, mb = filt(a), filt(b)
    va, vb, cab = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return jnp.mean(s, axis=(-2, -1))


def quantise_similarity(ssim: ArrayLike, identical: ArrayLike, *, n_classes: int) -> jax.Array:
    """The class of a pair: ``floor((K - 1) clip(ssim, 0, 1))`` capped at ``K - 2``; ``K - 1`` for identical pairs."""
    t = jnp.clip(jnp.asarray(ssim, jnp.float32), 0.0, 1.0)
    k = jnp.minimum(jnp.floor(t * (n_classes - 1)), n_classes - 2).astype(jnp.int32)
    return jnp.where(jnp.asarray(identical, bool), n_classes - 1, k)


def sample_metric_batch(
    key: jax.Array,
    pool: ArrayLike,
    *,
    batch: int,
    n_classes: int,
    kinds: tuple[int, ...] = tuple(range(len(TRAIN_KINDS))),
    identical_fraction: float = 0.08,
    swap: bool = True,
) -> dict[str, jax.Array]:
    """A batch of (patch, distorted patch, class) pairs from a pool of grey crops.

    Each pair: a random 32x32 window of a random crop, one of the 8 symmetries of the square, one
    distortion type of ``kinds`` (indices into :data:`KINDS`) at a uniform random strength, the
    central 16x16 patches of the window and of its distorted copy; ``identical_fraction`` of the pairs
    are a patch and itself. With ``swap`` the order within a pair is random (the 2-channel network
    then learns a nearly symmetric score).

    Returns:
      ``{"a", "b": (batch, 16, 16, 1), "label": (batch,) int32, "ssim": (batch,), "kind": (batch,)}``
      (``kind`` is -1 for identical pairs).
    """
    pool = jnp.asarray(pool, jnp.float32)
    m, h, w = pool.shape
    win = PATCH + 2 * MARGIN
    if h < win or w < win:
        raise ValueError(f"pool crops must be at least {win}x{win}, got {h}x{w}")
    ks = jax.random.split(key, 9)
    idx = jax.random.randint(ks[0], (batch,), 0, m)
    ys = jax.random.randint(ks[1], (batch,), 0, h - win + 1)
    xs = jax.random.randint(ks[2], (batch,), 0, w - win + 1)
    kind = jnp.asarray(kinds, jnp.int32)[jax.random.randint(ks[3], (batch,), 0, len(kinds))]
    strength = jax.random.uniform(ks[4], (batch,))
    same = jax.random.uniform(ks[5], (batch,)) < identical_fraction
    rot = jax.random.randint(ks[6], (batch,), 0, 8)
    flip = jax.random.bernoulli(ks[7], 0.5, (batch,)) & swap
    dkeys = jax.random.split(ks[8], batch)

    def one(i, y, x, kd, u, r, k):
        window = jax.lax.dynamic_slice(pool[i], (y, x), (win, win))
        window = jnp.where(r % 2 == 1, window.T, window)
        window = jnp.where((r // 2) % 2 == 1, window[::-1, :], window)
        window = jnp.where(r // 4 == 1, window[:, ::-1], window)
        bad = distort(k, window, kd, u)
        return window[MARGIN:-MARGIN, MARGIN:-MARGIN], bad[MARGIN:-MARGIN, MARGIN:-MARGIN]

    a, b = jax.vmap(one)(idx, ys, xs, kind, strength, rot, dkeys)
    b = jnp.where(same[:, None, None], a, b)
    ssim = jnp.where(same, 1.0, patch_ssim(a, b))
    label = quantise_similarity(ssim, same, n_classes=n_classes)
    a, b = jnp.where(flip[:, None, None], b, a), jnp.where(flip[:, None, None], a, b)
    return {
        "a": a[..., None], "b": b[..., None], "label": label, "ssim": ssim, "kind": jnp.where(same, -1, kind),
    }

