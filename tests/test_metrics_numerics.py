"""Metric arithmetic on awkward but valid data (issue 16): flat regions, integer dtypes, MS-SSIM's reference form.

References are independent NumPy float64 implementations written here: windowed statistics from
explicit windows (``sliding_window_view``), where a window whose pixels are all equal has exactly
zero variance and covariance, as in exact arithmetic.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import jfusion.metrics as jm

# ---------------------------------------------------------------------------------------------
# 1. flat regions: windowed variances of flat windows are exactly 0 (no cancellation noise)


def _gauss7() -> np.ndarray:
    t = np.arange(7) - 3.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    k = np.outer(g, g)
    return k / k.sum()


def _win_stats(x: np.ndarray, y: np.ndarray):
    """Exact 7x7 Gaussian 'valid' statistics: means, variances, covariance (two-pass, flat windows 0)."""
    k = _gauss7()
    wx, wy = sliding_window_view(x, (7, 7)), sliding_window_view(y, (7, 7))
    mx, my = np.einsum("ijab,ab->ij", wx, k), np.einsum("ijab,ab->ij", wy, k)
    dx, dy = wx - mx[..., None, None], wy - my[..., None, None]
    flat_x = np.ptp(wx, axis=(-2, -1)) == 0
    flat_y = np.ptp(wy, axis=(-2, -1)) == 0
    vx = np.where(flat_x, 0.0, np.einsum("ijab,ab->ij", dx * dx, k))
    vy = np.where(flat_y, 0.0, np.einsum("ijab,ab->ij", dy * dy, k))
    cxy = np.where(flat_x | flat_y, 0.0, np.einsum("ijab,ab->ij", dx * dy, k))
    return mx, my, vx, vy, cxy


def _ssim_liu(x, y):
    c = 2e-16
    mx, my, vx, vy, cxy = _win_stats(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((2 * mx * my + c) * (2 * cxy + c)) / ((mx**2 + my**2 + c) * (vx + vy + c)), (vx, cxy)


def _qy_ref(a, b, f):
    """Liu's metricYang (MEFB convention: windows that come out NaN are dropped)."""
    qa, (va, _) = _ssim_liu(a, f)
    qb, (vb, _) = _ssim_liu(b, f)
    qab, _ = _ssim_liu(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        lam = va / (va + vb)
    q = np.where(qab >= 0.75, lam * qa + (1 - lam) * qb, np.maximum(qa, qb))
    return np.nanmean(q)


def _qc_ref(a, b, f):
    """Liu's metricCvejic (MEFB convention): sim = s_AF / (s_AF + s_BF), 0 / 1 outside [0, 1], NaN dropped."""
    qa, (_, ca) = _ssim_liu(a, f)
    qb, (_, cb) = _ssim_liu(b, f)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = ca / (ca + cb)
    q = sim * qa + (1 - sim) * qb
    q = np.where(sim < 0, 0.0, np.where(sim > 1, 1.0, q))
    return np.nanmean(q)


def _flat_pair(value: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    a, b = rng.random((64, 64)), rng.random((64, 64))
    a[:32] = b[:32] = value
    return a, b, 0.5 * (a + b)


@pytest.mark.parametrize("value", [0.123, 0.5, 1.0, 0.7])
@pytest.mark.parametrize("x64", [False, True])
def test_qy_qc_flat_regions_match_exact_reference(value, x64):
    a, b, f = _flat_pair(value)
    ref_qy = _qy_ref(a * 255, b * 255, f * 255)
    ref_qc = _qc_ref(a * 255, b * 255, f * 255)
    with jax.enable_x64(x64):
        got = jm.evaluate([a, b], f, metrics=["qy", "qc"])
        eager = float(jm.qy(np.stack([a, b]) * 255, f * 255, data_range=255.0))
    tol = 1e-7 if x64 else 2e-5  # Q_C divides by s_AF + s_BF, which cancels in places
    assert got["qy"] == pytest.approx(ref_qy, abs=tol)
    assert got["qc"] == pytest.approx(ref_qc, abs=tol)
    assert eager == pytest.approx(ref_qy, abs=tol)  # eager and jitted arithmetic agree


def test_local_stats_flat_windows_are_exactly_zero():
    from jfusion.metrics.structural import local_stats

    x = np.full((40, 40), 0.123 * 255)
    y = np.full((40, 40), 0.377 * 255)
    for window, size in (("gaussian", 7), ("gaussian", 11), ("uniform", 8)):
        st = jax.jit(lambda u, v: local_stats(u, v, window=window, win_size=size))(x, y)
        assert float(np.abs(st.var_x).max()) == 0.0
        assert float(np.abs(st.var_y).max()) == 0.0
        assert float(np.abs(st.cov).max()) == 0.0


def test_qy_on_lytro_laplacian_is_in_range():
    from conftest import data_path

    import jfusion as jf
    from jfusion.io import read_image

    a = read_image(data_path("lytro", "lytro-11-A.jpg"))
    b = read_image(data_path("lytro", "lytro-11-B.jpg"))
    f = jf.fuse([a, b], method="laplacian")
    got = jm.evaluate([a, b], f, metrics=["qy", "qc"])
    assert 0.0 <= got["qy"] <= 1.0 and 0.0 <= got["qc"] <= 1.0, got


# ---------------------------------------------------------------------------------------------
# 2. remote-sensing indices on integer / half-precision arrays give the float path's value


def _q_np(x: np.ndarray, y: np.ndarray) -> float:
    """Wang-Bovik Q of two windows (population moments, float64)."""
    mx, my = x.mean(), y.mean()
    vx, vy, cxy = x.var(), y.var(), ((x - mx) * (y - my)).mean()
    return 4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2))


