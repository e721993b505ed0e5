"""Fusion with super-resolution (survey Section 3.2; methods_spec 6.0-6.2): SRCNN in the UWT domain and
SRCNN feature-level fusion.

Both methods take the sources at the **low** resolution and return the fused image ``scale`` times
larger (``scale`` in :data:`SCALES`); the registry declares it (``scale_option="scale"``, so
:meth:`jfusion.methods.registry.MethodInfo.output_shape` gives the size and :func:`jfusion.fuse_tiled`
refuses them). Colour goes through the shared YCbCr helper: Y by the method, Cb/Cr bicubic-upsampled to
the output size and fused by the shared chroma rule (:func:`jfusion.methods.colour.fuse_channels`).

* ``uwt-srcnn`` (Zhong, Yang, Li, Zhong, Chen, CCPR 2016): every source is bicubic-upsampled, decomposed
  by the undecimated wavelet transform (:func:`jfusion.transforms.swt2`); one SRCNN, trained on UWT
  high-frequency bands of natural images (input: band of the bicubic-upsampled LR image, target: the same
  band of the HR image; ``jfusion train uwt-srcnn-x2``), enhances every high-frequency band; the fused
  high bands are the enhanced coefficients of largest absolute value, the low band the sources' mean;
  inverse UWT.
* ``srcnn-fusion`` (Yang, Zhong, Li, Chen, IJWMIP 15(4) 2017): the first SRCNN layer is applied to every
  bicubic-upsampled source (shared weights, S >= 2 branches); the branches' 64 feature maps are averaged
  with per-pixel weights from the sources' spatial frequency (SF, the same weight for all 64 maps);
  layers 2-3 of the SRCNN (trained as an ordinary super-resolution SRCNN on Y of natural images,
  ``jfusion train srcnn-x2``) give the HR fused image. The "two-scale" strategy chosen here (the paper's
  exact one is not available to us): SF in a small and a large centred window (``sf_small`` = 9,
  ``sf_large`` = 33 HR pixels by default, spec 6.2's 8 / 32 made odd), each normalised over the sources
  (``w_k = SF_k / sum_j SF_j``), the two maps averaged. ``weighting`` switches to one scale only or to
  choose-max of the summed normalised SF.

The shipped SRCNNs are *residual* (the network adds its output to its input; for ``srcnn-fusion`` the
input is the same SF-weighted average of the upsampled sources), a departure from Dong et al. taken for
the CPU training budget; ``srcnn-fusion`` of identical sources is therefore exactly the SRCNN's
super-resolution of that source.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.methods.registry import Support, register
from jfusion.models.pansharpening import SRCNN
from jfusion.ops.filters import pad2d
from jfusion.ops.resample import resize
from jfusion.options import opt
from jfusion.rules.activity import spatial_frequency
from jfusion.rules.combine import choose_max, mean_sources, sum_sources
from jfusion.transforms.pyramids import default_levels
from jfusion.transforms.wavelets import WAVELETS, iswt2, swt2
from jfusion.weights import WEIGHTS_DIR, cached_loader

__all__ = [
    "SCALES", "WEIGHTING", "weights_name", "load_srcnn", "upsample", "srcnn_apply", "enhance_bands", "uwt_enhance",
    "sf_weights", "uwt_srcnn", "srcnn_fusion",
]

SCALES: tuple[int, ...] = (2, 3, 4)
"""The super-resolution factors the methods take."""

WEIGHTING: tuple[str, ...] = ("two-scale", "small", "large", "choose-max")
"""``srcnn-fusion``'s weightings of the first-layer maps (see the module docstring)."""

KINDS = {"srcnn": "srcnn", "uwt": "uwt_srcnn"}


def weights_name(kind: str, scale: int) -> str:
    """The shipped weights folder of network ``kind`` (``"srcnn"`` or ``"uwt"``) for ``scale``: ``srcnn_x2``, ``uwt_srcnn_x2``."""
    return f"{KINDS[kind]}_x{int(scale)}"


def _recipe_name(kind: str, scale: int) -> str:
    return weights_name(kind, scale).replace("_", "-")


@cached_loader(maxsize=16, asset=True)
def _read(path: str) -> tuple[tuple, dict[str, Any]]:
    asset = assets.read_asset(path)
    cfg = asset.manifest["config"]
    model = SRCNN(channels=1, features=tuple(cfg["features"]), kernels=tuple(cfg["kernels"]),
                  residual=bool(cfg["residual"]), rngs=nnx.Rngs(0))
    return assets.split_with_arrays(model, asset.arrays), asset.manifest


