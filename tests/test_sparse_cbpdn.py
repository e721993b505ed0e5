"""ADMM CBPDN and the Tikhonov split against sporco (the oracle; imported only in tests)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jfusion.sparse import cbpdn, cbpdn_scan
from jfusion.sparse.tikhonov import tikhonov_split

sp_cbpdn = pytest.importorskip("sporco.admm.cbpdn")
sp_signal = pytest.importorskip("sporco.signal")


def _problem(rng, h=32, w=36, m=6, k=5, c=None, cd=False):
    """A small CBPDN problem: random unit-norm filters and a smooth-plus-edges high-pass signal."""
    dshape = (k, k, c, m) if cd else (k, k, m)
    d = rng.standard_normal(dshape)
    d /= np.sqrt(np.sum(d**2, axis=(0, 1), keepdims=True))
    shape = (h, w) if c is None else (h, w, c)
    s = rng.standard_normal(shape)
    s = np.cumsum(np.cumsum(s, axis=0), axis=1) / 10.0
    s = s - np.mean(s)
    _, sh = sp_signal.tikhonov_filter(s, 5.0, 16)
    return d, sh


def _sporco(d, s, lmbda, *, max_iter, rho, auto, tol):
    opt = sp_cbpdn.ConvBPDN.Options(
        {"Verbose": False, "MaxMainIter": max_iter, "RelStopTol": tol, "rho": rho, "AutoRho": {"Enabled": auto}}
    )
    b = sp_cbpdn.ConvBPDN(d, s, lmbda, opt)
    x = b.solve()
    return np.squeeze(x), b.itstat


# (name, channels, multi-channel dictionary, adaptive rho); kept few: each case compiles a solver.
CASES_F32 = [
    ("grey", None, False, False),
    ("grey", None, False, True),
    ("colour-signal", 3, False, True),
    ("multichannel-dict", 3, True, True),
]
CASES_F64 = [
    ("grey", None, False, True),
    ("colour-signal", 3, False, False),
    ("multichannel-dict", 3, True, True),
]


@pytest.mark.parametrize("name,c,cd,auto", CASES_F32, ids=[f"{c[0]}-{'adaptive' if c[3] else 'fixed'}" for c in CASES_F32])
def test_cbpdn_matches_sporco_float32(rng, name, c, cd, auto):
    d, s = _problem(rng, c=c, cd=cd)
    d, s = d.astype(np.float32), s.astype(np.float32)
    lmbda = 0.05
    x_ref, its = _sporco(d, s, lmbda, max_iter=200, rho=1.0, auto=auto, tol=1e-3)
    x, st = cbpdn(d, s, lmbda, max_iter=200, rho=1.0, auto_rho=auto, tol=1e-3)
    x = np.asarray(x)
    assert x.shape == x_ref.shape
    # Issue tolerances: objective within 0.5 %, coefficients within 1e-2 relative L2. Measured ~1e-6 / ~1e-4.
    obj_ref = its[-1].ObjFun
    assert abs(float(st.objective) - obj_ref) / obj_ref < 5e-3
    assert np.linalg.norm(x - x_ref) / np.linalg.norm(x_ref) < 1e-2
    # The stopping rule stops within a few iterations of sporco's.
    assert abs(int(st.iterations) - len(its)) <= 3
    assert abs(float(st.rho) - its[-1].Rho) / its[-1].Rho < 1e-2


@pytest.mark.parametrize("name,c,cd,auto", CASES_F64, ids=[f"{c[0]}-{'adaptive' if c[3] else 'fixed'}" for c in CASES_F64])
def test_cbpdn_matches_sporco_float64(rng, name, c, cd, auto):
    d, s = _problem(rng, c=c, cd=cd)
    lmbda = 0.05
    x_ref, its = _sporco(d, s, lmbda, max_iter=150, rho=1.0, auto=auto, tol=1e-3)
    with jax.enable_x64(True):
        x, st = cbpdn(d, s, lmbda, max_iter=150, rho=1.0, auto_rho=auto, tol=1e-3)
        x = np.asarray(x)
        assert x.dtype == np.float64
        # float64: same iterates as sporco to rounding (measured ~1e-13 relative).
        assert int(st.iterations) == len(its)
        assert abs(float(st.objective) - its[-1].ObjFun) / its[-1].ObjFun < 1e-9
        assert np.linalg.norm(x - x_ref) / np.linalg.norm(x_ref) < 1e-8


def test_cbpdn_default_rho_and_options(rng):
    """Default rho (50 lmbda + 1), over-relaxation off, non-negativity and l1 weights vs sporco."""
    d, s = _problem(rng, h=32, w=32)
    wl1 = (np.abs(rng.standard_normal(d.shape[-1])) + 0.5).reshape(1, 1, -1)
    opt = sp_cbpdn.ConvBPDN.Options(
        {"Verbose": False, "MaxMainIter": 80, "RelStopTol": 1e-4, "RelaxParam": 1.0, "NonNegCoef": True,
         "L1Weight": wl1}
    )
    b = sp_cbpdn.ConvBPDN(d, s, 0.02, opt)
    x_ref = np.squeeze(b.solve())
    with jax.enable_x64(True):
        x, st = cbpdn(d, s, 0.02, max_iter=80, relax=1.0, nonneg=True, l1_weight=wl1, tol=1e-4)
        assert np.all(np.asarray(x) >= 0)
        assert np.linalg.norm(np.asarray(x) - x_ref) / np.linalg.norm(x_ref) < 1e-8
        assert abs(float(st.objective) - b.itstat[-1].ObjFun) < 1e-9 * b.itstat[-1].ObjFun


def test_cbpdn_vmap_equals_single_calls(rng):
    d, _ = _problem(rng, h=24, w=24)
    sigs = np.stack([_problem(np.random.default_rng(i), h=24, w=24)[1] for i in range(3)]).astype(np.float32)
    f = jax.jit(jax.vmap(lambda s: cbpdn(d, s, 0.05, max_iter=60)))
    xb, stb = f(jnp.asarray(sigs))
    for i in range(3):
        xi, sti = cbpdn(d, sigs[i], 0.05, max_iter=60)
        # float32: batched and single FFTs round differently; measured ~1e-5 relative L2.
        xi = np.asarray(xi)
        assert np.linalg.norm(np.asarray(xb[i]) - xi) / np.linalg.norm(xi) < 1e-4
        assert abs(int(stb.iterations[i]) - int(sti.iterations)) <= 1


def test_encode_map_and_vmap_agree_with_single_solves(rng):
    """encode's sequential (CPU default) and vmapped paths equal one cbpdn solve per image.

    Tolerance as the vmap test above (batched and single FFTs round differently, ~1e-5 relative
    L2); iterations within one of each other. The jitted encode compiles once for a shape.
    """
    from jfusion.sparse.cbpdn import Options, encode
    from test_foundation_shape import count_compilations

    d, _ = _problem(rng, h=24, w=24)
    sigs = np.stack([_problem(np.random.default_rng(i), h=24, w=24)[1] for i in range(3)]).astype(np.float32)
    opts = Options(tol=1e-3)
    runs = {}
    for batch in ("map", "vmap"):
        f = jax.jit(lambda s, batch=batch: encode(d, s, 0.05, max_iter=60, rho=1.0, opts=opts, batch=batch))
        runs[batch] = f(jnp.asarray(sigs))
        with count_compilations() as n:
            jax.block_until_ready(f(jnp.asarray(sigs * 0.5)))
        assert n[0] == 0
    for i in range(3):
        xi, sti = cbpdn(d, sigs[i], 0.05, max_iter=60, rho=1.0)
        xi = np.moveaxis(np.asarray(xi), -1, 0)  # (M, H, W) as encode lays the maps out
        for batch, (coef, st) in runs.items():
            assert np.linalg.norm(np.asarray(coef[i]) - xi) / np.linalg.norm(xi) < 1e-4, batch
            assert abs(int(st.iterations[i]) - int(sti.iterations)) <= 1, batch
    with pytest.raises(ValueError, match="batch must be"):
        encode(d, sigs, 0.05, max_iter=2, batch="loop")


def test_scan_history_and_equals_while_loop(rng):
    d, s = _problem(rng, h=24, w=24)
    s = s.astype(np.float32)
    x_w, st_w = cbpdn(d, s, 0.05, max_iter=30, tol=0.0)
    x_s, st_s, hist = cbpdn_scan(d, s, 0.05, num_iter=30)
    assert int(st_w.iterations) == 30 and hist.objective.shape == (30,)
    np.testing.assert_allclose(np.asarray(x_s), np.asarray(x_w), rtol=1e-5, atol=1e-6)
    obj = np.asarray(hist.objective)
    assert obj[-1] < obj[0]


def test_grad_through_scan_matches_finite_differences(rng):
    d, s = _problem(rng, h=12, w=12, m=3, k=3)
    v = rng.standard_normal((12, 12, 3))
    with jax.enable_x64(True):

        def loss(sig):
            x, _, _ = cbpdn_scan(d, sig, 0.02, num_iter=15, rho=1.0, auto_rho=False)
            return jnp.sum(x * v)

        g = np.asarray(jax.grad(loss)(jnp.asarray(s)))
        assert np.all(np.isfinite(g))
        direction = rng.standard_normal(s.shape)
        eps = 1e-6
        fd = (loss(s + eps * direction) - loss(s - eps * direction)) / (2 * eps)
        # Central difference of a piecewise-linear map (soft threshold) away from its kinks.
        assert abs(float(fd) - float(np.sum(g * direction))) <= 1e-6 * max(1.0, abs(float(fd)))


def test_cbpdn_rejects_bad_shapes():
    from jfusion import FusionInputError

    with pytest.raises(FusionInputError):
        cbpdn(np.ones((8, 8, 4)), np.ones((4, 4)), 0.1)
    with pytest.raises(FusionInputError):
        cbpdn(np.ones((8, 8, 2, 4)), np.ones((16, 16, 3)), 0.1)
    with pytest.raises(FusionInputError, match="fft_groups"):
        cbpdn(np.ones((4, 4, 3)), np.ones((16, 16)), 0.1, fft_groups=0)


# (channels, l1 weight layout, nonneg, adaptive rho): the group split must not change a single iterate.
GROUP_CASES = [(None, None, False, True), (3, "per-filter", False, False), (None, "full", True, True)]


@pytest.mark.parametrize("c,weight,nonneg,auto", GROUP_CASES, ids=["grey-adaptive", "colour-weights", "full-weights-nonneg"])
def test_fft_groups_give_the_same_iterates(rng, c, weight, nonneg, auto):
    """Any ``fft_groups`` (uneven splits, more groups than filters) equals one batched FFT, float64."""
    d, s = _problem(rng, h=20, w=22, m=7, c=c)
    wl1 = None
    if weight == "per-filter":
        wl1 = np.abs(rng.standard_normal(7)) + 0.5
    elif weight == "full":
        wl1 = np.abs(rng.standard_normal((20, 22, 7))) + 0.5
    kw = dict(max_iter=40, rho=1.0, auto_rho=auto, tol=1e-4 if auto else 0.0, l1_weight=wl1, nonneg=nonneg)
    with jax.enable_x64(True):
        x1, st1 = cbpdn(d, s, 0.05, fft_groups=1, **kw)
        for g in (2, 3, 7, 50):
            xg, stg = cbpdn(d, s, 0.05, fft_groups=g, **kw)
            assert int(stg.iterations) == int(st1.iterations)
            # Same arithmetic per element; only the order of the filter sum may differ: ~1e-15.
            np.testing.assert_allclose(np.asarray(xg), np.asarray(x1), rtol=0, atol=1e-12)
            assert abs(float(stg.objective) - float(st1.objective)) <= 1e-12 * float(st1.objective)


def test_grouped_step_and_default_groups(rng):
    from jfusion.sparse import cbpdn_solver as cs

    assert cs.default_fft_groups(32, backend="cpu") == 32 and cs.default_fft_groups(100, backend="cpu") == 32
    assert cs.default_fft_groups(3, backend="cpu") == 3
    assert cs.default_fft_groups(32, backend="gpu") == 1 and cs.default_fft_groups(32, backend="tpu") == 1
    assert [(sl.start, sl.stop) for sl in cs._group_slices(7, 3)] == [(0, 3), (3, 5), (5, 7)]
    d, s = _problem(rng, h=16, w=16, m=5)
    with jax.enable_x64(True):
        problem = cs.make_problem(d, s, 0.05)
        st = cs.init(problem, (16, 16), rho=1.0)
        a = b = st
        for _ in range(3):  # the public step (split, step, join) against one group
            a = cs.step(a, problem, opts=cs.Options(fft_groups=3))
            b = cs.step(b, problem, opts=cs.Options(fft_groups=1))
        assert a.x.shape == b.x.shape == (1, 5, 16, 16)
        np.testing.assert_allclose(np.asarray(a.v), np.asarray(b.v), rtol=0, atol=1e-12)
        np.testing.assert_allclose([float(a.r), float(a.s), float(a.rho)], [float(b.r), float(b.s), float(b.rho)],
                                   rtol=1e-12)


@pytest.mark.parametrize("shape", [(37, 50), (2, 30, 41)])
def test_tikhonov_split_matches_sporco(rng, shape):
    x = rng.random(shape)
    base, detail = tikhonov_split(jnp.asarray(x, jnp.float32), lmbda=5.0, npad=16)
    xs = np.moveaxis(x, 0, -1) if x.ndim == 3 else x
    b_ref, d_ref = sp_signal.tikhonov_filter(xs, 5.0, 16)
    if x.ndim == 3:
        b_ref, d_ref = np.moveaxis(b_ref, -1, 0), np.moveaxis(d_ref, -1, 0)
    # float32: measured 2.4e-7 max abs.
    np.testing.assert_allclose(np.asarray(base), b_ref, atol=1e-6)
    np.testing.assert_allclose(np.asarray(detail), d_ref, atol=1e-6)
