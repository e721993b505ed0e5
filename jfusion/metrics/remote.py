"""Remote-sensing quality indices (Wald's protocol and no-reference), as in Vivone's Pansharpening Toolbox (PST).

Arrays are ``(H, W, B)``, bands last, in the sensor's own scale (DN or reflectance); nothing is
rescaled except where PST does it (Q2n casts to uint16). Band-wise work is vectorised over the
band axis. Signatures:

* with a reference (reduced resolution): ``fn(reference, fused, *, ...)``: :func:`rmse_rs`,
  :func:`cc`, :func:`sam`, :func:`ergas` (``ratio``), :func:`uiqi` (``block``), :func:`q2n`
  (``block``, ``shift``, ``cast_uint16``), :func:`scc`;
* without a reference (full resolution): :func:`d_lambda` ``(ms, fused)``, :func:`d_s`
  ``(ms, pan, fused)``, :func:`qnr` ``(ms, pan, fused)``; ``ms`` is the MS image interpolated
  to the PAN scale (PST default, "Toolbox 1.0" convention) and ``pan`` is ``(H, W)``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.metrics._common import as_metric_float, box_sum_stored, filter_same_zero, matlab_round, safe_sqrt, windowed_cov, windowed_var
from jfusion.metrics._registry import register_metric
from jfusion.options import opt
from jfusion.ops import extract_patches, pad2d, resize
from jfusion.ops.precision import einsum

__all__ = [
    "rmse_rs",
    "cc",
    "sam",
    "ergas",
    "uiqi",
    "q2n",
    "scc",
    "block_uiqi",
    "d_lambda",
    "d_s",
    "qnr",
    "onion_product_tensor",
]

_EPS = float(np.finfo(np.float64).eps)


def _hwb(x: ArrayLike) -> jax.Array:
    """``(H, W)`` or ``(H, W, B)`` -> ``(H, W, B)`` in a float dtype (:func:`as_metric_float`: uint16 DN stay exact)."""
    x = as_metric_float(x)
    return x[..., None] if x.ndim == 2 else x


@register_metric("rmse_rs", direction="lower", convention="pst", needs_reference=True, kind="remote", range=(0, math.inf), ideal=0.0)
def rmse_rs(reference: ArrayLike, fused: ArrayLike) -> jax.Array:
    """RMSE over all pixels and bands, in the data's units."""
    r, f = _hwb(reference), _hwb(fused)
    return jnp.sqrt(jnp.mean((r - f) ** 2))


@register_metric("cc", direction="higher", convention="pst", needs_reference=True, kind="remote", range=(-1, 1), ideal=1.0)
def cc(reference: ArrayLike, fused: ArrayLike) -> jax.Array:
    """CC: mean over bands of Pearson's correlation between reference and fused band."""
    r, f = _hwb(reference), _hwb(fused)
    rc = r - jnp.mean(r, axis=(0, 1))
    fc = f - jnp.mean(f, axis=(0, 1))
    num = jnp.sum(rc * fc, axis=(0, 1))
    return jnp.mean(num / jnp.sqrt(jnp.sum(rc**2, axis=(0, 1)) * jnp.sum(fc**2, axis=(0, 1))))


@register_metric("sam", direction="lower", convention="pst", needs_reference=True, kind="remote", range=(0, 180), ideal=0.0, options={"degrees": opt(doc="return the angle in degrees (False: radians)")})
def sam(reference: ArrayLike, fused: ArrayLike, *, degrees: bool = True) -> jax.Array:
    """SAM: mean spectral angle between the pixel vectors (PST SAM.m), in degrees (radians if not ``degrees``).

    Pixels where ``||r|| ||f|| = 0`` are excluded from the mean; cosines are clipped to [-1, 1]
    (PST's ``real(acos(.))`` gives the same values).
    """
    r, f = _hwb(reference), _hwb(fused)
    dot = jnp.sum(r * f, axis=-1)
    norm = jnp.sqrt(jnp.sum(r * r, axis=-1) * jnp.sum(f * f, axis=-1))
    ok = norm > 0
    cos = jnp.clip(dot / jnp.where(ok, norm, 1.0), -1.0, 1.0)
    ang = jnp.sum(jnp.where(ok, jnp.arccos(cos), 0.0)) / jnp.sum(ok)
    return ang * (180.0 / math.pi) if degrees else ang


