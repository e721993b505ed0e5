"""Stride-1 convolution in the forms XLA:CPU runs fast, the layer the models use on a CPU.

Two properties of XLA:CPU (jax 0.10.2), measured on this project's 2-core machine
(``benchmarks/xla_cpu_conv_repro.py``; ``benchmarks/README.md``, "Learned models"):

* a convolution with **no padding at all** ("VALID") takes a slow emitter, 3-7x below the same
  convolution with any padding: PNN's 9x9 7->32 layer on a 1296x1296 image runs at 34 GFLOP/s
  "VALID" and at 94 GFLOP/s with one row of zero padding on one side, its 5x5 32->16 layer at 29
  and 215 GFLOP/s. :func:`conv` therefore computes a "VALID" convolution with one extra zero row
  below the input and drops the output's last row: the same numbers (bitwise in every case
  measured) at the fast emitter's speed, forward and backward;
* 3-D convolutions run at 5-15 GFLOP/s whatever the padding. :func:`conv` folds the last spatial
  axis into the channels instead: a 3-D convolution over ``(H, W, D)`` with ``C -> O`` channels is
  a 2-D convolution over ``(H, W)`` with ``D*C -> D'*O`` channels whose kernel is banded along
  the depth (``D/kd`` times the FLOPs, for the 3-D CNN's 9 bands 3x, but 8-23x faster).

:class:`Conv` is ``nnx.Conv`` with that path on the CPU backend: the same parameters (``kernel``
HWIO, ``bias``), initialisers and call signature, so weights written for ``nnx.Conv`` load
unchanged. It takes the path for stride 1, no dilation, one feature group, no mask and
``"VALID"``, ``"SAME"`` or explicit integer padding; anything else (and every other backend, where
cuDNN / the TPU convolution units are the fast path) is ``nnx.Conv``'s own call. Results equal
``lax.conv_general_dilated`` up to float32 summation order (relative 1e-6).

A third property concerns training: XLA:CPU computes a layer's **kernel gradient** (a correlation
of the input with the output gradient, the batch contracted, a window as large as the output) at
about a third of its forward rate (54 GFLOP/s for PNN's 9x9 7->64 layer at batch 64 of 33x33, where
the forward runs at 156). On the CPU :func:`conv` therefore carries a custom VJP whose kernel
gradient, where :func:`fft_kernel_gradient_pays` says so, is computed in the frequency domain
(:func:`kernel_gradient_fft`: one real FFT of the padded input and of the output gradient per image
and channel at the padded input's size, a complex product summed over the batch per frequency,
one inverse FFT per kernel channel pair; exact, as the circular correlation does not wrap at that
size, equal to XLA's to float32 rounding, 1e-6 of the largest entry); the input gradient stays
XLA's transposed convolution. Forward-mode differentiation (``jax.jvp``) of a convolution on the
CPU needs that custom rule off: :func:`xla_kernel_gradient` (a context manager) turns it off
while tracing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

__all__ = [
    "Conv",
    "conv",
    "enabled",
    "fast_path_applies",
    "fft_kernel_gradient_pays",
    "kernel_gradient_fft",
    "xla_kernel_gradient",
    "MAX_FOLD_DEPTH",
]

MAX_FOLD_DEPTH = 32
"""Largest last-axis length of a 3-D input that :func:`conv` folds into the channels (the FLOPs grow as ``D / kd``)."""


def enabled() -> bool:
    """Whether the models take :func:`conv`'s path: on the CPU backend (checked at trace time)."""
    return jax.default_backend() == "cpu"


_CUSTOM_VJP = [True]


@contextlib.contextmanager
def xla_kernel_gradient():
    """Within this context :func:`conv` traces without its custom VJP (XLA's own autodiff, jvp-capable).

    Example: ``with xla_kernel_gradient(): jax.jvp(lambda k: conv(x, k), (k,), (dk,))``.
    """
    _CUSTOM_VJP.append(False)
    try:
        yield
    finally:
        _CUSTOM_VJP.pop()


