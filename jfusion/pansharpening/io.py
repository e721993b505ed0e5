"""Remote-sensing data conventions and file I/O.

Conventions (hold them everywhere in :mod:`jfusion.pansharpening`):

* MS / HS images are ``(H, W, B)`` float32 with bands last, **in the sensor's own scale**
  (digital numbers or reflectance); PAN is ``(H, W)`` in the same scale.
* The radiometric range is explicit: ``bit_depth`` (e.g. 11 for 11-bit data stored in
  16-bit containers) gives the nominal maximum ``2**bit_depth - 1``. Learned models see
  their inputs divided by ``2**bit_depth`` (the convention of the PNN family's released code).
* Files keep their scale: reading never rescales, writing rounds to 16-bit unsigned by
  default (or 8 / float32), and GeoTIFF georeferencing tags are carried from input to output.
  Multi-page TIFFs are read as a stack of bands ``(H, W, pages)``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from jfusion.errors import FusionInputError

__all__ = [
    "Scene",
    "HSScene",
    "GeoInfo",
    "read_scene",
    "read_hs_scene",
    "read_multiband",
    "write_multiband",
]

# GeoTIFF tags kept from input to output: ModelPixelScale, ModelTiepoint, ModelTransformation,
# GeoKeyDirectory, GeoDoubleParams, GeoAsciiParams, GDAL metadata / nodata.
_GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)


@dataclasses.dataclass(frozen=True)
class Scene:
    """One MS + PAN scene at its native resolution.

    Attributes:
      ms: ``(h, w, B)`` float32 in sensor units.
      pan: ``(r h, r w)`` float32 in sensor units.
      ratio: PAN/MS resolution ratio ``r``.
      sensor: sensor name (a key of :data:`jfusion.pansharpening.wald.SENSORS` or an alias).
      bit_depth: radiometric depth of the stored values (data range ``2**bit_depth - 1``).
      rgb: 0-based indices of the bands to show as R, G, B.
      name: short scene name.
    """

    ms: np.ndarray
    pan: np.ndarray
    ratio: int
    sensor: str
    bit_depth: int
    rgb: tuple[int, int, int]
    name: str = ""

    @property
    def data_range(self) -> float:
        """``2**bit_depth - 1``, the largest value the sensor can record."""
        return float(2**self.bit_depth - 1)


@dataclasses.dataclass(frozen=True)
class HSScene:
    """A hyperspectral cube with a co-registered higher-resolution image (MS, RGB or PAN).

    Attributes:
      hs: ``(h, w, L)`` float32 low-resolution hyperspectral cube.
      hr: ``(r h, r w, C)`` float32 high-resolution image (``C = 1`` for PAN); ``r = 1``
        when both share a grid (then the caller simulates the low-resolution HS).
      ratio: resolution ratio between ``hr`` and ``hs``.
      name: file stem.
    """

    hs: np.ndarray
    hr: np.ndarray
    ratio: int
    name: str = ""


def _scalar(d: dict, key: str, default: Any = None) -> Any:
    if key not in d:
        return default
    v = np.asarray(d[key]).ravel()
    return v[0].item() if v.size else default


def read_scene(path: str | os.PathLike) -> Scene:
    """Read a pan-sharpening scene from a MATLAB ``.mat`` file (``I_MS``, ``I_PAN``, ``L``, ``ratio``, ``sensor``).

    This is the layout of the toolbox / GRIP-UNINA sample files in ``shared/data/pansharpening``.

    Raises:
      FusionInputError: missing file or missing ``I_MS`` / ``I_PAN`` variables.
    """
    import scipy.io as sio

    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    try:
        d = sio.loadmat(path)
    except Exception as err:
        raise FusionInputError(f"{path}: cannot be read as a MATLAB .mat file: {err}") from err
    if "I_MS" not in d or "I_PAN" not in d:
        raise FusionInputError(f"{path}: expected variables I_MS and I_PAN, found {sorted(k for k in d if not k.startswith('__'))}.")
    ms = np.asarray(d["I_MS"])
    pan = np.asarray(d["I_PAN"])
    depth = _scalar(d, "L")
    if depth is None:
        depth = 8 if ms.dtype == np.uint8 else 11 if ms.max() < 2048 else 16
    rgb = tuple(int(i) - 1 for i in np.asarray(d.get("RGB_indexes", [[3, 2, 1]])).ravel()[:3])
    ratio = int(_scalar(d, "ratio", pan.shape[0] // ms.shape[0]))
    sensor = str(_scalar(d, "sensor", "none"))
    return Scene(
        ms=ms.astype(np.float32),
        pan=pan.astype(np.float32),
        ratio=ratio,
        sensor=sensor,
        bit_depth=int(depth),
        rgb=rgb,  # type: ignore[arg-type]
        name=path.stem,
    )


def read_hs_scene(path: str | os.PathLike) -> HSScene:
    """Read a hyperspectral ``.mat`` file of ``shared/data/hyperspectral``.

    Understands ``hyprImg`` + ``rgbImg`` (Houston DFC2018 crop, ratio 4), ``HSim`` + ``MSim``
    (Paris Hyperion + ALI MS on one grid, ratio 1) and ``HSim`` + ``PCim`` (Hyperion + ALI
    PAN, ratio 3).
    """
    import scipy.io as sio

    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    d = sio.loadmat(path)
    if "hyprImg" in d:
        hs, hr = d["hyprImg"], d["rgbImg"]
    elif "HSim" in d and "MSim" in d:
        hs, hr = d["HSim"], d["MSim"]
    elif "HSim" in d and "PCim" in d:
        hs, hr = d["HSim"], d["PCim"]
    else:
        raise FusionInputError(f"{path}: no known hyperspectral layout (hyprImg/rgbImg, HSim/MSim, HSim/PCim).")
    hs = np.asarray(hs, np.float32)
    hr = np.asarray(hr, np.float32)
    if hr.ndim == 2:
        hr = hr[..., None]
    ratio = hr.shape[0] // hs.shape[0]
    return HSScene(hs=hs, hr=hr, ratio=int(ratio), name=path.stem)


@dataclasses.dataclass(frozen=True)
class GeoInfo:
    """GeoTIFF georeferencing tags as read from a file: ``(code, dtype, count, value)`` tuples."""

    tags: tuple[tuple[int, int, int, Any], ...]


def read_multiband(path: str | os.PathLike, *, keep_dtype: bool = False) -> tuple[np.ndarray, GeoInfo | None]:
    """Read a (multiband) TIFF / GeoTIFF as float32 ``(H, W)`` or ``(H, W, B)`` in its stored scale.

    Band-sequential files (``(B, H, W)`` with planar configuration "separate") and multi-page
    files (one band per page) are returned bands last, ``(H, W, B)``. The GeoTIFF tags of the
    first page, if any, come back as :class:`GeoInfo` so that :func:`write_multiband` can write
    them to the output. ``keep_dtype=True`` returns the stored dtype (e.g. uint16, float32)
    instead of float32, so that callers can apply the bit-depth rule of
    :func:`jfusion.pansharpening.validate_pair` (integer data: inferred depth; float data: none).
    """
    import tifffile

    from jfusion.io import _tiff_array

    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise FusionInputError(f"{path}: multiband images are read from .tif/.tiff files.")
    try:
        with tifffile.TiffFile(path) as tif:
            arr = _tiff_array(tif)
            page = tif.pages[0]
            tags = []
            for code in _GEO_TAGS:
                tag = page.tags.get(code)
                if tag is not None:
                    tags.append((code, int(tag.dtype), int(tag.count), tag.value))
    except Exception as err:
        raise FusionInputError(f"{path}: cannot be read as a TIFF: {err}") from err
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise FusionInputError(f"{path}: holds an array of shape {arr.shape}; expected one (H, W) or (H, W, B) image.")
    if arr.dtype.kind not in "uif":
        raise FusionInputError(f"{path}: unsupported pixel type {arr.dtype}.")
    geo = GeoInfo(tuple(tags)) if tags else None
    return (arr if keep_dtype else arr.astype(np.float32)), geo


def write_multiband(
    path: str | os.PathLike,
    image: Any,
    *,
    geo: GeoInfo | None = None,
    bit_depth: int = 16,
    overwrite: bool = True,
) -> Path:
    """Write ``(H, W)`` / ``(H, W, B)`` data in sensor units to a TIFF (GeoTIFF when ``geo`` is given).

    Args:
      path: ``.tif`` / ``.tiff`` output path.
      image: values in the sensor's scale.
      geo: georeferencing read by :func:`read_multiband`, written back unchanged.
      bit_depth: 16 (rounded, clipped to [0, 65535]; the default), 8, or 32 (float32).
      overwrite: ``False`` refuses an existing ``path``. Either way the file is written under a
        temporary name and moved into place atomically (:func:`jfusion.io.atomic_output`).
    """
    import tifffile

    from jfusion.io import FusionOutputError, atomic_output

    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise FusionOutputError(f"{path}: multiband output must be a .tif/.tiff file.")
    img = np.asarray(image, np.float64)
    if img.ndim not in (2, 3) or img.size == 0 or not np.all(np.isfinite(img)):
        raise FusionInputError(f"image: shape {img.shape} with finite values expected, (H, W) or (H, W, B).")
    if bit_depth == 32:
        out = img.astype(np.float32)
    elif bit_depth in (8, 16):
        dtype = np.uint8 if bit_depth == 8 else np.uint16
        out = np.clip(np.rint(img), 0, np.iinfo(dtype).max).astype(dtype)
    else:
        raise FusionInputError(f"bit_depth must be 8, 16 or 32, got {bit_depth}.")
    extratags = [(code, dtype, count, value, True) for code, dtype, count, value in (geo.tags if geo else ())]
    planar = "contig" if out.ndim == 3 else None
    with atomic_output(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, out, photometric="minisblack", planarconfig=planar, extratags=extratags)
    return path
