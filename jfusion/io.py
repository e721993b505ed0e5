"""Image files in and out.

Reading converts to float32 in [0, 1] by bit depth (uint8 / 255, uint16 / 65535 or the
``bit_depth`` you state, float kept as is) unless ``scale=False`` keeps the file's own
values (remote-sensing data in sensor units). Writing converts back: clipped, rounded,
to 8 or 16 bits (by default the depth the file type suggests) or float32 (TIFF only).
16-bit PNG (grey, grey + alpha, RGB, RGBA) is read and written at 16 bits; multi-page TIFFs
are read as a stack of bands ``(H, W, pages)``.

Every file the package writes (images, TIFFs, weights, tables) goes through
:func:`atomic_output`: a temporary name in the target's folder, then one atomic rename, so a
crash or Ctrl-C never leaves a partial file under the final name, and without ``overwrite``
the final name is created exclusively (two writers of one path: one wins, the other fails).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "FusionOutputError",
    "ImageInfo",
    "atomic_output",
    "channels_fit",
    "check_output_path",
    "copy_file",
    "probe_folder",
    "read_image",
    "read_radiance",
    "RADIANCE_SUFFIXES",
    "read_image_info",
    "write_bytes",
    "write_image",
    "write_radiance",
    "write_text",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_TIFF = (".tif", ".tiff")


class FusionOutputError(FusionInputError):
    """An output that cannot be written: it exists (and overwriting was not asked for), its folder is
    not writable, its file type is unsupported or cannot hold the data, or writing failed."""


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What a file held: its dtype, bit depth and shape (to write results back alike)."""

    dtype: str
    bit_depth: int | None
    shape: tuple[int, ...]


def _png_bit_depth(path: Path) -> int | None:
    """The bit depth stored in a PNG's header (IHDR), or None when the header cannot be read."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24]


def _imagecodecs():
    try:
        import imagecodecs
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise FusionInputError("16-bit PNG files need the imagecodecs package: pip install imagecodecs") from err
    return imagecodecs


def _tiff_array(tif) -> np.ndarray:
    """The first series of an open ``tifffile.TiffFile`` as ``(H, W)`` or ``(H, W, B)``, bands last.

    One page: as stored (interleaved samples ``(H, W, S)``; planar-separate ``(S, H, W)`` is moved
    bands last). Several pages of one size: a stack whose pages are the bands, ``(H, W, pages)``,
    except tifffile's own layout of an ``(H, W, B)`` array with ``B > 4`` (``H`` pages of ``W x B``,
    recorded in its shape metadata), which comes back as written.
    """
    series = tif.series[0]
    arr = np.asarray(series.asarray())
    axes = series.axes
    keep = [i for i, n in enumerate(arr.shape) if n != 1 or axes[i] in "YX"]
    if len(keep) != arr.ndim:
        arr = arr.reshape([arr.shape[i] for i in keep])
        axes = "".join(axes[i] for i in keep)
    if arr.ndim == 3 and not axes.endswith("S"):
        pages = len(series.pages)
        n, _, pw = arr.shape
        tifffile_hwb = series.kind == "shaped" and pages > 1 and pw < min(n, arr.shape[1])
        if not tifffile_hwb:  # planar-separate samples or one band per page
            arr = np.moveaxis(arr, 0, -1)
    return arr


def _load(path: Path) -> np.ndarray:
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise FusionInputError(f"{path}: unsupported file type; jfusion reads {', '.join(IMAGE_SUFFIXES)}.")
    try:
        suffix = path.suffix.lower()
        if suffix in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                arr = _tiff_array(tif)
        elif suffix == ".png" and _png_bit_depth(path) == 16:
            arr = _imagecodecs().png_decode(path.read_bytes())  # Pillow reads 16-bit colour as 8-bit
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
    return _info(_load(Path(path)))


def read_image(
    path: str | os.PathLike,
    *,
    scale: bool = True,
    bit_depth: int | None = None,
    keep_alpha: bool = False,
) -> np.ndarray:
    """Read an image file as float32 ``(H, W)`` or ``(H, W, C)``.

    Args:
      path: PNG (8 or 16 bits), JPEG, BMP or (multiband, multi-page) TIFF file.
      scale: map integer data to [0, 1] by bit depth; ``False`` keeps the stored values.
      bit_depth: the data's true depth for integer files (e.g. 11 for 11-bit data in 16-bit
        containers); default the container's depth.
      keep_alpha: keep a fourth (alpha) channel of PNG/TIFF RGBA files (dropped by default).

    Raises:
      FusionInputError: missing, unsupported, truncated or corrupt files.
    """
    return _read_with_info(Path(path), scale=scale, bit_depth=bit_depth, keep_alpha=keep_alpha)[0]


def _info(arr: np.ndarray) -> ImageInfo:
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(bool): 1}.get(arr.dtype)
    return ImageInfo(dtype=str(arr.dtype), bit_depth=depth, shape=tuple(arr.shape))


def _read_with_info(
    path: Path, *, scale: bool = True, bit_depth: int | None = None, keep_alpha: bool = False
) -> tuple[np.ndarray, ImageInfo]:
    """:func:`read_image` and :func:`read_image_info` from one read of the file."""
    arr = _load(path)
    info = _info(arr)
    if arr.ndim == 3 and arr.shape[2] == 4 and not keep_alpha and path.suffix.lower() not in _TIFF:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3):
        raise FusionInputError(f"{path}: has shape {arr.shape}; jfusion reads single images (H, W[, C]).")
    if arr.dtype == bool or not scale:
        return arr.astype(np.float32), info
    if arr.dtype.kind == "u":
        depth = bit_depth or arr.dtype.itemsize * 8
        return (arr.astype(np.float64) / (2.0**depth - 1.0)).astype(np.float32), info
    if arr.dtype.kind == "f":
        return arr.astype(np.float32), info
    raise FusionInputError(f"{path}: pixel type {arr.dtype} is not supported (use unsigned 8/16-bit or float).")


def _encode_image(tmp: Path, out: np.ndarray, suffix: str) -> None:
    if suffix in _TIFF:
        import tifffile

        tifffile.imwrite(tmp, out, photometric="rgb" if out.ndim == 3 and out.shape[2] == 3 else None)
    elif suffix == ".png" and out.dtype == np.uint16:
        tmp.write_bytes(_imagecodecs().png_encode(np.ascontiguousarray(out)))
    else:
        import imageio.v3 as iio

        kwargs = {"quality": 95} if suffix in (".jpg", ".jpeg") else {}
        iio.imwrite(tmp, out, extension=".jpg" if suffix == ".jpeg" else suffix, **kwargs)


def channels_fit(path: str | os.PathLike, channels: int) -> None:
    """Raise :class:`FusionOutputError` when a ``path``'s file type cannot hold ``channels`` channels."""
    path = Path(path)
    suffix = path.suffix.lower()
    allowed = {".png": (1, 2, 3, 4), ".jpg": (1, 3), ".jpeg": (1, 3), ".bmp": (1, 3)}.get(suffix)
    if allowed is not None and channels not in allowed:
        raise FusionOutputError(
            f"{path}: a {suffix} file cannot hold {channels} channels (it takes {', '.join(map(str, allowed))}); use .tif."
        )


