"""2-D discrete wavelet transforms: multi-level DWT (``wavedec2``/``waverec2``) and the
undecimated, à trous stationary transform (``swt2``/``iswt2``), PyWavelets-compatible.

Everything works on the **last two axes** ``(..., H, W)``. Coefficients follow PyWavelets'
layout and sizes exactly:

* ``wavedec2`` -> ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]`` (coarsest first);
  ``cH`` is high-pass along rows (axis -2) and low-pass along columns, ``cV`` the opposite,
  ``cD`` high-pass along both.
* ``swt2`` -> the same layout (PyWavelets ``trim_approx=True``), every array ``(..., H, W)``;
  ``H`` and ``W`` must be divisible by ``2**level``.

Modes (``mode``): ``"symmetric"`` (half-sample symmetric extension, ``floor((N + F - 1)/2)``
coefficients) and ``"periodization"`` (periodic, ``ceil(N/2)`` coefficients, an odd length
first extended by repeating its last sample). The SWT is periodic, as in PyWavelets.

Each 1-D analysis/synthesis step is a gather with static index tables followed by a
contraction with the filter taps, so it jits once per shape; tables come from NumPy at
trace time. Filter banks: :data:`jfusion.transforms._wavelet_filters.FILTERS` (generated
offline from PyWavelets by ``tools/gen_wavelet_filters.py``; PyWavelets is not needed at
run time).

Index conventions (``h`` analysis, ``g`` synthesis filter, length ``F`` even, ``s`` a stride):

* DWT symmetric: ``c[o] = sum_j h[j] x_sym[2o + 1 - j]``.
* DWT periodization: ``c[o] = sum_j h[j] x[(2o + F/2 - j) mod N]``.
* IDWT: ``y[m] = sum_i c[i] g[m + F - 2 - 2i]`` (symmetric, valid part, length ``2M - F + 2``) or
  ``g[(m + F/2 - 1 - 2i) mod 2M]`` (periodization).
* SWT level ``j`` (``s = 2**(j-1)``): ``c[n] = sum_t h[t] x[(n + (F/2 - t) s) mod N]``; its
  inverse averages the two polyphase reconstructions:
  ``x[n] = 1/2 sum_t g[t] c[(n + (F/2 - 1 - t) s) mod N]`` (per axis).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.precision import matmul
from jfusion.transforms._wavelet_filters import FILTERS

__all__ = [
    "WaveletMode",
    "WAVELETS",
    "wavelet_filters",
    "dwt_max_level",
    "dwt2",
    "idwt2",
    "wavedec2",
    "waverec2",
    "swt2",
    "iswt2",
]

WaveletMode = Literal["symmetric", "periodization"]
WAVELETS: tuple[str, ...] = tuple(FILTERS)

Details = tuple[jax.Array, jax.Array, jax.Array]


def wavelet_filters(wavelet: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(dec_lo, dec_hi, rec_lo, rec_hi)`` of a named wavelet (haar, db1-db8, sym2-sym8, biorX.Y)."""
    try:
        banks = FILTERS[wavelet]
    except KeyError:
        raise ValueError(f"unknown wavelet {wavelet!r}; available: {', '.join(WAVELETS)}") from None
    return tuple(np.asarray(b, dtype=np.float64) for b in banks)  # type: ignore[return-value]


def _check_mode(mode: str) -> None:
    if mode not in ("symmetric", "periodization"):
        raise ValueError(f"mode must be 'symmetric' or 'periodization', got {mode!r}")


def dwt_max_level(n: int, wavelet: str) -> int:
    """PyWavelets' ``dwt_max_level``: ``floor(log2(n / (F - 1)))`` (0 if the signal is too short)."""
    f = len(wavelet_filters(wavelet)[0])
    if n < f - 1:
        return 0
    return int(math.floor(math.log2(n / (f - 1))))


def _coeff_len(n: int, f: int, mode: str) -> int:
    return (n + f - 1) // 2 if mode == "symmetric" else (n + 1) // 2


def _sym_index(i: np.ndarray, n: int) -> np.ndarray:
    p = 2 * n
    i = np.mod(i, p)
    return np.where(i < n, i, p - 1 - i)


