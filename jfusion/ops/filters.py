"""Separable and small 2-D filters, window sums, gradients and the guided filter.

Every function filters the **last two axes** ``(..., H, W)`` of its input, so leading
axes (sources, channels, batch) are carried along without ``vmap``; all are jit-,
vmap- and grad-able. Kernel taps are static (NumPy) unless stated.

Borders (the ``border`` argument), named as the field's reference codes name them:

=============  =====================================  ==========================
``border``     extension                              OpenCV / MATLAB / NumPy
=============  =====================================  ==========================
``reflect``    ``dcb|abcd|cba`` (edge not repeated)   BORDER_REFLECT_101 / - / reflect
``symmetric``  ``cba|abcd|dcb`` (edge repeated)       BORDER_REFLECT / symmetric / symmetric
``replicate``  ``aaa|abcd|ddd``                       BORDER_REPLICATE / replicate / edge
``zero``       ``000|abcd|000``                       BORDER_CONSTANT / 0 (default) / constant
``periodic``   ``bcd|abcd|abc``                       BORDER_WRAP / circular / wrap
=============  =====================================  ==========================
"""

from __future__ import annotations

import math
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.precision import HIGHEST

Border = Literal["reflect", "symmetric", "replicate", "zero", "periodic"]

_NP_MODE = {
    "reflect": "reflect",
    "symmetric": "symmetric",
    "replicate": "edge",
    "zero": "constant",
    "periodic": "wrap",
}

__all__ = [
    "Border",
    "pad2d",
    "correlate1d",
    "correlate_valid",
    "separable_filter",
    "filter2d",
    "filter2d_dense",
    "gaussian_kernel1d",
    "gaussian_filter",
    "window_sum",
    "box_sum_valid",
    "box_filter",
    "sobel",
    "sobel_edges",
    "laplacian",
    "guided_filter",
]


def _mode(border: str) -> str:
    try:
        return _NP_MODE[border]
    except KeyError:
        raise ValueError(f"border must be one of {sorted(_NP_MODE)}, got {border!r}") from None


def pad2d(x: ArrayLike, top: int, bottom: int, left: int, right: int, *, border: Border = "symmetric") -> jax.Array:
    """Pad the last two axes of ``x`` by the given widths with the named border rule."""
    x = jnp.asarray(x)
    widths = [(0, 0)] * (x.ndim - 2) + [(int(top), int(bottom)), (int(left), int(right))]
    return jnp.pad(x, widths, mode=_mode(border))


def _taps(kernel) -> tuple:
    k = np.asarray(kernel, dtype=np.float64).ravel()
    return tuple(float(v) for v in k)


def correlate_valid(x: ArrayLike, kernel: ArrayLike, axis: int) -> jax.Array:
    """'valid' correlation of the last-two-axes image ``x`` with a 1-D kernel along ``axis`` (-2 or -1).

    Output length ``n - K + 1`` along ``axis`` (no padding). Taps are summed in order; with a
    static (non-traced) kernel, zero taps are skipped.
    """
    x = jnp.asarray(x)
    axis = axis % x.ndim
    if axis not in (x.ndim - 2, x.ndim - 1):
        raise ValueError("axis must be one of the last two axes")
    static = not isinstance(kernel, jax.Array)
    k = _taps(kernel) if static else kernel
    n = len(k) if static else kernel.shape[0]
    size = x.shape[axis] - n + 1
    if size < 1:  # static shapes: raised while tracing, reported by the callers' boundary
        raise ValueError(f"a {n}-px window is larger than the image's {x.shape[axis]} px along axis {axis - x.ndim}")
    out = None
    for t in range(n):
        if static and k[t] == 0.0:
            continue
        term = jax.lax.slice_in_dim(x, t, t + size, axis=axis) * k[t]
        out = term if out is None else out + term
    if out is None:
        shape = list(x.shape)
        shape[axis] = size
        return jnp.zeros(shape, x.dtype)
    return out.astype(x.dtype)


