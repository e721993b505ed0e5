"""Wald's protocol: sensor-MTF-matched degradation, MS interpolation, reduced/full-resolution pairs.

The conventions follow Vivone et al.'s pan-sharpening toolbox (IEEE TGRS 2015):

* **MTF filter** (``mtf_kernel``): a 41x41 Gaussian whose frequency response at the MS
  Nyquist frequency ``1/(2 r)`` equals the sensor's Nyquist gain ``G``
  (``sigma_f = (N-1) f_c / 2 / sqrt(-2 ln G)`` with ``f_c = 1/r``), turned into a spatial
  FIR filter by the window method with a circularly symmetric Kaiser window (beta 0.5),
  negative taps clipped and normalised to unit sum. Applied as correlation with
  replicate borders (MATLAB ``imfilter(..., 'replicate')``).
* **Decimation** keeps every ``r``-th sample starting at ``r // 2`` (MATLAB
  ``imresize(..., 1/r, 'nearest')``).
* **23-tap interpolator** (``interp23tap``): ``log2 r`` dyadic steps, each inserting zeros
  (the first step puts the samples on odd positions, later ones on even positions) and
  filtering rows and columns with the 23-tap symmetric polynomial (Lagrange-type) kernel
  with circular borders. MS pixel ``i`` lands on HR pixel ``r i + r/2``, the inverse
  of the decimation above.
* ``bicubic`` (Keys, a = -0.5, half-pixel centres) is the alternative many DL papers use.

All arrays are ``(H, W, B)`` with bands last in the sensor's scale; every function is
scale-equivariant (linear), so no radiometric range is needed here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.filters import filter2d_dense, pad2d, separable_filter
from jfusion.ops.precision import HIGHEST
from jfusion.ops.resample import resize

__all__ = [
    "SENSORS",
    "SensorMTF",
    "sensor_mtf",
    "mtf_kernel",
    "mtf_filter",
    "mtf_filter_pan",
    "decimate",
    "degrade",
    "interp23tap",
    "interp23tap_kernel",
    "upsample_ms",
    "WaldPair",
    "reduced_resolution",
    "split_test_region",
    "nyquist_gain",
]

Interp = Literal["23tap", "bicubic"]


@dataclasses.dataclass(frozen=True)
class SensorMTF:
    """Nyquist gains of a sensor's MTF: one per MS band (cycled if the image has more bands) and the PAN's."""

    name: str
    ms_gains: tuple[float, ...]
    pan_gain: float


# Nyquist gains from the toolbox (Vivone et al. 2015 / 2020 benchmark); "none" is its generic default.
SENSORS: dict[str, SensorMTF] = {
    "QB": SensorMTF("QB", (0.34, 0.32, 0.30, 0.22), 0.15),
    "IKONOS": SensorMTF("IKONOS", (0.26, 0.28, 0.29, 0.28), 0.17),
    "GeoEye1": SensorMTF("GeoEye1", (0.23, 0.23, 0.23, 0.23), 0.16),
    "WV2": SensorMTF("WV2", (0.35,) * 7 + (0.27,), 0.11),
    "WV3": SensorMTF("WV3", (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315), 0.5),
    "none": SensorMTF("none", (0.3,), 0.15),
}

_ALIASES = {
    "qb": "QB", "quickbird": "QB",
    "ikonos": "IKONOS", "ik": "IKONOS",
    "geoeye1": "GeoEye1", "geoeye-1": "GeoEye1", "ge1": "GeoEye1", "geoeye": "GeoEye1", "wv4": "GeoEye1",
    "wv2": "WV2", "worldview2": "WV2", "worldview-2": "WV2",
    "wv3": "WV3", "worldview3": "WV3", "worldview-3": "WV3",
    "none": "none", "generic": "none", "default": "none",
}


def sensor_mtf(sensor: str | None) -> SensorMTF:
    """The :class:`SensorMTF` for a sensor name (case-insensitive aliases; ``None`` -> generic)."""
    if sensor is None:
        return SENSORS["none"]
    key = _ALIASES.get(str(sensor).lower().replace("_", "").replace(" ", ""))
    if key is None:
        key = _ALIASES.get(str(sensor).lower())
    if key is None:
        raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSORS)} (or None for the generic MTF)")
    return SENSORS[key]


def _kaiser2d(n: int, beta: float) -> np.ndarray:
    t = np.arange(-(n - 1) / 2, (n + 1) / 2) / (n - 1)
    t1, t2 = np.meshgrid(t, t)
    radius = np.sqrt(t1 * t1 + t2 * t2)
    w1 = np.kaiser(n, beta)
    w = np.interp(radius, t, w1)
    w[radius > t[-1]] = 0.0
    return w


@functools.lru_cache(maxsize=64)
def _mtf_kernel_cached(gain: float, ratio: int, size: int) -> np.ndarray:
    fcut = 1.0 / ratio
    sigma_f = math.sqrt(((size - 1) * (fcut / 2.0)) ** 2 / (-2.0 * math.log(gain)))
    # fspecial('gaussian', size, sigma_f): the desired frequency response, peak-normalised.
    ax = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma_f**2))
    hd = g / g.max()
    # Window method (fwind1): inverse DFT of the centred response, times a 2-D Kaiser window.
    h = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(hd))).real
    h = h * _kaiser2d(size, 0.5)
    h = np.clip(h, 0.0, None)
    return (h / h.sum()).astype(np.float64)


def mtf_kernel(gain: float, ratio: int, *, size: int = 41) -> np.ndarray:
    """The ``size x size`` MTF-matched low-pass kernel whose response at ``1/(2 ratio)`` is ``gain``.

    Args:
      gain: Nyquist gain in (0, 1).
      ratio: resolution ratio (e.g. 4).
      size: kernel size (41 as in the toolbox).

    Returns:
      float64 NumPy array ``(size, size)`` summing to 1.
    """
    if not 0.0 < gain < 1.0:
        raise ValueError(f"gain must lie in (0, 1), got {gain}")
    return _mtf_kernel_cached(float(gain), int(ratio), int(size)).copy()


def nyquist_gain(kernel: np.ndarray, ratio: int) -> float:
    """The kernel's frequency response at the MS Nyquist frequency ``1/(2 ratio)`` along one axis."""
    k = np.asarray(kernel, np.float64)
    n = k.shape[0]
    f = 1.0 / (2.0 * ratio)
    phase = np.exp(-2j * np.pi * f * (np.arange(n) - (n - 1) / 2.0))
    return float(np.abs(k.sum(axis=0) @ phase))


