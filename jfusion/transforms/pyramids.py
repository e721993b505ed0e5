"""Burt-Adelson pyramids: Gaussian, Laplacian, ratio-of-low-pass, contrast and gradient.

Every function works on the **last two axes** ``(..., H, W)``; leading axes (sources,
channels, a batch) ride along without ``vmap``. A pyramid is a tuple of arrays, finest
first, so it is a pytree that ``jit``/``vmap``/``grad`` see through. Level shapes depend
only on ``(H, W)`` and are known at trace time.

The generating kernel is ``w = [1, 4, 6, 4, 1] / 16`` applied separably (methods_spec
§0.2). REDUCE and EXPAND are written in their strided (polyphase) form: REDUCE filters
only the kept (even-index) rows and columns; EXPAND computes the even and odd output
phases with their 3-tap and 2-tap sub-kernels and interleaves them, so no zero-stuffed
grid is ever filtered.

Two border conventions (``mode``):

``"mertens"`` (default)
  Mertens' / VIFB's MATLAB ``downsample.m`` and ``upsample.m``: REDUCE filters with a
  symmetric (edge-repeated) border; EXPAND pads the coarse image by one replicated pixel,
  places ``4 I`` on the even samples of a 2x grid, filters with zero border and crops.
``"opencv"``
  ``cv2.pyrDown`` / ``cv2.pyrUp`` (``BORDER_REFLECT_101`` on the fine grid; ``pyrUp``
  reflects at the top/left and replicates at the bottom/right, which is what its
  reflect-101 on the zero-stuffed grid amounts to).

Per axis, EXPAND of ``a`` (length ``m``) to length ``n`` (``2m - 1 <= n <= 2m``) is
``out[2i] = (a[i-1] + 6 a[i] + a[i+1]) / 8`` and ``out[2i+1] = (a[i] + a[i+1]) / 2`` with
the border rule supplying ``a[-1]`` and ``a[m]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.filters import filter2d, pad2d, separable_filter

__all__ = [
    "PyramidMode",
    "GradientPyramid",
    "BURT_KERNEL",
    "default_levels",
    "level_shapes",
    "pyr_reduce",
    "pyr_expand",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "collapse_laplacian",
    "ratio_pyramid",
    "collapse_ratio",
    "contrast_pyramid",
    "collapse_contrast",
    "gradient_pyramid",
    "collapse_gradient",
    "fsd_laplacian",
    "GRADIENT_FILTERS",
]

PyramidMode = Literal["mertens", "opencv"]

BURT_KERNEL = (1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16)
_REDUCE_BORDER = {"mertens": "symmetric", "opencv": "reflect"}


def _check_mode(mode: str) -> None:
    if mode not in _REDUCE_BORDER:
        raise ValueError(f"mode must be 'mertens' or 'opencv', got {mode!r}")


def default_levels(shape: Sequence[int]) -> int:
    """``floor(log2(min(H, W)))``, the full-depth level count of Mertens' code (at least 1)."""
    return max(1, int(math.floor(math.log2(max(1, min(int(shape[-2]), int(shape[-1])))))))