def correlate1d(x: ArrayLike, kernel: ArrayLike, axis: int, *, border: Border = "symmetric") -> jax.Array:
    """Correlate the last-two-axes image ``x`` with a 1-D kernel along ``axis`` (-2 rows, -1 columns).

    The output sample ``i`` aligns with kernel tap ``(K - 1) // 2`` (MATLAB ``imfilter``/OpenCV
    anchor); the output has the input's shape (``border`` padding, then :func:`correlate_valid`).
    """
    x = jnp.asarray(x)
    axis = axis % x.ndim
    if axis not in (x.ndim - 2, x.ndim - 1):
        raise ValueError("axis must be one of the last two axes")
    n = len(_taps(kernel)) if not isinstance(kernel, jax.Array) else kernel.shape[0]
    lo, hi = (n - 1) // 2, n // 2
    if axis == x.ndim - 2:
        xp = pad2d(x, lo, hi, 0, 0, border=border)
    else:
        xp = pad2d(x, 0, 0, lo, hi, border=border)
    return correlate_valid(xp, kernel, axis)


def separable_filter(
    x: ArrayLike, kernel_y: ArrayLike, *, kernel_x: ArrayLike | None = None, border: Border = "symmetric"
) -> jax.Array:
    """Correlate with ``outer(kernel_y, kernel_x)`` as two 1-D passes (``kernel_x`` defaults to ``kernel_y``)."""
    kernel_x = kernel_y if kernel_x is None else kernel_x
    return correlate1d(correlate1d(x, kernel_y, -2, border=border), kernel_x, -1, border=border)


def filter2d(x: ArrayLike, kernel: ArrayLike, *, border: Border = "symmetric") -> jax.Array:
    """Correlate with a small 2-D kernel (anchor ``((kh-1)//2, (kw-1)//2)``, as MATLAB ``imfilter``).

    For true convolution (MATLAB ``conv2``) pass the kernel flipped, ``kernel[::-1, ::-1]``.
    """
    x = jnp.asarray(x)
    k = np.asarray(kernel, dtype=np.float64)
    kh, kw = k.shape
    xp = pad2d(x, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, border=border)
    h, w = x.shape[-2:]
    out = None
    for i in range(kh):
        for j in range(kw):
            if k[i, j] == 0.0:
                continue
            term = xp[..., i : i + h, j : j + w] * float(k[i, j])
            out = term if out is None else out + term
    return jnp.zeros_like(x) if out is None else out.astype(x.dtype)


def filter2d_dense(x: ArrayLike, kernel: ArrayLike, *, border: Border = "symmetric") -> jax.Array:
    """Correlate with a large dense 2-D kernel through one XLA convolution.

    Same result and anchor as :func:`filter2d` (MATLAB ``imfilter``), but the kernel is
    applied by ``lax.conv_general_dilated`` instead of one shifted slice per tap, so large
    non-separable kernels (e.g. the 41x41 sensor-MTF filters of pan-sharpening) compile
    quickly. ``kernel`` may be a NumPy or JAX array ``(kh, kw)``.
    """
    x = jnp.asarray(x)
    k = jnp.asarray(kernel, dtype=x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)
    kh, kw = k.shape
    xp = pad2d(x, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, border=border)
    lead = xp.shape[:-2]
    flat = xp.reshape((-1, 1) + xp.shape[-2:]).astype(k.dtype)
    out = jax.lax.conv_general_dilated(
        flat, k[None, None], window_strides=(1, 1), padding="VALID", precision=HIGHEST
    )
    return out.reshape(lead + x.shape[-2:]).astype(k.dtype)


def gaussian_kernel1d(sigma: float, *, size: int | None = None) -> np.ndarray:
    """Normalised 1-D Gaussian taps; ``size`` defaults to ``2 * ceil(3 sigma) + 1``.

    ``outer(g, g)`` equals MATLAB ``fspecial('gaussian', size, sigma)``.
    """
    if size is None:
        size = 2 * int(math.ceil(3.0 * sigma)) + 1
    r = (size - 1) / 2.0
    t = np.arange(size, dtype=np.float64) - r
    g = np.exp(-(t**2) / (2.0 * sigma**2))
    return g / g.sum()


