"""The jfusion command line, end to end in subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jfusion

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "jfusion", *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600
    )


@pytest.fixture
def pair_files(tmp_path, rng):
    a = jfusion.write_image(tmp_path / "a.png", rng.random((32, 32, 3)))
    b = jfusion.write_image(tmp_path / "b.png", rng.random((32, 32, 3)))
    return a, b


def test_fuse_writes_output(pair_files, tmp_path):
    a, b = pair_files
    out = tmp_path / "f.png"
    r = run("fuse", str(a), str(b), "-m", "laplacian", "-o", str(out), "-p", "levels=3")
    assert r.returncode == 0, r.stderr
    img = jfusion.read_image(out)
    ref = np.asarray(jfusion.fuse([jfusion.read_image(a), jfusion.read_image(b)], method="laplacian", levels=3))
    assert np.abs(img - np.clip(ref, 0, 1)).max() <= 0.5 / 255 + 1e-6


def test_fuse_refuses_to_overwrite_input(pair_files):
    a, b = pair_files
    before = a.read_bytes()
    r = run("fuse", str(a), str(b), "-o", str(a), "--force")
    assert r.returncode != 0 and "refusing to overwrite an input" in r.stderr
    assert a.read_bytes() == before


def test_fuse_needs_force_for_existing_output(pair_files, tmp_path):
    a, b = pair_files
    out = tmp_path / "exists.png"
    out.write_bytes(b"keep")
    r = run("fuse", str(a), str(b), "-o", str(out))
    assert r.returncode != 0 and "--force" in r.stderr and out.read_bytes() == b"keep"
    r = run("fuse", str(a), str(b), "-o", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() != b"keep"


def test_fuse_reports_bad_input(tmp_path, rng):
    a = jfusion.write_image(tmp_path / "a.png", rng.random((32, 32)))
    b = jfusion.write_image(tmp_path / "b.png", rng.random((16, 32)))
    r = run("fuse", str(a), str(b), "-o", str(tmp_path / "o.png"))
    assert r.returncode == 2 and "differ in size" in r.stderr


def test_batch_mode_over_folders(tmp_path, rng):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        for name in ("s1", "s2"):
            jfusion.write_image(tmp_path / folder / f"{name}.png", rng.random((24, 24)))
    jfusion.write_image(tmp_path / "A" / "only_in_a.png", rng.random((24, 24)))
    r = run("fuse", str(tmp_path / "A"), str(tmp_path / "B"), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s1.png", "s2.png"]


def test_methods_table():
    r = run("methods")
    assert r.returncode == 0 and "laplacian" in r.stdout and "mertens" in r.stdout


def test_demo_end_to_end(tmp_path):
    r = run("demo", "-o", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "fused image:" in r.stdout and (tmp_path / "demo" / "fused_laplacian.png").exists()
    assert (tmp_path / "demo" / "side_by_side_laplacian.png").exists()
    fused = jfusion.read_image(tmp_path / "demo" / "fused_laplacian.png")
    from jfusion.cli import demo_sources

    a, _, sharp = demo_sources()
    # fusion must bring the image closer to the all-in-focus original than either source
    assert np.mean((fused - sharp) ** 2) < 0.5 * np.mean((a - sharp) ** 2)
