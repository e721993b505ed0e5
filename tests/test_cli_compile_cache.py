"""The CLI's persistent compilation cache: a second `jfusion fuse` of the same shapes compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import jfusion
from jfusion.cache import compilation_cache_dir

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI in-process under a jax.monitoring listener and prints what JAX's compiler did.
DRIVER = """
import json, sys
from collections import Counter
import jax.monitoring as mon
events, secs = Counter(), Counter()
mon.register_event_listener(lambda name, **kw: events.update([name]))
mon.register_event_duration_secs_listener(lambda name, d, **kw: secs.update({name: d}))
from jfusion.cli import app
try:
    app(sys.argv[1:], standalone_mode=False)
finally:
    import jax
    print("REPORT" + json.dumps({
        "requests": events["/jax/compilation_cache/compile_requests_use_cache"],
        "hits": events["/jax/compilation_cache/cache_hits"],
        "compile_s": secs["/jax/core/compile/backend_compile_duration"],
        "cache_dir": jax.config.jax_compilation_cache_dir,
    }))
"""


def _fuse(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, "fuse", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("REPORT"))
    return json.loads(line.removeprefix("REPORT"))


def test_second_fuse_of_the_same_shapes_compiles_nothing(tmp_path):
    rng = np.random.default_rng(0)
    a = jfusion.write_image(tmp_path / "a.png", rng.random((40, 48)))
    b = jfusion.write_image(tmp_path / "b.png", rng.random((40, 48)))
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JFUSION_CACHE_DIR": str(cache)}
    env.pop("JFUSION_NO_CACHE", None)
    first = _fuse([str(a), str(b), "-o", str(tmp_path / "f1.png"), "-m", "laplacian"], env)
    assert first["cache_dir"] == str(cache) and first["requests"] > 0 and first["hits"] == 0
    assert any(cache.iterdir())
    second = _fuse([str(a), str(b), "-o", str(tmp_path / "f2.png"), "-m", "laplacian"], env)
    # every program came from the cache: nothing compiled (compile_s is then only the cache reads)
    assert second["requests"] == first["requests"] and second["hits"] == second["requests"], second
    print(f"compile s: first {first['compile_s']:.2f}, second {second['compile_s']:.2f}")
    np.testing.assert_array_equal(jfusion.read_image(tmp_path / "f1.png"), jfusion.read_image(tmp_path / "f2.png"))

    off = _fuse([str(a), str(b), "-o", str(tmp_path / "f3.png"), "-m", "laplacian"], {**env, "JFUSION_NO_CACHE": "1"})
    assert off["cache_dir"] is None and off["hits"] == 0


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("JFUSION_NO_CACHE", raising=False)
    monkeypatch.setenv("JFUSION_CACHE_DIR", str(tmp_path / "x"))
    assert compilation_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("JFUSION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache_dir() == tmp_path / "xdg" / "jfusion" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compilation_cache_dir() == Path.home() / ".cache" / "jfusion" / "jax"
    monkeypatch.setenv("JFUSION_NO_CACHE", "1")
    assert compilation_cache_dir() is None
