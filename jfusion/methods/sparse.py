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

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.methods.registry import register
from jfusion.ops.filters import window_sum
from jfusion.sparse.cbpdn import Options, encode, synthesize
from jfusion.sparse.dictionary import load_dictionary
from jfusion.sparse.tikhonov import tikhonov_split

__all__ = [
    "csr",
    "coefficient_activity",
    "choose_max_index",
    "select_by_index",
]

_MULTI_MODAL = ("multi-modal", "medical", "infrared-visible")


def _dictionary(dictionary: str | ArrayLike, dtype) -> jax.Array:
    d = load_dictionary(dictionary) if isinstance(dictionary, str) else dictionary
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
    return window_sum(a, size, "zero") / float(size * size)


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


@register(
    "csr",
    tasks=("multi-focus", "medical", "infrared-visible", "general"),
    reference="Liu, Chen, Ward, Wang, 'Image fusion with convolutional sparse representation', IEEE SPL 23(12) 2016",
    weights="jfusion/sparse/dictionaries/csr32.npy",
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
        The fused image ``(H, W)`` (not clipped; the reference clips on its uint8 conversion).
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
