"""Pyramids: OpenCV pyrDown/pyrUp parity, MATLAB (Mertens) formulas, reconstruction, jit/vmap/grad."""

from __future__ import annotations

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import data_path
from jfusion.io import read_image
from jfusion.ops import separable_filter
from jfusion.transforms import pyramids as P

SHAPES = [(32, 48), (33, 47), (17, 20), (9, 9)]

# jitted entry points: one compilation per shape instead of one per primitive in eager mode
_reduce = jax.jit(P.pyr_reduce, static_argnames="mode")
_expand = jax.jit(P.pyr_expand, static_argnums=1, static_argnames="mode")


@pytest.mark.parametrize("shape", SHAPES)
def test_reduce_matches_cv2_pyrdown(shape, rng):
    x = rng.random(shape).astype(np.float32)
    ours = np.asarray(_reduce(x, mode="opencv"))
    ref = cv2.pyrDown(x)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6)  # float32 rounding only


@pytest.mark.parametrize("shape", SHAPES)
def test_expand_matches_cv2_pyrup_any_target(shape, rng):
    x = rng.random(shape).astype(np.float32)
    h, w = shape
    for th, tw in [(2 * h, 2 * w), (2 * h - 1, 2 * w - 1), (2 * h, 2 * w - 1)]:
        ref = cv2.pyrUp(x, dstsize=(tw, th))
        ours = np.asarray(_expand(x, (th, tw), mode="opencv"))
        np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_laplacian_pyramid_matches_cv2_built_pyramid(rng):
    x = rng.random((45, 62)).astype(np.float32)
    levels = 4
    g = [x]
    for _ in range(levels - 1):
        g.append(cv2.pyrDown(g[-1]))
    ref = [g[i] - cv2.pyrUp(g[i + 1], dstsize=g[i].shape[::-1]) for i in range(levels - 1)] + [g[-1]]
    ours = jax.jit(P.laplacian_pyramid, static_argnames=("levels", "mode"))(x, levels=levels, mode="opencv")
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(np.asarray(a), b, atol=1e-6)


def _matlab_reduce(x):
    # VIFB/Mertens downsample.m: imfilter 'symmetric' then keep rows/cols 1:2:end (NumPy, direct 5x5)
    w = np.array([1, 4, 6, 4, 1], np.float64) / 16
    xp = np.pad(x, 2, mode="symmetric")
    k = np.outer(w, w)
    h, wd = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(5):
        for j in range(5):
            out += k[i, j] * xp[i : i + h, j : j + wd]
    return out[::2, ::2]


def _matlab_expand(x, target):
    # VIFB/Mertens upsample.m: replicate-pad by 1, zero-stuff 4*I on a 2x grid, zero-border filter, crop
    w = np.array([1, 4, 6, 4, 1], np.float64) / 16
    ip = np.pad(x, 1, mode="edge")
    r, c = 2 * ip.shape[0], 2 * ip.shape[1]
    grid = np.zeros((r, c))
    grid[::2, ::2] = 4 * ip
    gp = np.pad(grid, 2)
    k = np.outer(w, w)
    out = np.zeros((r, c))
    for i in range(5):
        for j in range(5):
            out += k[i, j] * gp[i : i + r, j : j + c]
    odd = (2 * x.shape[0] - target[0], 2 * x.shape[1] - target[1])
    return out[2 : r - 2 - odd[0], 2 : c - 2 - odd[1]]


@pytest.mark.parametrize("shape", [(32, 48), (33, 47), (10, 7)])
def test_mertens_mode_matches_matlab_formulas(shape, rng):
    x = rng.random(shape)
    red = _matlab_reduce(x)
    np.testing.assert_allclose(np.asarray(_reduce(x.astype(np.float32))), red, atol=1e-6)
    exp = _matlab_expand(red, shape)
    np.testing.assert_allclose(np.asarray(_expand(red.astype(np.float32), shape)), exp, atol=1e-6)


@functools.partial(jax.jit, static_argnames="mode")
def _round_trips(x, mode):
    lp = P.laplacian_pyramid(x, levels=None, mode=mode)
    rp = P.ratio_pyramid(x, levels=4, mode=mode)
    cp = P.contrast_pyramid(x, levels=4, mode=mode)
    recon = (P.collapse_laplacian(lp, mode=mode), P.collapse_ratio(rp, mode=mode), P.collapse_contrast(cp, mode=mode))
    return [t.shape for t in lp], recon


@pytest.mark.parametrize("shape", [(37, 50), (32, 17)])
@pytest.mark.parametrize("mode", ["mertens", "opencv"])
def test_perfect_reconstruction(shape, mode, rng):
    x = rng.random(shape).astype(np.float32)
    shapes, recon = _round_trips(x, mode)
    assert len(shapes) == P.default_levels(shape)
    assert shapes == list(P.level_shapes(shape, len(shapes)))
    for r in recon:  # Laplacian, ratio, contrast: exact up to float32 rounding
        assert np.abs(np.asarray(r) - x).max() < 1e-6


def test_gradient_pyramid_fsd_identity_and_round_trip(rng):
    x = rng.random((37, 50)).astype(np.float32)
    gp = jax.jit(P.gradient_pyramid, static_argnames="levels")(x, levels=4)
    assert gp.bands[0].shape == (4, 37 + 6, 50 + 6)
    # -1/8 sum_k d_k * D_k equals the FSD Laplacian G - w * G exactly (whole image, symmetric border)
    w = np.asarray(P.BURT_KERNEL)
    fsd = x - np.asarray(separable_filter(x, w, kernel_x=w, border="symmetric"))
    np.testing.assert_allclose(np.asarray(P.fsd_laplacian(gp.bands[0])), fsd, atol=1e-6)
    # not exactly invertible (aliasing of the decimation): measured on a natural image
    img = read_image(data_path("lytro", "lytro-01-A.jpg")).mean(-1)[:128, :128]
    err = np.abs(np.asarray(jax.jit(lambda v: P.collapse_gradient(P.gradient_pyramid(v, levels=4)))(img)) - img)
    assert err.mean() < 2e-3 and err.max() < 0.05  # measured mean 5.2e-4, max 0.016


def test_pyramids_jit_vmap_grad(rng):
    x = rng.random((3, 21, 26)).astype(np.float32)
    f = lambda v: P.collapse_laplacian(P.laplacian_pyramid(v, levels=3))  # noqa: E731
    plain = np.asarray(f(x))  # leading axes ride along without vmap
    np.testing.assert_allclose(plain, x, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(x)), plain, atol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(x)), plain, atol=1e-6)
    g = jax.jit(jax.grad(lambda v: jnp.sum(P.laplacian_pyramid(v, levels=3)[1] ** 2)))(jnp.asarray(x[0]))
    assert g.shape == x[0].shape and np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_expand_rejects_impossible_target():
    with pytest.raises(ValueError):
        P.pyr_expand(np.zeros((4, 4), np.float32), (10, 8))