@register_metric("ergas", direction="lower", convention="pst", needs_reference=True, kind="remote", range=(0, math.inf), ideal=0.0, symmetric=False)
def ergas(reference: ArrayLike, fused: ArrayLike, *, ratio: float = 4.0) -> jax.Array:
    """ERGAS = ``(100 / ratio) sqrt(mean_b MSE_b / mu_b^2)``, mu_b the reference band mean (PST ERGAS.m).

    ``ratio`` is the PAN/MS resolution ratio (4 for 4:1); sewar's ``r`` is ``1 / ratio``.
    Undefined (NaN) when a reference band has mean 0 (PST divides by zero and returns Inf or NaN).
    """
    r, f = _hwb(reference), _hwb(fused)
    mse = jnp.mean((r - f) ** 2, axis=(0, 1))
    mu = jnp.mean(r, axis=(0, 1))
    zero = mu == 0
    rel = jnp.where(zero, jnp.nan, mse / jnp.where(zero, 1.0, mu) ** 2)
    return (100.0 / ratio) * jnp.sqrt(jnp.mean(rel))


def _uiqi_from_sums(sx, sy, sxx, syy, sxy, n: float) -> jax.Array:
    """Wang-Bovik UIQI in PST ``img_qi`` sum form, with its special cases (flat windows)."""
    mul = sx * sy
    sq = sx * sx + sy * sy
    vx, vy = windowed_var(n * sxx, sx), windowed_var(n * syy, sy)  # n^2 var: flat windows exactly 0
    num = 4.0 * windowed_cov(n * sxy, sx, sy, n * sxx, n * syy, vx, vy) * mul
    d1 = vx + vy
    den = d1 * sq
    q = jnp.ones_like(den)
    only = (d1 == 0) & (sq != 0)
    q = jnp.where(only, 2.0 * mul / jnp.where(only, sq, 1.0), q)
    return jnp.where(den != 0, num / jnp.where(den != 0, den, 1.0), q)


@register_metric("uiqi", direction="higher", convention="pst", needs_reference=True, kind="remote", range=(-1, 1), ideal=1.0, options={"convention": opt(choices=('pst', 'sewar'))})
def uiqi(reference: ArrayLike, fused: ArrayLike, *, block: int = 32, convention: str = "pst") -> jax.Array:
    """UIQI / Q (Wang & Bovik 2002; PST Q.m + img_qi.m): sliding ``block x block`` windows ('valid'),
    mean of the map, then mean over bands. PST uses 32; the classic UIQI uses 8.

    Args:
      convention: ``"pst"`` (window sums, 'valid' positions) or ``"sewar"``: sewar 0.4.10's
        ``uqi``, which feeds window *means* (scipy ``uniform_filter``, mirrored borders) into the
        sum-form formula with ``N = block^2`` and then crops ``round(block / 2)`` pixels per side;
        a different number (e.g. 0.858 vs 0.500 on the spec's astronaut test).
    """
    r, f = jnp.moveaxis(_hwb(reference), -1, 0), jnp.moveaxis(_hwb(fused), -1, 0)
    n = float(block * block)
    if convention == "sewar":
        # scipy uniform_filter window means, then a crop of c = round(block / 2) per side; every window
        # that survives the crop lies inside the image, so 'valid' sums sliced to it give the same map.
        h, w = r.shape[-2:]
        c = int(round(block / 2))
        s0 = c - block // 2

        sums = box_sum_stored(jnp.stack([r, f, r * r, f * f, r * f]), block)
        sums = sums[..., s0 : s0 + h - 2 * c, s0 : s0 + w - 2 * c] / n
        return jnp.mean(_uiqi_from_sums(*sums, n))

    # filter2(ones(block), v, 'valid'): direct sums (no cumulative-sum cancellation), 5 maps in one call
    q = _uiqi_from_sums(*box_sum_stored(jnp.stack([r, f, r * r, f * f, r * f]), block), n)
    return jnp.mean(q)


@functools.lru_cache(maxsize=8)
def onion_product_tensor(n: int) -> np.ndarray:
    """The bilinear tensor ``T (n, n, n)`` of PST's recursive ("onion") hypercomplex product.

    ``(x * y)_k = sum_ij T[i, j, k] x_i y_j``; ``n`` a power of two (1, 2, 4, 8, ...). Built by
    evaluating the Cayley-Dickson recursion (with the toolbox's conjugation pattern) on basis vectors.
    """

    def conj(v):
        return np.concatenate([v[:1], -v[1:]])

    def mult(a, b):
        m = len(a)
        if m == 1:
            return a * b
        half = m // 2
        p, q_ = a[:half], conj(a[half:])
        c, d = b[:half], conj(b[half:])
        if m == 2:
            return np.concatenate([p * c - d * q_, p * d + c * q_])
        r1 = mult(p, c)
        r2 = mult(d, conj(q_))
        r3 = mult(conj(p), d)
        r4 = mult(c, q_)
        return np.concatenate([r1 - r2, r3 + r4])

    eye = np.eye(n)
    return np.stack([np.stack([mult(eye[i], eye[j]) for j in range(n)]) for i in range(n)])


