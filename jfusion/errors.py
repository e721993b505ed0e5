"""Input validation at jfusion's public boundary.

Every public entry point (``fuse``, ``pansharpen``, ``evaluate``, the CLI) checks its
arguments once, eagerly, with the helpers here and raises :class:`FusionInputError`
with a message that names the argument and what to pass instead. Jitted internals
assume valid input and never re-check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FusionInputError",
    "as_float_image",
    "is_traced",
    "validate_sources",
    "validate_image",
]

_INT_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_FLOAT_KINDS = "f"
_RANGE_SLACK = 1e-4


class FusionInputError(ValueError):
    """Raised for input that cannot be fused: the message says what is wrong and what to pass."""


def is_traced(*xs: Any) -> bool:
    """True when any of ``xs`` is a JAX tracer (the caller runs inside ``jit``/``vmap``/``grad``).

    Public functions that are both an eager entry point and jit/vmap-able (e.g.
    :func:`jfusion.sparse.cbpdn`) check their arguments only when this is ``False``.
    """
    return any(isinstance(x, jax.core.Tracer) for x in xs)


@jax.jit
def _device_stats(x: jax.Array) -> jax.Array:
    """``(count of NaN/Inf, min, max)`` per leading index of ``x (S, ...)`` as float32 ``(S, 3)``, on device."""
    flat = x.reshape(x.shape[0], -1).astype(jnp.float32)
    ok = jnp.isfinite(flat)
    bad = jnp.sum(~ok, axis=1).astype(jnp.float32)
    lo = jnp.min(jnp.where(ok, flat, jnp.inf), axis=1)
    hi = jnp.max(jnp.where(ok, flat, -jnp.inf), axis=1)
    return jnp.stack([bad, lo, hi], axis=1)


@jax.jit
def _device_float(x: jax.Array) -> jax.Array:
    if x.dtype == jnp.uint8:
        return x.astype(jnp.float32) / 255.0
    if x.dtype == jnp.uint16:
        return x.astype(jnp.float32) / 65535.0
    return x.astype(jnp.float32)


def _check_dtype(dtype: Any, name: str) -> None:
    dtype = np.dtype(dtype)
    if dtype not in _INT_SCALE and dtype.kind not in _FLOAT_KINDS:
        raise FusionInputError(
            f"{name}: unsupported dtype {dtype}; pass uint8, uint16 or float images in [0, 1] "
            "(jfusion.read_image does this conversion)."
        )


def _check_stats(stats: np.ndarray, names: Sequence[str], *, check_range: bool) -> None:
    """The finite and [0, 1] checks of :func:`as_float_image` from ``(count bad, min, max)`` rows."""
    for (bad, lo, hi), name in zip(stats, names):
        if bad:
            raise FusionInputError(f"{name}: contains {int(bad)} NaN/Inf value(s); clean or mask them before fusing.")
        if check_range and (lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK):
            raise FusionInputError(
                f"{name}: float values span [{float(lo):g}, {float(hi):g}] but jfusion expects [0, 1]; "
                "divide 8-bit data by 255 (16-bit by 65535) or read files with jfusion.read_image."
            )


def _validate_device_stack(x: jax.Array, names: Sequence[str], *, check_range: bool) -> jax.Array:
    """Validate ``x (S, ...)`` on its device: one jitted reduction, ``3 S`` scalars fetched, no host copy of ``x``."""
    _check_dtype(x.dtype, names[0])
    out = _device_float(x)
    if x.dtype in _INT_SCALE:
        return out
    _check_stats(np.asarray(jax.device_get(_device_stats(out))), names, check_range=check_range)
    return out


def _to_numpy(x: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic inputs
        raise FusionInputError(f"{name}: cannot be read as an array ({err}).") from err
    if arr.dtype == object:
        raise FusionInputError(
            f"{name}: has dtype object (ragged or mixed input?); pass a numeric array of shape (H, W) or (H, W, C)."
        )
    return arr


def as_float_image(x: Any, *, name: str = "image", check_range: bool = True) -> np.ndarray:
    """Return ``x`` as a float32 NumPy array in [0, 1] without modifying ``x``.

    uint8 is divided by 255 and uint16 by 65535; float16/32/64 are kept (and must lie in
    [0, 1] when ``check_range``). Any other dtype (bool, signed ints, complex) is refused.
    """
    arr = _to_numpy(x, name)
    if arr.size == 0 or 0 in arr.shape:
        raise FusionInputError(f"{name}: is empty (shape {arr.shape}); pass a non-empty image.")
    if arr.dtype in _INT_SCALE:
        return arr.astype(np.float32) / np.float32(_INT_SCALE[arr.dtype])
    if arr.dtype.kind not in _FLOAT_KINDS:
        raise FusionInputError(
            f"{name}: unsupported dtype {arr.dtype}; pass uint8, uint16 or float images in [0, 1] "
            "(jfusion.read_image does this conversion)."
        )
    out = arr.astype(np.float32)
    if not np.all(np.isfinite(out)):
        n_bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise FusionInputError(f"{name}: contains {n_bad} NaN/Inf value(s); clean or mask them before fusing.")
    if check_range:
        lo, hi = float(out.min()), float(out.max())
        if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
            raise FusionInputError(
                f"{name}: float values span [{lo:g}, {hi:g}] but jfusion expects [0, 1]; "
                "divide 8-bit data by 255 (16-bit by 65535) or read files with jfusion.read_image."
            )
    return out


def validate_image(x: Any, *, name: str = "image", check_range: bool = True, keep_device: bool = False) -> np.ndarray | jax.Array:
    """Validate one image of shape ``(H, W)`` or ``(H, W, C)`` and return it as float32.

    With ``keep_device``, a ``jax.Array`` is checked and converted on its device and returned
    as a ``jax.Array`` (only the NaN/Inf count, min and max come to the host); other input
    is returned as NumPy.
    """
    if keep_device and isinstance(x, jax.Array):
        if x.size == 0 or 0 in x.shape:
            raise FusionInputError(f"{name}: is empty (shape {x.shape}); pass a non-empty image.")
        if x.ndim not in (2, 3):
            raise FusionInputError(f"{name}: has shape {x.shape}; pass (H, W) or (H, W, C).")
        return _validate_device_stack(x[None], [name], check_range=check_range)[0]
    arr = as_float_image(x, name=name, check_range=check_range)
    if arr.ndim not in (2, 3):
        raise FusionInputError(f"{name}: has shape {arr.shape}; pass (H, W) or (H, W, C).")
    return arr


def validate_sources(
    sources: Any,
    *,
    min_sources: int = 2,
    max_sources: int | None = None,
    check_range: bool = True,
    keep_device: bool = False,
) -> np.ndarray | jax.Array:
    """Validate the sources of one scene and stack them as float32 ``(S, H, W)`` or ``(S, H, W, C)``.

    ``sources`` is a sequence of images or an array whose leading axis indexes sources. A 3-D
    array whose last axis has 1, 3 or 4 entries is read as one ``(H, W, C)`` image and refused
    (one source), not as a stack of images 1, 3 or 4 pixels wide.
    Grey and colour sources may be mixed: a grey source is promoted to RGB by repeating it
    (its chroma is then neutral, so the colour rule takes chroma from the colour sources).

    With ``keep_device`` (what :func:`jfusion.fuse` passes), input held in ``jax.Array`` values
    is validated on its device and returned as a ``jax.Array``: the array never travels to
    the host and back (only ``3 S`` scalars, the NaN/Inf counts, minima and maxima, do).
    NumPy input is validated and returned as NumPy in either case.
    """
    if isinstance(sources, (str, bytes)):
        raise FusionInputError("sources: got a string; pass images (arrays), e.g. [jfusion.read_image(p) for p in paths].")
    if keep_device and isinstance(sources, jax.Array):
        if sources.ndim not in (3, 4):
            raise FusionInputError(
                f"sources: array of shape {sources.shape}; pass a list of images or an array (S, H, W) / (S, H, W, C)."
            )
        out = sources
        if sources.shape[0]:  # the per-image checks, in the order of the NumPy path
            if 0 in sources.shape:
                raise FusionInputError(f"sources[0]: is empty (shape {sources.shape[1:]}); pass a non-empty image.")
            names = [f"sources[{i}]" for i in range(sources.shape[0])]
            out = _validate_device_stack(sources, names, check_range=check_range)
        _check_counts(sources.shape[0], min_sources, max_sources)
        return out[..., 0] if out.ndim == 4 and out.shape[3] == 1 else out
    if isinstance(sources, Sequence) or (hasattr(sources, "__iter__") and not hasattr(sources, "shape")):
        items = [
            validate_image(s, name=f"sources[{i}]", check_range=check_range, keep_device=keep_device)
            for i, s in enumerate(sources)
        ]
    else:
        arr = _to_numpy(sources, "sources")
        if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
            raise FusionInputError(
                f"sources: one array of shape {arr.shape} is a single (H, W, C) image, but fusion needs two or more "
                "sources; pass a list of >= 2 images or an (S, H, W[, C]) stack (a grey stack 1, 3 or 4 pixels wide: "
                "pass it as a list)."
            )
        if arr.ndim not in (3, 4):
            raise FusionInputError(
                f"sources: array of shape {arr.shape}; pass a list of images or an array (S, H, W) / (S, H, W, C)."
            )
        items = [validate_image(arr[i], name=f"sources[{i}]", check_range=check_range) for i in range(arr.shape[0])]
    _check_counts(len(items), min_sources, max_sources)
    sizes = {it.shape[:2] for it in items}
    if len(sizes) > 1:
        desc = ", ".join(f"sources[{i}]={it.shape}" for i, it in enumerate(items))
        raise FusionInputError(f"sources: images differ in size ({desc}); register/resize them to one size first.")
    chans = {1 if it.ndim == 2 else it.shape[2] for it in items}
    if len(chans) > 1:
        if chans <= {1, 3}:
            items = [_xp(it).repeat(it[..., None], 3, axis=2) if it.ndim == 2 else it for it in items]
            items = [it if it.shape[2] == 3 else _xp(it).repeat(it, 3, axis=2) for it in items]
        else:
            desc = ", ".join(f"sources[{i}]: {1 if it.ndim == 2 else it.shape[2]}" for i, it in enumerate(items))
            raise FusionInputError(
                f"sources: band counts differ ({desc}); grey and RGB may be mixed, other band counts must match."
            )
    items = [it[..., 0] if it.ndim == 3 and it.shape[2] == 1 else it for it in items]
    if any(isinstance(it, jax.Array) for it in items):
        return jnp.stack(items, axis=0)
    return np.stack(items, axis=0)


def _xp(x: Any) -> Any:
    return jnp if isinstance(x, jax.Array) else np


def _check_counts(n: int, min_sources: int, max_sources: int | None) -> None:
    if n < min_sources:
        raise FusionInputError(
            f"sources: got {n} source(s) but fusion needs at least {min_sources}; pass two or more images of one scene."
        )
    if max_sources is not None and n > max_sources:
        raise FusionInputError(f"sources: got {n} sources; this method takes at most {max_sources}.")
