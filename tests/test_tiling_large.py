"""Large images: jfusion.fuse warns with the fuse_tiled call; `jfusion fuse` tiles automatically."""

import numpy as np
import pytest
from typer.testing import CliRunner

import jfusion
import jfusion.tiling as tiling
from jfusion.cli import app


@pytest.fixture
def little_memory(monkeypatch):
    monkeypatch.setattr(tiling, "_available_memory", lambda: 1 << 20)  # 1 MiB "available"


def test_fuse_warns_with_the_tiled_call(rng, little_memory):
    src = rng.random((2, 128, 128)).astype(np.float32)  # 2*128*128*48 B = 1.5 MiB > half of 1 MiB
    with pytest.warns(tiling.LargeImageWarning, match=r"jfusion\.tiling\.fuse_tiled\(sources, 'laplacian', levels=3\)"):
        jfusion.fuse(src, method="laplacian", levels=3)
    with pytest.warns(tiling.LargeImageWarning, match="cannot be tiled exactly.*periodic.*local_statistics=True"):
        jfusion.fuse(src, method="dwt", levels=2, mode="periodization")


def test_fuse_is_silent_when_memory_suffices(rng, recwarn):
    src = rng.random((2, 64, 64)).astype(np.float32)
    assert tiling.memory_advice("laplacian", src.shape, {}) is None
    jfusion.fuse(src, method="laplacian", levels=3)
    assert not [w for w in recwarn if issubclass(w.category, tiling.LargeImageWarning)]


def test_should_tile_threshold(monkeypatch):
    monkeypatch.setattr(tiling, "_available_memory", lambda: 1 << 50)  # the pixel threshold alone
    assert not tiling.should_tile("laplacian", (2, 4096, 4096), {})
    assert tiling.should_tile("laplacian", (2, 4097, 4096), {})
    assert not tiling.should_tile("csr", (2, 8192, 8192), {})  # unbounded: never tiled automatically
    monkeypatch.setattr(tiling, "AUTO_TILE_PIXELS", 100)
    assert tiling.should_tile("laplacian", (2, 20, 20), {})
    assert not tiling.should_tile("mertens", (2, 20, 20), {})  # levels=None: unbounded


@pytest.fixture
def files(tmp_path, rng):
    a = rng.random((72, 80)).astype(np.float32)
    b = rng.random((72, 80)).astype(np.float32)
    pa, pb = jfusion.write_image(tmp_path / "a.tif", a), jfusion.write_image(tmp_path / "b.tif", b)
    return pa, pb, (jfusion.read_image(pa), jfusion.read_image(pb))


# the output file holds 16 bits: tiled and whole results (equal to 1e-6) round to within one step
ATOL = 1 / 65535 + 1e-6


def _spy(monkeypatch):
    calls = []
    real = tiling.fuse_tiled

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tiling, "fuse_tiled", spy)
    return calls


def test_cli_tiles_automatically_above_the_threshold(files, tmp_path, monkeypatch):
    a, b, (xa, xb) = files
    monkeypatch.setattr(tiling, "AUTO_TILE_PIXELS", 1000)
    calls = _spy(monkeypatch)
    out = tmp_path / "f.tif"
    r = CliRunner().invoke(app, ["fuse", str(a), str(b), "-m", "laplacian", "-p", "levels=3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1 and calls[0]["tile"] is None
    whole = np.asarray(jfusion.fuse([xa, xb], method="laplacian", levels=3))
    np.testing.assert_allclose(jfusion.read_image(out), whole, atol=ATOL)


def test_cli_tile_and_no_tile_flags(files, tmp_path, monkeypatch):
    a, b, (xa, xb) = files
    calls = _spy(monkeypatch)
    runner = CliRunner()
    r = runner.invoke(app, ["fuse", str(a), str(b), "-m", "laplacian", "-p", "levels=3", "--tile", "32", "-o", str(tmp_path / "t.tif")])
    assert r.exit_code == 0, r.output
    assert calls[-1]["tile"] == 32
    np.testing.assert_allclose(
        jfusion.read_image(tmp_path / "t.tif"), np.asarray(jfusion.fuse([xa, xb], method="laplacian", levels=3)), atol=ATOL
    )
    monkeypatch.setattr(tiling, "AUTO_TILE_PIXELS", 1000)
    r = runner.invoke(app, ["fuse", str(a), str(b), "-m", "laplacian", "--no-tile", "-o", str(tmp_path / "n.tif")])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1  # --no-tile fused whole
    r = runner.invoke(app, ["fuse", str(a), str(b), "--tile", "32", "--no-tile", "-o", str(tmp_path / "x.tif")])
    assert r.exit_code != 0 and "contradict" in r.output
    r = runner.invoke(app, ["fuse", str(a), str(b), "-m", "mertens", "--tile", "32", "-o", str(tmp_path / "s.tif")])
    assert r.exit_code != 0 and "cannot be tiled exactly" in r.output
