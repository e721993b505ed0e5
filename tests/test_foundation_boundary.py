"""Validation lives at the eager boundary only (issue 12 item 6).

The public entry points (``fuse``, ``fuse_tiled``, ``pansharpen``, ``cbpdn`` called eagerly)
raise :class:`jfusion.FusionInputError` with the messages the pure functions used to raise
while tracing; the pure functions behind the registries trace under ``jit``/``vmap`` without
any Python check; and input already on a device is validated there, never copied to the
host and back.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
from jfusion import FusionInputError
from jfusion.methods.registry import get_info
from jfusion.pansharpening import get_pansharpening_method, pansharpen
from jfusion.tiling import fuse_tiled


def _rng_images(shape, seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


# ------------------------------------------------------------------------------------------
# the moved checks, raised by the public entry points with their old messages
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["cnn-focus", "cnn-medical", "cnn-weights"])
def test_fuse_checks_the_registered_min_size(method):
    with pytest.raises(FusionInputError, match=re.escape(f"sources: {method} needs images of at least 16x16 pixels, got 12x20")):
        jfusion.fuse(_rng_images((2, 12, 20)), method=method)


def test_min_size_follows_an_option():
    info = get_info("cnn-focus-multiscale")
    assert info.required_size() == 64 and info.required_size({"scales": (16, 32)}) == 32
    with pytest.raises(FusionInputError, match=re.escape("cnn-focus-multiscale needs images of at least 64x64 pixels, got 40x40")):
        jfusion.fuse(_rng_images((2, 40, 40)), method="cnn-focus-multiscale")
    with pytest.raises(FusionInputError, match="at least 32x32 pixels, got 24x40"):
        jfusion.fuse(jnp.asarray(_rng_images((2, 24, 40))), method="cnn-focus-multiscale", scales=(16, 32))


def test_fuse_tiled_checks_image_and_tile_sizes():
    # area_ratio=0: the bounded-support form of cnn-focus (fuse_tiled refuses the image-wide one);
    # halos below the support only warn, the sizes are errors.
    with pytest.warns(UserWarning), pytest.raises(FusionInputError, match="cnn-focus needs images of at least 16x16"):
        fuse_tiled(_rng_images((2, 8, 40)), method="cnn-focus", tile=16, halo=0, area_ratio=0.0)
    with pytest.warns(UserWarning), pytest.raises(FusionInputError, match=re.escape("cnn-focus needs tiles (tile + 2 halo) of at least 16x16 pixels, got 12x12")):
        fuse_tiled(_rng_images((2, 40, 40)), method="cnn-focus", tile=8, halo=2, area_ratio=0.0)


def _scene(bands, seed=0):
    rng = np.random.default_rng(seed)
    ms = (300 + 1000 * rng.random((16, 16, bands))).astype(np.uint16)
    pan = (300 + 1000 * rng.random((64, 64))).astype(np.uint16)
    return ms, pan


def test_pansharpen_checks_bands_and_weights():
    with pytest.raises(FusionInputError, match=re.escape("ms: 3 band(s); radiometric indices need green, red and NIR bands (4 or 8 bands).")):
        pansharpen(*_scene(3), method="pnn", sensor="IKONOS")
    with pytest.raises(FusionInputError, match=re.escape("method 'pnn': no shipped weights for sensor 'QB'; pass sensor= one of")):
        pansharpen(*_scene(4), method="pnn", sensor="QB")
    with pytest.raises(FusionInputError, match=re.escape("method 'drpnn': the IKONOS model was trained for 4 bands but ms has 8")):
        pansharpen(*_scene(8), method="drpnn", sensor="IKONOS")


def test_pansharpen_checks_the_mshs_weights():
    rng = np.random.default_rng(0)
    hs, hr = rng.random((8, 8, 5)).astype(np.float32), rng.random((32, 32, 3)).astype(np.float32)
    with pytest.raises(FusionInputError, match=re.escape("method 'cnn3d-mshs': no weights for scene='nowhere'; pass scene= one of")):
        pansharpen(hs, hr, method="cnn3d-mshs", scene="nowhere")
    with pytest.raises(FusionInputError, match=re.escape("cnn3d-mshs: no shipped model(s) for 5 HS bands + 3 high-resolution band(s) at ratio 4")):
        pansharpen(hs, hr, method="cnn3d-mshs")
    with pytest.raises(FusionInputError, match=re.escape("cnn3d-mshs (houston): trained for")):
        pansharpen(hs, hr, method="cnn3d-mshs", scene="houston")


def test_cbpdn_checks_eagerly_and_not_under_a_trace():
    from jfusion.sparse import cbpdn

    with pytest.raises(FusionInputError, match="larger than the signal"):
        cbpdn(np.ones((8, 8, 4)), np.ones((4, 4)), 0.1)
    d = _rng_images((4, 4, 3))
    s = jnp.asarray(_rng_images((2, 16, 16)))
    # the trace does not re-check: fft_groups=0 is only refused eagerly
    jax.eval_shape(jax.vmap(lambda x: cbpdn(d, x, 0.1, max_iter=2, fft_groups=0)[0]), s)
    with pytest.raises(FusionInputError, match="fft_groups"):
        cbpdn(d, s[0], 0.1, fft_groups=0)


# ------------------------------------------------------------------------------------------
# the pure functions: jit + vmap over a batch of valid scenes, no eager checks
# ------------------------------------------------------------------------------------------
def test_learned_fusion_method_is_jit_and_vmap_able():
    fn = jfusion.get_method("cnn-focus")
    batch = jnp.asarray(_rng_images((2, 2, 16, 16)))
    out = jax.jit(jax.vmap(fn))(batch)
    assert out.shape == (2, 16, 16)
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(jfusion.fuse(batch[1], method="cnn-focus")), atol=1e-5)


def test_learned_pansharpening_method_is_jit_and_vmap_able(method="pnn"):
    fn = get_pansharpening_method(method)
    scenes = [_scene(4, seed) for seed in (0, 1)]
    ms = jnp.asarray(np.stack([m for m, _ in scenes]), jnp.float32)
    pan = jnp.asarray(np.stack([p for _, p in scenes]), jnp.float32)
    out = jax.jit(jax.vmap(lambda m, p: fn(m, p, ratio=4, sensor="IKONOS", bit_depth=11)))(ms, pan)
    assert out.shape == (2, 64, 64, 4)
    ref = pansharpen(*scenes[1], method=method, sensor="IKONOS")
    np.testing.assert_allclose(np.asarray(out[1]), np.asarray(ref), rtol=1e-4, atol=1e-2)


def test_mshs_method_is_jit_able():
    fn = get_pansharpening_method("cnn3d-mshs")
    meta = jfusion.pansharpening.mshs.shipped_cnn3d()["houston"]
    rng = np.random.default_rng(0)
    hs = rng.random((8, 8, int(meta["bands"]))).astype(np.float32)
    hr = rng.random((32, 32, int(meta["ms_bands"]))).astype(np.float32)
    out = jax.jit(lambda a, b: fn(a, b, ratio=4, sensor="houston"))(hs, hr)
    assert out.shape == (32, 32, int(meta["bands"]))


# ------------------------------------------------------------------------------------------
# device input stays on the device
# ------------------------------------------------------------------------------------------
def test_fuse_keeps_device_input_on_the_device():
    """No implicit transfer at all while ``fuse`` validates and fuses ``jax.Array`` sources.

    On CPU the guard catches host-to-device transfers, which a host round trip of the image
    always ends with; on accelerators it also catches the device-to-host half.
    """
    x = jnp.asarray(_rng_images((2, 32, 32, 3)))
    u = jnp.asarray((_rng_images((2, 32, 32)) * 255).astype(np.uint8))
    a, grey = x[0], x[1, ..., 0]
    for src in (x, u, [a, grey]):
        jfusion.fuse(src, method="laplacian")  # compile outside the guard
        with jax.transfer_guard("disallow"):
            out = jfusion.fuse(src, method="laplacian")
        assert isinstance(out, jax.Array)
    np.testing.assert_allclose(
        np.asarray(jfusion.fuse(x, method="laplacian")), np.asarray(jfusion.fuse(np.asarray(x), method="laplacian")), atol=1e-6
    )


def test_device_validation_gives_the_numpy_messages():
    from jfusion.errors import validate_sources

    bad = _rng_images((3, 8, 8))
    bad[2, 1, 1] = np.nan
    over = _rng_images((2, 8, 8)) * 2.0
    for arr in (bad, over, np.ones((1, 8, 8), np.float32), np.ones((2, 8, 8), np.int32), np.ones((2, 0, 8), np.float32)):
        with pytest.raises(FusionInputError) as host:
            validate_sources(arr)
        with pytest.raises(FusionInputError) as device:
            validate_sources(jnp.asarray(arr), keep_device=True)
        assert str(device.value) == str(host.value)


def test_pansharpen_keeps_device_input_on_the_device():
    ms, pan = (jnp.asarray(a) for a in _scene(4))
    for method in ("gsa", "pnn"):
        ref = pansharpen(ms, pan, method=method, sensor="IKONOS")
        with jax.transfer_guard("disallow"):
            out = pansharpen(ms, pan, method=method, sensor="IKONOS")
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


def test_pair_validation_on_device_gives_the_numpy_messages():
    from jfusion.pansharpening import validate_pair

    ms, pan = _scene(4)
    nan_ms = ms.astype(np.float32)
    nan_ms[0, 0, 0] = np.inf
    cases = [
        dict(ms=nan_ms, pan=pan, bit_depth=11),
        dict(ms=ms.astype(np.float32) - 2000, pan=pan),
        dict(ms=ms, pan=pan, bit_depth=8),
        dict(ms=ms, pan=pan[:60]),
    ]
    for case in cases:
        with pytest.raises(FusionInputError) as host:
            validate_pair(case["ms"], case["pan"], bit_depth=case.get("bit_depth"))
        with pytest.raises(FusionInputError) as device:
            validate_pair(jnp.asarray(case["ms"]), jnp.asarray(case["pan"]), bit_depth=case.get("bit_depth"), keep_device=True)
        assert str(device.value) == str(host.value)
    m, p, r, depth = validate_pair(jnp.asarray(ms), jnp.asarray(pan), keep_device=True)
    assert isinstance(m, jax.Array) and isinstance(p, jax.Array) and (r, depth) == (4, 11)