def _q2n_block(x: jax.Array, y: jax.Array, tensor: np.ndarray) -> jax.Array:
    """PST ``onions_quality`` of one block: ``x, y`` are ``(Nb, n)`` pixel x band (n a power of two)."""
    nb = x.shape[0]
    k = nb / (nb - 1.0)
    a = jnp.mean(x, axis=0)
    c = jnp.std(x, axis=0, ddof=1)
    c = jnp.where(c == 0, _EPS, c)
    x = (x - a) / c + 1.0
    y = jnp.where(a == 0, y - a + 1.0, (y - a) / c + 1.0)
    y = y.at[:, 1:].multiply(-1.0)  # conjugate the fused vector
    m1, m2 = jnp.mean(x, axis=0), jnp.mean(y, axis=0)
    n1, n2 = jnp.sum(m1**2), jnp.sum(m2**2)
    term3 = k * jnp.mean(jnp.sum(x**2, axis=1)) + k * jnp.mean(jnp.sum(y**2, axis=1)) - k * (n1 + n2)
    mean_bias = 2.0 * jnp.sqrt(n1) * jnp.sqrt(n2) / (n1 + n2)
    t = jnp.asarray(tensor, x.dtype)
    qu = einsum("pi,pj,ijk->k", x, y, t) / nb
    qm = einsum("i,j,ijk->k", m1, m2, t)
    safe = jnp.where(term3 == 0, 1.0, term3)
    q = (k * qu - k * qm) * mean_bias * 2.0 / safe
    flat = jnp.zeros_like(q).at[-1].set(mean_bias)
    q = jnp.where(term3 == 0, flat, q)
    return jnp.sqrt(jnp.sum(q**2))


@register_metric("q2n", direction="higher", convention="pst", needs_reference=True, kind="remote", range=(0, 1), ideal=1.0, symmetric=False, options={"shift": opt(doc="step between the Q2n blocks in pixels", low=1, high=4096), "cast_uint16": opt(doc="round the inputs to uint16 first, as the reference MATLAB code")})
def q2n(
    reference: ArrayLike, fused: ArrayLike, *, block: int = 32, shift: int = 32, cast_uint16: bool = True
) -> jax.Array:
    """Q2^n / Q4 (Garzelli & Nencini 2009; PST q2n.m): hypercomplex UIQI over ``block`` blocks.

    Steps (PST): mirror-pad bottom/right so the blocks tile the image; cast to uint16 (round half
    away, clip to [0, 65535]; ``cast_uint16=False`` skips it, as sewar does); zero bands up to
    the next power of two; per block normalise every band by the reference block's mean and
    std (N-1), hypercomplex correlation, mean-bias and contrast terms; mean of the block moduli.
    With 4 bands this is Q4. Range [0, 1].
    """
    r, f = _hwb(reference), _hwb(fused)
    h, w, nbands = r.shape
    sx, sy = math.ceil(h / shift), math.ceil(w / shift)
    e1, e2 = (sx - 1) * shift + block - h, (sy - 1) * shift + block - w
    if e1 or e2:
        pad = lambda v: jnp.moveaxis(pad2d(jnp.moveaxis(v, -1, 0), 0, e1, 0, e2, border="symmetric"), 0, -1)  # noqa: E731
        r, f = pad(r), pad(f)
    if cast_uint16:
        r = jnp.clip(matlab_round(r), 0, 65535)
        f = jnp.clip(matlab_round(f), 0, 65535)
    n = 1 << max(0, math.ceil(math.log2(nbands)))
    if n != nbands:
        z = jnp.zeros(r.shape[:2] + (n - nbands,), r.dtype)
        r, f = jnp.concatenate([r, z], -1), jnp.concatenate([f, z], -1)
    pr = extract_patches(r, block, stride=shift, cover=False).reshape(-1, block * block, n)
    pf = extract_patches(f, block, stride=shift, cover=False).reshape(-1, block * block, n)
    tensor = onion_product_tensor(n)
    return jnp.mean(jax.vmap(lambda a, b: _q2n_block(a, b, tensor))(pr, pf))


