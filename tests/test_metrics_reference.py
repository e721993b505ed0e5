"""jfusion.metrics against independent references: scikit-image SSIM, sewar 0.4.10, the spec's pinned
values, and direct NumPy/SciPy transcriptions of the toolbox formulas (metrics_spec.md 3.x, 4.x).

All comparisons run in float64. Tolerances are stated per test; they are float-rounding bounds.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy.signal import correlate2d

import jfusion.metrics as M


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def grey():
    from skimage import data

    cam = data.camera().astype(np.float64)
    a = cam[60:124, 180:248]
    b = np.clip(np.round(0.7 * cam[62:126, 183:251] + 40), 0, 255)
    rng = np.random.default_rng(0)
    f = np.clip(np.round(0.5 * a + 0.5 * b + rng.normal(0, 6, a.shape)), 0, 255)
    return a, b, f  # grey levels 0..255 (pass data_range=255)


@pytest.fixture(scope="module")
def rs():
    """The spec's section 1.4 recipe: astronaut GT (4 bands, x8), blurred/decimated LR, bicubic EXP."""
    from scipy.ndimage import gaussian_filter
    from skimage import data, transform

    a = data.astronaut().astype(np.float64)
    gt = np.round(8 * np.concatenate([a, a.mean(axis=2, keepdims=True)], axis=2))
    lr = gaussian_filter(gt, sigma=(1.7, 1.7, 0))[::4, ::4]
    exp = transform.resize(lr, gt.shape, order=3, mode="symmetric", anti_aliasing=False, preserve_range=True)
    return gt, lr, exp


def _fspecial(n, s):
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t[:, None] ** 2 + t[None] ** 2) / (2 * s * s))
    return g / g.sum()


def _stats(x, y, w):
    f = lambda v: correlate2d(v, w, mode="valid")  # noqa: E731
    mx, my = f(x), f(y)
    return mx, my, f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my


def _ssim_map(x, y, w, c1, c2):
    mx, my, vx, vy, cxy = _stats(x, y, w)
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


# ---------------------------------------------------------------- scikit-image