def _uiqi_np(r, f, block=32):
    """PST Q.m: sliding block x block windows ('valid'), mean of the map, mean over bands."""
    vals = []
    for b in range(r.shape[-1]):
        wr = sliding_window_view(r[..., b], (block, block)).reshape(-1, block * block)
        wf = sliding_window_view(f[..., b], (block, block)).reshape(-1, block * block)
        mr, mf = wr.mean(1), wf.mean(1)
        vr, vf = wr.var(1), wf.var(1)
        c = ((wr - mr[:, None]) * (wf - mf[:, None])).mean(1)
        vals.append(np.mean(4 * c * mr * mf / ((vr + vf) * (mr**2 + mf**2))))
    return float(np.mean(vals))


def _block_q_np(x, y, block=32):
    h, w = x.shape
    return np.mean([_q_np(x[i : i + block, j : j + block], y[i : i + block, j : j + block])
                    for i in range(0, h, block) for j in range(0, w, block)])


def _d_lambda_np(ms, f):
    nb = ms.shape[-1]
    return np.mean([abs(_block_q_np(f[..., i], f[..., j]) - _block_q_np(ms[..., i], ms[..., j]))
                    for i in range(nb) for j in range(i + 1, nb)])


def _d_s_np(ms, pan, f, plp):
    return np.mean([abs(_block_q_np(f[..., i], pan) - _block_q_np(ms[..., i], plp)) for i in range(ms.shape[-1])])


def _scc_np(r, f):
    from scipy.ndimage import correlate

    k = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])

    def edges(v):
        e = [np.hypot(correlate(v[..., b], k, mode="constant"), correlate(v[..., b], k.T, mode="constant"))
             for b in range(v.shape[-1])]
        return np.stack(e)[:, 1:-1, 1:-1]

    er, ef = edges(r), edges(f)
    return float(np.sum(er * ef) / np.sqrt(np.sum(er**2) * np.sum(ef**2)))


