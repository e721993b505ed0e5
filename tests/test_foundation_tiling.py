"""Tiled fusion equals whole-image fusion for every method of bounded support; the others are refused.

Each case fuses a real multi-focus pair crop (Lytro 01, 200 x 232, 360 x 376 for the multi-scale CNN:
not multiples of any tile or alignment) whole and tile by tile with the halo and alignment the method declares
(``halo=None``), with tiles small enough that windows have seams in both directions. Tolerance
1e-5: float32 rounding (measured max 7e-7); the windows compute the same sums in the same order as
the whole image, so anything larger is a support or border bug, not rounding.
"""

import numpy as np
import pytest

import jfusion
from jfusion.errors import FusionInputError
from jfusion.methods.registry import get_info, list_methods
from jfusion.tiling import fuse_tiled, periodic_windows, tile_plan, tile_windows, window_size

from conftest import data_path

ATOL = 1e-5


@pytest.fixture(scope="module")
def lytro() -> np.ndarray:
    a = jfusion.read_image(data_path("lytro", "lytro-01-A.jpg"))
    b = jfusion.read_image(data_path("lytro", "lytro-01-B.jpg"))
    return np.stack([a, b])  # (2, 520, 520, 3)


@pytest.fixture(scope="module")
def pair(lytro) -> np.ndarray:
    return lytro[:, 40:240, 30:262]  # (2, 200, 232, 3)


@pytest.mark.parametrize("length,tile,halo,align", [(200, 64, 32, 1), (200, 64, 36, 4), (232, 32, 72, 8), (50, 64, 8, 8)])
def test_windows_cover_axis_once_aligned(length, tile, halo, align):
    win = window_size(length, tile, halo, align=align)
    kept = np.zeros(length, int)
    for start, a, b in tile_windows(length, tile, halo, align=align):
        assert 0 <= start and start + win <= length and start % align == 0
        # kept pixels have `halo` of context or the image border on both sides
        assert a >= halo or start == 0
        assert win - b >= halo or start + win == length
        kept[start + a : start + b] += 1
    np.testing.assert_array_equal(kept, 1)


# (method, options, tile, colour, crop): options and tiles that give windows smaller than the crop
# (seams in both directions). The CNN methods have wide halos (52-88 px): their tiles are as large as
# still gives seams, since the work grows with the number of windows (tile 16 on a 136 x 152 crop ran
# 90 windows of 120 x 120 for one whole image); cnn-focus-multiscale (halo 88) on a larger 360 x 376
# crop, where 6 windows of 356 cover it (120 windows of 196 on the 200 x 232 one).
FULL, SMALL, LARGE = (200, 232), (136, 152), (360, 376)
BOUNDED = [
    ("laplacian", {"levels": 3}, 64, True, FULL),
    ("laplacian", {"levels": 4, "rule": "window-energy"}, 16, False, FULL),
    ("ratio", {"levels": 3}, 64, False, FULL),
    ("contrast", {"levels": 3}, 64, False, FULL),
    ("gradient", {"levels": 3}, 32, False, FULL),
    ("dwt", {"levels": 2}, 32, True, FULL),
    ("swt", {}, 32, True, FULL),  # periodic: border windows carry the opposite border (periodic_windows)
    ("gff", {"r1": 20}, 64, True, FULL),
    ("sf-block", {}, 64, True, FULL),
    ("mertens", {"levels": 3}, 64, True, FULL),
    ("cnn-focus", {"area_ratio": 0.0}, 92, False, FULL),  # halo 52: 3 x 3 windows of 196
    ("cnn-focus-multiscale", {"area_ratio": 0.0, "scales": (16, 32)}, 180, False, LARGE),  # halo 88: 2 x 3 of 356
    ("cnn-medical", {"levels": 2}, 80, False, FULL),  # halo 58: 3 x 3 windows of 196
    ("cnn-weights", {"levels": 2}, 80, False, FULL),
    ("cnn-regression", {}, 16, True, SMALL),
]


@pytest.mark.parametrize("method,options,tile,colour,crop", BOUNDED, ids=[f"{m}-{i}" for i, (m, *_r) in enumerate(BOUNDED)])
def test_tiled_equals_whole_image(lytro, method, options, tile, colour, crop):
    support, halo, align = tile_plan(method, options)
    assert support.bounded and halo == support.halo and tile % align == 0
    part = lytro[:, 40 : 40 + crop[0], 30 : 30 + crop[1]]
    for src in (part.mean(-1), part) if colour else (part.mean(-1),):
        h, w = src.shape[1:3]
        if not support.periodic:
            assert window_size(h, tile, halo, align=align) < h and window_size(w, tile, halo, align=align) < w, "needs seams"
        else:
            assert periodic_windows(h, tile, halo, support.periodic)[0] < h, "needs seams"
        whole = np.asarray(jfusion.fuse(src, method=method, **options))
        tiled = fuse_tiled(src, method, tile=tile, batch=16, **options)
        assert tiled.shape == whole.shape and tiled.dtype == np.float32
        np.testing.assert_allclose(tiled, whole, atol=ATOL, rtol=0, err_msg=f"{method} {src.shape}")