def write_image(
    path: str | os.PathLike,
    image: ArrayLike,
    *,
    bit_depth: Literal[8, 16, 32] | None = None,
    scaled: bool = True,
    overwrite: bool = True,
) -> Path:
    """Write ``image`` ((H, W) or (H, W, C), values in [0, 1]) to ``path``.

    ``bit_depth`` 8 or 16 clips to [0, 1], scales and rounds; 32 writes float32 (TIFF only).
    Default: 8 for JPEG/BMP/PNG, 16 for TIFF; 16-bit PNG holds grey, grey + alpha, RGB and RGBA.
    ``scaled=False`` writes the values as given (rounded to the integer type), for data in
    sensor units. The file is written under a temporary name in the same folder and moved to
    ``path`` in one step (:func:`atomic_output`): a crash never leaves a partial file under
    ``path``. ``overwrite=False`` refuses an existing ``path`` (also one that another process
    creates while this one writes). Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise FusionOutputError(f"{path}: unsupported file type; jfusion writes {', '.join(IMAGE_SUFFIXES)}.")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or img.size == 0:
        raise FusionInputError(f"image: shape {img.shape} cannot be written; pass (H, W) or (H, W, C).")
    if not np.all(np.isfinite(img)):
        raise FusionInputError("image: contains NaN/Inf; nothing was written.")
    channels_fit(path, 1 if img.ndim == 2 else img.shape[2])
    if bit_depth is None:
        bit_depth = 16 if suffix in _TIFF else 8
    if bit_depth == 32:
        if suffix not in _TIFF:
            raise FusionOutputError(f"{path}: float output needs a .tif/.tiff file.")
        out = img.astype(np.float32)
    elif bit_depth in (8, 16):
        if bit_depth == 16 and suffix in (".jpg", ".jpeg", ".bmp"):
            raise FusionOutputError(f"{path}: {suffix} cannot hold 16-bit data; use .png or .tif.")
        dtype = np.uint8 if bit_depth == 8 else np.uint16
        top = float(np.iinfo(dtype).max)
        vals = img * top if scaled else img
        out = np.clip(np.rint(vals), 0, top).astype(dtype)
    else:
        raise FusionInputError(f"bit_depth must be 8, 16 or 32, got {bit_depth}.")
    with atomic_output(path, overwrite=overwrite) as tmp:
        _encode_image(tmp, out, suffix)
    return path


# ---------------------------------------------------------------------------------------------
# One way to write a file: a temporary name in the target's folder, then one atomic step.
# ---------------------------------------------------------------------------------------------
_PARTIAL = ".partial"
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}


def _file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _existing_ancestor(folder: Path) -> Path:
    f = folder if str(folder) else Path(".")
    while not f.exists() and not f.is_symlink() and f.parent != f:
        f = f.parent
    return f


def check_output_path(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    suffixes: tuple[str, ...] | None = None,
) -> Path:
    """Check, before any work, that ``path`` can be written; return it as a ``Path``.

    Refuses (:class:`FusionOutputError`) a suffix outside ``suffixes``, a folder in the way, an
    existing file unless ``overwrite``, and an output folder that cannot be created or written
    (probed by creating and removing a temporary file in it, or in its nearest existing
    ancestor when it does not exist yet).
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise FusionOutputError(f"{path}: unsupported output type {path.suffix or '(none)'!r}; use {', '.join(suffixes)}.")
    _check_target(path, overwrite)
    probe_folder(path.parent)
    return path


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise FusionOutputError(f"{path}: is a folder; pass a file name.")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FusionOutputError(f"{path}: exists; not overwritten (pass --force, or overwrite=True in Python, to replace it).")