def _remote_scene(seed=0, hi=2000):
    rng = np.random.default_rng(seed)
    ref = rng.integers(100, hi, size=(64, 64, 4))
    fu = np.clip(ref + rng.normal(0, 0.15 * hi, ref.shape), 0, None).round()
    pan = ref.mean(-1).round()
    plp = np.clip(pan + rng.normal(0, 0.05 * hi, pan.shape), 0, None).round()
    return ref.astype(np.float64), fu, pan, plp


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float16, np.float32, np.float64])
def test_remote_indices_any_dtype_match_numpy(dtype):
    from remote_metrics_np import sam as sam_np

    ref, fu, pan, plp = _remote_scene()
    if dtype == np.float16:  # exact in float16: integers up to 2048
        ref, fu, pan, plp = (np.minimum(v, 2048) for v in (ref, fu, pan, plp))
    cast = [v.astype(dtype) for v in (ref, fu, pan, plp)]
    r, f, p, lp = cast
    tol = 1e-6 if dtype == np.float32 else 1e-9  # float32 stays float32 (x64 on): its rounding
    with jax.enable_x64(True):
        assert float(jm.sam(r, f)) == pytest.approx(sam_np(ref, fu), rel=tol)
        assert float(jm.scc(r, f)) == pytest.approx(_scc_np(ref, fu), rel=tol)
        assert float(jm.uiqi(r, f)) == pytest.approx(_uiqi_np(ref, fu), rel=max(tol, 1e-7))
        assert float(jm.d_lambda(r, f)) == pytest.approx(_d_lambda_np(ref, fu), abs=tol)
        assert float(jm.d_s(r, p, f, pan_lowpass=lp)) == pytest.approx(_d_s_np(ref, pan, fu, plp), abs=tol)
    # default precision: every dtype gives the float path's value
    for name, args in (("sam", (r, f)), ("scc", (r, f)), ("uiqi", (r, f)), ("d_lambda", (r, f))):
        fn = getattr(jm, name)
        want = float(fn(*(a.astype(np.float64) for a in args)))
        assert float(fn(*args)) == pytest.approx(want, rel=1e-6, abs=1e-7), name


def test_uint8_general_metric_direct_call_matches_float():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(2, 32, 32)).astype(np.uint8)
    f = rng.integers(0, 256, size=(32, 32)).astype(np.uint8)
    for fn in (jm.ssim, jm.standard_deviation, jm.psnr):
        want = float(fn(x.astype(np.float32), f.astype(np.float32), data_range=255.0))
        assert float(fn(x, f, data_range=255.0)) == pytest.approx(want, rel=1e-6)


def test_evaluate_full_native_uint16_scene():
    import scipy.io as sio

    from conftest import data_path
    from jfusion.pansharpening.evaluation import evaluate_full

    d = sio.loadmat(data_path("pansharpening", "imgWV2.mat"))
    ms, pan = d["I_MS"][:64, :64], d["I_PAN"][:256, :256]
    assert ms.dtype == np.uint16
    native = evaluate_full(ms, pan, "gs")
    flt = evaluate_full(ms.astype(np.float32), pan.astype(np.float32), "gs")
    for k in ("d_lambda", "d_s", "qnr"):
        assert native[k] == pytest.approx(flt[k], rel=1e-5, abs=1e-6), k
    assert 0 <= native["d_s"] <= 1 and 0 <= native["qnr"] <= 1


def test_evaluate_noref_pansharpening_indices():
    import jfusion as jf
    from jfusion.errors import FusionInputError
    from jfusion.pansharpening import wald
    from jfusion.pansharpening.evaluation import pan_lowpass_pst

    rng = np.random.default_rng(2)
    ms = (rng.random((16, 16, 4)) * 1000 + 200).astype(np.uint16)
    pan = (rng.random((64, 64)) * 1000 + 200).astype(np.uint16)
    fused = np.asarray(wald.interp23tap(ms.astype(np.float32), 4)) + rng.normal(0, 20, (64, 64, 4))
    got = jf.evaluate((ms, pan), fused, metrics=["qnr", "d_lambda", "d_s"])
    ms_up = np.asarray(wald.interp23tap(ms.astype(np.float32), 4))
    plp = np.asarray(pan_lowpass_pst(pan.astype(np.float32), 4))
    assert got["d_lambda"] == pytest.approx(float(jm.d_lambda(ms_up, fused)), abs=1e-6)
    assert got["d_s"] == pytest.approx(float(jm.d_s(ms_up, pan, fused, pan_lowpass=plp)), abs=1e-6)
    assert got["qnr"] == pytest.approx((1 - got["d_lambda"]) * (1 - got["d_s"]), abs=1e-6)
    # MS given at the PAN size: the same numbers
    assert jf.evaluate([ms_up, pan], fused, metrics=["qnr"])["qnr"] == pytest.approx(got["qnr"], abs=1e-6)
    with pytest.raises(FusionInputError, match=r"sources\[0\] \(ms\)"):
        jf.evaluate((ms[..., :1], pan), fused, metrics=["qnr"])
    with pytest.raises(FusionInputError, match=r"sources: pass the pair \(ms, pan\)"):
        jf.evaluate(np.stack([pan, pan]), fused, metrics=["qnr"])
    with pytest.raises(FusionInputError, match=r"sources\[1\] \(pan\)"):
        jf.evaluate((ms, pan[:32]), fused, metrics=["d_s"])


