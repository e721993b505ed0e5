"""Remote-sensing fusion: pan-sharpening and MS/HS fusion under Wald's protocol.

``pansharpen(ms, pan, method=..., ratio=None, sensor=None)`` is the entry point: MS
``(h, w, B)`` and PAN ``(r h, r w)`` in the sensor's own scale in, ``(r h, r w, B)`` in the
same scale out. Methods: ``list_pansharpening_methods()``; the pure (jit-able) function
behind a name: ``get_pansharpening_method(name)``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError
from jfusion.options import validate_options
from jfusion.pansharpening import cs, learned, mra, mshs, wald  # noqa: F401  (registers the methods)
from jfusion.pansharpening.io import Scene, read_multiband, read_scene, write_multiband
from jfusion.pansharpening.registry import PansharpeningInfo, get_info, list_pansharpening_methods
from jfusion.pansharpening.tiling import pansharpen_tiled
from jfusion.pansharpening.wald import SENSORS, degrade, reduced_resolution, sensor_mtf

__all__ = [
    "PansharpeningInfo",
    "SENSORS",
    "Scene",
    "degrade",
    "get_pansharpening_method",
    "list_pansharpening_methods",
    "pansharpen",
    "pansharpen_tiled",
    "prepare",
    "read_multiband",
    "read_scene",
    "reduced_resolution",
    "validate_hs_pair",
    "validate_pair",
    "write_multiband",
]


def get_pansharpening_method(name: str):
    """The pure function ``fn(ms, pan, *, ratio, sensor, **options)`` registered as ``name``."""
    return get_info(name).fn


def _finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise FusionInputError(f"{name}: contains {n_bad} NaN/Inf value(s); mask or fill them (e.g. with the band median) first.")


def _infer_bit_depth(ms: np.ndarray, pan: np.ndarray, dtype: np.dtype) -> int | None:
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        top = max(float(ms.max()), float(pan.max()))
        return 11 if top < 2048 else 12 if top < 4096 else 14 if top < 16384 else 16
    return None


def validate_pair(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    ratio: int | None = None,
    bit_depth: int | None = None,
) -> tuple[np.ndarray, np.ndarray, int, int | None]:
    """Check an MS/PAN pair at the public boundary.

    Returns ``(ms float32 (h, w, B), pan float32 (H, W), ratio, bit_depth)``; ``bit_depth``
    is inferred for uint8 (8) and uint16 data (the smallest of 11/12/14/16 bits that holds
    the values) and ``None`` for float data unless given.

    Raises:
      FusionInputError: wrong ranks, a size ratio that is not one integer for both axes (or
        that contradicts ``ratio``), NaN/Inf, negative values or values above ``2**bit_depth - 1``.
    """
    try:
        ms_raw = np.asarray(ms)
        pan_raw = np.asarray(pan)
    except Exception as err:
        raise FusionInputError(f"ms/pan: cannot be read as arrays ({err}).") from err
    for arr, name in ((ms_raw, "ms"), (pan_raw, "pan")):
        if arr.dtype.kind not in "uif" or arr.size == 0:
            raise FusionInputError(f"{name}: dtype {arr.dtype}, size {arr.size}; pass a non-empty numeric array.")
    if ms_raw.ndim == 2:
        ms_raw = ms_raw[..., None]
    if pan_raw.ndim == 3 and pan_raw.shape[2] == 1:
        pan_raw = pan_raw[..., 0]
    if ms_raw.ndim != 3:
        raise FusionInputError(f"ms: has shape {ms_raw.shape}; pass the multispectral image as (h, w, B), bands last.")
    if pan_raw.ndim != 2:
        raise FusionInputError(f"pan: has shape {pan_raw.shape}; pass the panchromatic image as (H, W).")
    h, w, _ = ms_raw.shape
    hp, wp = pan_raw.shape
    if hp % h or wp % w or hp // h != wp // w or hp < h:
        raise FusionInputError(
            f"pan {pan_raw.shape} / ms {ms_raw.shape[:2]}: the size ratio is not one integer for both axes; "
            "pass a PAN exactly r times the MS size (e.g. crop both to multiples of the ratio)."
        )
    r = hp // h
    if ratio is not None and int(ratio) != r:
        raise FusionInputError(f"ratio={ratio} but pan {pan_raw.shape} is {r} times ms {ms_raw.shape[:2]}; pass ratio={r} or matching images.")
    ms_f = ms_raw.astype(np.float32)
    pan_f = pan_raw.astype(np.float32)
    _finite(ms_f, "ms")
    _finite(pan_f, "pan")
    depth = bit_depth if bit_depth is not None else _infer_bit_depth(ms_raw, pan_raw, ms_raw.dtype)
    lo = min(float(ms_f.min()), float(pan_f.min()))
    if lo < 0:
        raise FusionInputError(f"ms/pan: negative values (min {lo:g}); pass radiance/DN data (>= 0) in the sensor's scale.")
    if depth is not None:
        top = 2.0**depth - 1.0
        hi = max(float(ms_f.max()), float(pan_f.max()))
        if hi > top * (1 + 1e-6):
            raise FusionInputError(
                f"ms/pan: values up to {hi:g} exceed the {depth}-bit range [0, {top:g}]; pass bit_depth= the data's true "
                "radiometric depth (e.g. 11 for 11-bit data, 16 for full 16-bit)."
            )
    return ms_f, pan_f, r, depth


def validate_hs_pair(hs: ArrayLike, hr: ArrayLike, *, ratio: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Check an HS cube ``(h, w, L)`` and its high-resolution MS/RGB ``(r h, r w, C)`` or PAN ``(r h, r w)``.

    Returns float32 arrays (a PAN as ``(r h, r w, 1)``) and ``r``.
    """
    hs_a = np.asarray(hs, np.float32)
    hr_a = np.asarray(hr, np.float32)
    if hr_a.ndim == 2:
        hr_a = hr_a[..., None]
    if hs_a.ndim != 3 or hr_a.ndim != 3:
        raise FusionInputError(f"hs {hs_a.shape} / ms {hr_a.shape}: pass the HS cube (h, w, L) and the high-resolution MS (H, W, C) or PAN (H, W).")
    _finite(hs_a, "hs")
    _finite(hr_a, "ms")
    h, w, _ = hs_a.shape
    if hr_a.shape[0] % h or hr_a.shape[1] % w or hr_a.shape[0] // h != hr_a.shape[1] // w:
        raise FusionInputError(f"ms {hr_a.shape[:2]} / hs {hs_a.shape[:2]}: the size ratio is not one integer; crop both to multiples of the ratio.")
    r = hr_a.shape[0] // h
    if ratio is not None and ratio != r:
        raise FusionInputError(f"ratio={ratio} but the images are {r} apart; pass ratio={r}.")
    return hs_a, hr_a, r


