"""Convolutional dictionary learning: alternating CBPDN and consensus-ADMM constrained MOD.

Problem (survey Eq. 4), K training images ``s_k``::

    min_{d, x} 1/2 sum_k |sum_m d_m * x_{k,m} - s_k|^2 + lmbda sum_{k,m} |x_{k,m}|_1
    s.t. d_m in C = {support in h x w, |d_m|_2 = 1}

Interleaved as sporco's ``ConvBPDNDictLearn(xmethod='admm', dmethod='cns')`` does: each outer
iteration runs **one** ADMM iteration of the coefficient problem (CBPDN, all K images jointly,
one rho) and **one** iteration of the dictionary problem, passing the sparse coefficients
``y`` to the dictionary update and its projected consensus dictionary back. The dictionary
update is the consensus ADMM of Garcia-Cardona & Wohlberg 2018 (sporco ``ConvCnstrMOD_Consensus``,
"cns"): every image keeps its own dictionary ``d_k`` solved by Sherman-Morrison in the DFT
domain (a ``vmap``-friendly batch over k), the consensus ``g = P_C(mean_k(relaxed d_k + h_k))``.
The coefficient step uses sporco's dictionary-learning rho policy (every 10 iterations, fixed
factor 2, ratio 10, target 1); the consensus step keeps rho fixed (sporco: 1, AutoRho off). The recorded objective per iteration is the coefficient step's
objective at its ``x`` with the dictionary before the update (sporco's ``ObjFun`` when
``AccurateDFid`` is off).

Shape: ``init / step / learn`` pure functions over a NamedTuple state; ``learn`` is a
``lax.scan`` over a fixed number of iterations that returns the objective history.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.sparse.cbpdn import Options as _Options
from jfusion.sparse.cbpdn import State as _CBState
from jfusion.sparse.cbpdn import _irfft, _norm, _rfft
from jfusion.sparse.cbpdn import coefficients as _cb_coefficients
from jfusion.sparse.cbpdn import init as _cb_init
from jfusion.sparse.cbpdn import make_problem as _make_problem
from jfusion.sparse.cbpdn import objective as _objective
from jfusion.sparse.cbpdn import step as _cb_step

__all__ = ["DictLearnState", "DictLearnHistory", "project_filters", "init", "step", "learn", "learn_dictionary"]

# sporco's ConvBPDNDictLearn defaults for both inner ADMM solvers. One FFT group: the learner
# takes one CBPDN step per outer iteration, so splitting the maps would cost a copy each way.
_X_OPTS = _Options(
    relax=1.8, auto_rho=True, rho_period=10, rho_ratio=10.0, rho_scaling=2.0, auto_scaling=False, rho_target=1.0,
    tol=0.0, fft_groups=1,
)


class DictLearnState(NamedTuple):
    """Iterate: coefficient ADMM state (over K images) and the consensus dictionary update state.

    Attributes:
        x: CBPDN state, maps ``(K, M, H, W)``.
        g: consensus dictionary on the image grid ``(M, H, W)`` (zero outside the support).
        d: per-image dictionaries ``(K, M, H, W)``.
        h: scaled duals of the consensus problem ``(K, M, H, W)``.
        rho: consensus ADMM penalty; ``k``: its iteration count.
    """

    x: _CBState
    g: jax.Array
    d: jax.Array
    h: jax.Array
    rho: jax.Array
    k: jax.Array


class DictLearnHistory(NamedTuple):
    """Per-iteration record: objective, its data term and l1 term, and both rhos."""

    objective: jax.Array
    data_fidelity: jax.Array
    l1: jax.Array
    x_rho: jax.Array
    d_rho: jax.Array
    d_primal_residual: jax.Array
    d_dual_residual: jax.Array


def project_filters(filters: jax.Array, size: tuple[int, int], *, zero_mean: bool = False) -> jax.Array:
    """Project ``(M, H, W)`` filters on the grid onto ``C``: crop to ``size`` at the origin, unit norm.

    Zero-norm filters are left at zero (sporco ``Pcn``); ``zero_mean`` also removes each mean.
    """
    h, w = size
    mask = jnp.zeros(filters.shape[-2:], filters.dtype).at[:h, :w].set(1.0)
    x = filters * mask
    if zero_mean:
        x = (x - jnp.sum(x, axis=(-2, -1), keepdims=True) / (h * w)) * mask
    n = jnp.sqrt(jnp.sum(x * x, axis=(-2, -1), keepdims=True))
    return x / jnp.where(n == 0, 1.0, n)


def _crop(g: jax.Array, size: tuple[int, int]) -> jax.Array:
    # (M, H, W) on the grid -> (h, w, M) sporco layout.
    return jnp.transpose(g[:, : size[0], : size[1]], (1, 2, 0))


def init(
    d0: ArrayLike, images: ArrayLike, lmbda: float, *, rho_x: float | None = None, rho_d: float | None = None,
    zero_mean: bool = False,
) -> DictLearnState:
    """Initial state from filters ``d0 (h, w, M)`` and training images ``(K, H, W)``.

    The initial dictionary is projected onto ``C``; CBPDN starts at ``y = u = 0`` with
    ``rho_x = 50 lmbda + 1``; the consensus update at ``g = P_C(d0)`` with ``rho_d = 1`` (fixed)
    and ``h_k = g / rho_d`` (sporco's initialisation from ``Y0``).
    """
    s = jnp.asarray(images)
    d0 = jnp.asarray(d0, jnp.result_type(s.dtype, jnp.float32))
    k, hh, ww = s.shape
    h, w, m = d0.shape
    grid = jnp.pad(jnp.transpose(d0, (2, 0, 1)), ((0, 0), (0, hh - h), (0, ww - w)))
    g = project_filters(grid, (h, w), zero_mean=zero_mean)
    problem = _make_problem(_crop(g, (h, w)), jnp.transpose(s, (1, 2, 0)), lmbda)
    xs = _cb_init(problem, (hh, ww), rho=rho_x)
    rd = jnp.asarray(1.0 if rho_d is None else rho_d, g.dtype)
    d = jnp.broadcast_to(g, (k, m, hh, ww))
    return DictLearnState(x=xs, g=g, d=d, h=d / rd, rho=rd, k=jnp.asarray(0, jnp.int32))


def _dstep(st: DictLearnState, z: jax.Array, sf: jax.Array, size, relax: float, zero_mean: bool):
    """One consensus-ADMM iteration of the constrained dictionary update given codes ``z (K, M, H, W)``."""
    kk = z.shape[0]
    shape = z.shape[-2:]
    rho = st.rho
    zf = _rfft(z)  # (K, M, H, Wr)
    b = jnp.conj(zf) * sf[:, None] + rho * _rfft(st.g[None] - st.h)
    zz = jnp.sum(jnp.real(zf * jnp.conj(zf)), axis=1, keepdims=True)
    zb = jnp.sum(zf * b, axis=1, keepdims=True)
    d = _irfft((b - jnp.conj(zf) * (zb / (rho + zz))) / rho, shape)
    ax = relax * d + (1.0 - relax) * st.g[None]
    g = project_filters(jnp.mean(ax + st.h, axis=0), size, zero_mean=zero_mean)
    h = st.h + ax - g[None]
    sqk = jnp.sqrt(jnp.asarray(kk, g.dtype))
    rn = jnp.maximum(_norm(d), sqk * _norm(g))
    rn = jnp.where(rn == 0, 1.0, rn)
    nu = _norm(h)
    sn = jnp.where(nu == 0, 1.0, nu)
    r = _norm(d - g[None]) / rn
    s = sqk * _norm(st.g - g) / sn
    # Fixed rho: sporco's consensus update has AutoRho disabled in dictionary learning.
    return st._replace(g=g, d=d, h=h, k=st.k + 1), r, s


def step(
    st: DictLearnState, images: jax.Array, lmbda: float, size: tuple[int, int], *, relax: float = 1.8,
    zero_mean: bool = False,
) -> tuple[DictLearnState, DictLearnHistory]:
    """One outer iteration: one CBPDN ADMM iteration, then one dictionary ADMM iteration."""
    s_hwk = jnp.transpose(images, (1, 2, 0))
    problem = _make_problem(_crop(st.g, size), s_hwk, lmbda)
    xs = _cb_step(st.x, problem, opts=_X_OPTS._replace(relax=relax))
    obj, dfd, l1 = _objective(problem, xs.x)
    st = st._replace(x=xs)
    st, r, s = _dstep(st, _cb_coefficients(xs, problem, opts=_X_OPTS), problem.sf, size, relax, zero_mean)
    hist = DictLearnHistory(
        objective=obj, data_fidelity=dfd, l1=l1, x_rho=xs.rho, d_rho=st.rho, d_primal_residual=r, d_dual_residual=s
    )
    return st, hist


@functools.partial(jax.jit, static_argnames=("num_iter", "size", "relax", "zero_mean"))
def learn(
    st: DictLearnState, images: jax.Array, lmbda: float, *, num_iter: int, size: tuple[int, int],
    relax: float = 1.8, zero_mean: bool = False,
) -> tuple[DictLearnState, DictLearnHistory]:
    """Run ``num_iter`` outer iterations on ``lax.scan``; returns the final state and the history."""

    def body(carry, _):
        return step(carry, images, lmbda, size, relax=relax, zero_mean=zero_mean)

    return jax.lax.scan(body, st, None, length=num_iter)


def learn_dictionary(
    key: jax.Array,
    images: ArrayLike,
    *,
    num_filters: int = 32,
    filter_size: int = 8,
    lmbda: float = 0.1,
    num_iter: int = 200,
    d0: ArrayLike | None = None,
    zero_mean: bool = False,
) -> tuple[jax.Array, DictLearnHistory]:
    """Learn a convolutional dictionary from training images (usually high-pass layers).

    Args:
        key: PRNG key for the random Gaussian initial filters (unused when ``d0`` is given).
        images: ``(K, H, W)`` training images (e.g. :func:`jfusion.sparse.tikhonov_split` details).
        num_filters, filter_size: dictionary shape ``(filter_size, filter_size, num_filters)``.
        lmbda: l1 weight of the coefficient problem.
        num_iter: outer iterations (each one CBPDN and one dictionary ADMM iteration).
        d0: optional initial filters ``(h, w, M)``.
        zero_mean: constrain filters to zero mean as well.

    Returns:
        ``(dictionary, history)``: unit-norm filters ``(h, w, M)`` and the per-iteration
        :class:`DictLearnHistory` (objective decreasing overall).
    """
    s = jnp.asarray(images)
    if s.ndim != 3:
        raise ValueError(f"images must be (K, H, W), got {s.shape}")
    if d0 is None:
        d0 = jax.random.normal(key, (filter_size, filter_size, num_filters), s.dtype)
    d0 = jnp.asarray(d0, s.dtype)
    size = (int(d0.shape[0]), int(d0.shape[1]))
    st = init(d0, s, lmbda, zero_mean=zero_mean)
    st, hist = learn(st, s, lmbda, num_iter=int(num_iter), size=size, zero_mean=bool(zero_mean))
    return _crop(st.g, size), hist
