"""``sae-mra`` (Azarang & Ghassemian 2017): the SAE's restoration injected through the MRA scheme
``F_k = MS~_k + g_k (f(MS~_k) - MS~_k)``; its recipe (patch side, fixed training-sample set); shipped weights
are checked on the validation strip by tests/test_remote_learned.py like every learned asset."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.pansharpening import learned, wald
from jfusion.pansharpening.mra import glp_lowpass, matched_pan
from jfusion.pansharpening.registry import get_info
from jfusion.training import protocol
from jfusion.training.pansharpening import SaeMraConfig, sae_batches, train_and_evaluate
from jfusion.training.recipes import command_line, get_recipe

sys.path.insert(0, str(Path(__file__).parent))
from test_foundation_shape import count_compilations  # noqa: E402


def _scene(path: Path) -> Path:
    import scipy.io as sio

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:128]
    pan = (800 + 400 * np.sin(xx / 3.0) * np.cos(yy / 5.0) + rng.random((64, 128)) * 300).astype(np.uint16)
    low = pan.reshape(16, 4, 32, 4).mean((1, 3))
    ms = np.stack([low * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.uint16)
    sio.savemat(path, {"I_MS": ms, "I_PAN": pan, "sensor": "IKONOS", "L": 11, "ratio": 4})
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny sae-mra run of the registered recipe on a synthetic IKONOS-like scene (5x5 patches, 64 samples)."""
    tmp = tmp_path_factory.mktemp("saemra")
    cfg = SaeMraConfig(model="sae-mra", arch=learned.SPECS["sae-mra"], scene=str(_scene(tmp / "scene.mat")),
                       steps=12, batch=16, patch=5, samples=64)
    man = train_and_evaluate(cfg, tmp / "run", progress=False)
    return man, str(tmp / "run" / "sae-mra-IKONOS")


def _pair(seed=0, h=8, w=8):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : 4 * h, 0 : 4 * w]
    pan = (900 + 500 * np.sin(xx / 4.0 + seed) * np.cos(yy / 6.0) + rng.random((4 * h, 4 * w)) * 200).astype(np.float32)
    ms = np.stack([pan.reshape(h, 4, w, 4).mean((1, 3)) * f for f in (0.5, 0.6, 0.7, 0.8)], -1).astype(np.float32)
    return ms, pan


def test_training_smoke_manifest_and_validation_scores(run):
    man, asset = run
    assert man["model"] == "sae-mra" and man["patch"] == 5 and man["samples"] == 64 and man["steps"] == 12
    assert man["arch"]["kernels"] == [5] and man["config"]["samples"] == 64
    val = man["scores"]["validation"]
    assert set(val) == {"model", "exp"} and man["scores"]["test"] == {} and man["ships"] == protocol.ship_decision(val)
    assert all(np.isfinite(v) for s in val.values() for v in s.values())
    arrays = assets.read_asset(asset).arrays
    assert {a.shape for a in arrays.values()} >= {(25, 128), (128, 25)}  # 5x5 patches in and out, 128 hidden units
    assert all(a.dtype == np.float32 for a in arrays.values())


def test_fixed_sample_set_batches_come_from_the_pool():
    x = jax.random.uniform(jax.random.key(0), (40, 40, 1))
    y = x * 1.1
    key = jax.random.key(3)
    pool_fn = sae_batches(key, x, y, patch=5, batch=7, samples=10)
    rows = np.concatenate([np.asarray(pool_fn(i)[0]) for i in range(30)])
    assert rows.shape == (210, 25)
    assert len(np.unique(rows.round(6), axis=0)) <= 10  # 210 draws from 10 fixed patches
    fresh = sae_batches(key, x, y, patch=5, batch=7, samples=0)
    assert len(np.unique(np.concatenate([np.asarray(fresh(i)[0]) for i in range(30)]).round(6), axis=0)) > 100


def test_stride_from_overlap():
    assert [learned.sae_stride(7, o) for o in (0.0, 0.5, 0.75)] == [7, 4, 2]
    assert [learned.sae_stride(5, o) for o in (0.0, 0.5, 0.75)] == [5, 2, 1]
    assert learned.sae_stride(9, 0.95) == 1


