"""On-the-fly synthesis of multi-focus training pairs (Liu et al. 2017, spec section 1.2), keyed by ``jax.random``.

Liu's recipe: a sharp grey natural image is blurred progressively (Gaussian, sigma 2,
7x7 kernel, each version blurring the previous one: 5 versions); a sharp patch and the
blurred patch at the same place form a positive pair ``(sharp, blurred)`` with label 1 and
a negative pair ``(blurred, sharp)`` with label 0.

Here a *pool* of grey crops ``(M, H, W)`` is held in memory (see :mod:`jfusion.data.folder`);
:func:`sample_focus_batch` draws, per example, a crop, a blur level in ``1..levels`` and a
location, cuts a window large enough for the blur's support around the 16x16 patch,
blurs the window ``level`` times and keeps its centre, so the patch equals the patch of
the whole crop blurred with borders far away. Everything is one jitted function of the key.

:func:`multifocus_scene` makes whole multi-focus *scenes with ground truth* for evaluation: an
all-in-focus image, a smooth random partition into ``S`` regions (2 or 3 sources), and source
``i`` sharp on region ``i`` and Gaussian-blurred elsewhere. :func:`exposure_scene` makes
multi-exposure stacks with ground truth from a radiance (the regression-type framework's data).

Multi-class pairs for the survey's Fig. 5 framework (``n_classes = K > 2``): class ``k``
means weight ``w_k = k / (K - 1)`` for source A. The example is a *partially focused*
pair: A is sharp on a fraction ``w_k`` of the patch (the columns left of a split line,
then randomly rotated/flipped) and blurred elsewhere; B is the complement. So the expected
weight the network learns is the fraction of A's patch that is in focus, which is exactly
what overlap-averaging turns into a soft weight map near focus boundaries. K = 2 reduces
to Liu's pairs (w in {0, 1}).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.filters import gaussian_kernel1d, separable_filter

__all__ = ["progressive_blur", "sample_focus_batch", "sample_multiscale_focus_batch", "blur_margin", "area_resize", "multifocus_scene",
           "exposure_scene"]


def blur_margin(*, size: int = 7, levels: int = 5) -> int:
    """Support radius of ``levels`` successive ``size x size`` blurs: the context a patch needs."""
    return levels * (size // 2)


def progressive_blur(image: ArrayLike, *, sigma: float = 2.0, size: int = 7, levels: int = 5,
                     border: str = "symmetric") -> jax.Array:
    """The sharp image and its ``levels`` progressively blurred versions.

    Args:
      image: ``(..., H, W)`` grey image(s) in [0, 1].
      sigma: Gaussian standard deviation of one blur step (Liu 2017: 2).
      size: kernel size of one step (Liu 2017: 7).
      levels: number of blurred versions (Liu 2017: 5).
      border: border extension of each blur (see :mod:`jfusion.ops.filters`).

    Returns:
      ``(levels + 1, ..., H, W)``: index 0 is ``image``, index i is blurred i times.
    """
    k = gaussian_kernel1d(sigma, size=size)
    x = jnp.asarray(image, jnp.float32)

    def body(carry, _):
        nxt = separable_filter(carry, k, kernel_x=k, border=border)
        return nxt, nxt

    _, blurred = jax.lax.scan(body, x, None, length=levels)
    return jnp.concatenate([x[None], blurred], axis=0)


def _split_masks(patch: int, n_classes: int) -> np.ndarray:
    """``(K, patch, patch)`` masks: class k has the ``round(w_k * patch)`` left columns set."""
    w = np.linspace(0.0, 1.0, n_classes)
    cols = np.round(w * patch).astype(int)
    x = np.arange(patch)
    return np.broadcast_to((x[None, None, :] < cols[:, None, None]), (n_classes, patch, patch)).astype(np.float32)


@functools.partial(
    jax.jit, static_argnames=("batch", "patch", "n_classes", "sigma", "size", "levels", "min_std")
)
def sample_focus_batch(
    key: jax.Array,
    pool: ArrayLike,
    *,
    batch: int,
    patch: int = 16,
    n_classes: int = 2,
    sigma: float = 2.0,
    size: int = 7,
    levels: int = 5,
    min_std: float = 0.0,
) -> dict[str, jax.Array]:
    """Draw a batch of synthetic (A, B, label) focus pairs from a pool of sharp grey crops.

    Args:
      key: ``jax.random`` key; the batch is a pure function of it.
      pool: ``(M, H, W)`` sharp grey crops in [0, 1], ``H, W >= patch + 2 * blur_margin``.
      batch: number of pairs.
      patch: patch size (16 for every WeightNet).
      n_classes: K weight classes (2: Liu's focused / defocused labels).
      sigma, size, levels: one blur step and the number of steps (section 1.2).
      min_std: skip locations whose sharp patch has a standard deviation below this
        (flat patches look the same sharp and blurred, so their label is noise). Twice
        ``batch`` candidates are drawn and the textured ones are used first; 0 keeps all.

    Returns:
      ``{"a": (batch, patch, patch, 1), "b": same, "label": (batch,) int32}``; label k
      means A's weight ``k / (K - 1)`` (K = 2: 1 = A is the sharp one).
    """
    pool = jnp.asarray(pool, jnp.float32)
    m, h, w = pool.shape
    margin = blur_margin(size=size, levels=levels)
    win = patch + 2 * margin
    if h < win or w < win:
        raise ValueError(f"pool crops must be at least {win}x{win} for patch {patch}, got {h}x{w}")
    k_img, k_y, k_x, k_lvl, k_cls, k_rot = jax.random.split(key, 6)
    n_cand = 2 * batch if min_std > 0 else batch
    idx = jax.random.randint(k_img, (n_cand,), 0, m)
    ys = jax.random.randint(k_y, (n_cand,), 0, h - win + 1)
    xs = jax.random.randint(k_x, (n_cand,), 0, w - win + 1)
    if min_std > 0:
        sharp = jax.vmap(lambda i, y, x: jax.lax.dynamic_slice(pool[i], (y + margin, x + margin), (patch, patch)))(
            idx, ys, xs
        )
        flat = (jnp.std(sharp, axis=(1, 2)) < min_std).astype(jnp.int32)
        keep = jnp.argsort(flat, stable=True)[:batch]  # textured candidates first, in draw order
        idx, ys, xs = idx[keep], ys[keep], xs[keep]
    lvl = jax.random.randint(k_lvl, (batch,), 1, levels + 1)
    label = jax.random.randint(k_cls, (batch,), 0, n_classes)
    rot = jax.random.randint(k_rot, (batch,), 0, 8)

    def one(i, y, x, level, lab, r):
        window = jax.lax.dynamic_slice(pool[i], (y, x), (win, win))
        stack = progressive_blur(window, sigma=sigma, size=size, levels=levels, border="zero")
        centre = jax.lax.dynamic_slice(stack, (0, margin, margin), (levels + 1, patch, patch))
        sharp, blurred = centre[0], centre[level]
        mask = jnp.asarray(_split_masks(patch, n_classes))[lab]
        # one of the 8 symmetries of the square, so split lines take every orientation
        mask = jnp.where(r % 2 == 1, mask.T, mask)
        mask = jnp.where((r // 2) % 2 == 1, mask[::-1, :], mask)
        mask = jnp.where(r // 4 == 1, mask[:, ::-1], mask)
        a = mask * sharp + (1.0 - mask) * blurred
        b = (1.0 - mask) * sharp + mask * blurred
        return a, b

    a, b = jax.vmap(one)(idx, ys, xs, lvl, label, rot)
    return {"a": a[..., None], "b": b[..., None], "label": label.astype(jnp.int32)}


def area_resize(x: ArrayLike, factor: int) -> jax.Array:
    """Mean over ``factor x factor`` blocks of ``(..., H, W)`` with ``H, W`` multiples of ``factor`` (area resize by 1/factor)."""
    x = jnp.asarray(x)
    h, w = x.shape[-2], x.shape[-1]
    if h % factor or w % factor:
        raise ValueError(f"sides {h}x{w} must be multiples of {factor}")
    return x.reshape(*x.shape[:-2], h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


@functools.partial(
    jax.jit, static_argnames=("batch", "scales", "n_classes", "sigma", "size", "levels", "min_std")
)
def sample_multiscale_focus_batch(
    key: jax.Array,
    pool: ArrayLike,
    *,
    batch: int,
    scales: tuple[int, ...] = (16, 32, 64),
    n_classes: int = 2,
    sigma: float = 2.0,
    size: int = 7,
    levels: int = 5,
    min_std: float = 0.0,
) -> dict[str, jax.Array]:
    """Du & Gao (2017) multi-scale pairs: Liu's blur pairs cut at several patch sizes, each resized to 16x16.

    Per example a scale ``s`` is drawn uniformly from ``scales``; the sharp crop window is
    blurred ``level`` times at full resolution (Liu's steps, as :func:`sample_focus_batch`), the
    ``s x s`` patch at the same place is cut from the sharp and the blurred version and both are
    area-resized by ``s / 16`` (block means), which is exactly what ``cnn-focus-multiscale``
    feeds the network at that scale (:func:`jfusion.methods.cnn.multiscale_focus_map`).

    Args:
      key: ``jax.random`` key; the batch is a pure function of it.
      pool: ``(M, H, W)`` sharp grey crops in [0, 1], ``H, W >= max(scales) + 2 * blur_margin``.
      batch: number of pairs.
      scales: patch sizes, multiples of 16 whose differences are even (16, 32, 64).
      n_classes, sigma, size, levels, min_std: as :func:`sample_focus_batch` (the ``min_std``
        test is made on the resized 16x16 sharp patch).

    Returns:
      ``{"a": (batch, 16, 16, 1), "b": same, "label": (batch,) int32, "scale": (batch,) int32}``.
    """
    patch = 16
    if any(s % patch for s in scales) or len({s % 2 for s in scales}) > 1:
        raise ValueError(f"scales must be multiples of {patch}, got {scales}")
    pool = jnp.asarray(pool, jnp.float32)
    m, h, w = pool.shape
    margin = blur_margin(size=size, levels=levels)
    big = max(scales)
    win = big + 2 * margin
    if h < win or w < win:
        raise ValueError(f"pool crops must be at least {win}x{win} for scales {scales}, got {h}x{w}")
    k_img, k_y, k_x, k_lvl, k_cls, k_rot, k_s = jax.random.split(key, 7)
    n_cand = 2 * batch if min_std > 0 else batch
    idx = jax.random.randint(k_img, (n_cand,), 0, m)
    ys = jax.random.randint(k_y, (n_cand,), 0, h - win + 1)
    xs = jax.random.randint(k_x, (n_cand,), 0, w - win + 1)
    sc = jax.random.randint(k_s, (n_cand,), 0, len(scales))

    def resized(stack: jax.Array, j: jax.Array) -> jax.Array:
        """``stack (..., win, win)`` -> the centred patch of scale ``scales[j]`` resized to 16: ``(..., 16, 16)``."""
        outs = []
        for s in scales:
            off = margin + (big - s) // 2
            outs.append(area_resize(stack[..., off : off + s, off : off + s], s // patch))
        return jnp.stack(outs)[j]

    if min_std > 0:
        sharp = jax.vmap(lambda i, y, x, j: resized(jax.lax.dynamic_slice(pool[i], (y, x), (win, win)), j))(idx, ys, xs, sc)
        flat = (jnp.std(sharp, axis=(1, 2)) < min_std).astype(jnp.int32)
        keep = jnp.argsort(flat, stable=True)[:batch]  # textured candidates first, in draw order
        idx, ys, xs, sc = idx[keep], ys[keep], xs[keep], sc[keep]
    lvl = jax.random.randint(k_lvl, (batch,), 1, levels + 1)
    label = jax.random.randint(k_cls, (batch,), 0, n_classes)
    rot = jax.random.randint(k_rot, (batch,), 0, 8)

    def one(i, y, x, j, level, lab, r):
        window = jax.lax.dynamic_slice(pool[i], (y, x), (win, win))
        stack = progressive_blur(window, sigma=sigma, size=size, levels=levels, border="zero")
        small = resized(stack, j)
        sharp_p, blurred = small[0], small[level]
        mask = jnp.asarray(_split_masks(patch, n_classes))[lab]
        mask = jnp.where(r % 2 == 1, mask.T, mask)
        mask = jnp.where((r // 2) % 2 == 1, mask[::-1, :], mask)
        mask = jnp.where(r // 4 == 1, mask[:, ::-1], mask)
        return mask * sharp_p + (1.0 - mask) * blurred, (1.0 - mask) * sharp_p + mask * blurred

    a, b = jax.vmap(one)(idx, ys, xs, sc, lvl, label, rot)
    scale = jnp.asarray(scales, jnp.int32)[sc]
    return {"a": a[..., None], "b": b[..., None], "label": label.astype(jnp.int32), "scale": scale}


def _gaussian_blur_image(x: jax.Array, sigma: jax.Array, radius: int) -> jax.Array:
    """Separable Gaussian blur of ``(H, W)`` / ``(H, W, C)`` with a traced ``sigma`` on a fixed ``2 radius + 1`` support
    (symmetric border)."""
    t = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    k = jnp.exp(-0.5 * (t / sigma) ** 2)
    k = k / jnp.sum(k)
    if x.ndim == 3:
        return jnp.moveaxis(separable_filter(jnp.moveaxis(x, -1, 0), k, kernel_x=k, border="symmetric"), 0, -1)
    return separable_filter(x, k, kernel_x=k, border="symmetric")


@functools.partial(jax.jit, static_argnames=("n_sources", "sigma_range", "smoothness"))
def multifocus_scene(
    key: jax.Array,
    image: ArrayLike,
    *,
    n_sources: int = 2,
    sigma_range: tuple[float, float] = (1.0, 3.0),
    smoothness: float = 0.15,
) -> dict[str, jax.Array]:
    """A multi-focus scene with ground truth, a pure function of ``key`` and the all-in-focus ``image``.

    A white-noise field is low-pass filtered (Gaussian transfer function of standard deviation
    ``smoothness * min(H, W)`` pixels, periodic) and cut at its ``k / S`` quantiles into ``S``
    regions of equal area (smooth, random, possibly several connected parts each). Source ``i``
    is ``image`` on region ``i`` and ``image`` blurred by a Gaussian of standard deviation
    ``sigma_i`` (uniform in ``sigma_range``, one per source) elsewhere, so every pixel is sharp in
    exactly one source and the truth is ``image`` itself.

    Args:
      key: ``jax.random`` key.
      image: ``(H, W)`` or ``(H, W, C)`` all-in-focus image in [0, 1], ``H, W >= 16``.
      n_sources: ``S``, 2 or 3.
      sigma_range: ``(low, high)`` blur standard deviations in pixels, ``0 < low <= high <= 8``.
      smoothness: region scale as a share of the shorter side (larger: fewer, rounder regions).

    Returns:
      ``{"sources": (S, H, W[, C]), "truth": image, "regions": (H, W) int32 in 0..S-1, "sigmas": (S,)}``.

    Raises:
      FusionInputError: ``n_sources``, ``sigma_range`` or ``image`` outside what is documented.
    """
    from jfusion.errors import FusionInputError

    if n_sources not in (2, 3):
        raise FusionInputError(f"n_sources={n_sources}: pass 2 or 3.")
    lo, hi = (float(v) for v in sigma_range)
    if not 0 < lo <= hi <= 8:
        raise FusionInputError(f"sigma_range={sigma_range}: pass (low, high) with 0 < low <= high <= 8 pixels.")
    x = jnp.asarray(image, jnp.float32)
    if x.ndim not in (2, 3) or x.shape[0] < 16 or x.shape[1] < 16:
        raise FusionInputError(f"image of shape {x.shape}: pass one (H, W) or (H, W, C) image with H, W >= 16.")
    h, w = x.shape[:2]
    k_field, k_sigma = jax.random.split(key)
    noise = jax.random.normal(k_field, (h, w), jnp.float32)
    fy = jnp.fft.fftfreq(h)[:, None]
    fx = jnp.fft.fftfreq(w)[None, :]
    s = smoothness * min(h, w)
    field = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(noise) * jnp.exp(-2.0 * (jnp.pi * s) ** 2 * (fy**2 + fx**2))))
    cuts = jnp.quantile(field, jnp.arange(1, n_sources, dtype=jnp.float32) / n_sources)
    regions = jnp.sum(field[..., None] > cuts, axis=-1).astype(jnp.int32)
    sigmas = jax.random.uniform(k_sigma, (n_sources,), jnp.float32, lo, hi)
    radius = int(np.ceil(3 * hi))

    def source(i):
        blurred = _gaussian_blur_image(x, sigmas[i], radius)
        inside = (regions == i)[..., None] if x.ndim == 3 else regions == i
        return jnp.where(inside, x, blurred)

    sources = jax.vmap(source)(jnp.arange(n_sources))
    return {"sources": sources, "truth": x, "regions": regions, "sigmas": sigmas}


@functools.partial(jax.jit, static_argnames=("n_sources", "gamma", "power_range", "offset_range", "spread_range", "bits"))
def exposure_scene(
    key: jax.Array,
    image: ArrayLike,
    *,
    n_sources: int = 3,
    gamma: float = 2.2,
    power_range: tuple[float, float] = (1.0, 2.0),
    offset_range: tuple[float, float] = (-1.0, 1.0),
    spread_range: tuple[float, float] = (1.0, 2.0),
    noise: float = 0.002,
    bits: int = 8,
) -> dict[str, jax.Array]:
    """A multi-exposure stack with ground truth, a pure function of ``key`` and a well-exposed ``image``.

    The scene radiance is ``R = (image^gamma)^p`` (``p`` uniform in ``power_range``: a dynamic range
    ``p`` times the image's, in stops); exposure ``i`` is the camera's rendering
    ``clip(R 2^e_i, 0, 1)^(1/gamma)`` plus read noise, quantised to ``bits``, at exposure values
    ``e_i = gamma (p - 1) + o + d (i - (S - 1) / 2)`` (the first term renders the image's mid-tone 0.5 as
    0.5; offset ``o`` uniform in ``offset_range``, spacing ``d`` in ``spread_range`` EV), so every exposure clips part of the range and none equals the truth. The truth
    is ``image`` itself, which is the global tonemap ``(R^(1/p))^(1/gamma)`` of the radiance: the image a
    fusion should give, with every part of the range visible.

    Args:
      key: ``jax.random`` key.
      image: ``(H, W)`` or ``(H, W, C)`` well-exposed image in [0, 1].
      n_sources: ``S >= 2`` exposures, sorted from darkest to brightest.
      gamma: camera response exponent.
      power_range, offset_range, spread_range: ranges of ``p`` (``>= 1``), ``o`` and ``d`` (EV, ``> 0``).
      noise: read-noise standard deviation (LDR units).
      bits: quantisation of the exposures.

    Returns:
      ``{"sources": (S, H, W[, C]) in [0, 1], "truth": image, "ev": (S,) exposure values, "power": p}``.

    Raises:
      FusionInputError: ``n_sources``, a range or ``image`` outside what is documented.
    """
    from jfusion.errors import FusionInputError

    if int(n_sources) < 2:
        raise FusionInputError(f"n_sources={n_sources}: pass 2 or more exposures.")
    if not 1.0 <= power_range[0] <= power_range[1]:
        raise FusionInputError(f"power_range={power_range}: pass (low, high) with 1 <= low <= high.")
    if not 0.0 < spread_range[0] <= spread_range[1]:
        raise FusionInputError(f"spread_range={spread_range}: pass (low, high) EV with 0 < low <= high.")
    x = jnp.asarray(image, jnp.float32)
    if x.ndim not in (2, 3):
        raise FusionInputError(f"image of shape {x.shape}: pass one (H, W) or (H, W, C) image.")
    kp, ko, kd, kn = jax.random.split(key, 4)
    p = jax.random.uniform(kp, (), jnp.float32, *power_range)
    o = jax.random.uniform(ko, (), jnp.float32, *offset_range)
    d = jax.random.uniform(kd, (), jnp.float32, *spread_range)
    centre = gamma * (p - 1.0)  # the exposure that renders the image's mid-tone 0.5 as 0.5
    ev = centre + o + d * (jnp.arange(n_sources, dtype=jnp.float32) - (n_sources - 1) / 2)
    radiance = jnp.clip(x, 0.0, 1.0) ** (gamma * p)
    levels = float(2**bits - 1)

    def exposure(e, k):
        z = jnp.clip(radiance * jnp.exp2(e), 0.0, 1.0) ** (1.0 / gamma)
        z = z + noise * jax.random.normal(k, z.shape, jnp.float32)
        return jnp.round(jnp.clip(z, 0.0, 1.0) * levels) / levels

    sources = jax.vmap(exposure)(ev, jax.random.split(kn, n_sources))
    return {"sources": sources, "truth": x, "ev": ev, "power": p}
