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


def _finite(n_bad: float, name: str) -> None:
    if n_bad:
        raise FusionInputError(f"{name}: contains {int(n_bad)} NaN/Inf value(s); mask or fill them (e.g. with the band median) first.")


def _stats(*arrays: np.ndarray | jax.Array) -> np.ndarray:
    """``(count of NaN/Inf, min, max)`` of each array as a NumPy ``(n, 3)``; device arrays reduce on device."""
    from jfusion.errors import _device_stats

    if any(isinstance(a, jax.Array) for a in arrays):
        rows = [_device_stats(jnp.asarray(a).reshape(1, -1))[0] for a in arrays]
        return np.asarray(jax.device_get(jnp.stack(rows)))
    out = []
    for a in arrays:
        ok = np.isfinite(a)
        out.append((a.size - np.count_nonzero(ok), np.min(a, where=ok, initial=np.inf), np.max(a, where=ok, initial=-np.inf)))
    return np.asarray(out, np.float64)


def _infer_bit_depth(top: float, dtype: np.dtype) -> int | None:
    if dtype == np.uint8:
        return 8
    if dtype == np.uint16:
        return 11 if top < 2048 else 12 if top < 4096 else 14 if top < 16384 else 16
    return None


def _as_arrays(a: ArrayLike, b: ArrayLike, names: str, *, keep_device: bool) -> tuple[Any, Any]:
    """Both as NumPy arrays, or both as ``jax.Array`` when ``keep_device`` and either is one (no host round trip)."""
    try:
        if keep_device and (isinstance(a, jax.Array) or isinstance(b, jax.Array)):
            return jnp.asarray(a), jnp.asarray(b)
        return np.asarray(a), np.asarray(b)
    except Exception as err:
        raise FusionInputError(f"{names}: cannot be read as arrays ({err}).") from err


def validate_pair(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    ratio: int | None = None,
    bit_depth: int | None = None,
    keep_device: bool = False,
) -> tuple[np.ndarray, np.ndarray, int, int | None]:
    """Check an MS/PAN pair at the public boundary.

    Returns ``(ms float32 (h, w, B), pan float32 (H, W), ratio, bit_depth)``; ``bit_depth``
    is inferred for uint8 (8) and uint16 data (the smallest of 11/12/14/16 bits that holds
    the values) and ``None`` for float data unless given. With ``keep_device`` (what
    :func:`pansharpen` passes), ``jax.Array`` input is checked on its device and returned as
    ``jax.Array`` values: only the NaN/Inf counts, minima and maxima come to the host.

    Raises:
      FusionInputError: wrong ranks, a size ratio that is not one integer for both axes (or
        that contradicts ``ratio``), NaN/Inf, negative values or values above ``2**bit_depth - 1``.
    """
    ms_raw, pan_raw = _as_arrays(ms, pan, "ms/pan", keep_device=keep_device)
    for arr, name in ((ms_raw, "ms"), (pan_raw, "pan")):
        if np.dtype(arr.dtype).kind not in "uif" or arr.size == 0:
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
    (ms_bad, ms_lo, ms_hi), (pan_bad, pan_lo, pan_hi) = _stats(ms_f, pan_f)
    _finite(ms_bad, "ms")
    _finite(pan_bad, "pan")
    hi = max(float(ms_hi), float(pan_hi))
    depth = bit_depth if bit_depth is not None else _infer_bit_depth(hi, np.dtype(ms_raw.dtype))
    lo = min(float(ms_lo), float(pan_lo))
    if lo < 0:
        raise FusionInputError(f"ms/pan: negative values (min {lo:g}); pass radiance/DN data (>= 0) in the sensor's scale.")
    if depth is not None:
        top = 2.0**depth - 1.0
        if hi > top * (1 + 1e-6):
            raise FusionInputError(
                f"ms/pan: values up to {hi:g} exceed the {depth}-bit range [0, {top:g}]; pass bit_depth= the data's true "
                "radiometric depth (e.g. 11 for 11-bit data, 16 for full 16-bit)."
            )
    return ms_f, pan_f, r, depth