def load_srcnn(weights: str | None, *, scale: int, kind: str) -> SRCNN:
    """The SRCNN of ``kind`` (``"srcnn"``: image SR; ``"uwt"``: UWT bands) for ``scale``.

    Args:
      weights: ``None`` for the shipped ``jfusion/weights/<kind>_x<scale>``, a shipped name, or a folder
        holding ``weights.npz`` / ``weights.json`` written by ``jfusion train``.
      scale: the super-resolution factor; must be the one the weights were trained for.
      kind: ``"srcnn"`` or ``"uwt"``.

    Raises:
      FusionInputError: no such weights, or weights of another scale or kind.
    """
    if scale not in SCALES:
        raise FusionInputError(f"scale={scale!r}: pass one of {', '.join(map(str, SCALES))}.")
    name = weights if weights is not None else weights_name(kind, scale)
    folder = Path(name)
    if not (folder / "weights.json").exists():
        folder = WEIGHTS_DIR / str(name)
    if not (folder / "weights.json").exists():
        raise FusionInputError(
            f"weights={name!r} (scale={scale}): no such weights; the shipped ones are in {WEIGHTS_DIR}, or train them "
            f"with `jfusion train {_recipe_name(kind, scale)}` and pass weights=<its run folder>/weights."
        )
    (graphdef, params, rest), manifest = _read(folder / "weights")
    cfg = manifest["config"]
    if int(cfg["scale"]) != int(scale) or cfg["target"] != ("uwt" if kind == "uwt" else "image"):
        raise FusionInputError(
            f"weights={name!r}: trained for scale {cfg['scale']} on {cfg['target']} targets; this call needs scale {scale} "
            f"on {'UWT bands' if kind == 'uwt' else 'images'} (pass scale={cfg['scale']} or other weights)."
        )
    with jax.ensure_compile_time_eval():
        return nnx.merge(graphdef, params, rest)


def upsample(x: ArrayLike, scale: int) -> jax.Array:
    """Bicubic upsampling of the last two axes by ``scale`` (half-pixel centres, MATLAB ``imresize`` geometry).

    ``(..., h, w) -> (..., scale h, scale w)``.
    """
    x = jnp.asarray(x)
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    flat = jnp.moveaxis(x.reshape((-1, h, w)), 0, -1)  # (h, w, N)
    up = resize(flat, (h * scale, w * scale), method="bicubic")
    return jnp.moveaxis(up, -1, 0).reshape(lead + (h * scale, w * scale))


def srcnn_apply(model: SRCNN, x: ArrayLike) -> jax.Array:
    """One-channel SRCNN over images ``(N, H, W) -> (N, H, W)``, one image at a time (``lax.map``, bounded memory)."""
    x = jnp.asarray(x)
    return jax.lax.map(lambda b: model(b[None, :, :, None])[0, :, :, 0], x)


def enhance_bands(model: SRCNN, bands: ArrayLike) -> jax.Array:
    """The UWT SRCNN on high-frequency bands ``(N, H, W) -> (N, H, W)`` (same as :func:`srcnn_apply`)."""
    return srcnn_apply(model, bands)


def _uwt(x: jax.Array, wavelet: str, levels: int) -> tuple[list, int, int]:
    """SWT of ``(..., H, W)`` after symmetric extension to a multiple of ``2**n`` (``n`` clamped to the size)."""
    h, w = x.shape[-2:]
    n = max(1, min(int(levels), default_levels((h, w))))
    m = 2**n
    ph, pw = (-h) % m, (-w) % m
    xp = pad2d(x, 0, ph, 0, pw, border="symmetric") if (ph or pw) else x
    return swt2(xp, wavelet=wavelet, level=n), h, w


def uwt_enhance(model: SRCNN, x: ArrayLike, *, wavelet: str = "haar", levels: int = 2) -> jax.Array:
    """Super-resolution of one bicubic-upsampled image ``(H, W)`` by the UWT SRCNN: every high band enhanced, low band kept."""
    x = jnp.asarray(x, jnp.float32)
    coeffs, h, w = _uwt(x, wavelet, levels)
    flat = jnp.stack([c for det in coeffs[1:] for c in det])
    enh = enhance_bands(model, flat)
    rebuilt = [coeffs[0]] + [tuple(enh[3 * i + j] for j in range(3)) for i in range(len(coeffs) - 1)]
    return iswt2(rebuilt, wavelet=wavelet)[..., :h, :w]


def sf_weights(x: ArrayLike, *, weighting: str = "two-scale", sf_small: int = 9, sf_large: int = 33, eps: float = 1e-8) -> jax.Array:
    """Per-pixel fusion weights ``(S, H, W)`` (summing to 1 over S) from the spatial frequency of sources ``x (S, H, W)``.

    ``w_k = SF_k / sum_j SF_j`` in a ``sf_small`` and a ``sf_large`` centred window; ``"two-scale"``
    averages the two maps, ``"small"`` / ``"large"`` keep one, ``"choose-max"`` gives weight 1 to the
    source of largest summed map. Where every SF is 0 (flat) the weights are equal.
    """
    x = jnp.asarray(x)
    s = x.shape[0]

    def normalised(size: int) -> jax.Array:
        sf = spatial_frequency(x, size=size)
        tot = sum_sources(sf)
        return jnp.where(tot > eps, sf / jnp.maximum(tot, eps), 1.0 / s)

    if weighting == "small":
        return normalised(sf_small)
    if weighting == "large":
        return normalised(sf_large)
    both = 0.5 * (normalised(sf_small) + normalised(sf_large))
    if weighting == "two-scale":
        return both
    return jax.nn.one_hot(jnp.argmax(both, axis=0), s, axis=0, dtype=x.dtype)