# ---------------------------------------------------------------------------------------------
# 3. MS-SSIM: Wang's msssim.m coarsest term mean(l * cs)


def _gauss11() -> np.ndarray:
    t = np.arange(11) - 5.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    k = np.outer(g, g)
    return k / k.sum()


def _ssim_index_new(a, b, k1=0.01, k2=0.03, L=255.0):
    """Wang's ssim_index_new.m: (mean ssim map, mean cs map, mean l map), filter2 'valid'."""
    w = _gauss11()
    filt = lambda v: np.einsum("ijab,ab->ij", sliding_window_view(v, w.shape), w)  # noqa: E731
    c1, c2 = (k1 * L) ** 2, (k2 * L) ** 2
    m1, m2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - m1 * m1, filt(b * b) - m2 * m2, filt(a * b) - m1 * m2
    lum = (2 * m1 * m2 + c1) / (m1**2 + m2**2 + c1)
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    return np.mean(lum * cs), np.mean(cs), np.mean(lum)


def _msssim_m(a, b, convention="wang2003"):
    """Wang's msssim.m (5 levels): prod(mcs(1:4).^w(1:4)) * mssim(5)^w(5)."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    out = 1.0
    for level in range(5):
        mssim, mcs, ml = _ssim_index_new(a, b)
        if level == 4:
            out *= (mssim if convention == "wang2003" else ml * mcs) ** weights[level]
        else:
            out *= mcs ** weights[level]
            # imfilter(x, ones(2)/4, 'symmetric', 'same'); x(1:2:end, 1:2:end)
            dec = lambda v: (lambda p: (p[:-1, :-1] + p[1:, :-1] + p[:-1, 1:] + p[1:, 1:]) / 4)(  # noqa: E731
                np.pad(v, ((0, 1), (0, 1)), mode="symmetric"))[::2, ::2]
            a, b = dec(a), dec(b)
    return out


def _ms_scene(seed=3, shape=(241, 262)):
    """Two sources and a fused image with a luminance ramp (so l and cs vary together at the coarsest scale)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.random(shape), 2.0)
    a = (a - a.min()) / np.ptp(a)
    ramp = np.linspace(0.3, 1.0, shape[1])[None]
    f = np.clip(a * ramp + gaussian_filter(rng.normal(0, 0.1, shape), 1.0) * (1 - ramp), 0, 1)
    b = np.clip(gaussian_filter(a, 1.5) * ramp[:, ::-1] + 0.05 * rng.random(shape), 0, 1)
    return a, b, f


def test_ms_ssim_matches_msssim_m():
    a, b, f = _ms_scene()
    ref = [_msssim_m(s * 255, f * 255) for s in (a, b)]
    old = [_msssim_m(s * 255, f * 255, "means_product") for s in (a, b)]
    assert abs(np.mean(ref) - np.mean(old)) > 1e-4  # the two conventions differ on this scene
    three = jax.jit(lambda x, y: (jm.ms_ssim(x, y), jm.ms_ssim(x, y, convention="means_product"),
                                  jm.ms_ssim(x, y, reduction="sum")))  # one compile (eager MS-SSIM is slow)
    with jax.enable_x64(True):
        got, got_old, got_sum = (float(v) for v in three(np.stack([a, b]), f))
    assert got == pytest.approx(np.mean(ref), abs=1e-9)
    assert got_old == pytest.approx(np.mean(old), abs=1e-9)
    assert got_sum == pytest.approx(np.sum(ref), abs=1e-9)
    # default precision through evaluate: float32 rounding only
    assert jm.evaluate([a, b], f, metrics=["ms_ssim"], quantize=False)["ms_ssim"] == pytest.approx(np.mean(ref), abs=1e-5)


