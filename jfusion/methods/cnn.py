"""CNN fusion: Liu et al. 2017 multi-focus, Du & Gao 2017 multi-scale, Liu et al. 2017 medical /
infrared-visible, and the survey's Fig. 5 learned weight-map framework.

The network (a :class:`~jfusion.models.WeightNet`, loaded from shipped weights by name) gives
a dense score map, one score per 16x16 patch at stride 2; :func:`fold_scores` spreads every
score over its patch and averages (spec 1.4 step 3), giving a per-pixel weight of source A.
The rest is composition of the library's pieces: the 0.5 segmentation, small-region removal
(:func:`jfusion.rules.clean_binary_map`) and guided filter (:func:`jfusion.ops.guided_filter`)
for the multi-focus pipeline; Laplacian / Gaussian pyramids
(:mod:`jfusion.transforms.pyramids`, Mertens' borders) with Burt's salience/match rule for
the medical pipeline.

Colour. The multi-focus methods compute the weight map on the grey image (MATLAB
``rgb2gray``) and apply the same map to every channel, as the reference code does (a
decision map must not mix chroma of the defocused source). ``cnn-medical`` and
``cnn-weights`` fuse the luma Y with the pyramid rule and chroma with the shared chroma
rule (:func:`jfusion.methods.colour.fuse_chroma`) by default (``colour_mode="ycbcr"``:
grey MRI + colour PET keeps the PET colours); ``colour_mode="rgb"`` fuses R, G, B
separately with the grey-derived weight pyramid, which is VIFB's adaptation (used for the
parity test against VIFB's outputs).

More than two sources are fused sequentially (1 with 2, the result with 3, ...), as in the
reference codes (methods_spec, conventions); ``cnn-focus`` also offers ``multi="reference"``, every
source scored against the first in one pass (linear in the number of sources, see :func:`cnn_focus`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.methods.colour import fuse_chroma
from jfusion.methods.registry import Support, register
from jfusion.options import opt
from jfusion.models.focus_cnn import PATCH, STRIDE, WeightNet
from jfusion.ops.colour import rgb_to_gray, rgb_to_ycbcr, ycbcr_to_rgb
from jfusion.ops.filters import guided_filter, pad2d, window_sum
from jfusion.rules.consistency import clean_binary_map, clean_label_map, guided_refine
from jfusion.transforms.pyramids import collapse_laplacian, default_levels, gaussian_pyramid, laplacian_pyramid

__all__ = [
    "fold_scores",
    "focus_map",
    "multiscale_focus_map",
    "decision_map",
    "reference_focus_labels",
    "multi_decision_maps",
    "burt_match_fuse",
    "fuse_with_weight_map",
    "cnn_focus",
    "cnn_focus_multiscale",
    "cnn_medical",
    "cnn_weights",
]

_MATLAB_EPS = float(np.finfo(np.float64).eps)


# ------------------------------------------------------------------------------------------
# weight maps
# ------------------------------------------------------------------------------------------
def fold_scores(scores: ArrayLike, shape: tuple[int, int], *, patch: int = PATCH, stride: int = STRIDE) -> jax.Array:
    """Overlap-average patch scores into a per-pixel map (spec 1.4 step 3).

    Score ``(j, i)`` belongs to the ``patch x patch`` square with top-left corner
    ``(stride j, stride i)``; squares running off the image are clipped. Each pixel gets the
    mean score of the squares that cover it. O(1) per pixel (window sums of a sparse grid).

    Args:
      scores: ``(h', w')`` patch scores.
      shape: ``(H, W)`` of the image; every pixel must be covered by some patch.
      patch, stride: square size and spacing.

    Returns:
      ``(H, W)`` map.
    """
    scores = jnp.asarray(scores)
    h, w = shape
    hs, ws = scores.shape
    off = patch // 2  # window_sum(size=patch) at pixel y covers [y - off + 1, y + off]
    hp, wp = max(h, off + stride * (hs - 1) + 1), max(w, off + stride * (ws - 1) + 1)
    grid = jnp.zeros((hp, wp), scores.dtype)
    grid = grid.at[off : off + stride * (hs - 1) + 1 : stride, off : off + stride * (ws - 1) + 1 : stride].set(scores)
    count = np.outer(_cover_count(h, hs, patch, stride), _cover_count(w, ws, patch, stride))  # static
    total = window_sum(grid, patch, border="zero")[:h, :w]
    return total / jnp.asarray(count, scores.dtype)


def _cover_count(n: int, n_scores: int, patch: int, stride: int) -> np.ndarray:
    """How many of the (clipped) patches starting at ``0, stride, ...`` cover each of ``n`` samples."""
    starts = stride * np.arange(n_scores)
    i = np.arange(n)[:, None]
    return np.sum((i >= starts[None]) & (i < starts[None] + patch), axis=1).astype(np.float32)


def focus_map(model: WeightNet, a: ArrayLike, b: ArrayLike) -> jax.Array:
    """Per-pixel weight of ``a`` from a weight net: dense scores folded over 16x16 patches.

    Args:
      model: a :class:`~jfusion.models.WeightNet` (K classes: expected weight).
      a, b: grey images ``(H, W)`` in [0, 1], ``H, W >= 16``.

    Returns:
      ``(H, W)`` weight map in [0, 1] (the "focus map" of Liu 2017).
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    scores = model.dense_weight(a[None, ..., None], b[None, ..., None])[0]
    return fold_scores(scores, a.shape)


