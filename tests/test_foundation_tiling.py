"""Tiled fusion equals whole-image fusion for methods of bounded support."""

import numpy as np
import pytest

import jfusion
from jfusion.errors import FusionInputError
from jfusion.tiling import fuse_tiled, tile_windows


def test_tile_windows_cover_axis():
    wins = tile_windows(200, 64, 32)
    kept = np.zeros(200, int)
    for start, a, b in wins:
        assert 0 <= start and start + 128 <= 200
        kept[start + a : start + b] += 1
    np.testing.assert_array_equal(kept, 1)


@pytest.mark.parametrize("shape", [(2, 192, 160), (2, 128, 192, 3)])
def test_tiled_equals_whole_image(rng, shape):
    src = rng.random(shape).astype(np.float32)
    # A 3-level Laplacian pyramid has a support of a few tens of pixels: a 32-px halo covers
    # it to float rounding; the tolerance 1e-5 is float32 rounding of the pyramid sums.
    whole = np.asarray(jfusion.fuse(src, method="laplacian", levels=3))
    tiled = fuse_tiled(src, "laplacian", tile=64, halo=32, batch=3, align=32, levels=3)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiled_unaligned_size_agrees_away_from_padding(rng):
    src = rng.random((2, 170, 150, 3)).astype(np.float32)
    whole = np.asarray(jfusion.fuse(src, method="laplacian", levels=3))
    tiled = fuse_tiled(src, "laplacian", tile=64, halo=32, batch=2, align=32, levels=3)
    assert tiled.shape == whole.shape
    # Sides are padded (symmetric) to multiples of 32, so only pixels within the halo of the
    # bottom/right border see different data; everything else matches to rounding.
    np.testing.assert_allclose(tiled[:-32, :-32], whole[:-32, :-32], atol=1e-5)


def test_tiling_validates(rng):
    with pytest.raises(FusionInputError, match="multiples of align"):
        fuse_tiled(rng.random((2, 64, 64)), "laplacian", tile=50, halo=16)
    with pytest.raises(FusionInputError, match="at least 2"):
        fuse_tiled(rng.random((1, 64, 64)), "laplacian", tile=32, halo=0)
