"""MATLAB-semantics primitives shared by the metric families (metrics_spec.md section 2).

Everything here works on single-channel grey images on the reference's **[0, 255] scale**
(the scale the VIFB/MEFB/Liu MATLAB codes see after ``double(imread(...))``); the public
metric functions rescale their [0, 1] inputs with :func:`to_grey_levels` first.
All helpers are pure and jit/vmap/grad-able (histogram helpers are piecewise constant).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.typing import ArrayLike

from jfusion.ops import box_sum_valid, correlate1d, correlate_valid, filter2d, gaussian_kernel1d

__all__ = [
    "GREY",
    "as_metric_float",
    "to_grey_levels",
    "matlab_round",
    "quantize_levels",
    "normalize1",
    "exact_div",
    "histogram",
    "joint_histogram",
    "entropy_from_counts",
    "materialize",
    "correlate_valid",
    "filter_valid",
    "filter_same_zero",
    "separable_same_zero",
    "conv2_same",
    "fspecial_gaussian1d",
    "freqspace",
    "fft_filter",
    "rfft_filter",
    "rfft_response",
    "block_reduce_sum",
    "arctan",
    "safe_div",
    "safe_sqrt",
    "box_mean_valid",
    "box_sum_stored",
    "soft_histogram_weights",
    "CANCEL_ULPS",
    "central_moment",
    "windowed_var",
    "windowed_cov",
]

GREY = 255.0


def as_metric_float(x: ArrayLike) -> jax.Array:
    """``x`` as a float array for metric arithmetic: the one dtype rule at every metric's boundary.

    Integer and bool arrays (uint8, uint16, int32, ...) and half precision (float16, bfloat16) become
    the default float dtype (float32, float64 under ``jax_enable_x64``) with their values unchanged,
    so squares and products neither wrap around (``uint16``: 2000^2 mod 65536) nor overflow
    (``float16``: above 65504); float32 / float64 are kept. Every dtype gives the value the float
    path gives for the same numbers.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating) or jnp.finfo(x.dtype).bits < 32:
        return x.astype(jnp.result_type(float))
    return x


def to_grey_levels(x: ArrayLike, data_range: float) -> jax.Array:
    """Map an image in ``[0, data_range]`` to the references' grey-level scale [0, 255] (as :func:`as_metric_float`)."""
    x = as_metric_float(x)
    if data_range == GREY:
        return x
    return x * (GREY / float(data_range))


def matlab_round(x: ArrayLike) -> jax.Array:
    """MATLAB ``round`` / integer cast: half away from zero (``jnp.round`` is half-to-even)."""
    x = jnp.asarray(x)
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def quantize_levels(x: ArrayLike, *, tol: float = 1e-3) -> jax.Array:
    """Integer grey levels ``floor(x)`` in 0..255 as int32, for 256-bin histograms.

    ``tol`` absorbs float rounding of 8-bit data that went through ``/255`` and ``*255``
    (a value within ``tol`` below an integer counts as that integer); out-of-range values
    are clipped (MATLAB would error).
    """
    q = jnp.floor(jnp.asarray(x) + tol)
    return jnp.clip(q, 0, 255).astype(jnp.int32)


def exact_div(x: jax.Array, d: jax.Array) -> jax.Array:
    """``x / d`` for a scalar ``d``, correctly rounded as in MATLAB/NumPy.

    XLA rewrites division by a broadcast scalar as multiplication by its reciprocal, which is off
    by one ulp for some values; at the ``x.5`` rounding boundaries of ``normalize1`` that moves
    grey levels. An optimisation barrier on the broadcast divisor keeps a true division.
    """
    return x / jax.lax.optimization_barrier(jnp.broadcast_to(d, x.shape))


def normalize1(x: ArrayLike) -> jax.Array:
    """Liu's ``normalize1``: ``round(255 (x - min) / (max - min))``; an all-zero image is returned as is.

    A constant non-zero image gives 0/0 = NaN in MATLAB; here it maps to zeros (documented guard).
    """
    x = jnp.asarray(x)
    lo, hi = jnp.min(x), jnp.max(x)
    rng = hi - lo
    safe = jnp.where(rng == 0, 1.0, rng)
    out = matlab_round(exact_div(x - lo, safe) * 255.0)
    out = jnp.where(rng == 0, jnp.zeros_like(x), out)
    return jnp.where((hi == 0) & (lo == 0), x, out)


def histogram(levels: jax.Array, *, bins: int = 256) -> jax.Array:
    """Counts of the integer ``levels`` (any shape) in ``bins`` bins (static length, jit-able)."""
    return jnp.bincount(levels.ravel(), length=bins)


