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
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax

__all__ = ["Conv", "conv", "enabled", "fast_path_applies", "MAX_FOLD_DEPTH"]

MAX_FOLD_DEPTH = 32
"""Largest last-axis length of a 3-D input that :func:`conv` folds into the channels (the FLOPs grow as ``D / kd``)."""


def enabled() -> bool:
    """Whether the models take :func:`conv`'s path: on the CPU backend (checked at trace time)."""
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
    exact rewrites (the same products, summed in XLA's order), differentiable by autodiff. On other
    backends this is ``lax.conv_general_dilated`` with the same padding.

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
    if nd == 3 and x.shape[3] <= MAX_FOLD_DEPTH:
        return _folded_3d(x, kernel, pads, precision)
    return _xla(x, kernel, pads, precision)


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