@functools.lru_cache(maxsize=128)
def _compiled(name: str, ratio: int, sensor: str | None, options: tuple[tuple[str, Any], ...]):
    fn = get_info(name).fn
    return jax.jit(functools.partial(fn, ratio=ratio, sensor=sensor, **dict(options)))


def pansharpen(
    ms: ArrayLike,
    pan: ArrayLike,
    method: str = "gsa",
    ratio: int | None = None,
    sensor: str | None = None,
    *,
    bit_depth: int | None = None,
    **options: Any,
) -> jax.Array:
    """Pan-sharpen a multispectral image.

    Args:
      ms: ``(h, w, B)`` multispectral image in the sensor's scale (uint8/uint16/float).
      pan: ``(r h, r w)`` panchromatic image, same scale.
      method: a registered name (``jfusion.list_methods(task="pansharpening")``; the MS/HS
        methods, ``task="mshs"``, take an HS cube as ``ms`` and the high-resolution MS/RGB
        ``(H, W, C)`` or PAN ``(H, W)`` as ``pan``).
      ratio: the PAN/MS ratio (inferred from the shapes; checked when given).
      sensor: sensor name for MTF gains and learned weights (``QB``, ``IKONOS``, ``GeoEye1``,
        ``WV2``, ``WV3``; ``None`` = generic MTF).
      bit_depth: radiometric depth (inferred for integer input; learned methods need it for float input).
      **options: method options (e.g. ``interp="bicubic"``), checked against the method's typed
        options (``jfusion methods NAME`` lists them; :func:`jfusion.options.validate_options`).

    Returns:
      ``(r h, r w, B)`` float32 in the sensor's scale.

    Raises:
      FusionInputError: see :func:`validate_pair`; unknown method, sensor or option; option values
        of the wrong type or out of range.
    """
    info, ms_in, pan_in, r, options = prepare(ms, pan, method=method, ratio=ratio, sensor=sensor, bit_depth=bit_depth, options=options)
    # One jitted program per (method, shapes, ratio, sensor, options): preprocessing, network and
    # rescaling of the learned methods included, so a repeated call compiles nothing.
    try:
        key = tuple(sorted(options.items()))
        hash(key)
    except TypeError:
        return info.fn(jnp.asarray(ms_in), jnp.asarray(pan_in), ratio=r, sensor=sensor, **options)
    return _compiled(method, r, sensor, key)(jnp.asarray(ms_in), jnp.asarray(pan_in))


def prepare(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    method: str,
    ratio: int | None = None,
    sensor: str | None = None,
    bit_depth: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[PansharpeningInfo, np.ndarray, np.ndarray, int, dict[str, Any]]:
    """The eager boundary of :func:`pansharpen`: checks and converts the inputs once.

    Returns ``(info, ms float32, pan float32, ratio, options)`` where ``options`` are the
    method's options completed with what the call implies (``bit_depth`` for learned methods,
    bicubic interpolation for ratios that are not powers of two).
    """
    info = get_info(method)
    options = validate_options(info, options)
    if info.family == "mshs":
        hs_f, hr_f, r = validate_hs_pair(ms, pan, ratio=ratio)
        return info, hs_f, hr_f, r, options
    try:
        sensor_mtf(sensor)
    except ValueError as err:
        raise FusionInputError(str(err)) from None
    ms_in, pan_in, r, depth = validate_pair(ms, pan, ratio=ratio, bit_depth=bit_depth)
    if options.get("interp", "23tap") == "23tap" and r & (r - 1):
        options["interp"] = "bicubic"
    if info.learned:
        if depth is None:
            # The one bit-depth rule: integer data carry their depth (validate_pair); float data
            # have none, and a learned model normalises by 2**bit_depth, so it is never guessed.
            top = max(float(ms_in.max()), float(pan_in.max()))
            raise FusionInputError(
                f"ms/pan: float data (max {top:g}) carry no bit depth, and {method!r} normalises its input by "
                "2**bit_depth; pass bit_depth= the data's radiometric depth (e.g. 11 for 11-bit DN, as the model "
                f"was trained), or the data as uint8/uint16 in sensor units."
            )
        options["bit_depth"] = depth
    return info, ms_in, pan_in, r, options