def joint_histogram(a: jax.Array, b: jax.Array, *, bins: int = 256) -> jax.Array:
    """Joint ``(bins, bins)`` counts of two integer level images of equal shape."""
    idx = a.ravel() * bins + b.ravel()
    return jnp.bincount(idx, length=bins * bins).reshape(bins, bins)


def entropy_from_counts(counts: jax.Array, *, base: float | None = 2.0) -> jax.Array:
    """Shannon entropy ``-sum p log p`` of a histogram (empty bins skipped); ``base=None`` = nats."""
    counts = counts.astype(jnp.result_type(float))
    p = counts / jnp.sum(counts)
    logp = jnp.log(jnp.where(p > 0, p, 1.0))
    h = -jnp.sum(p * logp)
    return h if base is None else h / np.log(base)


def fspecial_gaussian1d(size: int, sigma: float) -> np.ndarray:
    """1-D taps whose outer product is MATLAB ``fspecial('gaussian', size, sigma)`` (normalised)."""
    return gaussian_kernel1d(sigma, size=size)


def _keep_cpu(x: jax.Array) -> jax.Array:
    flat = x.reshape(-1)
    # A conditional on a run-time predicate (true unless the first element is NaN; both branches
    # return x) is a point XLA cannot fuse across.
    return jax.lax.cond(flat[0] == flat[0], lambda v: v, lambda v: v + 0.0, x)


def _keep(x: jax.Array) -> jax.Array:
    # CPU only: elsewhere a conditional would cost a device-to-host read of the predicate.
    if x.size == 0:
        return x
    return jax.lax.platform_dependent(x, cpu=_keep_cpu, default=lambda v: v)


@custom_vmap
def _keep_batched(x: jax.Array) -> jax.Array:
    return _keep(x)


@_keep_batched.def_vmap
def _keep_rule(axis_size, in_batched, x):
    del axis_size
    return _keep_batched(x), in_batched[0]


@jax.custom_jvp
def materialize(x: jax.Array) -> jax.Array:
    """Identity that makes XLA store ``x`` instead of recomputing it inside every consumer.

    XLA:CPU fuses a producer into each consumer that reads it; for a separable filter that means
    the first 1-D pass is recomputed for every tap of the second (11 x 11 multiply-adds per
    pixel instead of 11 + 11, measured 5x slower). ``optimization_barrier`` is removed before
    fusion on CPU, so the value is passed through a conditional on a run-time predicate (on CPU
    only; other backends get the plain value). The barrier holds under ``vmap`` (custom batching
    rule) and is transparent to differentiation.
    """
    return _keep_batched(x)


@materialize.defjvp
def _materialize_jvp(primals, tangents):
    return materialize(primals[0]), tangents[0]


def filter_valid(x: ArrayLike, k_y: np.ndarray, *, k_x: np.ndarray | None = None) -> jax.Array:
    """MATLAB ``filter2(outer(k_y, k_x), x, 'valid')`` for separable kernels (last two axes).

    Column pass, stored (:func:`materialize`), then row pass; filter several maps of one size
    in one call by stacking them on a leading axis.
    """
    k_x = k_y if k_x is None else k_x
    x = jnp.asarray(x)
    return correlate_valid(materialize(correlate_valid(x, k_y, -2)), k_x, -1)


def separable_same_zero(x: ArrayLike, k_y: np.ndarray, *, k_x: np.ndarray | None = None) -> jax.Array:
    """MATLAB ``filter2(outer(k_y, k_x), x, 'same')`` (zero padding, odd lengths) as two stored 1-D passes.

    ``ops.separable_filter(x, k_y, k_x, "zero")`` with the column pass stored (:func:`materialize`).
    """
    k_x = k_y if k_x is None else k_x
    return correlate1d(materialize(correlate1d(x, k_y, -2, border="zero")), k_x, -1, border="zero")


def filter_same_zero(x: ArrayLike, kernel: np.ndarray) -> jax.Array:
    """MATLAB ``filter2(kernel, x, 'same')``: correlation with zero padding (odd kernels)."""
    return filter2d(x, np.asarray(kernel), border="zero")


def conv2_same(x: ArrayLike, kernel: np.ndarray) -> jax.Array:
    """MATLAB ``conv2(x, kernel, 'same')`` (true convolution, zero padding) for odd kernels."""
    return filter2d(x, np.asarray(kernel)[::-1, ::-1], border="zero")


