"""Two-scale (base/detail) split by a Tikhonov low-pass filter (CSR fusion's decomposition).

The base layer is ``argmin_b 1/2 |b - s|^2 + lmbda/2 (|g_r * b|^2 + |g_c * b|^2)`` with
``g_r, g_c`` the two-tap differences ``[-1, 1]`` along rows and columns, solved in the DFT
domain on the image padded symmetrically by ``npad`` pixels::

    B(w) = S(w) / (1 + lmbda (|G_r(w)|^2 + |G_c(w)|^2)),  |G(w)|^2 = 2 - 2 cos(w)

then cropped; the detail layer is ``s - b``. Same formula and padding as
``sporco.signal.tikhonov_filter`` and MATLAB SPORCO's ``lowpass``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.filters import pad2d

__all__ = ["tikhonov_split"]


@functools.partial(jax.jit, static_argnames=("lmbda", "npad"))
def tikhonov_split(image: ArrayLike, *, lmbda: float = 5.0, npad: int = 16) -> tuple[jax.Array, jax.Array]:
    """Split ``image (..., H, W)`` into a Tikhonov low-pass base and the detail remainder.

    Args:
        image: ``(..., H, W)`` real array (filtering on the last two axes).
        lmbda: regularisation weight of the gradient penalty (CSR fusion: 5).
        npad: symmetric padding on each side before the FFT (CSR fusion: 16).

    Returns:
        ``(base, detail)``, both shaped like ``image``; ``base + detail == image``.
    """
    x = jnp.asarray(image)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    h, w = x.shape[-2:]
    xp = pad2d(x, npad, npad, npad, npad, border="symmetric") if npad > 0 else x
    hp, wp = xp.shape[-2:]
    wr = jnp.fft.rfftfreq(wp).astype(x.dtype) * (2 * jnp.pi)
    wc = jnp.fft.fftfreq(hp).astype(x.dtype) * (2 * jnp.pi)
    den = 1.0 + lmbda * ((2.0 - 2.0 * jnp.cos(wc))[:, None] + (2.0 - 2.0 * jnp.cos(wr))[None, :])
    base = jnp.fft.irfft2(jnp.fft.rfft2(xp, axes=(-2, -1)) / den, s=(hp, wp), axes=(-2, -1))
    base = base[..., npad : npad + h, npad : npad + w].astype(x.dtype)
    return base, x - base