def gaussian_filter(
    x: ArrayLike, sigma: float, *, size: int | None = None, border: Border = "replicate"
) -> jax.Array:
    """Separable Gaussian blur of the last two axes (see :func:`gaussian_kernel1d` for ``size``)."""
    g = gaussian_kernel1d(sigma, size=size)
    return separable_filter(x, g, kernel_x=g, border=border)


def window_sum(x: ArrayLike, size: int | tuple[int, int], *, border: Border = "zero") -> jax.Array:
    """Sum over a ``size x size`` (or ``(sh, sw)``) window anchored as :func:`filter2d`.

    Direct sums by binary doubling (:func:`box_sum_valid` on the bordered image), about
    ``2 log2(size)`` adds per pixel: every output is the same expression of its window whatever its
    position, so a crop of the image gives the same sums bit for bit away from its border (what
    :func:`jfusion.tiling.fuse_tiled`'s exactness needs; running sums would carry rounding that
    grows with the distance from the image origin). For an even size the window covers
    ``(size-1)//2`` samples before and ``size//2`` after the centre.
    """
    x = jnp.asarray(x)
    sh, sw = (size, size) if isinstance(size, int) else size
    xp = pad2d(x, (sh - 1) // 2, sh // 2, (sw - 1) // 2, sw // 2, border=border)
    return box_sum_valid(xp, (sh, sw))


def box_filter(
    x: ArrayLike, radius: int, *, border: Border | Literal["count"] = "count"
) -> jax.Array:
    """Mean over a ``(2r+1) x (2r+1)`` window.

    ``border="count"`` divides the in-image sum by the number of in-image pixels (He's
    ``boxfilter(ones)`` normalisation used by the guided filter); any other border
    extends the image and divides by ``(2r+1)^2``.
    """
    size = 2 * int(radius) + 1
    if border == "count":
        x = jnp.asarray(x)
        h, w = x.shape[-2:]
        s = window_sum(x, size, border="zero")
        n = np.outer(_in_image_count(h, radius), _in_image_count(w, radius))
        return s / jnp.asarray(n, dtype=s.dtype)
    return window_sum(x, size, border=border) / float(size * size)


def _in_image_count(n: int, radius: int) -> np.ndarray:
    i = np.arange(n)
    return (np.minimum(i + radius, n - 1) - np.maximum(i - radius, 0) + 1).astype(np.float64)


SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
LAPLACIAN_4 = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sobel(x: ArrayLike, *, border: Border = "replicate") -> tuple[jax.Array, jax.Array]:
    """Sobel derivatives ``(gx, gy)`` by correlation: ``gx`` grows left to right, ``gy`` top to bottom."""
    d = np.array([-1.0, 0.0, 1.0])
    s = np.array([1.0, 2.0, 1.0])
    gx = separable_filter(x, s, kernel_x=d, border=border)
    gy = separable_filter(x, d, kernel_x=s, border=border)
    return gx, gy


def sobel_edges(x: ArrayLike, *, threshold: float | None = None, thinning: bool = True) -> jax.Array:
    """Binary edge map as MATLAB ``edge(x)`` / ``edge(x, 'sobel', threshold)`` (Image Processing Toolbox).

    Steps (MATLAB R2013+ ``edge.m``, method 'sobel', direction 'both'):
    ``bx, by`` = ``imfilter(x, fspecial('sobel')'/8 | /8, 'replicate')``; ``b = bx^2 + by^2``;
    automatic threshold ``cutoff = 4 * mean(b)`` over the last two axes (``threshold=None``; else
    ``cutoff = threshold^2``); with ``thinning`` a pixel is an edge when ``b > cutoff`` and it is a
    strict local maximum of ``b`` across the dominant gradient direction
    (``|bx| >= |by| - 100 eps`` with ``b[r,c-1] <= b[r,c] > b[r,c+1]``, or the same with rows),
    neighbours outside the image counting as satisfied; without thinning ``b > cutoff``.
    ``eps`` is the float64 machine epsilon as in MATLAB; in float32 the mean and comparisons are
    float32, so pixels within rounding of the cutoff or of a neighbour tie may differ from MATLAB.

    Args:
      x: image(s) ``(..., H, W)`` (any scale: the automatic threshold is relative).
      threshold: MATLAB's ``thresh`` (on the /8-scaled gradient magnitude) or None for automatic.
      thinning: MATLAB's default 'thinning'.

    Returns:
      bool ``(..., H, W)``.
    """
    x = jnp.asarray(x)
    gx, gy = sobel(x, border="replicate")
    bx, by = gx / 8.0, gy / 8.0
    b = bx * bx + by * by
    if threshold is None:
        cutoff = 4.0 * jnp.mean(b, axis=(-2, -1), keepdims=True)
    else:
        cutoff = jnp.asarray(float(threshold) ** 2, b.dtype)
    strong = b > cutoff
    if not thinning:
        return strong
    tol = 100.0 * float(np.finfo(np.float64).eps)
    ax, ay = jnp.abs(bx), jnp.abs(by)
    lo = jnp.asarray(-jnp.inf, b.dtype)
    pad = [(0, 0)] * (b.ndim - 2)
    bw = jnp.pad(b, pad + [(0, 0), (1, 1)], constant_values=lo)
    bh = jnp.pad(b, pad + [(1, 1), (0, 0)], constant_values=lo)
    horiz = (ax >= ay - tol) & (bw[..., :, :-2] <= b) & (b > bw[..., :, 2:])
    vert = (ay >= ax - tol) & (bh[..., :-2, :] <= b) & (b > bh[..., 2:, :])
    return strong & (horiz | vert)


def laplacian(x: ArrayLike, *, border: Border = "replicate") -> jax.Array:
    """4-neighbour Laplacian ``[[0,1,0],[1,-4,1],[0,1,0]]``."""
    return filter2d(x, LAPLACIAN_4, border=border)


def guided_filter(guide: ArrayLike, src: ArrayLike, radius: int, eps: float) -> jax.Array:
    """Grey-guide guided filter of He, Sun and Tang (2013), O(1) per pixel.

    Args:
      guide: guidance image ``(..., H, W)``.
      src: image to filter, same shape as ``guide``.
      radius: window radius ``r`` (window ``2r+1``).
      eps: regularisation (in the squared units of ``guide``).

    Returns:
      ``(..., H, W)``; box means are normalised by the in-image pixel count, as in He's
      reference ``guidedfilter.m``.
    """
    guide = jnp.asarray(guide)
    src = jnp.asarray(src)
    mean = lambda v: box_filter(v, radius, border="count")  # noqa: E731
    mean_i = mean(guide)
    mean_p = mean(src)
    cov_ip = mean(guide * src) - mean_i * mean_p
    var_i = mean(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def _box_sum_axis(x: jax.Array, size: int, axis: int) -> jax.Array:
    """Sums of ``size`` consecutive samples along ``axis`` ('valid'), by binary doubling (O(log size) adds)."""
    n = x.shape[axis]
    take = lambda a, s, e: jax.lax.slice_in_dim(a, s, e, axis=axis)  # noqa: E731
    pieces, acc, width, bits = [], x, 1, size
    while bits:
        if bits & 1:
            pieces.append((acc, width))
        bits >>= 1
        if bits:
            m = acc.shape[axis]
            acc = take(acc, 0, m - width) + take(acc, width, m)
            width *= 2
    out_len, offset, out = n - size + 1, 0, None
    for a, w in pieces:
        term = take(a, offset, offset + out_len)
        out = term if out is None else out + term
        offset += w
    return out


def box_sum_valid(x: ArrayLike, size: int | tuple[int, int]) -> jax.Array:
    """Sum over every ``size`` window fully inside the image ('valid'): output ``(..., H - sh + 1, W - sw + 1)``.

    Direct sums by binary doubling: no cumulative-sum cancellation (unlike :func:`window_sum`),
    about ``2 log2(size)`` adds per pixel, any size (even sizes too). MATLAB
    ``filter2(ones(s), x, 'valid')``.
    """
    x = jnp.asarray(x)
    sh, sw = (size, size) if isinstance(size, int) else size
    if sh > x.shape[-2] or sw > x.shape[-1]:
        raise ValueError(f"window {sh}x{sw} larger than the image {x.shape[-2:]}")
    return _box_sum_axis(_box_sum_axis(x, sh, -2), sw, -1)
