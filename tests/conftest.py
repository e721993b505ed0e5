"""Shared test fixtures: the location of ../shared/data and skip-with-reason helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

# The CLI turns on JAX's persistent compilation cache (jfusion.cache); commands the tests run in this
# process must not write ~/.cache or share programs across tests. tests/test_cli_compile_cache.py
# runs its CLI calls in subprocesses with the cache explicitly on.
os.environ.setdefault("JFUSION_NO_CACHE", "1")
DATA = Path(os.environ.get("JFUSION_DATA", REPO.parent / "shared" / "data"))


def data_path(*parts: str) -> Path:
    """Path under the shared data folder, or skip the test with the reason when it is absent."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (set JFUSION_DATA to the data folder)")
    return p


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test file: one process runs ~1000 tests, and the
    accumulated executables grew until XLA crashed while compiling (two segfaults in
    backend_compile_and_load in full runs, 2026-12-02)."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