def _box_downsample(x: jax.Array, f: int) -> jax.Array:
    """Mean over ``f x f`` blocks (symmetric padding to a multiple of ``f``): area resize by 1/f."""
    h, w = x.shape
    hp, wp = -(-h // f) * f, -(-w // f) * f
    x = pad2d(x, 0, hp - h, 0, wp - w, border="symmetric")
    return x.reshape(hp // f, f, wp // f, f).mean(axis=(1, 3))


def multiscale_focus_map(
    model: WeightNet, a: ArrayLike, b: ArrayLike, *, scales: tuple[int, ...] = (16, 32, 64)
) -> jax.Array:
    """Du & Gao (2017) multi-scale focus map: mean of the focus maps of several patch sizes.

    A patch of size ``s`` (a multiple of 16) is resized to 16x16 by ``s/16 x s/16`` block
    averaging (area interpolation) before the network sees it, and patches are taken at a
    stride proportional to their size (``2 s / 16``). Resizing the whole image by block
    averaging and running the network densely is exactly that, so each scale is one dense
    pass on a smaller image.

    Args:
      model: weight net; a, b: grey ``(H, W)`` with ``H, W >= max(scales)``.
      scales: patch sizes, multiples of 16.

    Returns:
      ``(H, W)`` mean focus map.
    """
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    maps = []
    for s in scales:
        if s % PATCH:
            raise ValueError(f"scales must be multiples of {PATCH}, got {s}")
        f = s // PATCH
        sa, sb = _box_downsample(a, f), _box_downsample(b, f)
        scores = model.dense_weight(sa[None, ..., None], sb[None, ..., None])[0]
        hp, wp = sa.shape[0] * f, sa.shape[1] * f
        maps.append(fold_scores(scores, (hp, wp), patch=s, stride=STRIDE * f)[: a.shape[0], : a.shape[1]])
    return jnp.mean(jnp.stack(maps), axis=0)


def decision_map(
    fmap: ArrayLike, a: ArrayLike, b: ArrayLike, *, area_ratio: float = 0.01, radius: int = 8, eps: float = 0.1
) -> jax.Array:
    """Liu 2017 consistency steps 4-6: threshold 0.5, small-region removal, guided filter.

    Args:
      fmap: ``(H, W)`` focus map of ``a``.
      a, b: grey sources ``(H, W)`` (the guide is the initial fused image ``a D + b (1 - D)``).
      area_ratio: regions smaller than ``ceil(area_ratio H W)`` pixels are removed / filled.
      radius, eps: guided filter (r = 8, eps = 0.1 in the reference).

    Returns:
      ``(H, W)`` soft weight of ``a`` (guided-filter output, not clipped, as the reference).
    """
    fmap = jnp.asarray(fmap)
    h, w = fmap.shape
    d = fmap > 0.5
    if area_ratio > 0:
        d = clean_binary_map(d, int(math.ceil(area_ratio * h * w)))
    d = d.astype(jnp.float32)
    guide = a * d + b * (1.0 - d)
    return guided_filter(guide, d, radius, eps)


# ------------------------------------------------------------------------------------------
# pyramid fusion
# ------------------------------------------------------------------------------------------
def _es2_window_sum(x: jax.Array) -> jax.Array:
    """3x3 window sum over the extension of Rockinger's ``es2(X, 1)`` used by the reference
    ``band_fuse``: mirrored edges without repeating the edge sample, corners left at zero."""
    p = pad2d(x, 1, 1, 1, 1, border="reflect")
    p = p.at[..., 0, 0].set(0).at[..., 0, -1].set(0).at[..., -1, 0].set(0).at[..., -1, -1].set(0)
    return window_sum(p, 3, border="zero")[..., 1:-1, 1:-1]


def burt_match_fuse(la: ArrayLike, lb: ArrayLike, w: ArrayLike, *, threshold: float = 0.6) -> jax.Array:
    """Burt & Kolczynski salience/match rule with a given weight (spec 3.3, reference ``band_fuse``).

    With 3x3 local energies ``E_A``, ``E_B`` and match ``M = 2 sum(L_A L_B) / (E_A + E_B + eps)``:
    where ``M > threshold`` the weighted average ``w L_A + (1 - w) L_B``, elsewhere the
    coefficient of larger energy (``E_A > E_B`` picks A).

    Args:
      la, lb: one pyramid level of each source ``(..., h, w)``.
      w: weight of A at that level, broadcastable to ``la``.
      threshold: match threshold t (0.6).
    """
    la = jnp.asarray(la)
    lb = jnp.asarray(lb)
    ea = _es2_window_sum(la * la)
    eb = _es2_window_sum(lb * lb)
    match = 2.0 * _es2_window_sum(la * lb) / (ea + eb + _MATLAB_EPS)
    select = jnp.where(ea > eb, la, lb)
    return jnp.where(match > threshold, w * la + (1.0 - w) * lb, select)


def fuse_with_weight_map(
    a: ArrayLike,
    b: ArrayLike,
    w: ArrayLike,
    *,
    domain: str = "laplacian",
    threshold: float | None = 0.6,
    levels: int | None = None,
) -> jax.Array:
    """Fuse two images with a weight map of ``a`` (survey Fig. 5: plug a learned map into a fusion domain).

    Args:
      a, b: ``(..., H, W)`` images (channels-first leading axes ride along).
      w: ``(H, W)`` weight of ``a``.
      domain: ``"spatial"``: ``w a + (1 - w) b``; ``"laplacian"``: per level of the
        Laplacian pyramids, with the Gaussian pyramid of ``w``: the match rule of
        :func:`burt_match_fuse` when ``threshold`` is a number, plain blending when ``None``.
      levels: pyramid depth (default ``floor(log2(min(H, W)))``).

    Returns:
      The fused ``(..., H, W)`` image (not clipped).
    """
    a = jnp.asarray(a)
    b = jnp.asarray(b)
    w = jnp.asarray(w, a.dtype)
    if domain == "spatial":
        return w * a + (1.0 - w) * b
    if domain != "laplacian":
        raise ValueError(f"domain must be 'spatial' or 'laplacian', got {domain!r}")
    n = default_levels(a.shape) if levels is None else int(levels)
    pw = gaussian_pyramid(w, levels=n)
    pa = laplacian_pyramid(a, levels=n)
    pb = laplacian_pyramid(b, levels=n)
    if threshold is None:
        fused = [g * x + (1.0 - g) * y for x, y, g in zip(pa, pb, pw)]
    else:
        fused = [burt_match_fuse(x, y, g, threshold=threshold) for x, y, g in zip(pa, pb, pw)]
    return collapse_laplacian(fused)


# ------------------------------------------------------------------------------------------
# colour plumbing shared by the methods below
# ------------------------------------------------------------------------------------------
def _grey(x: jax.Array) -> jax.Array:
    """``(H, W)`` grey version of ``(H, W)`` / ``(H, W, C)`` (MATLAB rgb2gray for RGB, mean otherwise)."""
    if x.ndim == 2:
        return x
    if x.shape[-1] == 3:
        return rgb_to_gray(x)
    return jnp.mean(x, axis=-1)


def _sequential(sources: jax.Array, fuse_two) -> jax.Array:
    """Fuse ``S >= 2`` sources pairwise in order: ((1, 2), 3), ...

    The pairs run in one ``lax.scan`` over ``sources[1:]``, so the program holds the pair
    fusion once whatever ``S`` (a Python loop compiled one copy of the network per extra
    source: a first 3-source call compiled about twice the program of a 2-source one). For
    ``S = 2`` the one-step loop is inlined by XLA. Same operations in the same order as the loop.
    """
    first = sources[0]

    def body(out, src):
        return fuse_two(out, src).astype(first.dtype), None

    out, _ = jax.lax.scan(body, first, sources[1:])
    return out


def reference_focus_labels(model: WeightNet, greys: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Per-pixel index of the focused source among ``S >= 2``, every source scored against source 0.

    The network scores the pairs ``(0, s)`` for ``s = 1 .. S-1`` only (:meth:`WeightNet.dense_weight_against`:
    ``S`` branch evaluations and fc halves, linear in ``S``). With ``p_s`` the folded focus map of source 0
    against ``s``, source ``s`` gets the log-odds ``log((1 - p_s) / p_s)`` of being sharper than source 0 and
    source 0 gets 0 (a Bradley-Terry reading of the pairwise classifier through the reference); the label is the
    argmax (ties to the lower index). For ``S = 2`` this is Liu's ``p > 0.5`` segmentation.

    Args:
      model: a siamese or pseudo-siamese :class:`~jfusion.models.WeightNet`.
      greys: ``(S, H, W)`` grey sources in [0, 1].

    Returns:
      ``(S-1, H, W)`` folded maps ``p_s`` and the ``(H, W)`` int32 labels.
    """
    greys = jnp.asarray(greys, jnp.float32)
    shape = greys.shape[1:]
    p = model.dense_weight_against(greys[:1, ..., None], greys[1:, ..., None])
    p = jax.vmap(lambda q: fold_scores(q, shape))(p)
    q = jnp.clip(p, 1e-7, 1.0 - 1e-7)
    odds = jnp.concatenate([jnp.zeros((1, *shape), q.dtype), jnp.log1p(-q) - jnp.log(q)])
    return p, jnp.argmax(odds, axis=0).astype(jnp.int32)


def multi_decision_maps(
    labels: ArrayLike, greys: ArrayLike, *, area_ratio: float = 0.01, radius: int = 8, eps: float = 0.1
) -> jax.Array:
    """Liu 2017 consistency steps 4-6 for ``S`` sources: small regions of every label, guided filter per source.

    Regions (8-connected) of a label smaller than ``ceil(area_ratio H W)`` pixels are removed and taken over by
    the labels around them; each source's 0/1 map is then guided-filtered with the initial fused image as the
    guide (the guided filter is linear in its input, so the ``S`` soft maps sum to 1).

    Args:
      labels: ``(H, W)`` int labels in ``[0, S)``; greys: ``(S, H, W)`` grey sources.

    Returns:
      ``(S, H, W)`` soft weights (not clipped, as the two-source reference).
    """
    labels = jnp.asarray(labels, jnp.int32)
    greys = jnp.asarray(greys, jnp.float32)
    n, h, w = greys.shape
    if area_ratio > 0:
        labels = clean_label_map(labels, n, int(math.ceil(area_ratio * h * w)))
    d = jax.nn.one_hot(labels, n, axis=0, dtype=jnp.float32)
    return guided_refine(d, jnp.sum(d * greys, axis=0), radius=radius, eps=eps, normalise=False)


def _load(weights: str) -> WeightNet:
    from jfusion.weights import load_weightnet

    with jax.ensure_compile_time_eval():  # load concrete weights even when called under jit
        return load_weightnet(weights)


def _apply_map(wa: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    wa = wa[..., None] if a.ndim == 3 else wa
    return wa * a + (1.0 - wa) * b


# ------------------------------------------------------------------------------------------
# spatial support (for jfusion.tiling)
# ------------------------------------------------------------------------------------------
_SMALL_REGIONS = (
    "its small-region removal labels connected regions of the whole decision map (threshold area_ratio * H * W); "
    "pass area_ratio=0 for a bounded support"
)
_DEPTH = "its default pyramid depth floor(log2(min(H, W))) grows with the image; pass levels=N"


def _focus_support(o) -> Support:
    if o["area_ratio"] > 0:
        return Support.unbounded(_SMALL_REGIONS, align=STRIDE)
    # scores of 16x16 patches (stride 2) folded over their patch, then the guided filter (2 r)
    return Support(2 * PATCH + 2 * int(o["radius"]) + 4, STRIDE)


def _multiscale_focus_support(o) -> Support:
    align = math.lcm(*(STRIDE * int(s) // PATCH for s in o["scales"]))
    if o["area_ratio"] > 0:
        return Support.unbounded(_SMALL_REGIONS, align=align)
    halo = 2 * max(int(s) for s in o["scales"]) + 2 * int(o["radius"]) + 8
    return Support(-(-halo // align) * align, align)


def _pyramid_cnn_support(o) -> Support:
    if o.get("domain", "laplacian") == "spatial":
        return Support(2 * PATCH + 4, STRIDE)
    if o["levels"] is None:
        return Support.unbounded(_DEPTH)
    from jfusion.methods.multiscale import _pyramid_support

    pyr = _pyramid_support(o["levels"], window=3)
    align = max(STRIDE, pyr.align)
    return Support(-(-(pyr.halo + 2 * PATCH + 4) // align) * align, align)


# ------------------------------------------------------------------------------------------
# registered methods
# ------------------------------------------------------------------------------------------
@register(
    "cnn-focus",
    tasks=("multi-focus",),
    reference="Liu, Chen, Peng, Wang, Multi-focus image fusion with a deep convolutional neural network, "
    "Inf. Fusion 36 (2017) 191-207",
    colour="native",
    weights="weights/focus_cnn",
    min_size=PATCH,
    options={
        "area_ratio": opt(low=0.0, high=1.0), "radius": opt(low=0, high=256), "eps": opt(low=1e-12),
        "multi": opt(choices=("sequential", "reference")),
    },
    support=_focus_support,
    working_bytes=1536,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def cnn_focus(
    sources: ArrayLike,
    *,
    weights: str = "focus_cnn",
    area_ratio: float = 0.01,
    radius: int = 8,
    eps: float = 0.1,
    multi: str = "sequential",
) -> jax.Array:
    """Siamese-CNN multi-focus fusion (Liu 2017): focus map, 0.5 segmentation, small regions, guided filter.

    Args:
      sources: ``(S, H, W)`` or ``(S, H, W, C)`` in [0, 1], ``S >= 2``, ``H, W >= 16``.
      weights: shipped weights name (``jfusion/weights/<name>``) or a weights folder. ``"focus_cnn"``
        (default): Liu's full-size net (64/128/256, 256 hidden units, stored at float16);
        ``"focus_cnn_narrow"``: the halved net (32/64/128, 64 hidden units, about 8x faster).
      area_ratio: small-region threshold as a share of the image area (0.01).
      radius, eps: guided-filter consistency (8, 0.1).
      multi: how ``S > 2`` sources are fused. ``"sequential"`` (default, the reference code's): 1 with 2, the
        result with 3, ... (``S - 1`` pair evaluations, each two branches and two fc halves: 3 sources cost
        about 2x two). ``"reference"``: every source scored against source 1 in one pass
        (:func:`reference_focus_labels`, ``S`` branches and fc halves: 3 sources cost about 1.5x two), an
        ``S``-label decision map, small-region removal per label and a guided filter per source
        (:func:`multi_decision_maps`). Both are the same method for ``S = 2``.

    Returns:
      The fused image, shape of one source.
    """
    sources = jnp.asarray(sources, jnp.float32)
    model = _load(weights)

    def two(x, y):
        gx, gy = _grey(x), _grey(y)
        wa = decision_map(focus_map(model, gx, gy), gx, gy, area_ratio=area_ratio, radius=radius, eps=eps)
        return _apply_map(wa, x, y)

    if multi == "sequential" or sources.shape[0] == 2:
        return _sequential(sources, two)
    if multi != "reference":
        raise ValueError(f"multi must be 'sequential' or 'reference', got {multi!r}")
    greys = jax.vmap(_grey)(sources)
    _, labels = reference_focus_labels(model, greys)
    wmaps = multi_decision_maps(labels, greys, area_ratio=area_ratio, radius=radius, eps=eps)
    wmaps = wmaps[..., None] if sources.ndim == 4 else wmaps
    return jnp.sum(wmaps * sources, axis=0)


@register(
    "cnn-focus-multiscale",
    tasks=("multi-focus",),
    reference="Du, Gao, Image segmentation-based multi-focus image fusion through multi-scale convolutional "
    "neural network, IEEE Access 5 (2017) 15750-15761",
    colour="native",
    weights="weights/focus_cnn_multiscale",
    min_size=lambda options: max(options["scales"]),
    options={
        "scales": opt(low=PATCH, high=1024), "area_ratio": opt(low=0.0, high=1.0), "radius": opt(low=0, high=256),
        "eps": opt(low=1e-12),
    },
    support=_multiscale_focus_support,
    working_bytes=1536,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def cnn_focus_multiscale(
    sources: ArrayLike,
    *,
    weights: str = "focus_cnn_multiscale",
    scales: tuple[int, ...] = (16, 32, 64),
    area_ratio: float = 0.01,
    radius: int = 8,
    eps: float = 0.1,
) -> jax.Array:
    """Multi-scale CNN multi-focus fusion (Du & Gao 2017): mean of 16/32/64-patch focus maps, then segmentation.

    Details the paper leaves open and what jfusion chose (methods_spec 2): patch sizes
    16/32/64 resized to 16 by area averaging, stride proportional to the patch size (2, 4,
    8), one siamese network for every scale, trained on pairs cut at the three sizes and resized
    the same way (``jfusion train focus-cnn-multiscale``, shipped as ``focus_cnn_multiscale``,
    widths 32/64/128 and 64 hidden units); the paper's morphological
    operations + watershed are replaced by the jit-able consistency steps of Liu 2017
    (small-region removal, guided filter).

    Args:
      sources: ``(S, H, W[, C])`` in [0, 1], ``H, W >= max(scales)``.
      weights: shipped weights name or folder.
      scales: patch sizes (multiples of 16).
      area_ratio, radius, eps: as :func:`cnn_focus`.
    """
    sources = jnp.asarray(sources, jnp.float32)
    model = _load(weights)

    def two(x, y):
        gx, gy = _grey(x), _grey(y)
        fmap = multiscale_focus_map(model, gx, gy, scales=tuple(scales))
        wa = decision_map(fmap, gx, gy, area_ratio=area_ratio, radius=radius, eps=eps)
        return _apply_map(wa, x, y)

    return _sequential(sources, two)


def _pyramid_method(sources, model, *, colour_mode, domain, threshold, levels):
    sources = jnp.asarray(sources, jnp.float32)
    if colour_mode not in ("ycbcr", "rgb"):
        raise ValueError(f"colour_mode must be 'ycbcr' or 'rgb', got {colour_mode!r}")

    def two(x, y):
        if x.ndim == 3 and x.shape[-1] == 3 and colour_mode == "ycbcr":
            cx, cy = rgb_to_ycbcr(x), rgb_to_ycbcr(y)
            wa = focus_map(model, cx[..., 0], cy[..., 0])
            yf = fuse_with_weight_map(cx[..., 0], cy[..., 0], wa, domain=domain, threshold=threshold, levels=levels)
            chroma = [fuse_chroma(jnp.stack([cx[..., c], cy[..., c]])) for c in (1, 2)]
            return ycbcr_to_rgb(jnp.stack([yf, *chroma], axis=-1))
        wa = focus_map(model, _grey(x), _grey(y))
        if x.ndim == 3:  # per channel with the grey-derived weight pyramid (VIFB)
            xc, yc = jnp.moveaxis(x, -1, 0), jnp.moveaxis(y, -1, 0)
            f = fuse_with_weight_map(xc, yc, wa, domain=domain, threshold=threshold, levels=levels)
            return jnp.moveaxis(f, 0, -1)
        return fuse_with_weight_map(x, y, wa, domain=domain, threshold=threshold, levels=levels)

    return jnp.clip(_sequential(sources, two), 0.0, 1.0)


@register(
    "cnn-medical",
    tasks=("medical", "infrared-visible"),
    reference="Liu, Chen, Cheng, Peng, A medical image fusion method based on convolutional neural networks, "
    "FUSION 2017; Liu, Chen, Cheng, Peng, Wang, Infrared and visible image fusion with convolutional neural "
    "networks, IJWMIP 16(3) 2018",
    colour="native",
    weights="weights/focus_cnn_direct",
    min_size=PATCH,
    options={"threshold": opt(low=0.0, high=1.0), "colour_mode": opt(choices=("ycbcr", "rgb"))},
    support=_pyramid_cnn_support,
    working_bytes=1536,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def cnn_medical(
    sources: ArrayLike,
    *,
    weights: str = "focus_cnn_direct",
    threshold: float = 0.6,
    colour_mode: str = "ycbcr",
    levels: int | None = None,
) -> jax.Array:
    """CNN weight map + Laplacian-pyramid fusion with the local-similarity rule (Liu 2017 medical / IR-visible).

    The CNN focus map (no binarisation) is decomposed in a Gaussian pyramid; per Laplacian
    level, where Burt's 3x3 match measure exceeds ``threshold`` the weighted average is
    taken, elsewhere the coefficient with the larger local energy.

    Args:
      sources: ``(S, H, W[, 3])`` in [0, 1] (source 1 is the one the weight map weights:
        IR in the IR/visible setting, as VIFB).
      weights: shipped weights name (default ``focus_cnn_direct``, the ``direct``-head net)
        or a weights folder (e.g. one written from the authors' released model).
      threshold: match threshold (0.6).
      colour_mode: ``"ycbcr"`` (luma by the rule, chroma by the shared chroma rule) or
        ``"rgb"`` (each channel with the grey-derived weight pyramid, VIFB).
      levels: pyramid depth (default ``floor(log2(min(H, W)))``).

    Returns:
      The fused image clipped to [0, 1].
    """
    return _pyramid_method(
        sources, _load(weights), colour_mode=colour_mode, domain="laplacian", threshold=threshold, levels=levels
    )


@register(
    "cnn-weights",
    tasks=("general", "medical", "infrared-visible", "multi-focus"),
    reference="Liu, Chen, Wang, Wang, Ward, Wang, Deep learning for pixel-level image fusion, Inf. Fusion 42 "
    "(2018), Fig. 5 (classification-type weight-map network, K weight-assignment classes)",
    colour="native",
    weights="weights/weight_net",
    min_size=PATCH,
    options={
        "domain": opt(choices=("spatial", "laplacian")), "threshold": opt(low=0.0, high=1.0),
        "colour_mode": opt(choices=("ycbcr", "rgb")),
    },
    support=_pyramid_cnn_support,
    working_bytes=1536,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def cnn_weights(
    sources: ArrayLike,
    *,
    weights: str = "weight_net",
    domain: str = "laplacian",
    threshold: float | None = None,
    colour_mode: str = "ycbcr",
    levels: int | None = None,
) -> jax.Array:
    """Learned multi-class weight map (survey Fig. 5): expected weight ``sum_k p_k w_k``, applied in a fusion domain.

    Args:
      sources: ``(S, H, W[, 3])`` in [0, 1].
      weights: shipped weights name (default ``weight_net``: 2-channel input, K = 5) or folder.
      domain: ``"laplacian"`` (Gaussian pyramid of the map blends the Laplacian pyramids)
        or ``"spatial"`` (``w A + (1 - w) B``).
      threshold: optional Burt match threshold in the Laplacian domain (``None``: plain blending).
      colour_mode, levels: as :func:`cnn_medical`.
    """
    return _pyramid_method(
        sources, _load(weights), colour_mode=colour_mode, domain=domain, threshold=threshold, levels=levels
    )
