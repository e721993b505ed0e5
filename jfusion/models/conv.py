"""Convolution as cache-sized patch matrix products, the layer the models use on a CPU.

XLA:CPU runs a stride-1 convolution with few input channels (PNN's 9x9 over 7 channels, SRCNN's
9x9 over the MS bands, the 3-D CNN's single-channel volumes) an order of magnitude below its
own matrix product (``benchmarks/README.md``, "Learned models"). The same arithmetic written as
im2col, ``patches (M, k*k*C) @ kernel (k*k*C, O)``, runs at the matrix product's speed provided
the patch matrix stays in cache: :func:`conv` cuts the output into blocks of rows along the
first spatial axis, builds each block's patches from shifted slices (no gather) and maps the
blocks with ``lax.map``; one block holds about ``block_bytes`` of patches (2 MiB).

:class:`Conv` is ``nnx.Conv`` with that forward pass: the same parameters (``kernel`` HWIO,
``bias``), initialisers and call signature, so weights written for ``nnx.Conv`` load unchanged.
It takes the patch path for stride 1, no dilation, one feature group, no mask and ``"VALID"``,
``"SAME"`` or explicit integer padding, on the CPU backend; anything else (and every other
backend, where cuDNN / the TPU convolution units are the fast path) is ``nnx.Conv``'s own call.
Results equal ``lax.conv_general_dilated`` up to float32 summation order (relative 1e-6).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

__all__ = ["BLOCK_BYTES", "Conv", "conv", "enabled", "patch_path_applies"]

BLOCK_BYTES = 2**21
"""Target size of one block's patch matrix (float32 bytes): about a core's L2 cache."""


def enabled() -> bool:
    """Whether the models take the patch-matmul path: on the CPU backend (checked at trace time)."""
    return jax.default_backend() == "cpu"


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


def conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    padding: str | Sequence[tuple[int, int]] = "VALID",
    block_bytes: int = BLOCK_BYTES,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """Stride-1 N-d cross-correlation (what ``nnx.Conv`` computes) by blocked patch matmuls.

    The gradient is blocked the same way (a custom VJP): the input's is the correlation of the
    zero-padded output gradient with the flipped, transposed kernel (this function again), the
    kernel's the sum over blocks of ``patches^T @ output gradient``.

    Args:
      x: ``(N, *spatial, C)`` channels-last input (``spatial`` of any rank >= 1).
      kernel: ``(*kernel_size, C, O)`` kernel (HWIO for 2-D).
      padding: ``"VALID"``, ``"SAME"`` or ``[(low, high)]`` per spatial axis (zero padding).
      block_bytes: target bytes of one block's patch matrix (float32).
      precision: precision of the matrix products (``None``: the backend default).

    Returns:
      ``(N, *out_spatial, O)``, ``out_spatial = spatial + low + high - kernel_size + 1``; equal
      to ``lax.conv_general_dilated`` with the matching dimension numbers up to summation order.
    """
    ks = tuple(int(k) for k in kernel.shape[:-2])
    nd = len(ks)
    pads = _explicit_padding(padding, ks)
    if pads is None or x.ndim != nd + 2:
        raise ValueError(f"conv: unsupported padding {padding!r} or input rank {x.ndim} for a {nd}-d kernel")
    if any(p != (0, 0) for p in pads):
        x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    if any(s < k for s, k in zip(x.shape[1:-1], ks)):
        raise ValueError(f"conv: input spatial shape {x.shape[1:-1]} smaller than the kernel {ks}")
    return _conv_valid(x, kernel, block_bytes, precision)


def _blocking(x_shape: tuple[int, ...], ks: tuple[int, ...], itemsize: int, block_bytes: int) -> tuple[int, int]:
    """(rows per block, number of blocks) along the first spatial axis of a 'valid' output."""
    n, c = x_shape[0], x_shape[-1]
    out_sp = [s - k + 1 for s, k in zip(x_shape[1:-1], ks)]
    row_bytes = n * math.prod(out_sp[1:]) * math.prod(ks) * c * itemsize
    rb = int(max(1, min(out_sp[0], block_bytes // max(row_bytes, 1))))
    return rb, -(-out_sp[0] // rb)


def _patches(xs: jax.Array, ks: tuple[int, ...], out_sp: tuple[int, ...]) -> jax.Array:
    """``(N, *out_sp, prod(ks) * C)`` patches of ``xs`` ('valid'), taps in row-major kernel order, channel fastest."""
    cols = [
        xs[(slice(None), *(slice(d, d + s) for d, s in zip(offs, out_sp)))]
        for offs in itertools.product(*(range(k) for k in ks))
    ]
    return jnp.concatenate(cols, -1)


def _row_blocks(x: jax.Array, ks: tuple[int, ...], rb: int, nb: int) -> jax.Array:
    """``x`` zero-padded along axis 1 so that ``nb`` blocks of ``rb`` output rows fit."""
    need = nb * rb + ks[0] - 1
    if need > x.shape[1]:
        x = jnp.pad(x, [(0, 0), (0, need - x.shape[1])] + [(0, 0)] * (x.ndim - 2))
    return x


def _forward(x: jax.Array, kernel: jax.Array, block_bytes: int, precision) -> jax.Array:
    ks = tuple(int(k) for k in kernel.shape[:-2])
    n, c, o = x.shape[0], x.shape[-1], kernel.shape[-1]
    out_sp = tuple(s - k + 1 for s, k in zip(x.shape[1:-1], ks))
    wm = kernel.reshape(math.prod(ks) * c, o)
    if math.prod(ks) == 1:  # a 1x1 convolution is one product
        return jnp.matmul(x, wm, precision=precision)
    rb, nb = _blocking(x.shape, ks, x.dtype.itemsize, block_bytes)
    if nb == 1:
        return jnp.matmul(_patches(x, ks, out_sp), wm, precision=precision)
    x = _row_blocks(x, ks, rb, nb)
    sub = (rb, *out_sp[1:])

    def block(i: jax.Array) -> jax.Array:
        xs = lax.dynamic_slice_in_dim(x, i * rb, rb + ks[0] - 1, axis=1)
        return jnp.matmul(_patches(xs, ks, sub), wm, precision=precision)

    y = lax.map(block, jnp.arange(nb))  # (nb, N, rb, *rest, O)
    y = jnp.moveaxis(y, 0, 1).reshape(n, nb * rb, *out_sp[1:], o)
    return y[:, : out_sp[0]]


def _kernel_grad(x: jax.Array, dy: jax.Array, ks: tuple[int, ...], block_bytes: int, precision) -> jax.Array:
    """``sum_blocks patches^T @ dy`` as a ``(*ks, C, O)`` kernel gradient."""
    c, o = x.shape[-1], dy.shape[-1]
    out_sp = dy.shape[1:-1]
    rb, nb = _blocking(x.shape, ks, x.dtype.itemsize, block_bytes)
    k_c = math.prod(ks) * c
    if nb == 1:
        g = jnp.matmul(_patches(x, ks, out_sp).reshape(-1, k_c).T, dy.reshape(-1, o), precision=precision)
        return g.reshape(*ks, c, o)
    x = _row_blocks(x, ks, rb, nb)
    dy = jnp.pad(dy, [(0, 0), (0, nb * rb - out_sp[0])] + [(0, 0)] * (dy.ndim - 2))
    sub = (rb, *out_sp[1:])

    def step(acc: jax.Array, i: jax.Array) -> tuple[jax.Array, None]:
        xs = lax.dynamic_slice_in_dim(x, i * rb, rb + ks[0] - 1, axis=1)
        dys = lax.dynamic_slice_in_dim(dy, i * rb, rb, axis=1)
        p = _patches(xs, ks, sub).reshape(-1, k_c)
        return acc + jnp.matmul(p.T, dys.reshape(-1, o), precision=precision), None

    g, _ = lax.scan(step, jnp.zeros((k_c, o), jnp.result_type(x, dy)), jnp.arange(nb))
    return g.reshape(*ks, c, o)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_valid(x: jax.Array, kernel: jax.Array, block_bytes: int, precision) -> jax.Array:
    return _forward(x, kernel, block_bytes, precision)


def _conv_valid_fwd(x, kernel, block_bytes, precision):
    return _forward(x, kernel, block_bytes, precision), (x, kernel)


def _conv_valid_bwd(block_bytes, precision, res, dy):
    x, kernel = res
    ks = tuple(int(k) for k in kernel.shape[:-2])
    nd = len(ks)
    dyp = jnp.pad(dy, [(0, 0), *((k - 1, k - 1) for k in ks), (0, 0)])
    flipped = jnp.swapaxes(kernel[(slice(None, None, -1),) * nd], -1, -2)
    dx = _conv_valid(dyp, flipped, block_bytes, precision)
    dk = _kernel_grad(x, dy, ks, block_bytes, precision)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


_conv_valid.defvjp(_conv_valid_fwd, _conv_valid_bwd)


def patch_path_applies(module: nnx.Conv) -> bool:
    """Whether :class:`Conv` takes the patch-matmul path for this layer's settings (not the backend)."""
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
    see the module docstring for when the patch path is taken.
    """

    def __call__(self, inputs: jax.Array) -> jax.Array:
        nd = len(self.kernel_size)
        if not enabled() or not patch_path_applies(self) or inputs.ndim not in (nd + 1, nd + 2):
            return super().__call__(inputs)
        unbatched = inputs.ndim == nd + 1
        x = inputs[None] if unbatched else inputs
        kernel = self.kernel[...]
        x, kernel = self.promote_dtype((x, kernel), dtype=self.dtype)
        y = conv(x, kernel, padding=self.padding, precision=self.precision)
        if self.bias is not None:
            y = y + self.bias[...].astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))
        return y[0] if unbatched else y
