"""Pan-sharpening window by window equals whole-scene pan-sharpening for local methods."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import jfusion as jf
from jfusion.pansharpening import list_pansharpening_methods, pansharpen_tiled

# Tolerance: float32 rounding of the same arithmetic in another batch layout, relative to the
# 11-bit data range. With the 23-tap interpolator (periodic border) a halo of 16 MS pixels is needed
# (8 of wrapped context + 8 of interpolator reach); bicubic (ratio 3) needs only the reach.
TOL = 1e-5


def _scene(h: int, w: int, ratio: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ms = gaussian_filter(rng.random((h, w, 4)), (1, 1, 0)) * 1800 + 60
    pan = gaussian_filter(rng.random((h * ratio, w * ratio)), 1) * 1800 + 60
    return ms.astype(np.float32), pan.astype(np.float32)


@pytest.mark.parametrize(("method", "ratio", "halo"), [("exp", 4, 16), ("gihs", 3, 8), ("pnn", 4, 16), ("pnn-residual", 4, 16)])
def test_tiled_equals_whole_scene_for_local_methods(method, ratio, halo):
    ms, pan = _scene(56, 64, ratio)  # sides that are not multiples of the tile
    whole = np.asarray(jf.pansharpen(ms, pan, method=method, sensor="IKONOS", bit_depth=11))
    tiled = pansharpen_tiled(ms, pan, method=method, sensor="IKONOS", bit_depth=11, tile=20, halo=halo, batch=3)
    assert tiled.shape == whole.shape and tiled.dtype == np.float32
    assert np.abs(tiled - whole).max() / 2047 <= TOL


def test_local_flag_is_declared_for_the_bounded_methods():
    local = {m.name for m in list_pansharpening_methods() if m.local}
    assert local == {"exp", "gihs", "pnn", "pnn-residual", "drpnn"}


def test_global_statistics_are_refused_unless_accepted():
    ms, pan = _scene(48, 48, 4)
    with pytest.raises(jf.FusionInputError, match="image-wide statistics.*local_statistics=True"):
        pansharpen_tiled(ms, pan, method="gsa", tile=16, halo=8)
    out = pansharpen_tiled(ms, pan, method="gsa", tile=16, halo=8, local_statistics=True)
    whole = np.asarray(jf.pansharpen(ms, pan, method="gsa"))
    assert out.shape == whole.shape and np.isfinite(out).all()


@pytest.mark.parametrize(("kwargs", "match"), [({"tile": 0}, "tile=0"), ({"halo": -1}, "halo=-1"), ({"batch": 2.5}, "batch=2.5")])
def test_bad_tiling_arguments_are_named(kwargs, match):
    ms, pan = _scene(16, 16, 4)
    with pytest.raises(jf.FusionInputError, match=match):
        pansharpen_tiled(ms, pan, method="exp", **kwargs)


def test_mshs_is_not_tiled():
    rng = np.random.default_rng(0)
    with pytest.raises(jf.FusionInputError, match="not tiled"):
        pansharpen_tiled(rng.random((8, 8, 48), dtype=np.float32), rng.random((32, 32, 3), dtype=np.float32), method="cnn3d-mshs")