def _band_gains(sensor: str | None, n_bands: int) -> tuple[float, ...]:
    gains = sensor_mtf(sensor).ms_gains
    return tuple(gains[i % len(gains)] for i in range(n_bands))


def _filter_bands(img: jax.Array, kernels: list[np.ndarray]) -> jax.Array:
    # img (H, W, B); one 2-D kernel per band, applied as one depthwise convolution
    # (replicate borders, as imfilter(..., 'replicate')).
    kh, kw = kernels[0].shape
    chans = jnp.moveaxis(img, -1, 0)
    xp = pad2d(chans, (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2, border="replicate")
    k = jnp.asarray(np.stack(kernels)[:, None], img.dtype)  # (B, 1, kh, kw)
    out = jax.lax.conv_general_dilated(
        xp[None], k, (1, 1), "VALID", feature_group_count=len(kernels), precision=HIGHEST
    )[0]
    return jnp.moveaxis(out, 0, -1)


def mtf_filter(ms: ArrayLike, *, ratio: int = 4, sensor: str | None = None) -> jax.Array:
    """Low-pass each band of ``ms`` ``(H, W, B)`` with its sensor MTF-matched filter (same shape)."""
    ms = jnp.asarray(ms, jnp.float32)
    gains = _band_gains(sensor, ms.shape[-1])
    return _filter_bands(ms, [mtf_kernel(g, ratio) for g in gains])


def mtf_filter_pan(pan: ArrayLike, *, ratio: int = 4, sensor: str | None = None) -> jax.Array:
    """Low-pass the PAN ``(H, W)`` with the sensor's PAN MTF-matched filter."""
    pan = jnp.asarray(pan, jnp.float32)
    return filter2d_dense(pan, mtf_kernel(sensor_mtf(sensor).pan_gain, ratio), border="replicate")


def decimate(img: ArrayLike, ratio: int) -> jax.Array:
    """Keep every ``ratio``-th row/column starting at ``ratio // 2`` (first two axes)."""
    img = jnp.asarray(img)
    o = ratio // 2
    return img[o::ratio, o::ratio]


def _bicubic_downscale(img: jax.Array, ratio: int) -> jax.Array:
    h, w = img.shape[:2]
    return resize(img, (h // ratio, w // ratio), method="bicubic", antialias=True)


def degrade(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    ratio: int = 4,
    sensor: str | None = None,
    degradation: Literal["mtf", "bicubic"] = "mtf",
) -> tuple[jax.Array, jax.Array]:
    """Degrade an MS/PAN pair by ``ratio`` (Wald's protocol inputs).

    Args:
      ms: ``(h, w, B)`` multispectral image.
      pan: ``(r h, r w)`` panchromatic image.
      ratio: resolution ratio.
      sensor: sensor name for the MTF gains (``None``: generic gains).
      degradation: ``"mtf"`` (sensor MTF filter + decimation) or ``"bicubic"`` (antialiased
        bicubic down-scaling, as in some DL papers).

    Returns:
      ``(ms_lr (h/r, w/r, B), pan_lr (h, w))``.
    """
    ms = jnp.asarray(ms, jnp.float32)
    pan = jnp.asarray(pan, jnp.float32)
    if degradation == "bicubic":
        return _bicubic_downscale(ms, ratio), _bicubic_downscale(pan, ratio)
    return decimate(mtf_filter(ms, ratio=ratio, sensor=sensor), ratio), decimate(mtf_filter_pan(pan, ratio=ratio, sensor=sensor), ratio)


# The toolbox's 23-tap interpolation filter: a symmetric half-band polynomial kernel
# (coefficients of the published list, doubled so that the zero-inserted signal keeps its gain).
_CDF23_HALF = (
    0.5, 0.305334091185, 0.0, -0.072698593239, 0.0, 0.021809577942, 0.0,
    -0.005192756653, 0.0, 0.000807762146, 0.0, -0.000060081482,
)


def interp23tap_kernel() -> np.ndarray:
    """The 23 taps of the dyadic interpolation kernel (sums to 2: it follows zero insertion)."""
    half = 2.0 * np.asarray(_CDF23_HALF)
    return np.concatenate([half[:0:-1], half])


def interp23tap(img: ArrayLike, ratio: int) -> jax.Array:
    """Upsample ``img`` ``(h, w)`` or ``(h, w, B)`` by ``ratio`` (a power of 2) with the 23-tap interpolator."""
    if ratio < 1 or ratio & (ratio - 1):
        raise ValueError(f"interp23tap needs a power-of-two ratio, got {ratio}")
    x = jnp.asarray(img, jnp.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[..., None]
    x = jnp.moveaxis(x, -1, 0)  # (B, h, w): filters act on the last two axes
    k = interp23tap_kernel()
    for step in range(int(round(math.log2(ratio)))):
        b, h, w = x.shape
        up = jnp.zeros((b, 2 * h, 2 * w), x.dtype)
        off = 1 if step == 0 else 0
        up = up.at[:, off::2, off::2].set(x)
        x = separable_filter(up, k, kernel_x=k, border="periodic")
    x = jnp.moveaxis(x, 0, -1)
    return x[..., 0] if squeeze else x


def upsample_ms(ms: ArrayLike, ratio: int, *, interp: Interp = "23tap") -> jax.Array:
    """Interpolate MS ``(h, w, B)`` to the PAN grid ``(r h, r w, B)`` (``"23tap"`` or ``"bicubic"``)."""
    ms = jnp.asarray(ms, jnp.float32)
    if interp == "23tap":
        return interp23tap(ms, ratio)
    if interp == "bicubic":
        h, w = ms.shape[:2]
        return resize(ms, (h * ratio, w * ratio), method="bicubic")
    raise ValueError(f"interp must be '23tap' or 'bicubic', got {interp!r}")


class WaldPair(NamedTuple):
    """Reduced-resolution inputs and their reference: ``ms_lr (h/r, w/r, B)``, ``pan_lr (h, w)``, ``reference (h, w, B)``."""

    ms_lr: jax.Array
    pan_lr: jax.Array
    reference: jax.Array


def reduced_resolution(
    ms: ArrayLike,
    pan: ArrayLike,
    *,
    ratio: int = 4,
    sensor: str | None = None,
    degradation: Literal["mtf", "bicubic"] = "mtf",
) -> WaldPair:
    """Wald's protocol: degrade MS and PAN by ``ratio``; the original MS is the reference."""
    ms_lr, pan_lr = degrade(ms, pan, ratio=ratio, sensor=sensor, degradation=degradation)
    return WaldPair(ms_lr, pan_lr, jnp.asarray(ms, jnp.float32))


# The held-out test region of every shipped scene: the right quarter (MS columns 240-319 of 320,
# PAN columns 960-1279). Training only ever sees the left three quarters.
TEST_FRACTION = 0.25


def split_test_region(ms: ArrayLike, pan: ArrayLike, ratio: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split a scene into its training part (left 3/4) and held-out test part (right 1/4).

    The MS split column is ``w - w // 4`` rounded down to a multiple of ``ratio`` so that the
    Wald-degraded test part still has whole low-resolution pixels; the PAN splits at ``ratio``
    times that column. Returns ``((ms_train, pan_train), (ms_test, pan_test))`` as NumPy arrays.
    """
    ms = np.asarray(ms)
    pan = np.asarray(pan)
    w = ms.shape[1]
    col = (w - w // 4) // ratio * ratio
    return (ms[:, :col], pan[:, : col * ratio]), (ms[:, col:], pan[:, col * ratio :])