def test_ssim_vs_skimage(grey):
    from skimage.metrics import structural_similarity

    a, _, f = grey
    ref = structural_similarity(a, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    ours = float(M.ssim(a[None], f, data_range=255.0, convention="standard"))
    assert ours == pytest.approx(ref, rel=1e-10)
    ref7 = structural_similarity(a, f, win_size=7, use_sample_covariance=False, data_range=255)
    ours7 = float(M.ssim(a[None], f, data_range=255.0, convention="standard", window="uniform", win_size=7))
    assert ours7 == pytest.approx(ref7, rel=1e-10)


# ---------------------------------------------------------------- sewar and the spec's pinned values


def test_remote_vs_sewar_and_spec(rs):
    import sewar

    gt, lr, exp = rs
    # Spec 1.4 values (sewar 0.4.10) and sewar itself, same run.
    assert float(M.sam(gt, exp, degrees=False)) == pytest.approx(sewar.full_ref.sam(gt, exp), rel=1e-12)
    assert float(M.sam(gt, exp)) == pytest.approx(3.0082631593799682, rel=1e-12)
    assert float(M.ergas(gt, exp, ratio=4)) == pytest.approx(sewar.full_ref.ergas(gt, exp, r=0.25), rel=1e-12)
    assert float(M.q2n(gt, exp, cast_uint16=False)) == pytest.approx(sewar.full_ref.q2n(gt, exp, ws=32), rel=1e-10)
    # PST casts to uint16 first: the spec's independently computed value.
    assert float(M.q2n(gt, exp)) == pytest.approx(0.8271760537486219, rel=1e-12)
    assert float(M.uiqi(gt, exp, block=8, convention="sewar")) == pytest.approx(0.8581002975082671, rel=1e-10)


def test_uiqi_and_d_lambda_sewar_convention(rs):
    import sewar

    gt, lr, exp = rs
    # Offset keeps every window away from exact zeros: in all-black windows sewar's value is decided
    # by float noise of scipy's running sums (0/0-like ratios), which no other code reproduces.
    lr, exp = lr + 100.0, exp + 100.0
    assert float(M.uiqi(lr[..., 0], lr[..., 1], block=8, convention="sewar")) == pytest.approx(
        sewar.full_ref.uqi(lr[..., 0], lr[..., 1]), rel=1e-10
    )
    assert float(M.d_lambda(lr, exp, convention="sewar")) == pytest.approx(sewar.no_ref.d_lambda(lr, exp), rel=1e-8)


def test_general_vs_sewar(grey):
    import sewar

    a, _, f = grey
    # sewar's ssim: uniform 11x11 window, 'valid'; its vifp: pixel VIF with sigma_nsq = 2.
    ours = float(M.ssim(a[None], f, data_range=255.0, convention="standard", window="uniform", win_size=11))
    assert ours == pytest.approx(sewar.full_ref.ssim(a, f, MAX=255)[0], rel=1e-10)
    assert float(M.vifp(a[None], f, data_range=255.0)) == pytest.approx(sewar.full_ref.vifp(a, f), rel=1e-10)
    assert float(M.rmse(a[None], f, data_range=255.0, convention="standard")) == pytest.approx(sewar.full_ref.rmse(a, f), rel=1e-12)
    assert float(M.psnr(a[None], f, data_range=255.0, convention="standard")) == pytest.approx(
        sewar.full_ref.psnr(a, f, MAX=255), rel=1e-12
    )


# ---------------------------------------------------------------- NumPy transcriptions (PST)


def _np_block_q(x, y, s):
    h, w = x.shape
    vals = []
    for i in range(0, h, s):
        for j in range(0, w, s):
            bx, by = x[i : i + s, j : j + s].ravel(), y[i : i + s, j : j + s].ravel()
            c = np.cov(bx, by)
            mx, my = bx.mean(), by.mean()
            vals.append(4 * c[0, 1] * mx * my / ((c[0, 0] + c[1, 1]) * (mx**2 + my**2)))
    return np.mean(vals)


def test_qnr_family_vs_numpy(rs):
    gt, _, exp = rs
    ms, fused = exp[:128, :128] + 1.0, gt[:128, :128] + 1.0
    pan = fused.mean(-1)
    plp = ms.mean(-1) * 1.01
    nb = ms.shape[-1]
    pairs = [(i, j) for i in range(nb) for j in range(i + 1, nb)]
    dl = np.mean([abs(_np_block_q(fused[..., i], fused[..., j], 32) - _np_block_q(ms[..., i], ms[..., j], 32)) for i, j in pairs])
    ds = np.mean([abs(_np_block_q(fused[..., i], pan, 32) - _np_block_q(ms[..., i], plp, 32)) for i in range(nb)])
    assert float(M.d_lambda(ms, fused)) == pytest.approx(dl, rel=1e-9)
    assert float(M.d_s(ms, pan, fused, pan_lowpass=plp)) == pytest.approx(ds, rel=1e-9)
    assert float(M.qnr(ms, pan, fused, pan_lowpass=plp)) == pytest.approx((1 - dl) * (1 - ds), rel=1e-9)


def test_scc_cc_uiqi32_vs_numpy(rs):
    gt, _, exp = rs
    r, f = gt[:96, :96], exp[:96, :96]
    sob = np.array([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]])
    e = lambda v: np.sqrt(correlate2d(v, sob, "same") ** 2 + correlate2d(v, sob.T, "same") ** 2)[1:-1, 1:-1]  # noqa: E731
    er = np.stack([e(r[..., k]) for k in range(4)])
    ef = np.stack([e(f[..., k]) for k in range(4)])
    assert float(M.scc(r, f)) == pytest.approx(np.sum(er * ef) / np.sqrt(np.sum(er**2) * np.sum(ef**2)), rel=1e-10)
    cc = np.mean([np.corrcoef(r[..., k].ravel(), f[..., k].ravel())[0, 1] for k in range(4)])
    assert float(M.cc(r, f)) == pytest.approx(cc, rel=1e-10)
    w = np.ones((32, 32)) / 1024
    q = []
    for k in range(4):
        mx, my, vx, vy, cxy = _stats(r[..., k], f[..., k], w)
        q.append(np.mean(4 * cxy * mx * my / ((vx + vy) * (mx**2 + my**2))))
    assert float(M.uiqi(r, f)) == pytest.approx(np.mean(q), rel=1e-8)


