"""Files the package writes: atomic, exclusive unless --force, checked before any work; bit depth kept;
multi-page TIFFs, RGBA sources, float pan-sharpening data; batch errors and resumes; training outputs.

In-process tests use typer's CliRunner; the crash and concurrency tests run `python -m jfusion` in
subprocesses (each pays the jax import, so there are few of them, on 32x32 images).
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

import jfusion
from jfusion.cli import app
from jfusion.errors import FusionInputError
from jfusion.io import read_image_info

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def visible(folder: Path) -> list[str]:
    """Names of a folder's files, without hidden (temporary) ones."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def everything(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def pair(tmp_path, rng):
    a = jfusion.write_image(tmp_path / "a.png", rng.random((32, 32, 3)))
    b = jfusion.write_image(tmp_path / "b.png", rng.random((32, 32, 3)))
    return a, b


@pytest.fixture
def no_fusion(monkeypatch):
    """Fail the test if anything fuses: outputs must be checked before any work."""

    def boom(*args, **kwargs):
        raise AssertionError("fused before the output was checked")

    monkeypatch.setattr(jfusion, "fuse", boom)


# ----------------------------------------------------------------------------- one writing path
def test_write_failure_leaves_no_file_and_a_clear_error(tmp_path, monkeypatch):
    """Disk full half-way through a TIFF: no truncated file under the final name, nor a temporary one."""
    real = tifffile.imwrite

    def half_then_enospc(path, data, **kwargs):
        real(path, data, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(50)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", half_then_enospc)
    out = tmp_path / "x.tif"
    with pytest.raises(FusionInputError, match=r"x\.tif.*No space left"):
        jfusion.write_image(out, np.zeros((8, 8)))
    assert everything(tmp_path) == []


def test_interrupt_while_writing_cleans_up(tmp_path, monkeypatch):
    import jfusion.io as jio

    def interrupted(tmp, out, suffix):
        tmp.write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(jio, "_encode_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jfusion.write_image(tmp_path / "x.png", np.zeros((8, 8)))
    assert everything(tmp_path) == []


def test_exclusive_creation_checked_at_the_last_moment(tmp_path, monkeypatch):
    """Another writer creates the path while this one writes: it keeps its file, this one fails clearly."""
    real = tifffile.imwrite
    out = tmp_path / "same.tif"

    def racing(path, data, **kwargs):
        out.write_bytes(b"the other writer's result")
        real(path, data, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", racing)
    with pytest.raises(FusionInputError, match="created by someone else"):
        jfusion.write_image(out, np.zeros((8, 8)), overwrite=False)
    assert out.read_bytes() == b"the other writer's result"
    assert everything(tmp_path) == ["same.tif"]


# ----------------------------------------------------------------------------- checked before any work
def test_fuse_checks_the_output_before_fusing(pair, tmp_path, no_fusion):
    a, b = pair
    r = cli("fuse", a, b, "-o", tmp_path / "f.xyz")
    assert r.exit_code == 2 and "f.xyz" in r.output and "unsupported" in r.output
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    r = cli("fuse", a, b, "-o", tmp_path / "notes.txt" / "f.png")
    assert r.exit_code == 2 and "not a folder" in r.output
    if sys.platform.startswith("linux") and Path("/proc/self").exists():  # unwritable even for root
        r = cli("fuse", a, b, "-o", "/proc/jfusion-test/f.png")
        assert r.exit_code == 2 and "not writable" in r.output
    (tmp_path / "exists.png").write_bytes(b"keep")
    r = cli("fuse", a, b, "-o", tmp_path / "exists.png")
    assert r.exit_code == 2 and "--force" in r.output and (tmp_path / "exists.png").read_bytes() == b"keep"


def test_unwritable_folder_reported_before_fusing(pair, tmp_path, monkeypatch, no_fusion):
    """A read-only folder, simulated in-process (chmod does not stop root): a clear error, no file."""
    import tempfile

    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == out_dir.resolve():
            raise PermissionError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    a, b = pair
    r = cli("fuse", a, b, "-o", out_dir / "f.png")
    assert r.exit_code == 2 and "ro" in r.output and "not writable" in r.output
    assert everything(out_dir) == []


def test_disk_full_while_writing_a_fused_image(pair, tmp_path, monkeypatch):
    import jfusion.io as jio

    def enospc(tmp, out, suffix):
        tmp.write_bytes(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(jio, "_encode_image", enospc)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    a, b = pair
    r = cli("fuse", a, b, "-o", out_dir / "f.png")
    assert r.exit_code == 2 and "f.png" in r.output and "No space left" in r.output
    assert everything(out_dir) == []


# ----------------------------------------------------------------------------- bit depth
@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_sources_fuse_to_16bit_png(tmp_path, rng, channels):
    import imagecodecs

    shape = (32, 32) if channels == 1 else (32, 32, 3)
    srcs = [rng.integers(0, 65536, shape, dtype=np.uint16) for _ in range(2)]
    tifffile.imwrite(tmp_path / "a.tif", srcs[0])  # a 16-bit TIFF source
    (tmp_path / "b.png").write_bytes(imagecodecs.png_encode(srcs[1]))  # a 16-bit PNG source
    back = jfusion.read_image(tmp_path / "b.png")
    np.testing.assert_array_equal(np.rint(back.astype(np.float64) * 65535).astype(np.uint16), srcs[1])
    out = tmp_path / "f.png"
    r = cli("fuse", tmp_path / "a.tif", tmp_path / "b.png", "-m", "laplacian", "-o", out)
    assert r.exit_code == 0, r.output
    info = read_image_info(out)
    assert info.bit_depth == 16 and info.shape == shape
    ref = np.clip(np.asarray(jfusion.fuse([s / 65535.0 for s in srcs], method="laplacian")), 0, 1)
    assert np.abs(jfusion.read_image(out) - ref).max() <= 0.5 / 65535 + 1e-6


# ----------------------------------------------------------------------------- multi-page TIFF
def test_multipage_tiffs_are_band_stacks(tmp_path, rng):
    from jfusion.pansharpening import read_multiband

    ms = (rng.random((16, 16, 8)) * 1500 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "ms.tif", ms)  # tifffile's default for B > 4: 16 pages of 16 x 8
    with tifffile.TiffFile(tmp_path / "ms.tif") as t:
        assert len(t.pages) == 16
    np.testing.assert_array_equal(read_multiband(tmp_path / "ms.tif")[0], ms)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as w:  # one band per page, no shape metadata
        for band in np.moveaxis(ms, -1, 0):
            w.write(band, metadata=None)
    np.testing.assert_array_equal(read_multiband(tmp_path / "pages.tif")[0], ms)
    np.testing.assert_array_equal(jfusion.read_image(tmp_path / "pages.tif", scale=False), ms)
    pan = (rng.random((64, 64)) * 1500 + 100).astype(np.uint16)
    tifffile.imwrite(tmp_path / "pan.tif", pan)
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-m", "gsa", "-o", tmp_path / "o.tif")
    assert r.exit_code == 0, r.output
    assert read_multiband(tmp_path / "o.tif")[0].shape == (64, 64, 8)


# ----------------------------------------------------------------------------- RGBA sources
def test_rgb_plus_rgba_refused_like_the_api(tmp_path, rng):
    rgb, rgba = rng.random((32, 32, 3)), rng.random((32, 32, 4))
    a = jfusion.write_image(tmp_path / "rgb.png", rgb)
    b = jfusion.write_image(tmp_path / "rgba.png", rgba)
    with pytest.raises(FusionInputError, match="band counts differ"):
        jfusion.fuse([rgb, rgba])
    r = cli("fuse", a, b, "-o", tmp_path / "f.png")
    assert r.exit_code == 2 and "band counts differ" in r.output
    assert "rgb.png" in r.output and "rgba.png" in r.output and "--drop-alpha" in r.output
    assert not (tmp_path / "f.png").exists()
    r = cli("fuse", a, b, "-o", tmp_path / "f.png", "--drop-alpha")
    assert r.exit_code == 0, r.output
    assert read_image_info(tmp_path / "f.png").shape == (32, 32, 3)


# ----------------------------------------------------------------------------- pan-sharpening bit depth
def test_pansharpen_float_reflectance(tmp_path, rng):
    pan = rng.random((64, 64)).astype(np.float32) * 0.8 + 0.1
    ms = np.stack([pan.reshape(16, 4, 16, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.float32)
    tifffile.imwrite(tmp_path / "ms.tif", ms, photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "pan.tif", pan)
    out = tmp_path / "o.tif"
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-m", "gsa", "-o", out)
    assert r.exit_code == 0, r.output
    fused = tifffile.imread(out)
    assert fused.dtype == np.float32 and len(np.unique(fused)) > 100  # not quantised to {0, 1}
    np.testing.assert_allclose(fused, np.asarray(jfusion.pansharpen(ms, pan, method="gsa")), atol=1e-5)
    # an existing output is not replaced without --force
    before = out.read_bytes()
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-m", "brovey", "-o", out)
    assert r.exit_code == 2 and "--force" in r.output and out.read_bytes() == before
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-m", "brovey", "-o", out, "--force")
    assert r.exit_code == 0 and out.read_bytes() != before
    # quantising [0, 1] floats to integers is refused; a learned method asks for --bit-depth
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-o", tmp_path / "q.tif", "--out-bit-depth", "16")
    assert r.exit_code == 2 and "{0, 1}" in r.output and not (tmp_path / "q.tif").exists()
    r = cli("pansharpen", "--ms", tmp_path / "ms.tif", "--pan", tmp_path / "pan.tif", "-m", "pnn", "-o", tmp_path / "p.tif")
    assert r.exit_code == 2 and "--bit-depth" in r.output and not (tmp_path / "p.tif").exists()
    with pytest.raises(FusionInputError):
        jfusion.pansharpen(ms, pan, method="pnn")  # the API refuses the same input


# ----------------------------------------------------------------------------- batch reports
def test_batch_names_files_lists_unmatched_and_continues(tmp_path, rng):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        jfusion.write_image(tmp_path / folder / "s2.png", rng.random((32, 32)))
    jfusion.write_image(tmp_path / "A" / "s1.png", rng.random((32, 32)))
    jfusion.write_image(tmp_path / "B" / "s1.png", rng.random((16, 32)))
    jfusion.write_image(tmp_path / "A" / "only_in_a.png", rng.random((32, 32)))
    out = tmp_path / "out"
    r = cli("fuse", tmp_path / "A", tmp_path / "B", "-o", out)
    assert r.exit_code == 2
    assert "differ in size" in r.output and str(tmp_path / "A" / "s1.png") in r.output and str(tmp_path / "B" / "s1.png") in r.output
    assert "sources[0]" not in r.output
    assert "only_in_a.png" in r.output and "warning" in r.output
    assert visible(out) == ["s2.png"]  # the good scene is fused all the same
    # nothing matched: an error
    (tmp_path / "C").mkdir()
    jfusion.write_image(tmp_path / "C" / "other.png", rng.random((32, 32)))
    r = cli("fuse", tmp_path / "A", tmp_path / "C", "-o", tmp_path / "out2")
    assert r.exit_code == 2 and "share no image names" in r.output


def test_eval_lists_missing_fused_images(tmp_path, rng):
    dirs = {k: tmp_path / k for k in ("vi", "ir", "fused")}
    for d in dirs.values():
        d.mkdir()
    for name in ("s1", "s2"):
        for k in ("vi", "ir"):
            jfusion.write_image(dirs[k] / f"{name}.png", rng.random((40, 40)))
    jfusion.write_image(dirs["fused"] / "s1.png", rng.random((40, 40)))
    csv_path = tmp_path / "t.csv"
    r = cli("eval", dirs["vi"], dirs["ir"], "-f", dirs["fused"], "-m", "en", "--csv", csv_path)
    assert r.exit_code == 0, r.output
    assert "no fused image" in r.output and "s2.png" in r.output
    assert [line.split(",")[0] for line in csv_path.read_text().splitlines()] == ["image", "s1"]
    r = cli("eval", dirs["vi"], dirs["ir"], "-f", dirs["fused"], "-m", "en", "--csv", csv_path)
    assert r.exit_code == 2 and "--force" in r.output  # the table is not replaced silently
    for p in dirs["fused"].iterdir():
        p.unlink()
    r = cli("eval", dirs["vi"], dirs["ir"], "-f", dirs["fused"], "-m", "en")
    assert r.exit_code == 2


def test_batch_interrupt_mid_write_then_resume(tmp_path, rng, monkeypatch):
    """Ctrl-C while the third output is being written: no partial file, and --skip-existing resumes."""
    import jfusion.io as jio

    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        for i in range(5):
            jfusion.write_image(tmp_path / folder / f"{i}.png", rng.random((32, 32)))
    real = jio._encode_image
    calls = []

    def interrupt_third(tmp, out, suffix):
        calls.append(tmp)
        if len(calls) == 3:
            tmp.write_bytes(b"\x89PNG partial")
            raise KeyboardInterrupt
        real(tmp, out, suffix)

    monkeypatch.setattr(jio, "_encode_image", interrupt_third)
    out = tmp_path / "out"
    r = cli("fuse", tmp_path / "A", tmp_path / "B", "-o", out)
    assert r.exit_code == 130 and "--skip-existing" in r.output
    assert everything(out) == ["0.png", "1.png"]
    r = cli("fuse", tmp_path / "A", tmp_path / "B", "-o", out)
    assert r.exit_code == 2 and "--skip-existing" in r.output  # refuses, and says how to resume
    r = cli("fuse", tmp_path / "A", tmp_path / "B", "-o", out, "--skip-existing")
    assert r.exit_code == 0, r.output
    assert everything(out) == [f"{i}.png" for i in range(5)]


# ----------------------------------------------------------------------------- training outputs
def test_train_dictionary_writes_a_run_folder_not_the_package(tmp_path, rng, monkeypatch):
    import jfusion.sparse.dictionary as dictionary

    package = tmp_path / "package_dictionaries"  # stands in for jfusion/sparse/dictionaries
    package.mkdir()
    (package / "csr32.npz").write_bytes(b"shipped")
    (package / "csr32.json").write_text("{}")
    monkeypatch.setattr(dictionary, "DICTIONARY_DIR", package)
    images = tmp_path / "natural"
    images.mkdir()
    for i in range(2):
        jfusion.write_image(images / f"{i}.png", rng.random((40, 40)))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["train", "dictionary", "--data", images, "--num-filters", "2", "--filter-size", "4", "--iterations", "2",
            "--num-images", "2", "--crop", "32"]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    from jfusion.assets import read_asset

    assert read_asset(work / "runs" / "dictionary" / "csr32").arrays["dictionary"].shape == (4, 4, 2)
    assert (package / "csr32.npz").read_bytes() == b"shipped"
    # a second run does not replace the first, nor (with --install) the shipped one, and says so before training
    import jfusion.training.dictionary as train

    monkeypatch.setattr(train, "learn_resumable", lambda *a, **k: pytest.fail("trained before checking outputs"))
    r = cli(*args)
    assert r.exit_code == 2 and "csr32.npz" in r.output and "--force" in r.output
    r = cli(*args, "--out", work / "second", "--install")
    assert r.exit_code == 2 and str(package / "csr32.npz") in r.output
    assert (package / "csr32.npz").read_bytes() == b"shipped"


def test_train_focus_cnn_install_refuses_shipped_weights(tmp_path, monkeypatch):
    import jfusion.training.focus as focus
    import jfusion.weights as weights

    monkeypatch.setattr(weights, "WEIGHTS_DIR", tmp_path / "package")
    shipped = tmp_path / "package" / "focus_cnn_direct"
    shipped.mkdir(parents=True)
    (shipped / "weights.npz").write_bytes(b"shipped")
    monkeypatch.setattr(focus, "train_weightnet", lambda *a, **k: pytest.fail("trained before checking outputs"))
    r = cli("train", "focus-cnn", "--model", "focus-cnn-direct", "--out", tmp_path / "run", "--install", "--steps", "1")
    assert r.exit_code == 2 and "weights.npz" in r.output and "--force" in r.output
    assert (shipped / "weights.npz").read_bytes() == b"shipped"


def test_train_pansharpening_defaults_to_a_run_folder(tmp_path, rng, monkeypatch):
    import scipy.io as sio

    from jfusion.pansharpening import learned
    from jfusion.training.pansharpening import train_pansharpening

    package = tmp_path / "package"
    package.mkdir()
    monkeypatch.setattr(learned, "WEIGHTS_DIR", package)
    pan = (rng.random((64, 64)) * 1500 + 100).astype(np.uint16)
    ms = np.stack([pan.reshape(16, 4, 16, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    sio.savemat(tmp_path / "tiny.mat", {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    monkeypatch.chdir(tmp_path)
    import jfusion.training.pansharpening as tp

    monkeypatch.setattr(tp, "fit", lambda *a, **k: [0.0])  # where the files go, not the optimisation, is tested
    meta = train_pansharpening("pnn", tmp_path / "tiny.mat", steps=2, batch=2, patch=8, score=False, log=None)
    assert (tmp_path / "runs" / "pnn" / f"pnn-{meta['sensor']}.npz").exists()
    assert list(package.iterdir()) == []
    monkeypatch.setattr(tp, "fit", lambda *a, **k: pytest.fail("trained before checking outputs"))
    with pytest.raises(FusionInputError, match="exists"):
        train_pansharpening("pnn", tmp_path / "tiny.mat", steps=2, batch=2, patch=8, score=False, log=None)
    monkeypatch.setattr(tp, "fit", lambda *a, **k: [0.0])
    train_pansharpening("pnn", tmp_path / "tiny.mat", steps=2, batch=2, patch=8, score=False, log=None,
                        out_dir=tmp_path / "other", install=True)
    assert (package / f"pnn-{meta['sensor']}.npz").exists() and (package / f"pnn-{meta['sensor']}.json").exists()


# ----------------------------------------------------------------------------- subprocesses: crashes, races
def _start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jfusion", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd)


@pytest.fixture
def batch(tmp_path):
    """24 scenes of two 32x32 sources, and the fused result each output must hold."""
    rng = np.random.default_rng(1)
    expected = {}
    for i in range(24):
        imgs = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(2)]
        for folder, img in zip(("A", "B"), imgs):
            (tmp_path / folder).mkdir(exist_ok=True)
            jfusion.write_image(tmp_path / folder / f"{i:02d}.png", img / 255.0)
        fused = np.asarray(jfusion.fuse([img / 255.0 for img in imgs], method="laplacian"))
        expected[f"{i:02d}.png"] = np.rint(np.clip(fused, 0, 1) * 255)
    return tmp_path / "A", tmp_path / "B", expected


def _assert_complete(out: Path, expected: dict[str, np.ndarray]) -> None:
    """Every file under a final name is a whole, correct image (hidden temporaries aside)."""
    for name in visible(out):
        img = jfusion.read_image(out / name)  # raises on a truncated file
        assert np.abs(np.rint(img * 255) - expected[name]).max() <= 1, name


def _signal_at_random(args: list, out: Path, sig: int, delay: float) -> tuple[int, str, str]:
    before = len(everything(out)) if out.exists() else 0
    proc = _start(*args)
    t0 = time.time()
    while proc.poll() is None and not (out.exists() and len(everything(out)) > before) and time.time() - t0 < 300:
        time.sleep(0.002)  # wait until this run writes its first file, then signal at a random moment
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    stdout, err = proc.communicate(timeout=300)
    return proc.returncode, stdout, err


def test_sigint_and_sigkill_during_a_batch_then_resume(batch, tmp_path):
    """Ctrl-C, then SIGKILL of the resumed run, at random moments: never a partial file under a final
    name (Ctrl-C leaves no temporary file either), and a last `--skip-existing` run completes."""
    a, b, expected = batch
    out = tmp_path / "out"
    seed = int(time.time() * 1000) % 100_000
    rng = random.Random(seed)
    args = ["fuse", a, b, "-m", "laplacian", "-o", out]
    rc, stdout, err = _signal_at_random(args, out, signal.SIGINT, rng.uniform(0.0, 0.5))
    # 130: interrupted mid-batch; 0 or -SIGINT (interpreter shutdown): the batch had finished
    assert rc == 130 or (rc in (0, -signal.SIGINT) and "fused 24 scene(s)" in stdout), f"seed {seed}: {rc} {err}"
    if rc == 130:
        assert "--skip-existing" in err, err
    _assert_complete(out, expected)
    assert everything(out) == visible(out), f"seed {seed}: temporary files left after Ctrl-C"
    _signal_at_random([*args, "--skip-existing"], out, signal.SIGKILL, rng.uniform(0.0, 0.3))
    _assert_complete(out, expected)
    r = subprocess.run([sys.executable, "-m", "jfusion", *map(str, args), "--skip-existing"],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, f"seed {seed}: {r.stderr}"
    assert visible(out) == sorted(expected), f"seed {seed}"
    _assert_complete(out, expected)


def test_two_writers_of_one_path(pair, tmp_path):
    a, b = pair
    out = tmp_path / "same.png"
    procs = [_start("fuse", a, b, "-m", "laplacian", "-p", f"levels={lv}", "-o", out) for lv in (2, 4)]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=300)]]
    codes = [rc for rc, _ in results]
    assert sorted(codes) == [0, 2], results
    loser_err = results[codes.index(2)][1]
    assert "same.png" in loser_err and ("exists" in loser_err or "created by someone else" in loser_err)
    winner_levels = (2, 4)[codes.index(0)]
    ref = np.asarray(jfusion.fuse([jfusion.read_image(a), jfusion.read_image(b)], method="laplacian", levels=winner_levels))
    assert np.abs(jfusion.read_image(out) - np.clip(ref, 0, 1)).max() <= 0.5 / 255 + 1e-6
    assert everything(tmp_path) == ["a.png", "b.png", "same.png"]


def test_read_only_folder_in_a_subprocess(pair, tmp_path):
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    out_dir.chmod(0o555)
    try:
        try:
            (out_dir / "probe").write_bytes(b"")
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: chmod does not make a folder read-only here "
                        "(test_unwritable_folder_reported_before_fusing simulates it in-process)")
        a, b = pair
        r = subprocess.run([sys.executable, "-m", "jfusion", "fuse", str(a), str(b), "-o", str(out_dir / "f.png")],
                           capture_output=True, text=True, env=ENV, timeout=300)
        assert r.returncode == 2 and "not writable" in r.stderr
        assert everything(out_dir) == []
    finally:
        out_dir.chmod(0o755)


def test_hidden_partials_are_not_sources(tmp_path, rng):
    """A SIGKILLed run's hidden temporary files are never taken for images by a later batch."""
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        jfusion.write_image(tmp_path / folder / "s.png", rng.random((32, 32)))
        (tmp_path / folder / ".s2.png.abc123.partial").write_bytes(b"\x89PNG partial")
    r = cli("fuse", tmp_path / "A", tmp_path / "B", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert everything(tmp_path / "out") == ["s.png"]


def test_stored_bytes_unchanged_by_a_refused_rerun(pair, tmp_path):
    a, b = pair
    out = tmp_path / "f.png"
    assert cli("fuse", a, b, "-o", out).exit_code == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    r = cli("fuse", a, b, "-o", out, "-p", "levels=2")
    assert r.exit_code == 2 and hashlib.sha256(out.read_bytes()).hexdigest() == digest
    r = cli("fuse", a, b, "-o", out, "--skip-existing")
    assert r.exit_code == 0 and hashlib.sha256(out.read_bytes()).hexdigest() == digest
