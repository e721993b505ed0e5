"""Remote-sensing conventions and I/O (.mat scenes, multiband GeoTIFF), the CLI, and MS/HS fusion helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import jfusion
from jfusion.cli import app
from jfusion.errors import FusionInputError
from jfusion.pansharpening import mshs, read_multiband, read_scene, write_multiband
from jfusion.pansharpening.io import read_hs_scene

sys.path.insert(0, str(Path(__file__).parent))
from conftest import data_path  # noqa: E402

GEO = [(33550, 12, 3, (0.5, 0.5, 0.0)), (33922, 12, 6, (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0))]


@pytest.mark.parametrize("name,sensor,bands,bits", [("imgGE1.mat", "GeoEye1", 4, 8), ("imgIK.mat", "IKONOS", 4, 11), ("imgWV2.mat", "WV2", 8, 11)])
def test_read_scene(name, sensor, bands, bits):
    s = read_scene(data_path("pansharpening", name))
    assert s.ms.shape == (320, 320, bands) and s.pan.shape == (1280, 1280)
    assert s.ms.dtype == np.float32 and s.sensor == sensor and s.bit_depth == bits and s.ratio == 4
    assert s.ms.max() <= s.data_range and s.pan.max() <= s.data_range
    assert all(0 <= i < bands for i in s.rgb)


def test_read_hs_scenes():
    h = read_hs_scene(data_path("hyperspectral", "houston_dataset.mat"))
    assert h.hs.shape == (128, 128, 48) and h.hr.shape == (512, 512, 3) and h.ratio == 4
    p = read_hs_scene(data_path("hyperspectral", "paris_data_hs_pan.mat"))
    assert p.hr.shape == (216, 174, 1) and p.ratio == 3


def test_multiband_geotiff_roundtrip(tmp_path, rng):
    x = (rng.random((12, 10, 8)) * 2047).astype(np.uint16)
    src = tmp_path / "ms.tif"
    tifffile.imwrite(src, x, photometric="minisblack", planarconfig="contig", extratags=[(*t, True) for t in GEO])
    arr, geo = read_multiband(src)
    assert arr.shape == (12, 10, 8) and arr.dtype == np.float32 and geo is not None
    np.testing.assert_array_equal(arr, x)
    out = write_multiband(tmp_path / "out.tif", arr + 0.4, geo=geo)
    back, geo2 = read_multiband(out)
    np.testing.assert_array_equal(back, x)  # rounded back to 16-bit
    assert geo2 == geo
    assert tifffile.imread(out).dtype == np.uint16
    # band-sequential (planar separate) files come back bands last
    tifffile.imwrite(tmp_path / "bsq.tif", np.moveaxis(x, -1, 0), photometric="minisblack", planarconfig="separate")
    np.testing.assert_array_equal(read_multiband(tmp_path / "bsq.tif")[0], x)
    with pytest.raises(FusionInputError):
        read_multiband(tmp_path / "missing.tif")


def test_cli_pansharpen_keeps_scale_and_georeferencing(tmp_path, rng):
    pan = (rng.random((128, 128)) * 1500 + 100).astype(np.uint16)
    ms = np.stack([pan.reshape(32, 4, 32, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    tifffile.imwrite(tmp_path / "ms.tif", ms, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "pan.tif", pan, photometric="minisblack", extratags=[(*t, True) for t in GEO])
    out = tmp_path / "sharp.tif"
    r = CliRunner().invoke(app, ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "-m", "gsa", "-o", str(out), "--sensor", "IKONOS"])
    assert r.exit_code == 0, r.output
    fused, geo = read_multiband(out)
    assert fused.shape == (128, 128, 4) and geo is not None and dict((t[0], t[3]) for t in geo.tags)[33550] == (0.5, 0.5, 0.0)
    expected = np.asarray(jfusion.pansharpen(ms, pan, method="gsa", sensor="IKONOS"))
    np.testing.assert_allclose(fused, np.clip(np.rint(expected), 0, 65535), atol=1)
    r = CliRunner().invoke(app, ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "-m", "mtf-glp", "-o", str(tmp_path / "e.tif"), "--eval", "both"])
    assert r.exit_code == 0, r.output
    assert "reduced resolution: q2n" in r.output and "full resolution: d_lambda" in r.output and "qnr" in r.output
    bad = CliRunner().invoke(app, ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "ms.tif"), "-m", "gsa", "-o", str(tmp_path / "x.tif")])
    assert bad.exit_code == 2 and "(H, W)" in bad.output


def test_cli_pansharpen_method_options_are_typed_and_checked(tmp_path, rng):
    pan = (rng.random((64, 64)) * 1500 + 100).astype(np.uint16)
    ms = np.stack([pan.reshape(16, 4, 16, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    tifffile.imwrite(tmp_path / "ms.tif", ms, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "pan.tif", pan, photometric="minisblack")
    args = ["pansharpen", "--ms", str(tmp_path / "ms.tif"), "--pan", str(tmp_path / "pan.tif"), "-m", "mtf-glp"]
    r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "b.tif"), "-p", "interp=bicubic"])
    assert r.exit_code == 0, r.output
    fused, _ = read_multiband(tmp_path / "b.tif")
    expected = np.asarray(jfusion.pansharpen(ms, pan, method="mtf-glp", interp="bicubic"))
    np.testing.assert_allclose(fused, np.clip(np.rint(expected), 0, 65535), atol=1)
    for bad, word in (("foo=1", "foo"), ("interp=bogus", "interp")):
        r = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "x.tif"), "-p", bad])
        assert r.exit_code == 2 and word in r.output and "Traceback" not in r.output
        assert not (tmp_path / "x.tif").exists()


def test_pca_roundtrip_and_volume(rng):
    hs = rng.random((8, 8, 12)).astype(np.float32) @ rng.random((12, 12)).astype(np.float32)
    pca = mshs.fit_pca(hs, n_components=12)
    np.testing.assert_allclose(mshs.from_components(mshs.to_components(jnp.asarray(hs), pca), pca), hs, rtol=1e-4, atol=1e-4)
    v = mshs.volume(hs, rng.random((32, 32, 3)), pca, ratio=4, ms_scale=1.0)
    assert v.shape == (32, 32, 12 + 3, 1)
