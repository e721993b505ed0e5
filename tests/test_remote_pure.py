"""get_pansharpening_method(name) is a pure function: jit + vmap over a batch of scenes equals pansharpen per scene."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from jfusion.pansharpening import get_pansharpening_method, list_pansharpening_methods, pansharpen

NAMES = [m.name for m in list_pansharpening_methods() if m.family != "mshs"]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(3)
    # Smooth-ish 11-bit scenes: a low-resolution MS and a PAN 4x finer, two scenes stacked.
    ms = (300 + 1200 * rng.random((2, 12, 12, 4))).astype(np.float32)
    pan = np.repeat(np.repeat(ms.mean(-1), 4, axis=1), 4, axis=2) + (80 * rng.standard_normal((2, 48, 48))).astype(np.float32)
    return ms, np.clip(pan, 0, 2047).astype(np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_vmapped_pure_function_equals_pansharpen(name, batch):
    ms, pan = batch
    info = list_pansharpening_methods()[[m.name for m in list_pansharpening_methods()].index(name)]
    opts = {"bit_depth": 11} if info.learned else {}
    fn = jax.jit(jax.vmap(functools.partial(get_pansharpening_method(name), ratio=4, sensor="IKONOS", **opts)))
    out = np.asarray(fn(ms, pan))
    assert out.shape == (2, 48, 48, 4)
    for i in range(2):
        ref = np.asarray(pansharpen(ms[i], pan[i], method=name, sensor="IKONOS", **opts))
        # float32 rounding of a batched vs a single program (values ~1e3): 1e-5 of the scale.
        np.testing.assert_allclose(out[i], ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))