def freqspace(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``[u, v] = freqspace([m, n], 'meshgrid')``: u varies along columns, v along rows."""
    fu = (np.arange(n) - np.floor(n / 2)) * (2.0 / n)
    fv = (np.arange(m) - np.floor(m / 2)) * (2.0 / m)
    return np.meshgrid(fu, fv)


def fft_filter(x: jax.Array, response: np.ndarray) -> jax.Array:
    """``ifft2(ifftshift(fftshift(fft2(x)) .* response))`` (complex, as the MATLAB codes keep it)."""
    spec = jnp.fft.fftshift(jnp.fft.fft2(x), axes=(-2, -1))
    resp = jnp.asarray(response, dtype=jnp.result_type(x.dtype, jnp.float32))
    return jnp.fft.ifft2(jnp.fft.ifftshift(spec * resp, axes=(-2, -1)))


def rfft_filter(x: jax.Array, response: np.ndarray) -> jax.Array:
    """Real-FFT form of :func:`fft_filter` for real ``x`` (last two axes) and a centred ``response``.

    ``ifftshift(fftshift(X) .* R) = X .* ifftshift(R)``; on the symmetric freqspace grids used
    here the result of :func:`fft_filter` is real up to rounding (imaginary parts ~1e-13 of the
    values), so a half spectrum and ``irfft2`` give the same numbers to float rounding at less
    than half the cost.
    """
    m, n = x.shape[-2:]
    spec = jnp.fft.rfft2(x) * jnp.asarray(rfft_response(response), dtype=x.dtype)
    return jnp.fft.irfft2(spec, s=(m, n))


def rfft_response(response: np.ndarray) -> np.ndarray:
    """A centred (``fftshift``-ed) full response ``(m, n)`` as the ``rfft2`` half ``(m, n // 2 + 1)``."""
    n = response.shape[-1]
    return np.fft.ifftshift(np.asarray(response, dtype=np.float64))[:, : n // 2 + 1]


def block_reduce_sum(x: jax.Array, block: int) -> jax.Array:
    """``blkproc`` sums: zero-pad bottom/right to a multiple of ``block`` and sum each block."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % block, (-w) % block
    xp = jnp.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)])
    hb, wb = (h + ph) // block, (w + pw) // block
    xp = xp.reshape(*x.shape[:-2], hb, block, wb, block)
    return xp.sum(axis=(-3, -1))


# Cephes atan: rational P/Q for float64 (|error| <= 1 ulp measured), atanf polynomial for float32.
_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1, -7.500855792314704667340e1,
           -1.228866684490136173410e2, -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2, 4.328810604912902668951e2,
           4.853903996359136964868e2, 1.945506571482613964425e2)
_ATANF = (8.05374449538e-2, -1.38776856032e-1, 1.99777106478e-1, -3.33329491539e-1)
_MOREBITS = 6.123233995736765886130e-17


def arctan(x: jax.Array) -> jax.Array:
    """``arctan`` from plain arithmetic (Cephes range reduction + rational / polynomial).

    XLA:CPU's ``atan`` is not vectorised (~10 ns per element measured); this form is, and is ~7x
    faster. Accuracy (measured on 10^6 values over 1e-10 .. 1e10): float64 1 ulp (as XLA), float32
    within 2e-7 relative (XLA: 8e-8). Real floating input of any shape; gradients as ``arctan``'s
    pieces (use ``jnp.arctan`` where the derivative matters).
    """
    a = jnp.abs(x)
    wide = x.dtype == jnp.float64
    big = a > 2.414213562373095  # tan(3 pi / 8)
    mid = (a > (0.66 if wide else 0.4142135623730950)) & ~big
    t = jnp.where(big, -1.0 / jnp.where(big, a, 1.0), jnp.where(mid, (a - 1.0) / (a + 1.0), a))
    y0 = jnp.where(big, np.pi / 2, jnp.where(mid, np.pi / 4, 0.0))
    z = t * t
    if wide:
        p = (((_ATAN_P[0] * z + _ATAN_P[1]) * z + _ATAN_P[2]) * z + _ATAN_P[3]) * z + _ATAN_P[4]
        q = ((((z + _ATAN_Q[0]) * z + _ATAN_Q[1]) * z + _ATAN_Q[2]) * z + _ATAN_Q[3]) * z + _ATAN_Q[4]
        r = t * (z * p / q) + t + jnp.where(big, _MOREBITS, jnp.where(mid, 0.5 * _MOREBITS, 0.0))
    else:
        r = (((_ATANF[0] * z + _ATANF[1]) * z + _ATANF[2]) * z + _ATANF[3]) * z * t + t
    return jnp.sign(x) * (y0 + r)


def safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` with 0 where ``den == 0`` (gradient-safe)."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` for ``x >= 0`` with a zero (not NaN) gradient at 0; exact values."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


def soft_histogram_weights(x: jax.Array, bins: int, bandwidth: float) -> jax.Array:
    """Gaussian (Parzen) bin memberships ``(N, bins)`` of values ``x`` in [0, 1], rows summing to 1.

    Bin centres ``(k + 0.5) / bins``; ``bandwidth`` is the kernel's standard deviation in bins.
    Differentiable in ``x`` (the soft histogram used by the MI loss option).
    """
    centres = (jnp.arange(bins, dtype=x.dtype) + 0.5) / bins
    d = (x.reshape(-1, 1) - centres[None, :]) * (bins / bandwidth)
    w = jnp.exp(-0.5 * d * d)
    return w / jnp.sum(w, axis=1, keepdims=True)


def box_mean_valid(x: jax.Array, size: int) -> jax.Array:
    """Mean over every ``size x size`` window fully inside the image (MATLAB ``filter2(ones/s^2, x, 'valid')``).

    Works for even sizes; output ``(H - size + 1, W - size + 1)``; direct sums (``ops.box_sum_valid``).
    """
    return box_sum_stored(x, size) / float(size * size)


def box_sum_stored(x: jax.Array, size: int) -> jax.Array:
    """``ops.box_sum_valid(x, size)`` (same sums in the same order) with the column pass stored.

    Without :func:`materialize` XLA recomputes the column sums for every term of the row sums.
    """
    return box_sum_valid(materialize(box_sum_valid(x, (size, 1))), (1, size))


# Cancellation floor of E[xy] - E[x] E[y]: measured at most 6 ulps of E[x^2] on exactly flat windows
# (Gaussian 7x7 / 11x11, box 8 / 32, float32 and float64); 32 ulps leaves a 5x margin.
CANCEL_ULPS = 32.0


def central_moment(raw: jax.Array, mean_product: jax.Array, scale: jax.Array) -> jax.Array:
    """``raw - mean_product`` (a windowed variance or covariance), 0 where it is rounding noise.

    ``E[x^2] - E[x]^2`` of a flat window is not exactly 0 in floating point (e.g. a window of
    0.123 * 255 gives +-1e-13 in float64, +-1e-5 in float32), and metrics that divide by variances
    (Q_Y's ``s_A^2 / (s_A^2 + s_B^2)``, Q_C's ``s_AF / (s_AF + s_BF)``, UIQI's flat-window cases)
    turn that noise into values like -1e11. A difference within :data:`CANCEL_ULPS` ulps of
    ``scale`` (the window's mean square, ``E[x^2]`` or ``sqrt(E[x^2] E[y^2])``, which bounds the
    rounding error of both terms) is below what the arithmetic resolves and is returned as 0.
    Every windowed-variance metric goes through this (or :func:`windowed_var` / :func:`windowed_cov`).
    """
    d = raw - mean_product
    tol = CANCEL_ULPS * float(jnp.finfo(d.dtype).eps)
    return jnp.where(jnp.abs(d) <= tol * jnp.abs(scale), jnp.zeros_like(d), d)


def windowed_var(ex2: jax.Array, mu: jax.Array) -> jax.Array:
    """Windowed variance ``E[x^2] - E[x]^2`` from the windowed means, ``>= 0``.

    :func:`central_moment` with scale ``E[x^2]``; a negative difference is rounding noise too
    (a variance is never negative), so it is returned as 0 as well.
    """
    d = central_moment(ex2, mu * mu, ex2)
    return jnp.maximum(d, jnp.zeros_like(d))


def windowed_cov(
    exy: jax.Array, mx: jax.Array, my: jax.Array, ex2: jax.Array, ey2: jax.Array, var_x: jax.Array, var_y: jax.Array
) -> jax.Array:
    """Windowed covariance ``E[xy] - E[x] E[y]`` consistent with the variances ``var_x``, ``var_y``.

    :func:`central_moment` with scale ``sqrt(E[x^2] E[y^2])``, and 0 wherever either variance is 0
    (Cauchy-Schwarz: a flat window has no covariance; without this a covariance left where a variance
    was snapped gives SSIM-type ratios above 1).
    """
    c = central_moment(exy, mx * my, jnp.sqrt(jnp.abs(ex2 * ey2)))
    return jnp.where((var_x == 0) | (var_y == 0), jnp.zeros_like(c), c)