# ---------------------------------------------------------------------------------------------
# 4. declared ranges / ideals, undefined values and tiny images at the evaluate boundary


def test_every_metric_declares_range_ideal_symmetry():
    for info in jm.list_metrics():
        lo, hi = info.range
        assert lo < hi, info.name
        assert info.ideal is None or lo <= info.ideal <= hi, info.name
        assert isinstance(info.symmetric, bool) and isinstance(info.summed, bool)
    assert jm.get_metric_info("ssim").summed and jm.get_metric_info("ssim").ideal == 1.0
    assert jm.get_metric_info("sam").range == (0.0, 180.0)


def test_undefined_values_raise_unless_asked_for():
    from jfusion.errors import FusionInputError

    c = np.full((16, 16), 0.5)
    with pytest.raises(FusionInputError, match=r"^sources/fused: nmi undefined"):
        jm.evaluate([c, c], c, metrics=["nmi"])
    assert math.isnan(jm.evaluate([c, c], c, metrics=["nmi"], undefined="nan")["nmi"])
    with pytest.raises(FusionInputError, match=r"^sources: images of 1 x 1 px"):
        jm.evaluate([c[:1, :1], c[:1, :1]], c[:1, :1], metrics=["ag"])


def test_qsf_is_undefined_on_constant_sources():
    """Q_SF divides by the sources' SF: constant sources give NaN (undefined), never Inf."""
    from jfusion.errors import FusionInputError

    c = np.full((16, 16), 0.5)
    f = np.random.default_rng(0).random((16, 16))
    with pytest.raises(FusionInputError, match=r"^sources/fused: qsf undefined"):
        jm.evaluate([c, c], f, metrics=["qsf"])
    assert math.isnan(jm.evaluate([c, c], f, metrics=["qsf"], undefined="nan")["qsf"])
    assert math.isfinite(jm.evaluate([f, c], c, metrics=["qsf"])["qsf"])


@pytest.mark.parametrize("name", ["ssim", "qc", "qy", "piella_q0", "piella_qe", "piella_qw"])
def test_windowed_metrics_refuse_images_smaller_than_the_window(name):
    """2 x 7 images: the 'valid' filters' window does not fit; a FusionInputError, not a raw slice TypeError."""
    from jfusion.errors import FusionInputError
    from jfusion.ops.filters import correlate_valid

    a, b, f = np.random.default_rng(0).random((3, 2, 7))
    with pytest.raises(FusionInputError, match=r"^metrics: a \d+-px window is larger than the image's 2 px"):
        jm.evaluate([a, b], f, metrics=[name])
    with pytest.raises(ValueError, match="larger than the image"):
        correlate_valid(a, np.ones(3), -2)


def test_ergas_is_undefined_on_a_zero_mean_reference_band():
    """ERGAS divides by each reference band's mean: a zero band gives NaN (refused), never Inf."""
    from jfusion.errors import FusionInputError

    ref = np.random.default_rng(0).uniform(100, 1000, (16, 16, 4))
    ref[..., 2] = 0.0
    fused = ref + 1.0
    with pytest.raises(FusionInputError, match=r"^sources/fused: ergas undefined"):
        jm.evaluate(None, fused, metrics=["ergas"], reference=ref)
    assert math.isnan(jm.evaluate(None, fused, metrics=["ergas"], reference=ref, undefined="nan")["ergas"])
    assert math.isfinite(jm.evaluate(None, ref, metrics=["ergas"], reference=fused)["ergas"])


def test_remote_metric_errors_name_the_argument():
    """A remote metric refusing its images (window larger than a 1 x 1 image) says 'metrics: NAME: ...'."""
    from jfusion.errors import FusionInputError

    ref = np.full((1, 1, 4), 100.0)
    with pytest.raises(FusionInputError, match=r"^metrics: uiqi: window"):
        jm.evaluate(None, ref + 1, metrics=["uiqi"], reference=ref)