def level_shapes(shape: Sequence[int], levels: int) -> tuple[tuple[int, int], ...]:
    """Static ``(h, w)`` of each of ``levels`` pyramid levels for an image of ``shape[-2:]``."""
    h, w = int(shape[-2]), int(shape[-1])
    out = [(h, w)]
    for _ in range(levels - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
        out.append((h, w))
    return tuple(out)


def _reduce_axis(x: jax.Array, axis: int, border: str) -> jax.Array:
    n = x.shape[axis]
    m = (n + 1) // 2
    if axis == x.ndim - 2:
        xp = pad2d(x, 2, 2, 0, 0, border=border)
    else:
        xp = pad2d(x, 0, 0, 2, 2, border=border)

    def tap(t: int) -> jax.Array:
        return jax.lax.slice_in_dim(xp, t, t + 2 * m - 1, stride=2, axis=axis)

    k = BURT_KERNEL
    # symmetric kernel: pair the outer and inner taps (3 multiplies instead of 5)
    return k[0] * (tap(0) + tap(4)) + k[1] * (tap(1) + tap(3)) + k[2] * tap(2)


def pyr_reduce(x: ArrayLike, *, mode: PyramidMode = "mertens") -> jax.Array:
    """REDUCE: blur with ``w`` and keep the even-index rows and columns.

    Args:
      x: ``(..., H, W)``.
      mode: border convention (module docstring).

    Returns:
      ``(..., ceil(H/2), ceil(W/2))``.
    """
    _check_mode(mode)
    x = jnp.asarray(x)
    border = _REDUCE_BORDER[mode]
    return _reduce_axis(_reduce_axis(x, x.ndim - 2, border), x.ndim - 1, border)


def _expand_axis(a: jax.Array, n: int, axis: int, mode: str) -> jax.Array:
    m = a.shape[axis]
    if not (2 * m - 1 <= n <= 2 * m):
        raise ValueError(f"EXPAND from {m} samples can only reach {2 * m - 1} or {2 * m}, not {n}")
    first = jax.lax.slice_in_dim(a, 0, 1, axis=axis)
    last = jax.lax.slice_in_dim(a, m - 1, m, axis=axis)
    if mode == "opencv" and m > 1:
        first = jax.lax.slice_in_dim(a, 1, 2, axis=axis)
    ap = jnp.concatenate([first, a, last], axis=axis)
    left = jax.lax.slice_in_dim(ap, 0, m, axis=axis)
    mid = jax.lax.slice_in_dim(ap, 1, m + 1, axis=axis)
    right = jax.lax.slice_in_dim(ap, 2, m + 2, axis=axis)
    even = (left + right) * 0.125 + mid * 0.75
    odd = (mid + right) * 0.5
    both = jnp.stack([even, odd], axis=axis + 1)
    shape = list(a.shape)
    shape[axis] = 2 * m
    out = both.reshape(shape)
    return jax.lax.slice_in_dim(out, 0, n, axis=axis)


def pyr_expand(x: ArrayLike, shape: Sequence[int], *, mode: PyramidMode = "mertens") -> jax.Array:
    """EXPAND ``(..., h, w)`` to ``(..., H, W)`` with ``H in {2h-1, 2h}``, ``W in {2w-1, 2w}``.

    ``shape`` is the target ``(H, W)`` (or any shape whose last two entries are it).
    """
    _check_mode(mode)
    x = jnp.asarray(x)
    h, w = int(shape[-2]), int(shape[-1])
    return _expand_axis(_expand_axis(x, h, x.ndim - 2, mode), w, x.ndim - 1, mode)


def _levels(x: jax.Array, levels: int | None) -> int:
    n = default_levels(x.shape) if levels is None else int(levels)
    if n < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    return n


def gaussian_pyramid(x: ArrayLike, *, levels: int | None = None, mode: PyramidMode = "mertens") -> tuple[jax.Array, ...]:
    """Gaussian pyramid ``(G_0 = x, G_1, ..., G_{levels-1})``, each a REDUCE of the previous.

    Args:
      x: ``(..., H, W)``.
      levels: number of levels (entries); ``None`` for :func:`default_levels`.
      mode: border convention.
    """
    x = jnp.asarray(x)
    n = _levels(x, levels)
    pyr = [x]
    for _ in range(n - 1):
        pyr.append(pyr_reduce(pyr[-1], mode=mode))
    return tuple(pyr)


def laplacian_pyramid(x: ArrayLike, *, levels: int | None = None, mode: PyramidMode = "mertens") -> tuple[jax.Array, ...]:
    """Laplacian pyramid ``(L_0, ..., L_{levels-2}, G_{levels-1})``, ``L_l = G_l - EXPAND(G_{l+1})``.

    The last entry is the low-pass residual; :func:`collapse_laplacian` inverts exactly
    (up to float rounding).
    """
    g = gaussian_pyramid(x, levels=levels, mode=mode)
    lap = [g[i] - pyr_expand(g[i + 1], g[i].shape, mode=mode) for i in range(len(g) - 1)]
    return tuple(lap) + (g[-1],)


def collapse_laplacian(pyr: Sequence[jax.Array], *, mode: PyramidMode = "mertens") -> jax.Array:
    """Invert :func:`laplacian_pyramid`: from the coarsest, ``R = L_l + EXPAND(R)``."""
    r = jnp.asarray(pyr[-1])
    for lev in reversed(pyr[:-1]):
        r = lev + pyr_expand(r, lev.shape, mode=mode)
    return r


def ratio_pyramid(
    x: ArrayLike, *, levels: int | None = None, offset: float = 0.01, mode: PyramidMode = "mertens"
) -> tuple[jax.Array, ...]:
    """Ratio-of-low-pass pyramid (Toet 1989): ``R_l = G'_l / EXPAND(G'_{l+1})``, top ``G'_{L}``.

    ``G'`` is the Gaussian pyramid of ``x + offset``; for ``x >= 0`` every level and every
    EXPAND is ``>= offset`` (the kernels are positive), so the ratio is well defined and the
    transform is exactly invertible by :func:`collapse_ratio` with the same ``offset``.
    """
    g = gaussian_pyramid(jnp.asarray(x) + offset, levels=levels, mode=mode)
    rat = [g[i] / pyr_expand(g[i + 1], g[i].shape, mode=mode) for i in range(len(g) - 1)]
    return tuple(rat) + (g[-1],)


def collapse_ratio(pyr: Sequence[jax.Array], *, offset: float = 0.01, mode: PyramidMode = "mertens") -> jax.Array:
    """Invert :func:`ratio_pyramid`: ``G'_l = R_l * EXPAND(G'_{l+1})``, then remove ``offset``."""
    r = jnp.asarray(pyr[-1])
    for lev in reversed(pyr[:-1]):
        r = lev * pyr_expand(r, lev.shape, mode=mode)
    return r - offset


def contrast_pyramid(
    x: ArrayLike, *, levels: int | None = None, offset: float = 0.01, mode: PyramidMode = "mertens"
) -> tuple[jax.Array, ...]:
    """Luminance-contrast pyramid (Toet, van Ruyven, Valeton 1989): ``C_l = R_l - 1``, top ``G'_L``.

    ``C_l = (G'_l - EXPAND(G'_{l+1})) / EXPAND(G'_{l+1})`` is the local contrast (Weber
    fraction) of level ``l``; zero where the level is locally flat.
    """
    rat = ratio_pyramid(x, levels=levels, offset=offset, mode=mode)
    return tuple(r - 1.0 for r in rat[:-1]) + (rat[-1],)


def collapse_contrast(pyr: Sequence[jax.Array], *, offset: float = 0.01, mode: PyramidMode = "mertens") -> jax.Array:
    """Invert :func:`contrast_pyramid`: ``G'_l = (C_l + 1) * EXPAND(G'_{l+1})``."""
    return collapse_ratio(tuple(c + 1.0 for c in pyr[:-1]) + (pyr[-1],), offset=offset, mode=mode)


# Burt (1992) gradient filters d_1..d_4 (horizontal, diagonal, vertical, anti-diagonal), used by
# correlation on the "bottom/right" anchored 2x2 support; and the 3x3 binomial w_hat.
_R2 = 1.0 / math.sqrt(2.0)
GRADIENT_FILTERS = (
    ((1.0, -1.0),),
    ((0.0, -_R2), (_R2, 0.0)),
    ((-1.0,), (1.0,)),
    ((-_R2, 0.0), (0.0, _R2)),
)
_W3 = (0.25, 0.5, 0.25)


_GP = 3  # margin of the gradient bands


class GradientPyramid(NamedTuple):
    """Burt's gradient pyramid.

    ``bands[l]`` is ``(4, ..., h_l + 6, w_l + 6)``: the four orientations first, each band
    carrying a 3-pixel margin of the symmetric extension; ``top`` is the low-pass residual.
    """

    bands: tuple[jax.Array, ...]
    top: jax.Array


def _conv(x: jax.Array, kernel, border: str) -> jax.Array:
    # true convolution with a small kernel (MATLAB conv2 orientation), image-sized output
    k = np.asarray(kernel, dtype=np.float64)[::-1, ::-1]
    return filter2d(x, k, border=border)


def _pad_kernel3(kernel) -> tuple:
    k = np.asarray(kernel, dtype=np.float64)
    out = np.zeros((3, 3))
    out[1 : 1 + k.shape[0], 1 : 1 + k.shape[1]] = k
    return out


def gradient_pyramid(x: ArrayLike, *, levels: int | None = None, mode: PyramidMode = "mertens") -> GradientPyramid:
    """Gradient pyramid (Burt 1992; Burt & Kolczynski 1993).

    ``D_{l,k} = d_k * (G_l + w_hat * G_l)`` for the four oriented first differences
    ``d_k`` (``*`` is convolution) and the 3x3 binomial ``w_hat``. Because
    ``-1/8 sum_k d_k * d_k = delta - w_hat`` and ``(delta - w_hat) * (delta + w_hat) =
    delta - w`` (``w`` the 5x5 generating kernel), ``-1/8 sum_k d_k * D_{l,k}`` is exactly
    the filter-subtract-decimate Laplacian ``G_l - w * G_l`` (away from the border).

    The transform is *not* exactly invertible: :func:`collapse_gradient` converts each FSD
    Laplacian to a reduce-expand one by ``(delta + w) *``, which is exact only up to the
    aliasing of the decimation (small on natural images, see the round-trip test).
    """
    g = gaussian_pyramid(x, levels=levels, mode=mode)
    bands = []
    for lev in g[:-1]:
        # work on a symmetric extension wide enough (3 px: w_hat, d_k, d_k^T) that the FSD
        # identity holds on the whole image; the stored bands keep the 3-px margin
        ext = pad2d(lev, _GP, _GP, _GP, _GP, border="symmetric")
        smooth = ext + separable_filter(ext, _W3, kernel_x=_W3, border="zero")
        bands.append(jnp.stack([_conv(smooth, _pad_kernel3(d), "zero") for d in GRADIENT_FILTERS]))
    return GradientPyramid(tuple(bands), g[-1])


def _flip_pad(kernel):
    # the adjoint of d_k (correlation instead of convolution) keeps the second difference
    # centred: d_k^T d_k = -(d_k * d_k) shifted back by one pixel, hence the +1/8 below
    k = np.asarray(kernel, dtype=np.float64)
    out = np.zeros((3, 3))
    out[1 : 1 + k.shape[0], 1 : 1 + k.shape[1]] = k
    return out[::-1, ::-1]


def fsd_laplacian(bands: jax.Array) -> jax.Array:
    """FSD Laplacian ``(..., h, w)`` from gradient bands ``(4, ..., h + 6, w + 6)``.

    ``1/8 sum_k d_k^T D_k`` (the centred form of ``-1/8 sum_k d_k * D_k``), margin cropped.
    """
    acc = None
    for k, d in enumerate(GRADIENT_FILTERS):
        term = _conv(bands[k], _flip_pad(d), "zero")
        acc = term if acc is None else acc + term
    return 0.125 * acc[..., _GP:-_GP, _GP:-_GP]


def collapse_gradient(pyr: GradientPyramid, *, mode: PyramidMode = "mertens") -> jax.Array:
    """Reconstruct from a :class:`GradientPyramid` (approximate, Burt & Kolczynski 1993).

    Each FSD Laplacian is converted to a reduce-expand Laplacian by ``L ~ (delta + w) * FSD``
    (exact in the frequency domain up to aliasing, since ``EXPAND(REDUCE(.)) ~ w * w *``) and
    the Laplacian pyramid is collapsed: ``G_l = L_l + EXPAND(G_{l+1})``.
    """
    r = jnp.asarray(pyr.top)
    for bands in reversed(pyr.bands):
        fsd = fsd_laplacian(bands)
        lap = fsd + separable_filter(fsd, BURT_KERNEL, kernel_x=BURT_KERNEL, border="symmetric")  # RE ~ (1 + w) * FSD
        r = lap + pyr_expand(r, lap.shape, mode=mode)
    return r
