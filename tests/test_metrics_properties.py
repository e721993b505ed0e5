"""Identities, symmetry, scaling, input errors, jit/vmap batching and gradients of jfusion.metrics."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jfusion
import jfusion.metrics as M
from jfusion import FusionInputError


@pytest.fixture(scope="module")
def scene():
    from skimage import data

    cam = data.camera()[100:164, 200:264].astype(np.float64)
    rng = np.random.default_rng(1)
    a = cam / 255.0
    b = np.clip(np.roll(cam, 3, axis=1) / 255.0 * 0.8 + 0.1, 0, 1)
    f = np.clip(0.5 * a + 0.5 * b + rng.normal(0, 0.02, a.shape), 0, 1)
    return a, b, f


def _q(x):  # 8-bit levels as [0, 1]
    return np.round(x * 255) / 255


IDEAL = {  # metric: value at F = A = B (8-bit levels), tolerance
    "ce": (0.0, 1e-12),
    "rmse": (0.0, 1e-12),
    "ssim": (2.0, 1e-9),
    "ms_ssim": (1.0, 1e-9),
    "qcb": (1.0, 1e-9),
    "qcv": (0.0, 1e-12),
    "nmi": (2.0, 1e-9),
    "qsf": (0.0, 1e-12),
    "piella_q0": (1.0, 1e-9),
    "piella_qw": (1.0, 1e-9),
    "piella_qe": (1.0, 1e-9),
    "qc": (1.0, 1e-9),
    "qy": (1.0, 1e-9),
    "viff": (1.0, 1e-6),
    "mef_ssim": (1.0, 1e-6),
}


def test_identities_f_equals_sources(scene):
    a = _q(scene[0])
    with jax.enable_x64(True):
        res = M.evaluate(
            [a, a], a, metrics=list(IDEAL) + ["mi", "en", "qabf", "psnr"], options={"ms_ssim": {"scales": 3}}
        )
        paper = M.evaluate([a, a], a, metrics=["qabf"], options={"qabf": {"convention": "paper"}})
    for name, (ideal, tol) in IDEAL.items():
        assert abs(res[name] - ideal) <= tol, (name, res[name])
    # MI(A, A) = H(A) in nats, summed over the two sources.
    assert res["mi"] == pytest.approx(2 * res["en"] * math.log(2), rel=1e-9)
    assert math.isinf(res["psnr"])
    # NCIE: NCC(A, A) = H(A) in base 256 (not 1), so R = [[1,h,h],[h,1,h],[h,h,1]], eigenvalues 1+2h, 1-h, 1-h.
    with jax.enable_x64(True):
        ncie = M.evaluate([a, a], a, metrics=["ncie"])["ncie"]
    h = res["en"] / 8.0
    lam = np.array([1 + 2 * h, 1 - h, 1 - h]) / 3
    assert ncie == pytest.approx(1 + np.sum(lam * np.log(lam) / np.log(256)), rel=1e-9)
    # Q^AB/F: paper branch gives Qg(1) Qa(1) exactly; VIFB's branch (G = g_F) is ~0.9753 (spec 7).
    exact = 0.9994 / (1 + math.exp(-15 * 0.5)) * 0.9879 / (1 + math.exp(-22 * 0.2))
    assert paper["qabf"] == pytest.approx(exact, rel=1e-9)
    assert res["qabf"] == pytest.approx(0.9994 * 0.9879 / (1 + math.exp(-4.4)), abs=2e-3)


def test_remote_identities():
    rng = np.random.default_rng(0)
    r = rng.uniform(100, 2000, (32, 32, 4))
    with jax.enable_x64(True):
        assert float(M.sam(r, r)) == pytest.approx(0.0, abs=1e-6)
        assert float(M.ergas(r, r)) == 0.0
        assert float(M.q2n(r, r)) == pytest.approx(1.0, abs=1e-12)
        assert float(M.uiqi(r, r)) == pytest.approx(1.0, abs=1e-12)
        assert float(M.scc(r, r)) == pytest.approx(1.0, abs=1e-12)
        assert float(M.cc(r, r)) == pytest.approx(1.0, abs=1e-12)
        assert float(M.d_lambda(r, r)) == pytest.approx(0.0, abs=1e-12)
        pan = r.mean(-1)
        assert float(M.d_s(r, pan, r, pan_lowpass=pan)) == pytest.approx(0.0, abs=1e-12)
        assert float(M.qnr(r, pan, r, pan_lowpass=pan)) == pytest.approx(1.0, abs=1e-12)


SYMMETRIC = ["ce", "mi", "nmi", "te", "ncie", "qabf", "qcb", "qcv", "ssim", "psnr", "rmse",
             "qsf", "piella_q0", "piella_qw", "piella_qe"]


def test_source_order_invariance(scene):
    a, b, f = (_q(v) for v in scene)
    with jax.enable_x64(True):
        ab = M.evaluate([a, b], f, metrics=SYMMETRIC)
        ba = M.evaluate([b, a], f, metrics=SYMMETRIC)
    for name in SYMMETRIC:
        assert ab[name] == pytest.approx(ba[name], rel=1e-9, abs=1e-12), name


def test_scaling_behaviour():
    rng = np.random.default_rng(2)
    r = rng.uniform(100, 2000, (32, 32, 4))
    f = r * rng.uniform(0.9, 1.1, r.shape)
    with jax.enable_x64(True):
        for fn in (M.sam, M.ergas, lambda x, y: M.q2n(x, y, cast_uint16=False), M.uiqi, M.scc, M.cc):
            assert float(fn(3.0 * r, 3.0 * f)) == pytest.approx(float(fn(r, f)), rel=1e-9)
        # General metrics: data_range only rescales to grey levels.
        x = jnp.asarray(rng.uniform(0, 1, (2, 40, 40)))
        y = jnp.asarray(rng.uniform(0, 1, (40, 40)))
        assert float(M.ssim(x * 255, y * 255, data_range=255.0)) == pytest.approx(float(M.ssim(x, y)), rel=1e-12)
        assert float(M.qsf(2 * x, 2 * y)) == pytest.approx(float(M.qsf(x, y)), rel=1e-12)  # scale invariant
        assert float(M.standard_deviation(x, y / 2)) == pytest.approx(float(M.standard_deviation(x, y)) / 2, rel=1e-12)


def test_bad_input_raises(scene):
    a, b, f = scene
    bad = f.copy()
    bad[3, 3] = np.nan
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b], bad)
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b], f[:-1])
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b[:-2]], f)
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b], f, metrics=["no_such_metric"])
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b, a], f, metrics=["qc"])
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a], f, metrics=["en"])
    with pytest.raises(FusionInputError):
        jfusion.evaluate([a, b], f * 3.0)
    with pytest.raises(FusionInputError):  # 5-scale MS-SSIM needs >= 176 px
        jfusion.evaluate([a, b], f, metrics=["ms_ssim"])
    with pytest.raises(FusionInputError):
        M.evaluate(None, np.ones((40, 40, 4)), metrics=["sam"], reference=np.ones((40, 41, 4)))
    with pytest.raises(FusionInputError):  # PST QNR needs sizes that are multiples of the block
        M.evaluate((np.ones((40, 40, 4)), np.ones((40, 40))), np.ones((40, 40, 4)), metrics=["qnr"])


def test_batched_equals_per_scene():
    rng = np.random.default_rng(3)
    src = np.round(rng.uniform(0, 255, (3, 2, 64, 72, 3))) / 255
    fus = np.round(rng.uniform(0, 255, (3, 64, 72, 3))) / 255
    names = ["mi", "qabf", "sf", "qcv", "viff"]
    batch = M.evaluate_batch(src, fus, metrics=names)
    for i in range(3):
        one = M.evaluate(src[i], fus[i], metrics=names)
        for n in names:
            assert batch[n][i] == pytest.approx(one[n], rel=1e-5, abs=1e-6), n


def test_list_metrics_registry():
    infos = {i.name: i for i in M.list_metrics()}
    assert set(M.VIFB_METRICS) <= set(infos)
    assert infos["ce"].direction == "lower" and infos["qcv"].direction == "lower"
    assert infos["qabf"].direction == "higher" and infos["qsf"].direction == "zero"
    assert infos["sam"].needs_reference and not infos["qnr"].needs_reference
    assert infos["qabf"].convention == "vifb" and infos["q2n"].convention == "pst"
    assert infos["sf"].colour == "side_by_side"


def _check_grad(fn, x, *, rel=1e-4):
    """Directional finite differences (central, float64) against jax.grad."""
    g = jax.grad(fn)(x)
    assert bool(jnp.all(jnp.isfinite(g)))
    rng = np.random.default_rng(4)
    for _ in range(2):
        v = jnp.asarray(rng.normal(size=x.shape))
        h = 1e-7  # small: the smooth forms have O(1) curvature at the Sobel-unit scale
        fd = (fn(x + h * v) - fn(x - h * v)) / (2 * h)
        an = jnp.vdot(g, v)
        assert float(an) == pytest.approx(float(fd), rel=rel, abs=1e-7)


@pytest.mark.parametrize(
    "name, opts",
    [
        ("ssim", {}),
        ("ms_ssim", {"scales": 2, "win_size": 7}),
        ("piella_qw", {}),
        ("piella_q0", {}),
        ("qabf", {"smooth": True}),
        ("mi", {"soft": True, "bins": 16}),
        ("sf", {}),
        ("ag", {}),
        ("ei", {}),
        ("sd", {}),
        ("psnr", {"convention": "standard"}),
    ],
)
def test_gradients_match_finite_differences(scene, name, opts):
    a, b, _ = scene
    # Unclipped fused image: clipping would create flat patches where |gradient| has a true kink.
    f = 0.5 * a + 0.5 * b + np.random.default_rng(5).normal(0, 0.02, a.shape)
    fn0 = M.get_metric_info(name).fn
    with jax.enable_x64(True):
        src = jnp.asarray(np.stack([a, b])[:, :40, :40])
        fn = lambda fz: fn0(src, fz, **opts)  # noqa: E731
        _check_grad(fn, jnp.asarray(f[:40, :40]))


def test_evaluate_remote_dispatch():
    rng = np.random.default_rng(6)
    ref = rng.uniform(100, 2000, (32, 32, 4))
    fused = ref * rng.uniform(0.95, 1.05, ref.shape)
    pan = fused.mean(-1)
    with jax.enable_x64(True):
        out = M.evaluate(None, fused, reference=ref)  # default reduced-resolution set
        assert set(out) == {"q2n", "sam", "ergas", "scc", "uiqi"}
        assert out["sam"] == pytest.approx(float(M.sam(ref, fused)), rel=1e-12)
        assert out["ergas"] == pytest.approx(float(M.ergas(ref, fused, ratio=4)), rel=1e-12)
        nr = M.evaluate((ref, pan), fused, metrics=["d_lambda", "d_s", "qnr"], options={"d_s": {"pan_lowpass": None}, "qnr": {"pan_lowpass": None}})
        assert nr["qnr"] == pytest.approx(float(M.qnr(ref, pan, fused)), rel=1e-12)
        assert nr["d_lambda"] == pytest.approx(float(M.d_lambda(ref, fused)), rel=1e-12)
    with pytest.raises(FusionInputError):
        M.evaluate(None, fused, metrics=["sam"])  # no reference