_SOBEL = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]])


@register_metric("scc", direction="higher", convention="pst", needs_reference=True, kind="remote", range=(0, 1), ideal=1.0)
def scc(reference: ArrayLike, fused: ArrayLike) -> jax.Array:
    """sCC (PST SCC.m): one global, non-centred correlation of the Sobel edge magnitudes over all bands.

    Edge magnitude ``sqrt(imfilter(X, sobel)^2 + imfilter(X, sobel')^2)`` (zero padding) per band,
    evaluated on the interior (the one-pixel border, where padding enters, is dropped);
    ``sCC = sum(E_F E_R) / sqrt(sum E_F^2 sum E_R^2)``.
    """
    r, f = jnp.moveaxis(_hwb(reference), -1, 0), jnp.moveaxis(_hwb(fused), -1, 0)

    def edges(v):
        e = safe_sqrt(filter_same_zero(v, _SOBEL) ** 2 + filter_same_zero(v, _SOBEL.T) ** 2)
        return e[..., 1:-1, 1:-1]

    er, ef = edges(r), edges(f)
    return jnp.sum(er * ef) / jnp.sqrt(jnp.sum(er**2) * jnp.sum(ef**2))


def block_uiqi(x: ArrayLike, y: ArrayLike, *, block: int = 32) -> jax.Array:
    """Mean UIQI over non-overlapping ``block x block`` blocks of two ``(H, W)`` images (PST QNR helper).

    H and W must be multiples of ``block`` (PST raises otherwise; so does this, statically).
    """
    x, y = as_metric_float(x), as_metric_float(y)
    h, w = x.shape[-2:]
    if h % block or w % block:
        raise ValueError(f"image size {(h, w)} must be a multiple of the block size {block}")

    def blocks(v):
        return v.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3).reshape(-1, block * block)

    bx, by = blocks(x), blocks(y)
    n = float(block * block)
    q = _uiqi_from_sums(
        bx.sum(1), by.sum(1), (bx * bx).sum(1), (by * by).sum(1), (bx * by).sum(1), n
    )
    return jnp.mean(q)


def _pairwise_q(img: jax.Array, block: int) -> jax.Array:
    """Q(X_i, X_j) for all band pairs i < j of ``(H, W, B)``, shape (B(B-1)/2,)."""
    nb = img.shape[-1]
    ii, jj = np.triu_indices(nb, k=1)
    bands = jnp.moveaxis(img, -1, 0)
    return jax.vmap(lambda a, b: block_uiqi(a, b, block=block))(bands[ii], bands[jj])


@register_metric("d_lambda", direction="lower", convention="pst", kind="remote_noref", inputs=("ms", "fused"), range=(0, 2), ideal=0.0, symmetric=False, options={"convention": opt(choices=('pst', 'sewar'), doc="'pst' (the pan-sharpening toolbox's definition) or 'sewar' (sewar 0.4.10's); see the function's docstring"), "p": opt(doc="exponent of the band-pair UIQI differences (QNR paper p)", low=1e-6)})
def d_lambda(ms: ArrayLike, fused: ArrayLike, *, block: int = 32, p: float = 1.0, ratio: int = 4, convention: str = "pst") -> jax.Array:
    """Spectral distortion D_lambda (Alparone et al. 2008; PST D_lambda.m).

    ``[mean_{i<j} |Q(F_i, F_j) - Q(M_i, M_j)|^p]^(1/p)`` with block UIQI (``block`` x ``block``).

    Args:
      ms: ``convention="pst"``: the MS image interpolated to the fused size ``(H, W, B)``;
        ``"paper"``: the low-resolution MS ``(H/ratio, W/ratio, B)``, with ``block/ratio`` blocks;
        ``"sewar"``: the low-resolution MS, sliding 8x8 sewar-UIQI on whole images (sewar 0.4.10).
      fused: ``(H, W, B)``.
    """
    m, f = _hwb(ms), _hwb(fused)
    if convention == "sewar":
        qf, qm = _pairwise_uiqi_sewar(f), _pairwise_uiqi_sewar(m)
    else:
        mblock = block if convention == "pst" else block // ratio
        qf, qm = _pairwise_q(f, block), _pairwise_q(m, mblock)
    return jnp.mean(jnp.abs(qf - qm) ** p) ** (1.0 / p)