def test_sparse_patch_method_tiles_exactly(pair):
    # OMP over every patch is slow on CPU: a 40 x 48 crop, patch 8 at stride 4 (halo 12, align 4)
    src = pair.mean(-1)[:, 80:120, 100:148]
    opts = {"patch": 8, "stride": 4, "atoms": 64, "max_atoms": 4}
    whole = np.asarray(jfusion.fuse(src, method="sr", **opts))
    tiled = fuse_tiled(src, "sr", tile=8, **opts)
    assert window_size(48, 8, tile_plan("sr", opts)[1], align=4) < 48
    np.testing.assert_allclose(tiled, whole, atol=ATOL, rtol=0)


REFUSED = [
    ("csr", {}, "Fourier domain"),
    ("csr-transform", {}, "Fourier domain"),
    ("dwt", {"mode": "periodization"}, "periodic"),
    ("mertens", {}, "levels=N"),
    ("cnn-focus", {}, "area_ratio=0"),
    ("cnn-medical", {}, "levels=N"),
    ("deep-hdr", {}, "image-wide"),  # optical flow over the whole frame
    ("uwt-srcnn", {}, "times larger"),  # super-resolution: the output is scale x larger (refused even with local_statistics)
    ("srcnn-fusion", {"scale": 3}, "scale=3 times larger"),
]


@pytest.mark.parametrize("length,tile,halo,m", [(200, 32, 19, 8), (232, 64, 27, 4), (50, 32, 19, 8)])
def test_periodic_windows_cover_axis_once(length, tile, halo, m):
    win, wins = periodic_windows(length, tile, halo, m)
    assert win % m == 0 or len(wins) == 1
    kept = np.zeros(length, int)
    for idx, a, b in wins:
        assert len(idx) == win and idx.min() >= 0 and idx.max() < length
        np.testing.assert_array_equal(idx[a:b], np.arange(idx[a], idx[a] + b - a))  # kept part: contiguous pixels
        kept[idx[a] : idx[a] + b - a] += 1
    np.testing.assert_array_equal(kept, 1)


@pytest.mark.parametrize("method,options,why", REFUSED)
def test_unbounded_methods_are_refused(rng, method, options, why):
    src = rng.random((2, 40, 40)).astype(np.float32)
    with pytest.raises(FusionInputError, match=f"cannot be tiled exactly: .*{why}.*local_statistics=True"):
        fuse_tiled(src, method, **options)


def test_every_method_declares_its_support():
    for info in list_methods():
        s = info.support_for({})
        assert s.align >= 1
        assert s.bounded == (s.halo is not None) and (s.bounded or s.reason), info.name
    assert {m for m, *_ in BOUNDED} | {"sr"} | {m for m, *_ in REFUSED} == {i.name for i in list_methods()}


def test_local_statistics_opt_in_and_small_halo_warning(rng):
    src = rng.random((2, 96, 80)).astype(np.float32)
    out = fuse_tiled(src, "dwt", tile=32, halo=16, local_statistics=True, levels=2, mode="periodization")
    assert out.shape == (96, 80) and np.isfinite(out).all()
    with pytest.warns(UserWarning, match="less than the support"):
        fuse_tiled(src, "laplacian", tile=32, halo=8, levels=3)


def test_tiling_validates(rng):
    with pytest.raises(FusionInputError, match="multiple of 4"):
        fuse_tiled(rng.random((2, 64, 64)), "laplacian", tile=50, levels=3)
    with pytest.raises(FusionInputError, match="halo"):
        fuse_tiled(rng.random((2, 64, 64)), "laplacian", halo=-1)
    with pytest.raises(FusionInputError, match="batch"):
        fuse_tiled(rng.random((2, 64, 64)), "laplacian", batch=0)
    with pytest.raises(FusionInputError, match="at least 2"):
        fuse_tiled(rng.random((1, 64, 64)), "laplacian", tile=32)
    assert get_info("laplacian").support_for({"levels": 5}).align == 16


@pytest.mark.parametrize("n,batch,sizes", [(9, 16, [9]), (20, 16, [10, 10]), (17, 4, [4, 4, 4, 4, 1]), (10, 8, [5, 5]), (4, 4, [4]), (1, 8, [1])])
def test_job_batches_split_evenly_with_one_shape(n, batch, sizes):
    from jfusion.tiling import job_batches

    jobs = list(range(n))
    out = list(job_batches(jobs, batch))
    assert [len(g) for g, _ in out] == sizes and [j for g, _ in out for j in g] == jobs
    width = {len(p) for _, p in out}
    assert width == {max(sizes)} and max(sizes) <= batch  # one shape, never more than batch
    assert len(out) == -(-n // batch) and len(out) * max(sizes) - n < len(out)  # fewest calls, < 1 padded job per call
    for g, p in out:
        assert p[: len(g)] == g and all(x == g[-1] for x in p[len(g):])