def test_unit_gain_is_the_sae_restoration(run):
    """g_k = 1: F_k = f(MS~_k), the same restoration as ``sae`` (stride round(5 * 0.6) = 3 both)."""
    _, asset = run
    ms, pan = _pair()
    out = jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=asset, gain="unit", overlap=0.4)
    ref = jfusion.pansharpen(ms, pan, method="sae", sensor="IKONOS", bit_depth=11, weights=asset, stride=3)
    assert out.shape == (32, 32, 4)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-3)


def test_cbd_gain_against_numpy_regression(run):
    """g_k = cov(MS~_k, P_k^L) / var(P_k^L) recomputed in float64 NumPy from the unit-gain output."""
    _, asset = run
    ms, pan = _pair(1)
    unit = np.asarray(jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=asset, gain="unit"), np.float64)
    cbd = np.asarray(jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=asset, gain="cbd"), np.float64)
    ms_up = np.asarray(wald.upsample_ms(ms, 4), np.float64)
    p_low = np.asarray(glp_lowpass(matched_pan(jnp.asarray(pan), jnp.asarray(ms_up, jnp.float32)), ratio=4, sensor="IKONOS"), np.float64)
    g = np.array([np.cov(ms_up[..., k].ravel(), p_low[..., k].ravel())[0, 1] / np.var(p_low[..., k], ddof=1) for k in range(4)])
    assert np.all(g > 0.3) and np.all(g < 3.0)  # smooth scene: the low-pass PAN explains the MS
    np.testing.assert_allclose(cbd, ms_up + g * (unit - ms_up), rtol=1e-4, atol=0.05)


def test_jit_compiles_once_vmap_and_grad(run):
    _, asset = run
    fn = partial(get_info("sae-mra").fn, ratio=4, sensor="IKONOS", bit_depth=11, weights=asset)
    ms, pan = _pair(2)
    jitted = jax.jit(fn)
    first = jitted(ms, pan)
    with count_compilations() as n:
        second = jitted(ms + 1.0, pan)
    assert n[0] == 0
    assert first.shape == second.shape == (32, 32, 4)
    ms2, pan2 = _pair(3)
    batch = jax.vmap(fn)(jnp.stack([ms, ms2]), jnp.stack([pan, pan2]))
    np.testing.assert_allclose(np.asarray(batch[1]), np.asarray(fn(ms2, pan2)), rtol=1e-5, atol=1e-2)
    g = jax.grad(lambda m: jnp.sum(fn(m, pan)))(jnp.asarray(ms))
    assert g.shape == ms.shape and np.all(np.isfinite(np.asarray(g))) and float(jnp.abs(g).sum()) > 0


def test_bad_input_names_the_argument(run):
    _, asset = run
    ms, pan = _pair()
    with pytest.raises(FusionInputError, match="gain"):
        jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=asset, gain="regression")
    with pytest.raises(FusionInputError, match="overlap"):
        jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=asset, overlap=1.0)
    with pytest.raises(FusionInputError, match="sensor"):
        jfusion.pansharpen(ms, pan, method="sae-mra", sensor="QB", bit_depth=11)
    with pytest.raises(FusionInputError, match="weights="):
        jfusion.pansharpen(ms, pan, method="sae-mra", sensor="IKONOS", bit_depth=11, weights=str(Path(asset).parent / "nothing"))
    with pytest.raises(FusionInputError, match="samples"):
        train_and_evaluate(SaeMraConfig(model="sae-mra", arch=learned.SPECS["sae-mra"], scene="x.mat", samples=-1), "unused",
                           progress=False)


def test_recipe_and_presets():
    r = get_recipe("sae-mra")
    assert r.family == "pansharpening" and r.fn is train_and_evaluate and isinstance(r.config, SaeMraConfig)
    assert sorted(r.presets) == [f"weights/pansharpening/sae-mra-{s}" for s in ("GeoEye1", "IKONOS", "WV2")]
    cfg = r.presets["weights/pansharpening/sae-mra-WV2"]
    assert command_line("sae-mra", cfg) == f"jfusion train sae-mra --scene imgWV2.mat --steps {cfg.steps} --seed 0"