def _pairwise_uiqi_sewar(img: jax.Array) -> jax.Array:
    """sewar's D_lambda helper: ``uqi(X_i, X_j)`` (8x8 windows, sewar convention) for band pairs i < j."""
    ii, jj = np.triu_indices(img.shape[-1], k=1)
    return jnp.stack([uiqi(img[..., i], img[..., j], block=8, convention="sewar") for i, j in zip(ii, jj)])


def _pan_lowpass(pan: jax.Array, ratio: int) -> jax.Array:
    h, w = pan.shape
    small = resize(pan, (h // ratio, w // ratio), method="bicubic", antialias=True)
    return resize(small, (h, w), method="bicubic")


@register_metric("d_s", direction="lower", convention="pst", kind="remote_noref", range=(0, 2), ideal=0.0, symmetric=False, options={"convention": opt(choices=('pst', 'sewar'), doc="'pst' (the pan-sharpening toolbox's definition) or 'sewar' (sewar 0.4.10's); see the function's docstring"), "q": opt(doc="exponent of the MS-PAN UIQI differences (QNR paper q)", low=1e-6)})
def d_s(
    ms: ArrayLike,
    pan: ArrayLike,
    fused: ArrayLike,
    *,
    block: int = 32,
    q: float = 1.0,
    ratio: int = 4,
    pan_lowpass: ArrayLike | None = None,
    convention: str = "pst",
) -> jax.Array:
    """Spatial distortion D_s (Alparone et al. 2008; PST D_s.m): ``[mean_i |Q(F_i, P) - Q(M_i, P_LP)|^q]^(1/q)``.

    Args:
      ms: ``"pst"``: MS interpolated to the PAN size ``(H, W, B)``; ``"paper"``: low-res MS.
      pan: ``(H, W)``.
      fused: ``(H, W, B)``.
      pan_lowpass: the degraded PAN at the scale of ``ms``. PST builds it as
        ``interp23tap(imresize(P, 1/ratio), ratio)``; pass that to reproduce PST exactly. Default:
        antialiased bicubic down by ``ratio`` and bicubic back up (``"pst"``) or just down (``"paper"``).
    """
    m, f = _hwb(ms), _hwb(fused)
    p = as_metric_float(pan)
    p = p[..., 0] if p.ndim == 3 else p
    if pan_lowpass is None:
        if convention == "pst":
            plp = _pan_lowpass(p, ratio)
        else:
            h, w = p.shape
            plp = resize(p, (h // ratio, w // ratio), method="bicubic", antialias=True)
    else:
        plp = as_metric_float(pan_lowpass)
    mblock = block if convention == "pst" else block // ratio
    qf = jax.vmap(lambda b: block_uiqi(b, p, block=block))(jnp.moveaxis(f, -1, 0))
    qm = jax.vmap(lambda b: block_uiqi(b, plp, block=mblock))(jnp.moveaxis(m, -1, 0))
    return jnp.mean(jnp.abs(qf - qm) ** q) ** (1.0 / q)


@register_metric("qnr", direction="higher", convention="pst", kind="remote_noref", range=(-1, 1), ideal=1.0, symmetric=False, options={"convention": opt(choices=('pst', 'sewar'), doc="'pst' (the pan-sharpening toolbox's definition) or 'sewar' (sewar 0.4.10's); see the function's docstring"), "p": opt(doc="exponent of D_lambda's band-pair UIQI differences", low=1e-6), "q": opt(doc="exponent of D_s's MS-PAN UIQI differences", low=1e-6), "alpha": opt(doc="exponent of (1 - D_lambda) in QNR", low=0.0), "beta": opt(doc="exponent of (1 - D_s) in QNR", low=0.0), "pan_lowpass": opt(doc="the PAN degraded to the MS resolution (None: computed from pan)")})
def qnr(
    ms: ArrayLike,
    pan: ArrayLike,
    fused: ArrayLike,
    *,
    block: int = 32,
    p: float = 1.0,
    q: float = 1.0,
    alpha: float = 1.0,
    beta: float = 1.0,
    ratio: int = 4,
    pan_lowpass: ArrayLike | None = None,
    convention: str = "pst",
) -> jax.Array:
    """QNR = ``(1 - D_lambda)^alpha (1 - D_s)^beta`` (PST QNR.m defaults: S = 32, p = q = alpha = beta = 1)."""
    dl = d_lambda(ms, fused, block=block, p=p, ratio=ratio, convention=convention)
    ds = d_s(ms, pan, fused, block=block, q=q, ratio=ratio, pan_lowpass=pan_lowpass, convention=convention)
    return (1.0 - dl) ** alpha * (1.0 - ds) ** beta
