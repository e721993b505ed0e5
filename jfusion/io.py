"""Image files in and out.

Reading converts to float32 in [0, 1] by bit depth (uint8 / 255, uint16 / 65535 or the
``bit_depth`` you state, float kept as is) unless ``scale=False`` keeps the file's own
values (remote-sensing data in sensor units). Writing converts back: clipped, rounded,
to 8 or 16 bits (by default the depth the file type suggests) or float32 (TIFF only).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Literal

import numpy as np
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError

__all__ = ["ImageInfo", "read_image", "read_image_info", "write_image", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What a file held: its dtype, bit depth and shape (to write results back alike)."""

    dtype: str
    bit_depth: int | None
    shape: tuple[int, ...]


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise FusionInputError(f"{path}: unsupported file type; jfusion reads {', '.join(IMAGE_SUFFIXES)}.")
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            arr = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            arr = iio.imread(path)
    except FusionInputError:
        raise
    except Exception as err:
        raise FusionInputError(f"{path}: cannot be read as an image (truncated or corrupt?): {err}") from err
    arr = np.asarray(arr)
    if arr.size == 0:
        raise FusionInputError(f"{path}: the image is empty.")
    return arr


def read_image_info(path: str | os.PathLike) -> ImageInfo:
    """Dtype, bit depth and shape of an image file."""
    arr = _load(Path(path))
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(bool): 1}.get(arr.dtype)
    return ImageInfo(dtype=str(arr.dtype), bit_depth=depth, shape=tuple(arr.shape))


def read_image(
    path: str | os.PathLike,
    *,
    scale: bool = True,
    bit_depth: int | None = None,
    keep_alpha: bool = False,
) -> np.ndarray:
    """Read an image file as float32 ``(H, W)`` or ``(H, W, C)``.

    Args:
      path: PNG, JPEG, BMP or (multiband) TIFF file.
      scale: map integer data to [0, 1] by bit depth; ``False`` keeps the stored values.
      bit_depth: the data's true depth for integer files (e.g. 11 for 11-bit data in 16-bit
        containers); default the container's depth.
      keep_alpha: keep a fourth (alpha) channel of PNG/TIFF RGBA files (dropped by default).

    Raises:
      FusionInputError: missing, unsupported, truncated or corrupt files.
    """
    path = Path(path)
    arr = _load(path)
    if arr.ndim == 3 and arr.shape[2] == 4 and not keep_alpha and path.suffix.lower() not in _TIFF:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3):
        raise FusionInputError(f"{path}: has shape {arr.shape}; jfusion reads single images (H, W[, C]).")
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not scale:
        return arr.astype(np.float32)
    if arr.dtype.kind == "u":
        depth = bit_depth or arr.dtype.itemsize * 8
        return (arr.astype(np.float64) / (2.0**depth - 1.0)).astype(np.float32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    raise FusionInputError(f"{path}: pixel type {arr.dtype} is not supported (use unsigned 8/16-bit or float).")


def write_image(
    path: str | os.PathLike,
    image: ArrayLike,
    *,
    bit_depth: Literal[8, 16, 32] | None = None,
    scaled: bool = True,
) -> Path:
    """Write ``image`` ((H, W) or (H, W, C), values in [0, 1]) to ``path``.

    ``bit_depth`` 8 or 16 clips to [0, 1], scales and rounds; 32 writes float32 (TIFF only).
    Default: 8 for JPEG/BMP/PNG, 16 for TIFF. ``scaled=False`` writes the values as given
    (rounded to the integer type), for data in sensor units. Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise FusionInputError(f"{path}: unsupported file type; jfusion writes {', '.join(IMAGE_SUFFIXES)}.")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or img.size == 0:
        raise FusionInputError(f"image: shape {img.shape} cannot be written; pass (H, W) or (H, W, C).")
    if not np.all(np.isfinite(img)):
        raise FusionInputError("image: contains NaN/Inf; nothing was written.")
    if bit_depth is None:
        bit_depth = 16 if suffix in _TIFF else 8
    if bit_depth == 32:
        if suffix not in _TIFF:
            raise FusionInputError(f"{path}: float output needs a .tif/.tiff file.")
        out = img.astype(np.float32)
    elif bit_depth in (8, 16):
        if bit_depth == 16 and suffix in (".jpg", ".jpeg", ".bmp"):
            raise FusionInputError(f"{path}: {suffix} cannot hold 16-bit data; use .png or .tif.")
        dtype = np.uint8 if bit_depth == 8 else np.uint16
        top = float(np.iinfo(dtype).max)
        vals = img * top if scaled else img
        out = np.clip(np.rint(vals), 0, top).astype(dtype)
    else:
        raise FusionInputError(f"bit_depth must be 8, 16 or 32, got {bit_depth}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in _TIFF:
        import tifffile

        tifffile.imwrite(path, out, photometric="rgb" if out.ndim == 3 and out.shape[2] == 3 else None)
    else:
        import imageio.v3 as iio

        kwargs = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
        iio.imwrite(path, out, **kwargs)
    return path