def _sr_support(o) -> Support:
    return Support.unbounded(f"the output is scale={o['scale']} times larger than the sources (super-resolution fusion)")


_COMMON_OPTIONS = {
    "scale": opt(doc="super-resolution factor: sources are at the low resolution, the result is scale x larger", choices=SCALES),
    "weights": opt(doc="None: the shipped SRCNN for this scale; or a folder of weights written by `jfusion train`"),
}


@register(
    "uwt-srcnn",
    tasks=("multi-focus", "medical", "infrared-visible"),
    reference="Y. Zhong, B. Yang, S. Li, J. Zhong, Y. Chen, 'Image fusion and super-resolution with convolutional neural "
    "network', CCPR 2016; SRCNN: Dong, Loy, He, Tang, IEEE TPAMI 38(2) 2016",
    weights="weights/uwt_srcnn_x2",
    options={**_COMMON_OPTIONS, "wavelet": opt(doc="UWT filter bank (the shipped networks: haar)", choices=WAVELETS),
             "levels": opt(doc="UWT levels (the shipped networks: 2; clamped to the image size)", low=1, high=6)},
    min_size=4,
    support=_sr_support,
    working_bytes=4096,
    scale_option="scale",
)
def uwt_srcnn(
    sources: jax.Array,
    *,
    scale: int = 2,
    wavelet: str = "haar",
    levels: int = 2,
    weights: str | None = None,
) -> jax.Array:
    """UWT + SRCNN fusion with super-resolution (Zhong et al. 2016).

    Args:
      sources: ``(S, h, w)`` in [0, 1], S >= 2, at the low resolution.
      scale: super-resolution factor (2, 3, 4).
      wavelet, levels: the undecimated wavelet transform (levels clamped to the upsampled size).
      weights: the UWT SRCNN (``None``: shipped ``uwt_srcnn_x<scale>``).

    Returns:
      ``(scale h, scale w)`` fused high-resolution image (raw; the registry clips to [0, 1]).
    """
    model = load_srcnn(weights, scale=scale, kind="uwt")
    x = upsample(sources.astype(jnp.float32), scale)
    coeffs, h, w = _uwt(x, wavelet, levels)
    n_bands = 3 * (len(coeffs) - 1)
    s = x.shape[0]
    flat = jnp.stack([c for det in coeffs[1:] for c in det])  # (3n, S, H', W')
    enh = enhance_bands(model, flat.reshape((n_bands * s,) + flat.shape[2:])).reshape(flat.shape)
    fused_bands = jax.vmap(choose_max)(enh)  # max |coefficient| over the sources, band by band
    fused = [mean_sources(coeffs[0])] + [tuple(fused_bands[3 * i + j] for j in range(3)) for i in range(len(coeffs) - 1)]
    return iswt2(fused, wavelet=wavelet)[..., :h, :w]


@register(
    "srcnn-fusion",
    tasks=("multi-focus", "medical", "infrared-visible"),
    reference="B. Yang, J. Zhong, Y. Li, Z. Chen, 'Multi-focus image fusion and super-resolution with convolutional "
    "neural network', IJWMIP 15(4) 2017; SRCNN: Dong, Loy, He, Tang, IEEE TPAMI 38(2) 2016",
    weights="weights/srcnn_x2",
    options={**_COMMON_OPTIONS,
             "weighting": opt(doc="weights of the first-layer maps from spatial frequency: two-scale (mean of the small- "
                              "and large-window maps), small, large, or choose-max", choices=WEIGHTING),
             "sf_small": opt(doc="small spatial-frequency window (HR pixels)", low=1, high=255),
             "sf_large": opt(doc="large spatial-frequency window (HR pixels)", low=1, high=255)},
    min_size=4,
    support=_sr_support,
    working_bytes=4096,
    scale_option="scale",
)
def srcnn_fusion(
    sources: jax.Array,
    *,
    scale: int = 2,
    weighting: str = "two-scale",
    sf_small: int = 9,
    sf_large: int = 33,
    weights: str | None = None,
) -> jax.Array:
    """SRCNN feature-level fusion with super-resolution (Yang et al. 2017).

    Args:
      sources: ``(S, h, w)`` in [0, 1], S >= 2, at the low resolution.
      scale: super-resolution factor (2, 3, 4).
      weighting, sf_small, sf_large: how the first-layer maps are weighted (:func:`sf_weights`).
      weights: the SRCNN (``None``: shipped ``srcnn_x<scale>``).

    Returns:
      ``(scale h, scale w)`` fused high-resolution image (raw; the registry clips to [0, 1]).
    """
    model = load_srcnn(weights, scale=scale, kind="srcnn")
    x = upsample(sources.astype(jnp.float32), scale)  # (S, H, W)
    w = sf_weights(x, weighting=weighting, sf_small=sf_small, sf_large=sf_large)
    feats = jax.lax.map(lambda xs: model.features(xs[None, :, :, None])[0], x)  # (S, H, W, F), shared first layer
    merged = sum_sources(w[..., None] * feats)
    base = sum_sources(w * x)
    return model.reconstruct(merged[None], base[None, :, :, None])[0, :, :, 0]