def validate_hs_pair(
    hs: ArrayLike, hr: ArrayLike, *, ratio: int | None = None, keep_device: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Check an HS cube ``(h, w, L)`` and its high-resolution MS/RGB ``(r h, r w, C)`` or PAN ``(r h, r w)``.

    Returns float32 arrays (a PAN as ``(r h, r w, 1)``) and ``r``; ``keep_device`` as in
    :func:`validate_pair`.
    """
    hs_a, hr_a = _as_arrays(hs, hr, "hs/ms", keep_device=keep_device)
    hs_a, hr_a = hs_a.astype(np.float32), hr_a.astype(np.float32)
    if hr_a.ndim == 2:
        hr_a = hr_a[..., None]
    if hs_a.ndim != 3 or hr_a.ndim != 3:
        raise FusionInputError(f"hs {hs_a.shape} / ms {hr_a.shape}: pass the HS cube (h, w, L) and the high-resolution MS (H, W, C) or PAN (H, W).")
    (hs_bad, _, _), (hr_bad, _, _) = _stats(hs_a, hr_a)
    _finite(hs_bad, "hs")
    _finite(hr_bad, "ms")
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
    *,
    method: str = "gsa",
    ratio: int | None = None,
    sensor: str | None = None,
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
        A learned network given ``weights=`` of another sensor than ``sensor`` whose result scores a
        lower full-resolution QNR than EXP on this pair (:data:`jfusion.pansharpening.learned.CROSS_SENSOR_RULE`).
    """
    info, ms_in, pan_in, r, options = prepare(
        ms, pan, method=method, ratio=ratio, sensor=sensor, bit_depth=bit_depth, options=options, keep_device=True
    )
    # One jitted program per (method, shapes, ratio, sensor, options): preprocessing, network and
    # rescaling of the learned methods included, so a repeated call compiles nothing.
    try:
        key = tuple(sorted(options.items()))
        hash(key)
    except TypeError:
        out = info.fn(jnp.asarray(ms_in), jnp.asarray(pan_in), ratio=r, sensor=sensor, **options)
    else:
        out = _compiled(method, r, sensor, key)(jnp.asarray(ms_in), jnp.asarray(pan_in))
    if info.family == "learned":
        # a network on another sensor's data: returned only if it beats EXP on QNR (learned.CROSS_SENSOR_RULE)
        learned.check_cross_sensor(method, sensor, ms_in, pan_in, out, ratio=r, weights=options.get("weights"))
    return out


def prepare(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    method: str,
    ratio: int | None = None,
    sensor: str | None = None,
    bit_depth: int | None = None,
    options: dict[str, Any] | None = None,
    keep_device: bool = False,
) -> tuple[PansharpeningInfo, np.ndarray, np.ndarray, int, dict[str, Any]]:
    """The eager boundary of :func:`pansharpen`: checks and converts the inputs once.

    Returns ``(info, ms float32, pan float32, ratio, options)`` where ``options`` are the
    method's options completed with what the call implies (``bit_depth`` for learned methods,
    bicubic interpolation for ratios that are not powers of two). The method's own
    requirements (band counts, shipped weights for ``sensor``: its registered ``check``) are
    checked here too, so the pure function never validates. ``keep_device``: as in
    :func:`validate_pair` (the arrays are then ``jax.Array`` values for device input).
    """
    info = get_info(method)
    options = validate_options(info, options)
    if info.family == "mshs":
        if sensor is not None:
            # `sensor` names a sensor (MTF gains, per-sensor weights); the MS/HS models are per scene.
            raise FusionInputError(
                f"method {method!r}: sensor={sensor!r} names a pan-sharpening sensor; the MS/HS models are trained per "
                f"scene: pass scene= one of {sorted(mshs.shipped_cnn3d())} (or none to pick by band counts)."
            )
        hs_f, hr_f, r = validate_hs_pair(ms, pan, ratio=ratio, keep_device=keep_device)
        if info.check is not None:
            info.check(hs_f.shape, hr_f.shape, ratio=r, sensor=sensor, options=options)
        return info, hs_f, hr_f, r, options
    try:
        sensor_mtf(sensor)
    except ValueError as err:
        raise FusionInputError(str(err)) from None
    ms_in, pan_in, r, depth = validate_pair(ms, pan, ratio=ratio, bit_depth=bit_depth, keep_device=keep_device)
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
    if info.check is not None:
        info.check(ms_in.shape, pan_in.shape, ratio=r, sensor=sensor, options=options)
    if info.family == "learned":
        learned.check_radiometry(method, sensor, ms_in, pan_in, bit_depth=depth, weights=options.get("weights"))
    return info, ms_in, pan_in, r, options
