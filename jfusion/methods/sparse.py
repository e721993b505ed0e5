"""Sparse-representation fusion: CSR (Liu et al. 2016), the Fig. 6 CSR framework, and SR (Yang & Li 2010).

* ``csr``: Tikhonov base/detail split; CBPDN of every source's detail layer in one vmapped
  solve; activity = window mean of the l1 norm of the coefficient vectors; choose-max of whole
  coefficient vectors; base layer by the decision map (multi-focus) or averaged (multi-modal).
* ``csr-transform``: the survey's Fig. 6 generic framework: any (forward, inverse) transform,
  CSC of its bands, then either ``manner="coefficients"`` (fuse the coefficient maps, rebuild
  each band from them) or ``manner="bands"`` (activity from the codes picks source bands).
* ``sr``: overlapping patches, OMP over every patch (vmapped), max-l1 rule, overlap averaging.

All three fuse ``S >= 2`` sources N-way (choose-max over S); with two sources ties go to the
second source, as the reference MATLAB ``A1 > A2`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.methods.registry import Support, register
from jfusion.options import opt
from jfusion.ops.filters import window_sum
from jfusion.ops.patches import extract_patches, fold_patches
from jfusion.ops.precision import matmul
from jfusion.sparse.cbpdn import Options, encode, synthesize
from jfusion.sparse.dictionary import dct_dictionary, load_dictionary
from jfusion.sparse.omp import omp_batch
from jfusion.sparse.tikhonov import tikhonov_split
from jfusion.transforms.wavelets import WAVELETS

__all__ = [
    "BandTransform",
    "csr",
    "csr_framework",
    "csr_transform",
    "make_transform",
    "sr",
    "coefficient_activity",
    "choose_max_index",
    "select_by_index",
]

_MULTI_MODAL = ("multi-modal", "medical", "infrared-visible")


def _dictionary(dictionary: str | ArrayLike, dtype) -> jax.Array:
    d = load_dictionary(name_or_path=dictionary) if isinstance(dictionary, str) else dictionary
    return jnp.asarray(d, dtype)


def coefficient_activity(coef: jax.Array, radius: int, *, shift: tuple[int, int] = (0, 0)) -> jax.Array:
    """Window-averaged l1 activity of coefficient maps ``(..., M, H, W)`` -> ``(..., H, W)``.

    ``sum_m |x_m|`` averaged over a ``(2r+1)^2`` window with zero border (MATLAB ``imfilter``
    default). ``shift`` rolls the l1 map first (circularly), e.g. by the filter centre to align
    the codes with image content (the ``centered`` option of :func:`csr`).
    """
    a = jnp.sum(jnp.abs(coef), axis=-3)
    if shift != (0, 0):
        a = jnp.roll(a, shift, axis=(-2, -1))
    size = 2 * int(radius) + 1
    return window_sum(a, size, border="zero") / float(size * size)


def choose_max_index(activity: jax.Array) -> jax.Array:
    """Index ``(H, W)`` of the most active of ``S`` sources ``(S, H, W)``; ties go to the last source."""
    s = activity.shape[0]
    return (s - 1 - jnp.argmax(activity[::-1], axis=0)).astype(jnp.int32)


def select_by_index(x: jax.Array, idx: jax.Array) -> jax.Array:
    """Pick, per pixel, source ``idx (H, W)`` of ``x (S, ..., H, W)`` -> ``(..., H, W)``."""
    onehot = (jnp.arange(x.shape[0])[:, None, None] == idx[None]).astype(x.dtype)
    onehot = onehot.reshape((x.shape[0],) + (1,) * (x.ndim - 3) + idx.shape)
    return jnp.sum(onehot * x, axis=0)


def _mode_defaults(mode: str, radius: int | None) -> tuple[int, bool]:
    if mode == "multi-focus":
        return (9 if radius is None else radius), True
    if mode in _MULTI_MODAL:
        return (3 if radius is None else radius), False
    raise ValueError(f"mode must be 'multi-focus' or one of {_MULTI_MODAL}, got {mode!r}")


def _csc_support(o) -> Support:
    del o
    return Support.unbounded(
        "its ADMM solves circular convolutions over the whole image in the Fourier domain and stops on "
        "image-wide residuals, so every pixel depends on the whole image"
    )


def _sr_support(o) -> Support:
    # a pixel is the average of the fused patches covering it; a patch reads only itself
    p, st = int(o["patch"]), int(o["stride"])
    return Support(-(-(p + st) // st) * st, st)


@register(
    "csr",
    tasks=("multi-focus", "medical", "infrared-visible", "general"),
    reference="Liu, Chen, Ward, Wang, 'Image fusion with convolutional sparse representation', IEEE SPL 23(12) 2016",
    weights="sparse/dictionaries/csr32.npz",
    min_size=8,  # the shipped dictionary's 8x8 filters
    options={
        "mode": opt(choices=("multi-focus",) + _MULTI_MODAL), "lmbda": opt(low=1e-8, high=100.0),
        "radius": opt(low=0, high=99), "max_iter": opt(low=1, high=100_000), "tol": opt(low=0.0, high=1.0),
        "rho": opt(low=1e-8), "rho_scaling": opt(low=1.0), "tikhonov_lmbda": opt(low=0.0), "npad": opt(low=0, high=1024),
    },
    support=_csc_support,
    working_bytes=2048,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def csr(
    sources: jax.Array,
    *,
    dictionary: str | ArrayLike = "csr32",
    mode: str = "multi-focus",
    lmbda: float = 0.01,
    radius: int | None = None,
    max_iter: int = 500,
    tol: float = 1e-3,
    rho: float | None = None,
    rho_scaling: float = 100.0,
    tikhonov_lmbda: float = 5.0,
    npad: int = 16,
    centered: bool = False,
) -> jax.Array:
    """CSR fusion (Liu et al. 2016) of ``sources (S, H, W)`` in [0, 1] -> ``(H, W)``.

    Args:
        sources: ``S >= 2`` grey images (colour goes through the registry's YCbCr helper).
        dictionary: shipped dictionary name (``"csr32"``, 32 filters 8x8 learned by
            ``jfusion train dictionary``), a ``.npy``/``.mat`` path, or an ``(h, w, M)`` array.
        mode: ``"multi-focus"`` (window r = 9, base layer chosen by the decision map) or
            ``"multi-modal"``/``"medical"``/``"infrared-visible"`` (r = 3, averaged base).
        lmbda: CBPDN l1 weight (reference 0.01).
        radius: activity window radius; ``None`` -> the mode's reference value.
        max_iter, tol: ADMM bound and relative tolerance (reference 500, 1e-3).
        rho: initial ADMM penalty; ``None`` -> ``100 lmbda + 0.5`` (reference).
        rho_scaling: largest rho multiplier (100, MATLAB SPORCO's ``RhoScaling`` default).
        tikhonov_lmbda, npad: two-scale split (reference 5, 16).
        centered: align the activity with image content by rolling the l1 map by the filter
            centre (``(h-1)//2``); off by default: the reference keeps origin-anchored filters,
            whose codes are offset by up to ``h-1`` pixels from the content (documented deviation
            when on).

    Returns:
        The fused image ``(H, W)`` (the core does not clip; the registered method clips to [0, 1] unless
        ``clip=False``, as the reference clips on its uint8 conversion).
    """
    x = jnp.asarray(sources)
    radius, choose_base = _mode_defaults(mode, radius)
    d = _dictionary(dictionary, x.dtype)
    rho0 = 100.0 * lmbda + 0.5 if rho is None else rho
    opts = Options(rho_scaling=float(rho_scaling), tol=float(tol))
    base, detail = tikhonov_split(x, lmbda=float(tikhonov_lmbda), npad=int(npad))
    coef, _ = encode(d, detail, lmbda, max_iter=int(max_iter), rho=rho0, opts=opts)  # (S, M, H, W)
    shift = ((d.shape[0] - 1) // 2, (d.shape[1] - 1) // 2) if centered else (0, 0)
    idx = choose_max_index(coefficient_activity(coef, radius, shift=shift))
    idx_coef = jnp.roll(idx, (-shift[0], -shift[1]), axis=(0, 1)) if centered else idx
    fused_detail = synthesize(d, select_by_index(coef, idx_coef))
    fused_base = select_by_index(base, idx) if choose_base else jnp.mean(base, axis=0)
    return fused_base + fused_detail


# ---------------------------------------------------------------------------------------
# Fig. 6: the generic CSR framework over the bands of any transform.
# ---------------------------------------------------------------------------------------


class BandTransform(NamedTuple):
    """An invertible band decomposition for :func:`csr_framework`.

    Attributes:
        forward: ``(S, H, W) -> pytree`` of bands, every leaf ``(S, h, w)``.
        inverse: the same pytree with leaves ``(h, w)`` -> ``(H, W)``.
        lowpass: index (in ``jax.tree_util`` leaf order) of the low-pass band, or ``None``
            (every band is sparse-coded, e.g. the identity transform).
    """

    forward: Callable
    inverse: Callable
    lowpass: int | None


def make_transform(name: str, *, levels: int = 4, wavelet: str = "haar") -> BandTransform:
    """A named transform: ``identity``, ``two-scale`` (Tikhonov), ``laplacian`` pyramid or ``swt``."""
    if name == "identity":
        return BandTransform(lambda x: (x,), lambda b: b[0], None)
    if name == "two-scale":
        return BandTransform(lambda x: tikhonov_split(x, lmbda=5.0, npad=16), lambda b: b[0] + b[1], 0)
    if name == "laplacian":
        from jfusion.transforms import collapse_laplacian, laplacian_pyramid

        return BandTransform(lambda x: laplacian_pyramid(x, levels=levels), collapse_laplacian, levels - 1)
    if name == "swt":
        from jfusion.transforms import iswt2, swt2

        return BandTransform(lambda x: swt2(x, wavelet=wavelet, level=levels), lambda b: iswt2(b, wavelet=wavelet), 0)
    raise ValueError(f"unknown transform {name!r}; choose identity, two-scale, laplacian, swt or pass a BandTransform")


def _fuse_coded_band(band, d, *, lmbda, manner, radius, max_iter, tol, rho_scaling):
    """One band ``(S, h, w)`` -> fused ``(h, w)`` through its convolutional sparse codes."""
    h, w = band.shape[-2:]
    if h < d.shape[0] or w < d.shape[1]:
        # Coarser than a filter: no code; fall back to the absolute-value choose-max.
        return select_by_index(band, choose_max_index(jnp.abs(band)))
    coef, _ = encode(d, band, lmbda, max_iter=max_iter, rho=100.0 * lmbda + 0.5,
                     opts=Options(rho_scaling=float(rho_scaling), tol=float(tol)))
    idx = choose_max_index(coefficient_activity(coef, radius))
    if manner == "coefficients":
        return synthesize(d, select_by_index(coef, idx))
    return select_by_index(band, idx)


def csr_framework(
    sources: jax.Array,
    *,
    transform: BandTransform,
    dictionary: str | ArrayLike = "csr32",
    manner: str = "coefficients",
    lmbda: float = 0.01,
    radius: int = 3,
    lowpass_rule: str = "average",
    max_iter: int = 200,
    tol: float = 1e-3,
    rho_scaling: float = 100.0,
) -> jax.Array:
    """The survey's Fig. 6 CSR framework: transform, CSC of the bands, fuse, inverse transform.

    Args:
        sources: ``(S, H, W)``.
        transform: a :class:`BandTransform` (see :func:`make_transform`).
        dictionary: as :func:`csr`.
        manner: ``"coefficients"``: choose-max of the coefficient maps (window l1 activity),
            each fused band rebuilt from the fused codes; ``"bands"``: the same activity picks the
            source band values directly (codes only measure activity).
        lmbda, max_iter, tol, rho_scaling: CBPDN settings.
        radius: activity window radius.
        lowpass_rule: ``"average"`` or ``"choose"`` (decision of the absolute band values) for the
            low-pass band, which is not sparse-coded.

    Returns:
        Fused ``(H, W)``.
    """
    if manner not in ("coefficients", "bands"):
        raise ValueError(f"manner must be 'coefficients' or 'bands', got {manner!r}")
    if lowpass_rule not in ("average", "choose"):
        raise ValueError(f"lowpass_rule must be 'average' or 'choose', got {lowpass_rule!r}")
    x = jnp.asarray(sources)
    d = _dictionary(dictionary, x.dtype)
    leaves, tree = jax.tree_util.tree_flatten(transform.forward(x))
    fused = []
    for i, band in enumerate(leaves):
        if transform.lowpass is not None and i == transform.lowpass % len(leaves):
            if lowpass_rule == "average":
                fused.append(jnp.mean(band, axis=0))
            else:
                fused.append(select_by_index(band, choose_max_index(jnp.abs(band))))
        else:
            fused.append(_fuse_coded_band(band, d, lmbda=lmbda, manner=manner, radius=radius, max_iter=max_iter,
                                          tol=tol, rho_scaling=rho_scaling))
    return transform.inverse(jax.tree_util.tree_unflatten(tree, fused))


@register(
    "csr-transform",
    tasks=("multi-focus", "medical", "infrared-visible", "general"),
    reference="Liu et al., Information Fusion 42 (2018), Fig. 6 (generic CSR framework)",
    weights="sparse/dictionaries/csr32.npz",
    options={
        "transform": opt(choices=("identity", "two-scale", "laplacian", "swt")), "wavelet": opt(choices=WAVELETS),
        "manner": opt(choices=("coefficients", "bands")), "lowpass_rule": opt(choices=("average", "choose")),
        "lmbda": opt(low=1e-8, high=100.0), "radius": opt(low=0, high=99), "max_iter": opt(low=1, high=100_000),
        "tol": opt(low=0.0, high=1.0),
    },
    support=_csc_support,
    working_bytes=2048,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def csr_transform(
    sources: jax.Array,
    *,
    transform: str = "laplacian",
    levels: int = 4,
    wavelet: str = "haar",
    dictionary: str | ArrayLike = "csr32",
    manner: str = "coefficients",
    lmbda: float = 0.01,
    radius: int = 3,
    lowpass_rule: str = "average",
    max_iter: int = 200,
    tol: float = 1e-3,
) -> jax.Array:
    """Fig. 6 CSR framework over a named transform (``identity``, ``two-scale``, ``laplacian``, ``swt``).

    SWT needs ``H, W`` divisible by ``2**levels``: sources are padded symmetrically to the next
    multiple and the result cropped back. See :func:`csr_framework` for the details.

    Args:
        sources: ``(S, H, W)`` in [0, 1].
        transform: ``"identity"``, ``"two-scale"`` (Tikhonov split), ``"laplacian"`` pyramid or ``"swt"``.
        levels: depth of the Laplacian pyramid / SWT.
        wavelet: SWT filter bank (:data:`jfusion.transforms.WAVELETS`).
        dictionary: as :func:`csr` (shipped name, file path or ``(h, w, M)`` array).
        manner: ``"coefficients"`` (bands rebuilt from the chosen codes) or ``"bands"`` (the codes'
            activity picks the source band values).
        lmbda: CBPDN l1 weight.
        radius: activity window radius.
        lowpass_rule: ``"average"`` or ``"choose"`` for the low-pass band (not sparse-coded).
        max_iter, tol: ADMM bound and relative tolerance.
    """
    x = jnp.asarray(sources)
    h, w = x.shape[-2:]
    ph = pw = 0
    if transform == "swt":
        m = 2**levels
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = jnp.pad(x, ((0, 0), (0, ph), (0, pw)), mode="symmetric")
    tr = make_transform(transform, levels=levels, wavelet=wavelet)
    f = csr_framework(x, transform=tr, dictionary=dictionary, manner=manner, lmbda=lmbda, radius=radius,
                      lowpass_rule=lowpass_rule, max_iter=max_iter, tol=tol)
    return f[:h, :w]


# ---------------------------------------------------------------------------------------
# Yang & Li 2010: patch sparse representation with OMP.
# ---------------------------------------------------------------------------------------


@register(
    "sr",
    tasks=("multi-focus", "medical", "infrared-visible", "general"),
    reference="Yang & Li, 'Multifocus image fusion and restoration with sparse representation', IEEE TIM 59(4) 2010",
    min_size="patch",
    options={
        "patch": opt(low=2, high=32), "stride": opt(low=1, high=32), "atoms": opt(low=1, high=4096),
        "epsilon": opt(low=0.0), "max_atoms": opt(low=1, high=256),
    },
    support=_sr_support,
    working_bytes=2048,  # peak bytes per source pixel and channel (benchmarks/working_memory.py, x2)
)
def sr(
    sources: jax.Array,
    *,
    patch: int = 8,
    stride: int = 1,
    atoms: int = 256,
    epsilon: float = 0.01,
    max_atoms: int = 16,
) -> jax.Array:
    """Sparse-representation fusion (Yang & Li 2010) of ``sources (S, H, W)`` -> ``(H, W)``.

    Every ``patch x patch`` window (step ``stride``) of every source, mean removed, is coded by
    OMP over an overcomplete DCT dictionary (``patch^2 x atoms``) until its residual l2 norm is
    ``<= epsilon`` (image range [0, 1]; 0.01 ~ 0.3 grey levels RMS for 8x8) or ``max_atoms``
    atoms; per window the source with the largest l1 norm of its code wins (code and mean);
    fused windows are put back by overlap averaging.

    Args:
        sources: ``(S, H, W)`` in [0, 1].
        patch: window side in pixels (8).
        stride: step between windows (1: every window).
        atoms: columns of the overcomplete DCT dictionary (256).
        epsilon: OMP stops when the residual l2 norm is at most this.
        max_atoms: most atoms per window code (16).
    """
    x = jnp.asarray(sources)
    s_count, h, w = x.shape
    dct = jnp.asarray(dct_dictionary(patch=patch, atoms=atoms), x.dtype)
    pt = jax.vmap(lambda im: extract_patches(im, patch, stride=stride))(x)  # (S, N, p, p)
    vec = pt.reshape(s_count, pt.shape[1], patch * patch)
    mean = jnp.mean(vec, axis=-1, keepdims=True)
    codes = omp_batch(dct, (vec - mean).reshape(-1, patch * patch), max_atoms=int(max_atoms),
                      tol=float(epsilon) ** 2).reshape(s_count, vec.shape[1], -1)
    act = jnp.sum(jnp.abs(codes), axis=-1)  # (S, N)
    win = s_count - 1 - jnp.argmax(act[::-1], axis=0)  # ties -> last source
    onehot = (jnp.arange(s_count)[:, None] == win[None]).astype(x.dtype)
    code_f = jnp.sum(onehot[..., None] * codes, axis=0)
    mean_f = jnp.sum(onehot[..., None] * mean, axis=0)
    patches_f = (matmul(code_f, dct.T) + mean_f).reshape(-1, patch, patch)
    return fold_patches(patches_f, (h, w), patch, stride=stride)
