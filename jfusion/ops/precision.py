"""Products at full float32 precision on every backend.

XLA's default precision for a float32 matrix product or convolution depends on the backend: exact
float32 on a CPU, TF32 (a 10-bit mantissa, relative error about 5e-4) on NVIDIA GPUs since
Ampere, bfloat16 passes on a TPU. jfusion's fixed arithmetic (colour conversions, wavelet filter
banks, pursuit, component substitution, metric sums) is validated against reference libraries to
1e-5 or tighter, and methods such as "fusing identical sources returns the source" only hold at
float32 precision, so every such product asks for ``HIGHEST`` explicitly through these helpers.

The learned models' own layers keep the backend default (their training and inference speed on a
GPU or TPU depend on it); see ``jfusion.models``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

HIGHEST = jax.lax.Precision.HIGHEST

__all__ = ["HIGHEST", "dot", "einsum", "matmul"]


def matmul(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """``a @ b`` at full precision (``jnp.matmul`` semantics, batch dimensions broadcast)."""
    return jnp.matmul(a, b, precision=HIGHEST)


def dot(a: ArrayLike, b: ArrayLike) -> jax.Array:
    """``jnp.dot(a, b)`` at full precision."""
    return jnp.dot(a, b, precision=HIGHEST)


def einsum(subscripts: str, *operands: ArrayLike) -> jax.Array:
    """``jnp.einsum(subscripts, *operands)`` at full precision."""
    return jnp.einsum(subscripts, *operands, precision=HIGHEST)