def fft_kernel_gradient_pays(
    *, batch: int, padded: Sequence[int], kernel: Sequence[int], cin: int, cout: int, folded: bool = False
) -> bool:
    """Whether :func:`kernel_gradient_fft` beats XLA:CPU's kernel gradient for a layer (a cost rule).

    ``padded`` is the padded input's spatial shape, ``kernel`` the kernel's (2-D or 3-D), ``folded``
    whether :func:`conv` computes the 3-D layer folded into 2-D. The rule compares XLA's
    multiply-adds per channel pair and image, ``prod(out) prod(k)`` (times ``D / kd`` when folded,
    the banded kernel's overhead), with the frequency-domain product's
    ``4 prod(padded[:-1]) (padded[-1] // 2 + 1)`` per output (complex), and takes the FFT when the
    batch times their ratio is at least 256 (the batch is the product's contraction: with few images
    per frequency the ``C x O`` spectra and the transforms dominate) and ``C O >= 64`` (with fewer
    channel pairs, or a single input or output channel, the ``C + O`` transforms per image dominate:
    ``min(C, O) >= 4``). Measured on the 2-core CPU
    (``benchmarks/README.md``): 2-6x faster for 3x3 to 9x9 layers of 32-256 channels at batch 64-256,
    for DRPNN's 7x7 64->64 at batch 16 and the 3-D CNN's 3x3x3 16->8; slower for a batch of 16 with
    a 5x5 kernel and 9 input channels or a 3x3 kernel (ratios 8 and 3.4), for the focus CNN's 3x3 1->64
    layer and the 3-D CNN's 1->16 and 8->1 layers, which the rule leaves to XLA.
    """
    out = [p - k + 1 for p, k in zip(padded, kernel)]
    direct = int(np.prod(out)) * int(np.prod(kernel))
    if folded:  # the folded form's banded kernel
        direct = direct * padded[2] // kernel[2]
    spectral = 4 * int(np.prod(padded[:-1])) * (int(padded[-1]) // 2 + 1)
    return int(np.prod(kernel)) >= 9 and cin * cout >= 64 and min(cin, cout) >= 4 and batch * direct >= 256 * spectral


def kernel_gradient_fft(x: jax.Array, g: jax.Array, kernel_size: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
    """Kernel gradient of a stride-1 N-d convolution, ``dK[a, c, o] = sum_{n, i} xp[n, i + a, c] g[n, i, o]``.

    Args:
      x: ``(N, *spatial, C)`` input of the layer (before its zero padding ``pads``).
      g: ``(N, *out, O)`` gradient of the layer's output, ``out = spatial + low + high - k + 1``.
      kernel_size: the kernel's spatial shape ``k``.
      pads: ``[(low, high)]`` per spatial axis, the layer's zero padding.

    Returns:
      ``(*k, C, O)`` in ``g``'s dtype, computed in float32 (complex64; float64 inputs in float64) at the
      padded input's size: the
      circular correlation at lag ``a < k`` reads ``xp[i + a]`` with ``i + a`` inside the padded
      input, so nothing wraps and the result is exact up to rounding.
    """
    ks = tuple(int(k) for k in kernel_size)
    nd = len(ks)
    xp = jnp.pad(x, ((0, 0), *pads, (0, 0))) if any(tuple(p) != (0, 0) for p in pads) else x
    size = xp.shape[1:-1]
    first = (0, nd + 1, *range(1, nd + 1))  # channels before the spatial axes
    axes = tuple(range(2, nd + 2))
    dt = jnp.promote_types(jnp.promote_types(x.dtype, g.dtype), jnp.float32)
    xf = jnp.fft.rfftn(jnp.transpose(xp.astype(dt), first), s=size, axes=axes)  # (N, C, *freq)
    gf = jnp.fft.rfftn(jnp.transpose(g.astype(dt), first), s=size, axes=axes)  # (N, O, *freq)
    cf = jnp.einsum("nc...,no...->co...", xf, jnp.conj(gf))
    k = jnp.fft.irfftn(cf, s=size, axes=axes)[(slice(None), slice(None), *(slice(0, q) for q in ks))]
    return jnp.transpose(k, (*range(2, nd + 2), 0, 1)).astype(g.dtype)


def _explicit_padding(padding, kernel_size: Sequence[int]) -> list[tuple[int, int]] | None:
    """``padding`` as ``[(low, high)] * ndim`` for stride 1, or None when it is not a supported form."""
    if isinstance(padding, str):
        if padding == "VALID":
            return [(0, 0)] * len(kernel_size)
        if padding == "SAME":  # lax's SAME for stride 1: the extra pixel of an even kernel goes high
            return [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in kernel_size]
        return None
    if isinstance(padding, int):
        return [(padding, padding)] * len(kernel_size)
    pads = list(padding)
    if len(pads) != len(kernel_size):
        return None
    out = []
    for p in pads:
        if isinstance(p, int):
            out.append((p, p))
        elif isinstance(p, Sequence) and len(p) == 2 and all(isinstance(q, int) for q in p):
            out.append((int(p[0]), int(p[1])))
        else:
            return None
    return out


def _channels_last(nd: int) -> lax.ConvDimensionNumbers:
    """``(N, *spatial, C)`` input, ``(*kernel, C, O)`` kernel, ``(N, *spatial, O)`` output."""
    sp = tuple(range(1, nd + 1))
    return lax.ConvDimensionNumbers(lhs_spec=(0, nd + 1, *sp), rhs_spec=(nd + 1, nd, *range(nd)), out_spec=(0, nd + 1, *sp))


def _xla(x: jax.Array, kernel: jax.Array, pads: list[tuple[int, int]], precision) -> jax.Array:
    """XLA's convolution; an unpadded one computed with one zero row below the input, that output row dropped."""
    nd = kernel.ndim - 2
    unpadded = all(p == (0, 0) for p in pads)
    if unpadded:
        pads = [(0, 1), *pads[1:]]
    y = lax.conv_general_dilated(x, kernel, (1,) * nd, pads, dimension_numbers=_channels_last(nd), precision=precision)
    return y[:, :-1] if unpadded else y


def _depth_band(depth: int, kd: int, low: int, high: int) -> np.ndarray:
    """``S[z, i, o] = 1`` where output depth ``o`` reads input depth ``i`` through kernel tap ``z`` (zero padding implicit)."""
    out = depth + low + high - kd + 1
    z, i, o = np.meshgrid(np.arange(kd), np.arange(depth), np.arange(out), indexing="ij")
    return (i == o + z - low).astype(np.float32)


def _folded_3d(x: jax.Array, kernel: jax.Array, pads: list[tuple[int, int]], precision) -> jax.Array:
    """A 3-D convolution as a 2-D one over ``(H, W)`` with the depth folded into the channels (banded kernel)."""
    n, h, w, d, c = x.shape
    ky, kx, kd, _, o = kernel.shape
    band = _depth_band(d, kd, *pads[2])
    d_out = band.shape[-1]
    k2 = jnp.einsum("yxzco,zid->yxicdo", kernel, jnp.asarray(band, kernel.dtype), precision=lax.Precision.HIGHEST)
    y = _xla(x.reshape(n, h, w, d * c), k2.reshape(ky, kx, d * c, d_out * o), pads[:2], precision)
    return y.reshape(*y.shape[:3], d_out, o)


def _folds(x: jax.Array) -> bool:
    """Whether a 3-D input ``(N, H, W, D, C)`` is short enough along ``D`` to be folded into the channels."""
    return x.shape[3] <= MAX_FOLD_DEPTH


def _forward(x: jax.Array, kernel: jax.Array, pads: list[tuple[int, int]], precision) -> jax.Array:
    """The CPU forms: a short 3-D convolution folded into 2-D, every other one XLA's (unpadded given a padded row)."""
    if kernel.ndim == 5 and _folds(x):
        return _folded_3d(x, kernel, pads, precision)
    return _xla(x, kernel, pads, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _forward_fft_grad(x: jax.Array, kernel: jax.Array, pads: tuple[tuple[int, int], ...], precision) -> jax.Array:
    """:func:`_forward` whose kernel gradient is :func:`kernel_gradient_fft` (input gradient: XLA's autodiff)."""
    return _forward(x, kernel, list(pads), precision)


def _forward_fft_grad_fwd(x, kernel, pads, precision):
    return _forward(x, kernel, list(pads), precision), (x, kernel)


def _forward_fft_grad_bwd(pads, precision, res, g):
    x, kernel = res
    dx = jax.vjp(lambda x: _forward(x, kernel, list(pads), precision), x)[1](g)[0]
    dk = kernel_gradient_fft(x, g, kernel.shape[:-2], pads).astype(kernel.dtype)
    return dx, dk


_forward_fft_grad.defvjp(_forward_fft_grad_fwd, _forward_fft_grad_bwd)


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: str | Sequence[tuple[int, int]] = "VALID",
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """Stride-1 N-d cross-correlation (what ``nnx.Conv`` computes) in the forms XLA:CPU runs fast.

    See the module docstring: on the CPU backend an unpadded convolution is computed with one zero
    row of padding and that row of the output dropped, and a 3-D one whose last spatial axis has at
    most :data:`MAX_FOLD_DEPTH` samples as a 2-D one with that axis folded into the channels. Both are
    exact rewrites (the same products, summed in XLA's order). Reverse-mode differentiable; a 2-D or
    3-D layer's kernel gradient is computed in the frequency domain where :func:`fft_kernel_gradient_pays`
    (see the module docstring; :func:`xla_kernel_gradient` for forward mode). On other backends this
    is ``lax.conv_general_dilated`` with the same padding.

    Args:
      x: ``(N, *spatial, C)`` channels-last input (``spatial`` of any rank >= 1).
      kernel: ``(*kernel_size, C, O)`` kernel (HWIO for 2-D).
      padding: ``"VALID"``, ``"SAME"`` or ``[(low, high)]`` per spatial axis (zero padding).
      precision: precision of the products (``None``: the backend default).

    Returns:
      ``(N, *out_spatial, O)``, ``out_spatial = spatial + low + high - kernel_size + 1``; equal
      to ``lax.conv_general_dilated`` with the matching dimension numbers up to summation order.
    """
    ks = tuple(int(k) for k in kernel.shape[:-2])
    nd = len(ks)
    pads = _explicit_padding(padding, ks)
    if pads is None or x.ndim != nd + 2:
        raise ValueError(f"conv: unsupported padding {padding!r} or input rank {x.ndim} for a {nd}-d kernel")
    if any(s + lo + hi < k for s, k, (lo, hi) in zip(x.shape[1:-1], ks, pads)):
        raise ValueError(f"conv: input spatial shape {x.shape[1:-1]} with padding {pads} smaller than the kernel {ks}")
    if not enabled():  # other backends: their own convolution, as given
        return lax.conv_general_dilated(x, kernel, (1,) * nd, pads, dimension_numbers=_channels_last(nd), precision=precision)
    padded = [s + lo + hi for s, (lo, hi) in zip(x.shape[1:-1], pads)]
    folded = nd == 3 and _folds(x)
    if nd in (2, 3) and _CUSTOM_VJP[-1] and fft_kernel_gradient_pays(
        batch=x.shape[0], padded=padded, kernel=ks, cin=kernel.shape[-2], cout=kernel.shape[-1], folded=folded
    ):
        return _forward_fft_grad(x, kernel, tuple(pads), precision)
    return _forward(x, kernel, pads, precision)


def fast_path_applies(module: nnx.Conv) -> bool:
    """Whether :class:`Conv` takes :func:`conv`'s path for this layer's settings (not the backend)."""
    one = all(s == 1 for s in _tuple(module.strides, len(module.kernel_size)))
    no_dil = all(d == 1 for d in _tuple(module.input_dilation, len(module.kernel_size))) and all(
        d == 1 for d in _tuple(module.kernel_dilation, len(module.kernel_size))
    )
    return (
        one
        and no_dil
        and module.feature_group_count == 1
        and module.mask is None
        and module.preferred_element_type is None
        and module.conv_general_dilated is lax.conv_general_dilated
        and _explicit_padding(module.padding, module.kernel_size) is not None
    )


def _tuple(v, n: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * n
    if isinstance(v, int):
        return (v,) * n
    return tuple(v)


class Conv(nnx.Conv):
    """``nnx.Conv`` whose stride-1 forward pass on the CPU is :func:`conv` (same parameters and call).

    Inputs are channels-last ``(N, *spatial, in_features)`` (or unbatched ``(*spatial, in)``);
    see the module docstring for when that path is taken.
    """

    def __call__(self, inputs: jax.Array) -> jax.Array:
        nd = len(self.kernel_size)
        if not enabled() or not fast_path_applies(self) or inputs.ndim not in (nd + 1, nd + 2):
            return super().__call__(inputs)
        unbatched = inputs.ndim == nd + 1
        x = inputs[None] if unbatched else inputs
        kernel = self.kernel[...]
        x, kernel = self.promote_dtype((x, kernel), dtype=self.dtype)
        y = conv(x, kernel, padding=self.padding, precision=self.precision)
        if self.bias is not None:
            y = y + self.bias[...].astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
        return y[0] if unbatched else y