def probe_folder(folder: str | os.PathLike) -> None:
    """Raise :class:`FusionOutputError` unless files can be created in ``folder`` (or where it would be made)."""
    folder = Path(folder)
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise FusionOutputError(f"{folder}: cannot be used as an output folder; {base} is not a folder.")
    try:
        fd, name = tempfile.mkstemp(prefix=".jfusion-probe-", suffix=_PARTIAL, dir=base)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        where = folder if base == folder else f"{folder} (to be created in {base})"
        raise FusionOutputError(f"{where}: output folder is not writable ({err.strerror or err}).") from err


def _commit(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    clash = FusionOutputError(
        f"{path}: was created by someone else while this result was being written; that file is kept and this "
        "result discarded (pass --force, or overwrite=True in Python, to replace it)."
    )
    try:
        os.link(tmp, path)  # fails if path exists: exclusive creation, checked at the last moment
    except FileExistsError:
        raise clash from None
    except OSError as err:
        if err.errno not in _NO_HARD_LINKS:
            raise
        try:  # a file system without hard links: reserve the name exclusively, then move over it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise clash from None
        os.close(fd)
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write one file safely: yields a temporary path in ``path``'s folder to write to.

    When the block ends normally the file is flushed to disk and moved to ``path`` in one step:
    ``os.replace`` with ``overwrite``, otherwise an exclusive hard link (``os.link``) that fails
    when ``path`` exists, so of two writers of one path exactly one wins and the other gets a
    :class:`FusionOutputError`. On any exception (``KeyboardInterrupt`` included) the temporary
    file is removed and ``path`` is untouched; a killed process (SIGKILL) leaves at most a hidden
    ``.<name>.<random>.partial`` file, never a partial file under ``path``. ``OSError`` while
    writing (disk full, read-only folder) becomes a :class:`FusionOutputError` naming ``path``.
    """
    path = Path(path)
    _check_target(path, overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_PARTIAL, dir=path.parent)
    except OSError as err:
        raise FusionOutputError(f"{path}: cannot write in {path.parent} ({err.strerror or err}).") from err
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        _commit(tmp, path, overwrite)
    except OSError as err:
        _discard(tmp)
        raise FusionOutputError(f"{path}: writing failed ({err.strerror or err}); nothing was written under this name.") from err
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_output`."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def copy_file(src: str | os.PathLike, dst: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Copy ``src`` to ``dst`` through :func:`atomic_output`."""
    import shutil

    with atomic_output(dst, overwrite=overwrite) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


# ---------------------------------------------------------------------------------------------
# Linear radiance (HDR): Radiance RGBE (.hdr) and float32 TIFF
# ---------------------------------------------------------------------------------------------
RADIANCE_SUFFIXES = (".hdr", ".tif", ".tiff")


def _rgbe_encode(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` non-negative float -> ``(H, W, 4)`` uint8 RGBE (Ward's shared exponent)."""
    m = rgb.max(axis=-1)
    mant, e = np.frexp(m)
    scale = np.where(m > 1e-32, mant * 256.0 / np.where(m > 1e-32, m, 1.0), 0.0)
    out = np.zeros(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3] = np.clip(np.floor(rgb * scale[..., None]), 0, 255).astype(np.uint8)
    out[..., 3] = np.where(m > 1e-32, np.clip(e + 128, 0, 255), 0).astype(np.uint8)
    return out


def _rgbe_decode(rgbe: np.ndarray) -> np.ndarray:
    e = rgbe[..., 3].astype(np.int32)
    f = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0)
    return (rgbe[..., :3].astype(np.float64) * f[..., None]).astype(np.float32)


def _rgbe_scanlines(data: bytes, pos: int, h: int, w: int, path: Path) -> np.ndarray:
    """Pixel data from ``pos``: flat RGBE, or the "new" run-length encoding (per channel runs)."""
    buf = np.frombuffer(data, np.uint8, offset=pos)
    flat = h * w * 4
    if w < 8 or w > 0x7FFF or len(buf) < 4 or not (buf[0] == 2 and buf[1] == 2 and buf[2] < 128):
        if len(buf) < flat:
            raise FusionInputError(f"{path}: truncated Radiance file ({len(buf)} of {flat} pixel bytes).")
        return buf[:flat].reshape(h, w, 4)
    out = np.empty((h, w, 4), np.uint8)
    i = 0
    for y in range(h):  # runs are sequential by construction: a loop over runs, not pixels
        if i + 4 > len(buf) or buf[i] != 2 or buf[i + 1] != 2 or (int(buf[i + 2]) << 8 | int(buf[i + 3])) != w:
            raise FusionInputError(f"{path}: corrupt run-length scanline {y}.")
        i += 4
        for c in range(4):
            x = 0
            while x < w:
                n = int(buf[i])
                i += 1
                if n > 128:
                    n -= 128
                    out[y, x : x + n, c] = buf[i]
                    i += 1
                else:
                    out[y, x : x + n, c] = buf[i : i + n]
                    i += n
                x += n
    return out


def _read_rgbe(path: Path) -> np.ndarray:
    data = path.read_bytes()
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise FusionInputError(f"{path}: not a Radiance .hdr file (no '#?RADIANCE' header).")
    end = data.find(b"\n\n")
    if end < 0:
        raise FusionInputError(f"{path}: Radiance header without its blank line.")
    header = data[:end].decode("latin-1")
    if "FORMAT=" in header and "32-bit_rle_rgbe" not in header:
        raise FusionInputError(f"{path}: only the RGBE Radiance format is read (not XYZE).")
    nl = data.find(b"\n", end + 2)
    res = data[end + 2 : nl].decode("latin-1").split()
    if len(res) != 4 or res[0] != "-Y" or res[2] != "+X":
        raise FusionInputError(f"{path}: unsupported Radiance orientation {' '.join(res)!r} (jfusion reads -Y H +X W).")
    h, w = int(res[1]), int(res[3])
    return _rgbe_decode(_rgbe_scanlines(data, nl + 1, h, w, path))


def write_radiance(path: str | os.PathLike, radiance: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write linear radiance (``(H, W, 3)``, or ``(H, W)`` grey, values >= 0, unbounded) unscaled.

    ``.hdr``: Radiance RGBE (flat scanlines, ``-Y H +X W``; 8-bit mantissas with a shared
    exponent: relative error below 1/128 of a pixel's largest channel). ``.tif``/``.tiff``:
    float32 TIFF, exact. Atomic (:func:`atomic_output`); ``overwrite=False`` refuses an existing
    ``path``. Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RADIANCE_SUFFIXES:
        raise FusionOutputError(f"{path}: radiance is written to {', '.join(RADIANCE_SUFFIXES)}, not {suffix!r}.")
    img = np.asarray(radiance, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3) or img.size == 0 or (img.ndim == 3 and img.shape[2] != 3):
        raise FusionInputError(f"radiance: shape {img.shape}; pass (H, W, 3) or (H, W).")
    if not np.all(np.isfinite(img)) or np.any(img < 0):
        raise FusionInputError("radiance: values must be finite and >= 0; nothing was written.")
    if suffix in _TIFF:
        return write_image(path, img, bit_depth=32, overwrite=overwrite)
    rgb = np.repeat(img[..., None], 3, axis=-1) if img.ndim == 2 else img
    h, w = rgb.shape[:2]
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\nSOFTWARE=jfusion\n\n-Y {h} +X {w}\n".encode("ascii")
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(header + _rgbe_encode(rgb).tobytes())
    return path


def read_radiance(path: str | os.PathLike) -> np.ndarray:
    """Read linear radiance from ``.hdr`` (RGBE, flat or run-length) or float TIFF: float32, unscaled."""
    path = Path(path)
    if not path.exists():
        raise FusionInputError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        return _read_rgbe(path)
    if suffix in _TIFF:
        return _load(path).astype(np.float32)
    raise FusionInputError(f"{path}: radiance is read from {', '.join(RADIANCE_SUFFIXES)}, not {suffix!r}.")