# ---------------------------------------------------------------- NumPy transcriptions (Liu / MEFB)


def _normalize1(x):
    lo, hi = x.min(), x.max()
    return np.floor((x - lo) / (hi - lo) * 255 + 0.5)


def _joint(a, b):
    h = np.zeros((256, 256))
    np.add.at(h, (a.astype(int).ravel(), b.astype(int).ravel()), 1)
    return h / h.sum()


def _ent(p, base):
    p = p[p > 0]
    return -np.sum(p * np.log(p)) / np.log(base)


def test_information_metrics_vs_numpy(grey):
    a, b, f = grey
    na, nb, nf = _normalize1(a), _normalize1(b), _normalize1(f)

    def mi(x, y, base):
        p = _joint(x, y)
        return _ent(p.sum(1), base) + _ent(p.sum(0), base) - _ent(p.ravel(), base)

    nmi = 2 * sum(mi(x, nf, 2) / (_ent(_joint(x, nf).sum(1), 2) + _ent(_joint(x, nf).sum(0), 2)) for x in (na, nb))
    assert float(M.normalized_mutual_information(np.stack([a, b]), f, data_range=255.0)) == pytest.approx(nmi, rel=1e-10)

    def tsallis(x, y, q=1.85):
        p = _joint(x, y)
        pp = np.outer(p.sum(1), p.sum(0))
        m = pp > 0
        return (1 - np.sum(p[m] ** q / pp[m] ** (q - 1))) / (1 - q)

    te = tsallis(na, nf) + tsallis(nb, nf)
    assert float(M.tsallis_entropy(np.stack([a, b]), f, data_range=255.0)) == pytest.approx(te, rel=1e-10)

    r = np.eye(3)
    r[0, 1] = r[1, 0] = mi(na, nb, 256)
    r[0, 2] = r[2, 0] = mi(na, nf, 256)
    r[1, 2] = r[2, 1] = mi(nb, nf, 256)
    lam = np.linalg.eigvalsh(r) / 3
    ncie = 1 + np.sum(lam * np.log(lam) / np.log(256))
    assert float(M.ncie(np.stack([a, b]), f, data_range=255.0)) == pytest.approx(ncie, rel=1e-10)


def test_qsf_vs_numpy(grey):
    a, b, f = grey
    wd = 1 / math.sqrt(2)
    d = lambda x: [(x[:, 1:] - x[:, :-1], 1.0), (x[1:] - x[:-1], 1.0), (x[1:, 1:] - x[:-1, :-1], wd), (x[1:, :-1] - x[:-1, 1:], wd)]  # noqa: E731
    n = f.size
    sf_f = math.sqrt(sum(w * np.sum(v**2) for v, w in d(f)) / n)
    sf_r = math.sqrt(sum(w * np.sum(np.maximum(np.abs(va), np.abs(vb)) ** 2) for (va, w), (vb, _) in zip(d(a), d(b))) / n)
    assert float(M.qsf(np.stack([a, b]), f, data_range=255.0)) == pytest.approx((sf_f - sf_r) / sf_r, rel=1e-10)


