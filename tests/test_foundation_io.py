"""jfusion.io: bit depths, formats, multiband TIFF, clear errors; nothing the user gave is modified."""

import numpy as np
import pytest

import jfusion
from jfusion.errors import FusionInputError
from jfusion.io import read_image_info


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_uint8_roundtrip_exact(tmp_path, rng, suffix):
    u8 = rng.integers(0, 256, (17, 13, 3), dtype=np.uint8)
    path = jfusion.write_image(tmp_path / f"a{suffix}", u8 / 255.0, bit_depth=8)
    img = jfusion.read_image(path)
    assert img.dtype == np.float32 and img.shape == (17, 13, 3)
    np.testing.assert_array_equal(np.rint(img * 255).astype(np.uint8), u8)
    assert read_image_info(path).bit_depth == 8


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_uint16_roundtrip_exact(tmp_path, rng, suffix):
    u16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    path = jfusion.write_image(tmp_path / f"a{suffix}", u16 / 65535.0, bit_depth=16)
    img = jfusion.read_image(path)
    np.testing.assert_array_equal(np.rint(img.astype(np.float64) * 65535).astype(np.uint16), u16)
    assert read_image_info(path).bit_depth == 16


def test_jpeg_roundtrip_close(tmp_path):
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([xx / 63.0, yy / 63.0, np.full_like(xx, 0.5, dtype=float)], -1)
    path = jfusion.write_image(tmp_path / "a.jpg", img)
    back = jfusion.read_image(path)
    assert np.abs(back - img).mean() < 0.01


def test_float_tiff_and_multiband(tmp_path, rng):
    x = rng.random((10, 12, 8)).astype(np.float32) * 3.0  # float TIFF keeps any values
    path = jfusion.write_image(tmp_path / "ms.tif", x, bit_depth=32)
    np.testing.assert_array_equal(jfusion.read_image(path), x)


def test_sensor_units_and_bit_depth(tmp_path, rng):
    import tifffile

    dn = rng.integers(0, 2048, (6, 7, 4), dtype=np.uint16)  # 11-bit data in 16-bit containers
    tifffile.imwrite(tmp_path / "ms.tif", dn)
    np.testing.assert_array_equal(jfusion.read_image(tmp_path / "ms.tif", scale=False), dn.astype(np.float32))
    np.testing.assert_allclose(jfusion.read_image(tmp_path / "ms.tif", bit_depth=11), dn / 2047.0, rtol=1e-6)


def test_write_clips_and_rounds(tmp_path):
    x = np.array([[-0.2, 0.5, 1.3, 0.0019]])
    back = jfusion.read_image(jfusion.write_image(tmp_path / "c.png", x))
    np.testing.assert_array_equal(np.rint(back * 255), [[0, 128, 255, 0]])


def test_write_does_not_modify_input(tmp_path, rng):
    x = rng.random((5, 5))
    before = x.copy()
    jfusion.write_image(tmp_path / "a.png", x)
    np.testing.assert_array_equal(x, before)


def test_read_errors(tmp_path, rng):
    with pytest.raises(FusionInputError, match="no such file"):
        jfusion.read_image(tmp_path / "missing.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FusionInputError, match="unsupported file type"):
        jfusion.read_image(tmp_path / "notes.txt")
    good = jfusion.write_image(tmp_path / "g.png", rng.random((64, 64, 3)))
    data = good.read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FusionInputError, match="truncated or corrupt"):
        jfusion.read_image(tmp_path / "trunc.png")
    jpg = jfusion.write_image(tmp_path / "g.jpg", rng.random((64, 64, 3)))
    data = jpg.read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(FusionInputError, match="truncated or corrupt"):
        jfusion.read_image(tmp_path / "trunc.jpg")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(FusionInputError):
        jfusion.read_image(tmp_path / "junk.tif")


def test_write_errors(tmp_path):
    with pytest.raises(FusionInputError, match="NaN"):
        jfusion.write_image(tmp_path / "n.png", np.full((3, 3), np.nan))
    with pytest.raises(FusionInputError, match="16-bit"):
        jfusion.write_image(tmp_path / "n.jpg", np.zeros((3, 3)), bit_depth=16)
    with pytest.raises(FusionInputError, match="float output"):
        jfusion.write_image(tmp_path / "n.png", np.zeros((3, 3)), bit_depth=32)
    assert not any(tmp_path.iterdir())
