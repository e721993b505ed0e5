"""Rules: guided filter vs He's formula in NumPy, bwareaopen vs scipy labelling, majority filter,
activity measures, soft choose-max."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jfusion.ops import guided_filter
from jfusion.rules import (
    block_spatial_frequency,
    choose_max,
    clean_binary_map,
    clean_label_map,
    guided_refine,
    label_components,
    local_variance,
    majority_filter,
    max_weights,
    remove_small_regions,
    soft_choose_max,
    spatial_frequency,
    weighted_average,
    window_energy,
    window_max_abs,
)


def _he_guided_filter(I, p, r, eps):
    """He, Sun, Tang (2013), Alg. 1, written per window: a_k, b_k by least squares over each
    (2r+1)^2 window clipped to the image; q_i = mean over the windows containing i."""
    h, w = I.shape
    a = np.zeros((h, w))
    b = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            win = (slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1))
            Iw, pw = I[win], p[win]
            mu, pbar = Iw.mean(), pw.mean()
            var = (Iw * Iw).mean() - mu * mu
            a[y, x] = ((Iw * pw).mean() - mu * pbar) / (var + eps)
            b[y, x] = pbar - a[y, x] * mu
    q = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            win = (slice(max(y - r, 0), y + r + 1), slice(max(x - r, 0), x + r + 1))
            q[y, x] = a[win].mean() * I[y, x] + b[win].mean()
    return q


@pytest.mark.parametrize("r,eps", [(2, 0.01), (4, 1e-4), (8, 0.1)])
def test_guided_filter_matches_he_formula(r, eps, rng):
    I = rng.random((20, 23))
    p = (rng.random((20, 23)) > 0.5).astype(np.float64)
    ours = np.asarray(jax.jit(guided_filter, static_argnums=(2, 3))(I.astype(np.float32), p.astype(np.float32), r, eps))
    ref = _he_guided_filter(I, p, r, eps)
    # float32 cumulative sums vs float64 direct means: measured max |diff| 6.4e-7
    np.testing.assert_allclose(ours, ref, atol=5e-6)


@pytest.mark.parametrize("p,area", [(0.45, 5), (0.55, 20), (0.6, 60)])
def test_remove_small_regions_matches_scipy_labelling(p, area, rng):
    m = rng.random((40, 47)) < p
    lab, n = ndimage.label(m, structure=np.ones((3, 3)))  # 8-connectivity, as bwareaopen's default
    sizes = np.bincount(lab.ravel())
    ref = m & (sizes[lab] >= area)
    ours = np.asarray(jax.jit(remove_small_regions, static_argnums=1)(m, area))
    np.testing.assert_array_equal(ours, ref)
    labels = np.asarray(label_components(m))
    assert len(np.unique(labels[m])) == n


def test_clean_label_map_two_labels_equals_clean_binary_map_and_three_labels():
    """Two labels with separate small island and hole: the same map as clean_binary_map. Three labels: an island
    of label 2 inside label 0 and one of label 0 inside label 1 go to their surroundings; big regions are kept."""
    m = np.zeros((30, 30), bool)
    m[5:25, 5:25] = True
    m[10:12, 10:12] = False
    m[0, 0] = True
    np.testing.assert_array_equal(np.asarray(clean_label_map(m.astype(np.int32), 2, 10)),
                                  np.asarray(clean_binary_map(m, 10)).astype(np.int32))
    lab = np.zeros((30, 30), np.int32)
    lab[:, 15:] = 1
    lab[22:, :] = 2
    want = lab.copy()
    lab[3:5, 3:5] = 2
    lab[8:10, 20:22] = 0
    np.testing.assert_array_equal(np.asarray(jax.jit(clean_label_map, static_argnums=(1, 2))(lab, 3, 10)), want)


def test_clean_binary_map_fills_small_holes():
    m = np.zeros((30, 30), bool)
    m[5:25, 5:25] = True
    m[10:12, 10:12] = False  # small hole
    m[0, 0] = True  # small island
    out = np.asarray(clean_binary_map(m, 10))
    expected = np.zeros((30, 30), bool)
    expected[5:25, 5:25] = True
    np.testing.assert_array_equal(out, expected)


def test_majority_filter_matches_scipy(rng):
    d = rng.random((25, 31)) < 0.5
    onehot = np.stack([d, ~d]).astype(np.float32)
    ours = np.asarray(majority_filter(onehot, size=3))
    votes = ndimage.uniform_filter(d.astype(np.float64), size=3, mode="reflect") * 9  # scipy reflect = symmetric
    ref = votes > 4.5
    np.testing.assert_array_equal(ours[0].astype(bool), ref)
    np.testing.assert_array_equal(ours.sum(0), 1)


def test_activity_measures_against_numpy(rng):
    x = rng.random((2, 16, 24)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    win = np.stack([xp[:, i : i + 16, j : j + 24] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(np.asarray(window_energy(x)), (win**2).sum(0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(window_max_abs(x)), np.abs(win).max(0), atol=0)
    np.testing.assert_allclose(np.asarray(local_variance(x)), win.var(0), atol=1e-5)
    # block spatial frequency, literally as Li, Kwok, Wang (2001) define it
    blk = x[0, :8, 8:16].astype(np.float64)
    rf = ((blk[:, 1:] - blk[:, :-1]) ** 2).sum() / 64
    cf = ((blk[1:, :] - blk[:-1, :]) ** 2).sum() / 64
    np.testing.assert_allclose(float(block_spatial_frequency(x, 8)[0, 0, 1]), np.sqrt(rf + cf), rtol=1e-5)
    sf = np.asarray(spatial_frequency(x, size=3))
    assert sf.shape == x.shape and (sf >= 0).all()


def test_combination_rules(rng):
    c = rng.standard_normal((3, 10, 12)).astype(np.float32)
    idx = np.abs(c).argmax(0)
    ref = np.take_along_axis(c, idx[None], 0)[0]
    np.testing.assert_allclose(np.asarray(choose_max(c)), ref)
    np.testing.assert_allclose(np.asarray(max_weights(np.abs(c))).sum(0), 1)
    np.testing.assert_allclose(np.asarray(weighted_average(c)), c.mean(0), atol=1e-6)
    w = rng.random((3, 10, 12)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(weighted_average(c, weights=w)), (w * c).sum(0) / w.sum(0), atol=1e-5)
    # soft choose-max: tends to the hard rule at low temperature, differentiable everywhere
    np.testing.assert_allclose(np.asarray(soft_choose_max(c, temperature=1e-4)), ref, atol=1e-3)
    np.testing.assert_allclose(np.asarray(soft_choose_max(c, activity=jnp.zeros_like(c))), c.mean(0), atol=1e-6)
    g = jax.grad(lambda v: soft_choose_max(v, temperature=0.5).sum())(jnp.asarray(c))
    assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_guided_refine_normalises(rng):
    w = max_weights(rng.random((2, 20, 20)).astype(np.float32))
    guide = rng.random((2, 20, 20)).astype(np.float32)
    out = np.asarray(guided_refine(w, guide, radius=3, eps=0.01))
    np.testing.assert_allclose(out.sum(0), 1, atol=1e-5)
    assert (out >= 0).all()