def test_structural_metrics_vs_numpy(grey):
    a, b, f = grey
    src = np.stack([a, b])
    # Q_C and Q_Y (7x7 Gaussian, C = 2e-16), MEFB NaN dropping (no NaN here).
    w7 = _fspecial(7, 1.5)
    qa, qb, qab = _ssim_map(a, f, w7, 2e-16, 2e-16), _ssim_map(b, f, w7, 2e-16, 2e-16), _ssim_map(a, b, w7, 2e-16, 2e-16)
    _, _, va, _, caf = _stats(a, f, w7)
    _, _, vb, _, cbf = _stats(b, f, w7)
    sim = caf / (caf + cbf)
    qc = np.where(sim < 0, 0, np.where(sim > 1, 1, sim * qa + (1 - sim) * qb))
    assert float(M.qc(src, f, data_range=255.0)) == pytest.approx(np.mean(qc), rel=1e-9)
    lam = va / (va + vb)
    qy = np.where(qab >= 0.75, lam * qa + (1 - lam) * qb, np.maximum(qa, qb))
    assert float(M.qy(src, f, data_range=255.0)) == pytest.approx(np.mean(qy), rel=1e-9)
    # Piella with the toolbox SSIM window.
    w11 = _fspecial(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    qa, qb = _ssim_map(f, a, w11, c1, c2), _ssim_map(f, b, w11, c1, c2)
    _, _, _, sa, _ = _stats(f, a, w11)
    _, _, _, sb, _ = _stats(f, b, w11)
    lam = sa / (sa + sb)
    comb = lam * qa + (1 - lam) * qb
    c = np.maximum(sa, sb)
    assert float(M.piella_q0(src, f, data_range=255.0)) == pytest.approx(np.mean(comb), rel=1e-9)
    assert float(M.piella_qw(src, f, data_range=255.0)) == pytest.approx(np.sum(c * comb) / np.sum(c), rel=1e-9)
    # VIFB SSIM is the sum over sources.
    ssim = np.mean(_ssim_map(a, f, w11, c1, c2)) + np.mean(_ssim_map(b, f, w11, c1, c2))
    assert float(M.ssim(src, f, data_range=255.0)) == pytest.approx(ssim, rel=1e-10)


def test_viff_vs_numpy(grey):
    from skimage import data

    cam = data.camera().astype(np.float64)[:96, :96]
    a, b = cam, np.clip(0.6 * np.roll(cam, 2, 0) + 50, 0, 255)
    f = 0.5 * a + 0.5 * b
    sn, eps = 0.005 * 255**2, 1e-10
    total = 0.0
    xs = [a.copy(), b.copy()]
    ff = f.copy()
    for s, p in enumerate(np.array([1.0, 0.0, 0.15, 1.0]) / 2.15):
        n = 2 ** (4 - s) + 1
        w = _fspecial(n, n / 5)
        if s > 0:
            xs = [correlate2d(x, w, "valid")[::2, ::2] for x in xs]
            ff = correlate2d(ff, w, "valid")[::2, ::2]
        gs, nums, dens = [], [], []
        for x in xs:
            mx, mf, vx, vf, cxf = _stats(x, ff, w)
            vx, vf = np.maximum(vx, 0), np.maximum(vf, 0)
            g = cxf / (vx + eps)
            v = vf - g * cxf
            g[vx < eps], v[vx < eps], vx[vx < eps] = 0, vf[vx < eps], 0
            g[vf < eps], v[vf < eps] = 0, 0
            v[g < 0], g[g < 0] = vf[g < 0], 0
            v = np.maximum(v, eps)
            gs.append(g)
            nums.append(np.log10(1 + g * g * vx / (v + sn)))
            dens.append(np.log10(1 + vx / sn))
        pick_a = gs[0] < gs[1]
        num = np.where(pick_a, nums[0], nums[1])
        den = np.where(pick_a, dens[0], dens[1])
        total += p * np.sum(num + 1e-7) / np.sum(den + 1e-7)
    assert float(M.viff(np.stack([a, b]), f, data_range=255.0)) == pytest.approx(total, rel=1e-9)


# ---------------------------------------------------------------- MEF-SSIM: loop transcription of the patch algorithm

EPS = np.finfo(float).eps


def _g2(n, s):
    return _fspecial(n, s)


def mef_np(seq, f, w=11):
    K = seq.shape[0]; win = _g2(w, 1.5); bd = w//2; H, W = f.shape
    sw = np.ones((w, w))/w**2
    mu = np.stack([correlate2d(x, sw, 'valid') for x in seq])
    ed = np.stack([np.sqrt(np.maximum(w*w*(correlate2d(x*x, sw, 'valid') - m*m), 0)) + 0.001 for x, m in zip(seq, mu)])
    q = np.zeros((H-2*bd, W-2*bd))
    for i in range(bd, H-bd):
        for j in range(bd, W-bd):
            v = seq[:, i-bd:i+bd+1, j-bd:j+bd+1].reshape(K, -1)
            den = sum(np.linalg.norm(v[k] - mu[k, i-bd, j-bd]) for k in range(K))
            sv = v.sum(0); num = np.linalg.norm(sv - sv.mean())
            R = (num + EPS)/(den + EPS); R = 1-EPS if R > 1 else (EPS if R < 0 else R)
            p = min(np.tan(np.pi/2*R), 10)
            wm = (ed[:, i-bd, j-bd]/w)**p + EPS; wm /= wm.sum()
            r = sum(wm[k]*(v[k]-mu[k, i-bd, j-bd])/ed[k, i-bd, j-bd] for k in range(K))
            if np.linalg.norm(r) > 0: r = r/np.linalg.norm(r)*ed[:, i-bd, j-bd].max()
            fb = f[i-bd:i+bd+1, j-bd:j+bd+1].ravel(); g = win.ravel()
            m1, m2 = (g*r).sum(), (g*fb).sum()
            s1, s2, s12 = (g*(r-m1)**2).sum(), (g*(fb-m2)**2).sum(), (g*(r-m1)*(fb-m2)).sum()
            C = (0.03*255)**2
            q[i-bd, j-bd] = (2*s12 + C)/(s1 + s2 + C)
    return q.mean()


@pytest.mark.parametrize("k", [2, 3])
def test_mef_ssim_vs_patch_loop(k):
    from skimage import data

    rng = np.random.default_rng(0)
    cam = data.camera()[200:236, 200:240].astype(float)
    seq = np.stack([np.clip(cam * 0.5, 0, 255), np.clip(cam * 1.6 + 20, 0, 255), np.clip(cam + rng.normal(0, 5, cam.shape), 0, 255)])
    f = np.clip(cam * 1.1, 0, 255)
    assert float(M.mef_ssim(seq[:k], f, data_range=255.0, scales=1)) == pytest.approx(mef_np(seq[:k], f), rel=1e-10)


def test_mef_ssim_where_one_exposure_is_flat_float32_and_float64():
    """Windows where an exposure is saturated (structural consistency R == 1): the reference's tan(pi/2 (1 - eps))
    is +1.6e16, capped to 10; float32 must not turn it into a huge negative power (that gave NaN on MEFB's full
    pairs). Same value as the loop transcription, and the float32 path finite and within 1e-4."""
    from skimage import data

    cam = data.camera()[200:236, 200:240].astype(float)
    over = np.clip(cam * 1.6 + 20, 0, 255)
    over[:, :20] = 255.0  # saturated half: flat windows
    seq = np.stack([np.clip(cam * 0.5, 0, 255), over])
    f = np.clip(cam * 1.1, 0, 255)
    want = mef_np(seq, f)
    assert float(M.mef_ssim(seq, f, data_range=255.0, scales=1)) == pytest.approx(want, rel=1e-10)
    with jax.enable_x64(False):
        got32 = float(M.mef_ssim(seq.astype(np.float32), f.astype(np.float32), data_range=255.0, scales=1))
    assert np.isfinite(got32) and got32 == pytest.approx(want, rel=1e-4)