@functools.lru_cache(maxsize=None)
def _analysis_table(n: int, f: int, mode: str) -> np.ndarray:
    m = _coeff_len(n, f, mode)
    o = np.arange(m)[:, None]
    j = np.arange(f)[None, :]
    if mode == "symmetric":
        return _sym_index(2 * o + 1 - j, n).astype(np.int32)
    n_even = n + (n % 2)
    return np.minimum(np.mod(2 * o + f // 2 - j, n_even), n - 1).astype(np.int32)


@functools.lru_cache(maxsize=None)
def _synthesis_table(m: int, f: int, mode: str, bank: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(bank)
    if mode == "symmetric":
        length, shift = 2 * m - f + 2, f - 2
    else:
        length, shift = 2 * m, f // 2 - 1
    k = f // 2
    idx = np.zeros((length, k), np.int32)
    wts = np.zeros((length, k), np.float64)
    for mm in range(length):
        col = 0
        for t in range(f):
            q = mm + shift - t
            if q % 2:
                continue
            i = q // 2
            if mode == "symmetric":
                if 0 <= i < m:
                    idx[mm, col], wts[mm, col] = i, g[t]
            else:
                idx[mm, col], wts[mm, col] = i % m, g[t]
            col += 1
    return idx, wts


def _on_axis(fn, x: jax.Array, axis: int) -> jax.Array:
    if axis == x.ndim - 1:
        return fn(x)
    return jnp.swapaxes(fn(jnp.swapaxes(x, axis, -1)), axis, -1)


def _analyse_last(x: jax.Array, lo: np.ndarray, hi: np.ndarray, mode: str) -> tuple[jax.Array, jax.Array]:
    idx = _analysis_table(x.shape[-1], len(lo), mode)
    taps = jnp.take(x, jnp.asarray(idx), axis=-1)  # (..., M, F)
    bank = jnp.asarray(np.stack([lo, hi], axis=1), dtype=x.dtype)  # (F, 2)
    out = matmul(taps, bank)
    return out[..., 0], out[..., 1]


def _synthesise_last(a: jax.Array, d: jax.Array, lo: np.ndarray, hi: np.ndarray, mode: str) -> jax.Array:
    m = a.shape[-1]
    f = len(lo)
    idx, w_lo = _synthesis_table(m, f, mode, tuple(lo.tolist()))
    _, w_hi = _synthesis_table(m, f, mode, tuple(hi.tolist()))
    jidx = jnp.asarray(idx)
    ta = jnp.take(a, jidx, axis=-1)
    td = jnp.take(d, jidx, axis=-1)
    return jnp.sum(ta * jnp.asarray(w_lo, a.dtype) + td * jnp.asarray(w_hi, a.dtype), axis=-1)


def _analyse(x: jax.Array, lo, hi, mode: str, axis: int) -> tuple[jax.Array, jax.Array]:
    if axis == x.ndim - 1:
        return _analyse_last(x, lo, hi, mode)
    a, d = _analyse_last(jnp.swapaxes(x, axis, -1), lo, hi, mode)
    return jnp.swapaxes(a, axis, -1), jnp.swapaxes(d, axis, -1)


def _synthesise(a: jax.Array, d: jax.Array, lo, hi, mode: str, axis: int) -> jax.Array:
    if axis == a.ndim - 1:
        return _synthesise_last(a, d, lo, hi, mode)
    return jnp.swapaxes(
        _synthesise_last(jnp.swapaxes(a, axis, -1), jnp.swapaxes(d, axis, -1), lo, hi, mode), axis, -1
    )


def dwt2(x: ArrayLike, *, wavelet: str = "haar", mode: WaveletMode = "symmetric") -> tuple[jax.Array, Details]:
    """One level of the 2-D DWT of ``(..., H, W)``: ``(cA, (cH, cV, cD))`` as ``pywt.dwt2``."""
    _check_mode(mode)
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    dec_lo, dec_hi, _, _ = wavelet_filters(wavelet)
    lo_r, hi_r = _analyse(x, dec_lo, dec_hi, mode, x.ndim - 2)  # along rows (axis -2)
    ca, cv = _analyse(lo_r, dec_lo, dec_hi, mode, x.ndim - 1)
    ch, cd = _analyse(hi_r, dec_lo, dec_hi, mode, x.ndim - 1)
    return ca, (ch, cv, cd)


def idwt2(coeffs: tuple[ArrayLike, Sequence[ArrayLike]], *, wavelet: str = "haar", mode: WaveletMode = "symmetric") -> jax.Array:
    """Inverse of :func:`dwt2` (``pywt.idwt2``)."""
    _check_mode(mode)
    ca, (ch, cv, cd) = coeffs
    ca, ch, cv, cd = (jnp.asarray(c) for c in (ca, ch, cv, cd))
    _, _, rec_lo, rec_hi = wavelet_filters(wavelet)
    ax = ca.ndim - 1
    lo_r = _synthesise(ca, cv, rec_lo, rec_hi, mode, ax)
    hi_r = _synthesise(ch, cd, rec_lo, rec_hi, mode, ax)
    return _synthesise(lo_r, hi_r, rec_lo, rec_hi, mode, ax - 1)


def wavedec2(
    x: ArrayLike, *, wavelet: str = "haar", level: int | None = None, mode: WaveletMode = "symmetric"
) -> list:
    """Multi-level 2-D DWT, ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]`` as ``pywt.wavedec2``.

    Args:
      x: ``(..., H, W)``.
      wavelet: a name in :data:`WAVELETS`.
      level: decomposition depth; ``None`` for ``dwt_max_level(min(H, W))``.
      mode: ``"symmetric"`` or ``"periodization"``.
    """
    x = jnp.asarray(x)
    if level is None:
        level = dwt_max_level(min(x.shape[-2:]), wavelet)
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    details = []
    a = x
    for _ in range(level):
        a, d = dwt2(a, wavelet=wavelet, mode=mode)
        details.append(d)
    return [a] + details[::-1]


def waverec2(coeffs: Sequence, *, wavelet: str = "haar", mode: WaveletMode = "symmetric") -> jax.Array:
    """Inverse of :func:`wavedec2` (``pywt.waverec2``; the approximation is trimmed to the detail size)."""
    a = jnp.asarray(coeffs[0])
    for d in coeffs[1:]:
        h, w = d[0].shape[-2:]
        a = a[..., :h, :w]
        a = idwt2((a, d), wavelet=wavelet, mode=mode)
    return a


@functools.lru_cache(maxsize=None)
def _swt_table(n: int, f: int, step: int, shift: int) -> np.ndarray:
    i = np.arange(n)[:, None]
    t = np.arange(f)[None, :]
    return np.mod(i + (shift - t) * step, n).astype(np.int32)


def _swt_last(x: jax.Array, lo, hi, step: int) -> tuple[jax.Array, jax.Array]:
    idx = _swt_table(x.shape[-1], len(lo), step, len(lo) // 2)
    taps = jnp.take(x, jnp.asarray(idx), axis=-1)
    out = matmul(taps, jnp.asarray(np.stack([lo, hi], axis=1), dtype=x.dtype))
    return out[..., 0], out[..., 1]


def _iswt_last(a: jax.Array, d: jax.Array, lo, hi, step: int) -> jax.Array:
    idx = jnp.asarray(_swt_table(a.shape[-1], len(lo), step, len(lo) // 2 - 1))
    ta = matmul(jnp.take(a, idx, axis=-1), jnp.asarray(lo, a.dtype))
    td = matmul(jnp.take(d, idx, axis=-1), jnp.asarray(hi, a.dtype))
    return 0.5 * (ta + td)


def _swt_axis(x, lo, hi, step, axis):
    if axis == x.ndim - 1:
        return _swt_last(x, lo, hi, step)
    a, d = _swt_last(jnp.swapaxes(x, axis, -1), lo, hi, step)
    return jnp.swapaxes(a, axis, -1), jnp.swapaxes(d, axis, -1)


def _iswt_axis(a, d, lo, hi, step, axis):
    if axis == a.ndim - 1:
        return _iswt_last(a, d, lo, hi, step)
    return jnp.swapaxes(_iswt_last(jnp.swapaxes(a, axis, -1), jnp.swapaxes(d, axis, -1), lo, hi, step), axis, -1)


def swt2(x: ArrayLike, *, wavelet: str = "haar", level: int = 1) -> list:
    """Stationary (undecimated, à trous) 2-D wavelet transform, as ``pywt.swt2(..., trim_approx=True)``.

    Args:
      x: ``(..., H, W)`` with ``H`` and ``W`` divisible by ``2**level``.
      wavelet: a name in :data:`WAVELETS`.
      level: number of levels (>= 1).

    Returns:
      ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]``, every array ``(..., H, W)``.
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    h, w = x.shape[-2:]
    if level < 1 or h % (2**level) or w % (2**level):
        raise ValueError(f"swt2 needs level >= 1 and H, W divisible by 2**level; got {(h, w)}, level {level}")
    dec_lo, dec_hi, _, _ = wavelet_filters(wavelet)
    details = []
    a = x
    for j in range(level):
        step = 2**j
        lo_r, hi_r = _swt_axis(a, dec_lo, dec_hi, step, a.ndim - 2)
        a, cv = _swt_axis(lo_r, dec_lo, dec_hi, step, a.ndim - 1)
        ch, cd = _swt_axis(hi_r, dec_lo, dec_hi, step, a.ndim - 1)
        details.append((ch, cv, cd))
    return [a] + details[::-1]


def iswt2(coeffs: Sequence, *, wavelet: str = "haar") -> jax.Array:
    """Inverse of :func:`swt2` (equals ``pywt.iswt2``; exact reconstruction)."""
    _, _, rec_lo, rec_hi = wavelet_filters(wavelet)
    a = jnp.asarray(coeffs[0])
    level = len(coeffs) - 1
    for k, (ch, cv, cd) in enumerate(coeffs[1:]):
        step = 2 ** (level - 1 - k)
        ax = a.ndim - 1
        lo_r = _iswt_axis(a, cv, rec_lo, rec_hi, step, ax)
        hi_r = _iswt_axis(ch, cd, rec_lo, rec_hi, step, ax)
        a = _iswt_axis(lo_r, hi_r, rec_lo, rec_hi, step, ax - 1)
    return a
