"""ADMM convolutional basis pursuit denoising (Wohlberg, IEEE TIP 25(1), 2016) in the DFT domain.

Problem (one image, ``C`` channels, ``M`` filters)::

    min_x  1/2 || sum_m d_m * x_m - s ||_2^2  +  lmbda * sum_m || w_m . x_m ||_1

with circular convolution on the signal grid, filters zero-padded at the origin (top-left),
exactly as ``sporco.admm.cbpdn.ConvBPDN`` and the MATLAB ``cbpdn``. Split ``x = y`` with the
scaled dual ``u``; one iteration is

1. x-step: ``(D^H D + rho I) x = D^H s + rho (y - u)``, per frequency a rank-one (single-channel
   dictionary, Sherman-Morrison) or rank-``C`` (multi-channel dictionary, iterated
   Sherman-Morrison) update of ``rho I``;
2. over-relaxation ``x_r = relax * x + (1 - relax) * y``;
3. y-step: soft threshold ``y = S_{lmbda w / rho}(x_r + u)`` (clamped at 0 with ``nonneg``);
4. u-step: ``u += x_r - y``;
5. normalised residuals ``r = |x - y| / max(|x|, |y|)``, ``s = |y - y_prev| / |u|``;
6. residual balancing of ``rho`` (Wohlberg 2015) with the dual rescaled by the same factor.

Implementation for speed (the FFTs are the floor; everything else is memory passes): the state
carries ``v = x_r + u`` instead of ``(y, u)`` (both are element-wise functions of ``v``, see
:class:`State`), the x-step is written as ``x = z + conj(d) (s - d^T z) / (rho + |d|^2)`` so
``D^H s`` is never read, the sum over filters is a fused slice tree, and the residual norms are
skipped when nothing reads them. One iteration is then five fused passes around the two FFTs.
The maps are transformed in ``Options.fft_groups`` independent FFT calls (on a CPU one per map
by default: a one-map transform stays in cache, and XLA runs the calls on all cores); the groups
meet only in the filter sum, and :func:`solve` carries them separately through its loop.

The solver has the optax shape: :func:`init` builds the state, :func:`step` advances it,
:func:`solve` drives it with ``lax.while_loop`` (relative-tolerance stop, at most
``max_iter``) and :func:`solve_scan` with a fixed-count ``lax.scan`` that ``jax.grad`` goes
through. Internally coefficient maps are laid out ``(Cx, M, H, W)`` (FFT axes last);
:func:`cbpdn` is the public entry point with sporco's layout.

Shapes:
    dictionary ``(h, w, M)`` (single channel) or ``(h, w, C, M)`` (multi-channel);
    signal ``(H, W)`` or ``(H, W, C)``;
    coefficients ``(H, W, M)``; ``(H, W, C, M)`` for a multi-channel signal coded with a
    single-channel dictionary (one map set per channel, one shared rho, as sporco does).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError, is_traced

__all__ = [
    "Problem",
    "State",
    "Stats",
    "Options",
    "make_problem",
    "init",
    "step",
    "solve",
    "solve_scan",
    "objective",
    "reconstruct",
    "cbpdn",
    "cbpdn_scan",
    "soft_threshold",
    "default_fft_groups",
    "coefficients",
    "dual",
    "encode",
    "synthesize",
]


class Problem(NamedTuple):
    """One CBPDN problem in the DFT domain (arrays only, so it vmaps).

    Attributes:
        df: dictionary DFT ``(Cd, M, H, W//2+1)`` complex, filters zero-padded at the origin.
        sf: signal DFT ``(C, H, W//2+1)`` complex.
        dsf: ``D^H s`` in the DFT domain, ``(Cx, M, H, W//2+1)``; ``Cx = C`` when ``Cd == 1``
            (channels coded independently), ``Cx = 1`` for a multi-channel dictionary.
        lmbda: the l1 weight, a scalar.
        weight: l1 weights broadcastable to ``(Cx, M, H, W)``.
    """

    df: jax.Array
    sf: jax.Array
    dsf: jax.Array
    lmbda: jax.Array
    weight: jax.Array


class State(NamedTuple):
    """ADMM iterate, kept in the form that costs the fewest memory passes per iteration.

    Attributes:
        x: the last x-step solution ``(Cx, M, H, W)``.
        v: ``x_r + u`` before the y-step ``(Cx, M, H, W)``; the split variable and the scaled dual
            are functions of it: ``y = prox(v)`` with threshold ``lmbda w / rho_v`` and
            ``u = (v - y) rho_v / rho`` (see :func:`coefficients` and :func:`dual`). Carrying
            ``v`` instead of ``(y, u)`` halves the element-wise traffic of an iteration, and the
            dual rescaling of a rho update is applied lazily through ``rho_v``.
        rho: the current penalty.
        rho_v: the penalty at which ``v`` was formed (``rho`` before the last update).
        k: iterations done; ``r``, ``s``: the last normalised primal and dual residuals.
    """

    x: jax.Array
    v: jax.Array
    rho: jax.Array
    rho_v: jax.Array
    k: jax.Array
    r: jax.Array
    s: jax.Array


class Stats(NamedTuple):
    """What a solve reports: iterations run, objective at ``x``, final residuals and rho."""

    iterations: jax.Array
    objective: jax.Array
    data_fidelity: jax.Array
    l1: jax.Array
    primal_residual: jax.Array
    dual_residual: jax.Array
    rho: jax.Array


class Options(NamedTuple):
    """Static (hashable) ADMM settings; defaults are sporco ``ConvBPDN``'s.

    Attributes:
        relax: over-relaxation parameter alpha (``RelaxParam``).
        auto_rho: residual balancing on/off (``AutoRho.Enabled``).
        rho_period: iterations between rho updates (``AutoRho.Period``).
        rho_ratio: mu, the residual ratio that triggers an update (``AutoRho.RsdlRatio``).
        rho_scaling: tau_max, the largest multiplier (``AutoRho.Scaling``; 1000 in Python
            sporco, 100 in MATLAB SPORCO's ``cbpdn.m``).
        auto_scaling: multiplier sqrt(r / (s xi)) capped at ``rho_scaling`` instead of fixed.
        rho_target: xi, the target ratio; ``None`` -> ``1 + 18.3 ** (log10(lmbda) + 1)``.
        nonneg: clamp coefficients at zero (``NonNegCoef``).
        tol: relative stopping tolerance (``RelStopTol``; ``AbsStopTol`` = 0).
        fft_groups: split the ``M`` coefficient maps into this many groups, each transformed by
            its own FFT call (an implementation choice; the iterates are the same). ``None``
            picks :func:`default_fft_groups`. On a CPU, XLA runs the independent groups
            concurrently on its thread pool, and a smaller batch per FFT call stays in cache.
            Multi-channel dictionaries always use one group.
    """

    relax: float = 1.8
    auto_rho: bool = True
    rho_period: int = 1
    rho_ratio: float = 1.2
    rho_scaling: float = 1000.0
    auto_scaling: bool = True
    rho_target: float | None = None
    nonneg: bool = False
    tol: float = 1e-3
    fft_groups: int | None = None


def default_fft_groups(num_filters: int, *, backend: str | None = None) -> int:
    """Number of FFT groups :func:`solve` uses when ``Options.fft_groups`` is ``None``.

    On the CPU backend one group per map (at most 32 groups): on the 2-core development machine
    this cut the wall time of a 32-filter solve by 40-54 % at 256^2 and 512^2, and its CPU time by
    21 % at 512^2 (unchanged at 256^2), against one batched FFT over all maps: a one-map
    transform stays in the core's L2 cache, and XLA runs independent calls on both cores
    (``benchmarks/speed_csc.py --sweep``).
    On other backends one group: an accelerator prefers one large batched FFT.
    """
    backend = jax.default_backend() if backend is None else backend
    return max(1, min(num_filters, 32)) if backend == "cpu" else 1


def _group_slices(m: int, groups: int) -> tuple[slice, ...]:
    """``groups`` contiguous slices of ``range(m)`` with sizes differing by at most one."""
    groups = max(1, min(int(groups), m))
    q, r = divmod(m, groups)
    edges = [0]
    for g in range(groups):
        edges.append(edges[-1] + q + (1 if g < r else 0))
    return tuple(slice(a, b) for a, b in zip(edges[:-1], edges[1:]))


def soft_threshold(v: jax.Array, t: jax.Array) -> jax.Array:
    """Proximal operator of ``t * |.|_1``: ``sign(v) * max(|v| - t, 0)``."""
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - t, 0.0)


def _norm(v: jax.Array) -> jax.Array:
    """l2 norm with a finite gradient at 0 (the initial y and u are exactly zero)."""
    return _sqrt0(jnp.sum(v * v))


def _rfft(x: jax.Array) -> jax.Array:
    return jnp.fft.rfft2(x, axes=(-2, -1))


def _irfft(xf: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return jnp.fft.irfft2(xf, s=shape, axes=(-2, -1))


def make_problem(dictionary: ArrayLike, signal: ArrayLike, lmbda: ArrayLike, *, weight: ArrayLike | None = None) -> Problem:
    """Build the DFT-domain problem from sporco-layout arrays.

    Args:
        dictionary: ``(h, w, M)`` or ``(h, w, Cd, M)`` filters.
        signal: ``(H, W)`` or ``(H, W, C)``; ``H >= h``, ``W >= w``.
        lmbda: l1 regularisation weight (scalar).
        weight: optional l1 weights, broadcastable to the sporco coefficient layout
            (``(H, W, M)``/``(M,)``, or ``(H, W, C, M)`` for a multi-channel signal).

    Returns:
        A :class:`Problem` (dtype of the promoted inputs, float32 unless x64 is on).
    """
    d = jnp.asarray(dictionary)
    s = jnp.asarray(signal)
    dtype = jnp.result_type(d.dtype, s.dtype, jnp.float32)
    d = d.astype(dtype)
    s = s.astype(dtype)
    if d.ndim == 3:
        d = d[:, :, None, :]
    if s.ndim == 2:
        s = s[:, :, None]
    h, w, cd, m = d.shape
    hh, ww, c = s.shape
    if cd not in (1, c):
        raise ValueError(f"dictionary has {cd} channels but the signal has {c}")
    # (Cd, M, h, w) zero-padded at the origin to (H, W).
    dk = jnp.transpose(d, (2, 3, 0, 1))
    dk = jnp.pad(dk, ((0, 0), (0, 0), (0, hh - h), (0, ww - w)))
    df = _rfft(dk)
    sf = _rfft(jnp.transpose(s, (2, 0, 1)))
    if cd == 1:
        dsf = jnp.conj(df) * sf[:, None]  # (C, M, H, Wr)
    else:
        dsf = jnp.sum(jnp.conj(df) * sf[:, None], axis=0, keepdims=True)  # (1, M, H, Wr)
    if weight is None:
        wt = jnp.ones((), dtype)
    else:
        wt = jnp.asarray(weight, dtype)
        # sporco layout (..., [C,] M) -> (Cx, M, H, W) broadcastable.
        if wt.ndim == 1:
            wt = wt[None, :, None, None]
        elif wt.ndim == 3:
            wt = jnp.transpose(wt, (2, 0, 1))[None]
        elif wt.ndim == 4:
            wt = jnp.transpose(wt, (2, 3, 0, 1))
    return Problem(df=df, sf=sf, dsf=dsf, lmbda=jnp.asarray(lmbda, dtype), weight=wt)


def _sum_filters(p: jax.Array) -> jax.Array:
    """``sum`` over the filter axis 1 of ``(Cx, M, H, Wr)`` as a halving tree of slice additions.

    XLA:CPU fuses the slices into one element-wise loop over ``(H, Wr)``, about four times faster
    than its reduction over a non-minor axis; ``log2 M`` static levels keep the program small.
    """
    while p.shape[1] > 1:
        n = p.shape[1]
        h = n // 2
        q = p[:, :h] + p[:, h : 2 * h]
        p = jnp.concatenate([q, p[:, 2 * h :]], axis=1) if n % 2 else q
    return p[:, 0]


def _xstep_multichannel_f(problem: Problem, zf: jax.Array, rho: jax.Array) -> jax.Array:
    """Solve ``(D^H D + rho I) x = D^H s + rho z`` per frequency for a multi-channel dictionary.

    Iterated Sherman-Morrison over the C rank-one terms ``a_c = conj(d_c)``:
    ``A_k^{-1} v = A_{k-1}^{-1} v - z_k (z_k^H v) / delta_k``, ``z_k = A_{k-1}^{-1} a_k``,
    ``delta_k = 1 + a_k^H z_k``, ``A_0 = rho I``. C is small and static: a Python loop over it.
    ``zf`` is ``(1, M, H, Wr)``.
    """
    bf = problem.dsf + rho * zf
    a = jnp.conj(problem.df)  # (C, M, H, Wr)
    zs, deltas = [], []
    for k in range(a.shape[0]):
        z = a[k] / rho
        for zl, dl in zip(zs, deltas):
            z = z - zl * (jnp.sum(jnp.conj(zl) * a[k], axis=0) / dl)
        deltas.append(1.0 + jnp.sum(jnp.conj(a[k]) * z, axis=0))
        zs.append(z)
    x = bf[0] / rho
    for zl, dl in zip(zs, deltas):
        x = x - zl * (jnp.sum(jnp.conj(zl) * bf[0], axis=0) / dl)
    return x[None]


def _prox(v: jax.Array, t: jax.Array, nonneg: bool) -> jax.Array:
    if nonneg:
        return jnp.maximum(v - t, 0.0)
    return soft_threshold(v, t)


def _split(v: jax.Array, rho_v: jax.Array, rho: jax.Array, problem: Problem, opts: Options, weight=None):
    """``(y, u)`` from the carried ``v`` (element-wise; XLA fuses it into its consumers).

    ``weight`` overrides ``problem.weight`` (the slice of it that belongs to a group of maps).
    """
    weight = problem.weight if weight is None else weight
    y = _prox(v, (problem.lmbda / rho_v) * weight, opts.nonneg)
    return y, (v - y) * (rho_v / rho)




def coefficients(state: State, problem: Problem, *, opts: Options = Options()) -> jax.Array:
    """The split variable ``y`` (the sparse coefficient maps) of a state, ``(Cx, M, H, W)``."""
    return _prox(state.v, (problem.lmbda / state.rho_v) * problem.weight, opts.nonneg)


def dual(state: State, problem: Problem, *, opts: Options = Options()) -> jax.Array:
    """The scaled dual ``u`` of a state (for penalty ``state.rho``), ``(Cx, M, H, W)``."""
    return _split(state.v, state.rho_v, state.rho, problem, opts)[1]


def init(problem: Problem, spatial_shape: tuple[int, int], *, rho: ArrayLike | None = None) -> State:
    """Initial state: ``y = u = 0`` (``v = 0``), ``rho`` given or sporco's default ``50 lmbda + 1``."""
    cx, m = problem.dsf.shape[:2]
    dtype = problem.lmbda.dtype
    z = jnp.zeros((cx, m) + tuple(spatial_shape), dtype)
    rho0 = (50.0 * problem.lmbda + 1.0 if rho is None else jnp.asarray(rho, dtype)).astype(dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    return State(x=z, v=z, rho=rho0, rho_v=rho0, k=jnp.asarray(0, jnp.int32), r=inf, s=inf)


def _xi(problem: Problem, opts: Options) -> jax.Array:
    if opts.rho_target is not None:
        return jnp.asarray(opts.rho_target, problem.lmbda.dtype)
    lm = problem.lmbda
    return jnp.where(lm != 0, 1.0 + 18.3 ** (jnp.log10(jnp.where(lm != 0, lm, 1.0)) + 1.0), 1.0)


def _needs_residuals(opts: Options) -> bool:
    return opts.auto_rho or opts.tol > 0


def _num_groups(problem: Problem, opts: Options) -> int:
    if problem.df.shape[0] != 1:  # multi-channel dictionary: the x-step couples all maps
        return 1
    m = problem.df.shape[1]
    g = default_fft_groups(m) if opts.fft_groups is None else int(opts.fft_groups)
    return max(1, min(g, m))


def _group_weight(weight: jax.Array, sl: slice) -> jax.Array:
    return weight[:, sl] if weight.ndim == 4 and weight.shape[1] != 1 else weight


def _xstep_inputs(vs, rho_v, rho, problem: Problem, opts: Options, slices: tuple[slice, ...]) -> tuple[jax.Array, ...]:
    """``z = y - u`` per map group, the x-step's right-hand side in the spatial domain, from the carried ``v``."""
    out = []
    for v, sl in zip(vs, slices):
        y, u = _split(v, rho_v, rho, problem, opts, _group_weight(problem.weight, sl))
        out.append(y - u)
    return tuple(out)


def _to_groups(state: State, slices: tuple[slice, ...]) -> State:
    """The state with ``x`` and ``v`` as tuples of map groups (the loop carry of :func:`solve`)."""
    if len(slices) == 1:
        return state._replace(x=(state.x,), v=(state.v,))
    return state._replace(x=tuple(state.x[:, sl] for sl in slices), v=tuple(state.v[:, sl] for sl in slices))


def _from_groups(gs: State) -> State:
    def cat(t):
        return t[0] if len(t) == 1 else jnp.concatenate(t, axis=1)

    return gs._replace(x=cat(gs.x), v=cat(gs.v))


def _sqrt0(ss: jax.Array) -> jax.Array:
    # sqrt with a finite gradient at 0 (the initial y and u are exactly zero).
    pos = ss > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, ss, 1.0)), 0.0)


def _filter_power(problem: Problem) -> jax.Array:
    """``sum_m |d_m|^2`` per frequency ``(H, Wr)`` (single-channel dictionary)."""
    d = problem.df[0]
    return jnp.sum(jnp.real(d * jnp.conj(d)), axis=0)


def _grouped_step(
    gs: State,
    problem: Problem,
    opts: Options,
    slices: tuple[slice, ...],
    residuals: bool,
    dd: jax.Array | None = None,
    zs: tuple[jax.Array, ...] | None = None,
    next_z: bool = False,
) -> tuple[State, tuple[jax.Array, ...] | None]:
    """:func:`step` on a grouped state (``x``, ``v`` tuples of ``(Cx, M_g, H, W)`` map groups).

    Each group has its own forward and inverse FFT call; the groups meet only in the filter sum
    of the Sherman-Morrison x-step, ``c = (s - sum_m d_m z_m) / (rho + dd)``, ``dd`` from
    :func:`_filter_power` (computed here when not given; :func:`solve` passes it in once).

    ``zs`` are the x-step inputs ``z = y - u`` of this iteration when the caller has them (else
    they are computed from ``v``). With ``next_z`` the step also returns the next iteration's
    ``z``, computed right after the new ``v`` while that group is still in cache (instead of at
    the start of the next iteration, after every other group has passed through the cache);
    when the residual balancing changes rho, ``z`` is recomputed for the new rho under
    ``lax.cond``. Returns ``(state, next z or None)``.
    """
    shape = gs.v[0].shape[-2:]
    rho, rho_v = gs.rho, gs.rho_v
    ws = [_group_weight(problem.weight, sl) for sl in slices]
    if zs is None:
        zs = _xstep_inputs(gs.v, rho_v, rho, problem, opts, slices)
    zfs = [_rfft(z) for z in zs]
    if problem.df.shape[0] == 1:
        # Sherman-Morrison, written so that D^H s is never formed:
        # x = z + conj(d) (s - d^T z) / (rho + |d|^2).
        d = problem.df[0]
        dd = _filter_power(problem) if dd is None else dd
        dgs = [d[sl] for sl in slices]
        acc = _sum_filters(dgs[0] * zfs[0])
        for dg, zf in zip(dgs[1:], zfs[1:]):
            acc = acc + _sum_filters(dg * zf)
        c = ((problem.sf - acc) / (rho + dd))[:, None]  # (Cx, 1, H, Wr)
        xfs = [zf + jnp.conj(dg) * c for dg, zf in zip(dgs, zfs)]
    else:
        xfs = [_xstep_multichannel_f(problem, zfs[0], rho)]
    xs, vs, ybs = [], [], []
    for xf, v, w in zip(xfs, gs.v, ws):
        x = _irfft(xf, shape)
        # A barrier between the two uses of v stops XLA from sharing (and so materialising) y
        # and u: each consumer recomputes them from v inside its own fused loop, which is cheaper.
        yb, ub = _split(jax.lax.optimization_barrier(v), rho_v, rho, problem, opts, w)
        xr = opts.relax * x + (1.0 - opts.relax) * yb if opts.relax != 1.0 else x
        xs.append(x)
        vs.append(xr + ub)
        ybs.append(yb)
    k = gs.k + 1
    zn = _xstep_inputs(vs, rho, rho, problem, opts, slices) if next_z else None
    if not residuals:
        return State(x=tuple(xs), v=tuple(vs), rho=rho, rho_v=rho, k=k, r=gs.r, s=gs.s), zn
    sx = sy = su = sr = ss = 0.0
    for x, v, yb, w in zip(xs, vs, ybs, ws):
        yn = _prox(v, (problem.lmbda / rho) * w, opts.nonneg)
        sx, sy, su = sx + jnp.sum(x * x), sy + jnp.sum(yn * yn), su + jnp.sum((v - yn) ** 2)
        sr, ss = sr + jnp.sum((x - yn) ** 2), ss + jnp.sum((yb - yn) ** 2)
    rn = jnp.maximum(_sqrt0(sx), _sqrt0(sy))
    rn = jnp.where(rn == 0, 1.0, rn)
    nu = _sqrt0(su)
    sn = jnp.where(nu == 0, 1.0, nu)
    r = _sqrt0(sr) / rn
    s = _sqrt0(ss) / sn  # rho |dy| / (rho |u|)
    rho_new = _update_rho(gs.k, r, s, rho, problem, opts)
    if next_z and opts.auto_rho:
        zn = jax.lax.cond(rho_new == rho, lambda: zn, lambda: _xstep_inputs(vs, rho, rho_new, problem, opts, slices))
    return State(x=tuple(xs), v=tuple(vs), rho=rho_new, rho_v=rho, k=k, r=r, s=s), zn


def step(state: State, problem: Problem, *, opts: Options = Options(), residuals: bool = True) -> State:
    """One ADMM iteration (x, relax, y, u, residuals, rho update).

    Args:
        state, problem, opts: as returned by :func:`init` / :func:`make_problem`.
        residuals: compute the normalised residuals (five reductions over the maps). Only a
            solve that neither adapts rho nor tests a tolerance may skip them; the state's
            ``r`` and ``s`` are then left unchanged.

    Per iteration and group of maps (``Options.fft_groups``) the program is: one fused pass
    ``v -> y - u``, the forward FFT, the filter sum and the Sherman-Morrison update (two fused
    frequency-domain passes), the inverse FFT, one fused pass ``(x, v) -> v_new`` (+ the
    residual reductions when asked). With more than one group a lone call splits and joins the
    maps (two extra copies); :func:`solve` carries the groups through its loop instead.
    """
    slices = _group_slices(state.v.shape[1], _num_groups(problem, opts))
    gs, _ = _grouped_step(_to_groups(state, slices), problem, opts, slices, residuals)
    return _from_groups(gs)


def _update_rho(k, r, s, rho, problem: Problem, opts: Options):
    """Residual balancing; the dual's rescaling by ``1/factor`` happens lazily (``State.rho_v``)."""
    if not opts.auto_rho:
        return rho
    r = jax.lax.stop_gradient(r)
    s = jax.lax.stop_gradient(s)
    xi = _xi(problem, opts)
    mu, tau_max = opts.rho_ratio, opts.rho_scaling
    if opts.auto_scaling:
        safe = (r > 0) & (s > 0)
        rs = jnp.where(safe, r, 1.0)
        ss = jnp.where(safe, s, 1.0)
        tau = jnp.sqrt(jnp.where(rs > ss * xi, rs / (ss * xi), (ss * xi) / rs))
        tau = jnp.where(safe, jnp.minimum(tau, tau_max), tau_max)
    else:
        tau = jnp.asarray(tau_max, rho.dtype)
    active = (k != 0) & (jnp.mod(k + 1, opts.rho_period) == 0)
    rsf = jnp.where(r > xi * mu * s, tau, jnp.where(s > (mu / xi) * r, 1.0 / tau, 1.0))
    rsf = jnp.where(active, rsf, 1.0).astype(rho.dtype)
    return rho * rsf


def reconstruct(problem: Problem, coef: jax.Array) -> jax.Array:
    """``sum_m d_m * x_m`` (circular, origin-anchored) for internal-layout ``coef (Cx, M, H, W)``.

    Returns ``(C, H, W)``.
    """
    shape = coef.shape[-2:]
    xf = _rfft(coef)
    df = problem.df
    if df.shape[0] == 1:
        sf = jnp.sum(df[0] * xf, axis=1)  # (Cx, H, Wr)
    else:
        sf = jnp.sum(df * xf, axis=1)  # (C, H, Wr)
    return _irfft(sf, shape)


def objective(problem: Problem, coef: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(objective, data fidelity, l1 term)`` at internal-layout ``coef``."""
    shape = coef.shape[-2:]
    s = _irfft(problem.sf, shape)
    e = reconstruct(problem, coef) - s
    dfd = 0.5 * jnp.sum(e * e)
    l1 = jnp.sum(jnp.abs(problem.weight * coef))
    return dfd + problem.lmbda * l1, dfd, l1


def _stats(problem: Problem, st: State, opts: Options = Options()) -> Stats:
    obj, dfd, l1 = objective(problem, st.x)
    return Stats(
        iterations=st.k, objective=obj, data_fidelity=dfd, l1=l1, primal_residual=st.r, dual_residual=st.s, rho=st.rho
    )


def solve(problem: Problem, state: State, *, max_iter: int, opts: Options = Options()) -> tuple[State, Stats]:
    """Iterate :func:`step` on ``lax.while_loop`` until ``r < tol and s < tol`` or ``max_iter``.

    When neither rho adaptation nor a tolerance needs them (``auto_rho=False, tol=0``), the
    residuals are computed in the last iteration only (for the stats).
    """
    k0 = state.k
    slices = _group_slices(state.v.shape[1], _num_groups(problem, opts))
    gs = _to_groups(state, slices)
    # Loop-invariant: computed once here (XLA does not hoist it out of the loop by itself).
    dd = _filter_power(problem) if problem.df.shape[0] == 1 else None
    # The loop carries each iteration's x-step input z = y - u next to the state, so that it is
    # formed right after v, while v is in cache (see _grouped_step).
    zs = _xstep_inputs(gs.v, gs.rho_v, gs.rho, problem, opts, slices)

    def body(carry, residuals: bool = True, next_z: bool = True):
        return _grouped_step(carry[0], problem, opts, slices, residuals, dd, carry[1], next_z)

    if not _needs_residuals(opts):
        carry = (gs, zs)
        if max_iter > 1:
            carry = jax.lax.fori_loop(0, max_iter - 1, lambda _, c: body(c, False), carry)
        final = _from_groups(body(carry, True, False)[0] if max_iter > 0 else carry[0])
        return final, _stats(problem, final, opts)

    def cond(carry):
        st = carry[0]
        return (st.k - k0 < max_iter) & ~((st.r < opts.tol) & (st.s < opts.tol))

    final = _from_groups(jax.lax.while_loop(cond, body, (gs, zs))[0])
    return final, _stats(problem, final, opts)


def solve_scan(
    problem: Problem, state: State, *, num_iter: int, opts: Options = Options()
) -> tuple[State, Stats, Stats]:
    """Exactly ``num_iter`` iterations on ``lax.scan`` (differentiable); also returns the history.

    Returns:
        ``(final_state, final_stats, history)``, ``history`` a :class:`Stats` of ``(num_iter,)``
        arrays (objective at each iterate ``x``).
    """

    def body(st: State, _):
        st = step(st, problem, opts=opts)
        return st, _stats(problem, st, opts)

    final, hist = jax.lax.scan(body, state, None, length=num_iter)
    return final, _stats(problem, final, opts), hist


def _to_sporco_layout(coef: jax.Array, multichannel_dict: bool, signal_ndim: int) -> jax.Array:
    # (Cx, M, H, W) -> (H, W, M) or (H, W, C, M).
    if multichannel_dict or signal_ndim == 2:
        return jnp.transpose(coef[0], (1, 2, 0))
    return jnp.transpose(coef, (2, 3, 0, 1))


def _options(
    relax, auto_rho, tol, nonneg, rho_period, rho_ratio, rho_scaling, auto_scaling, rho_target, fft_groups=None
) -> Options:
    return Options(
        relax=float(relax),
        auto_rho=bool(auto_rho),
        rho_period=int(rho_period),
        rho_ratio=float(rho_ratio),
        rho_scaling=float(rho_scaling),
        auto_scaling=bool(auto_scaling),
        rho_target=None if rho_target is None else float(rho_target),
        nonneg=bool(nonneg),
        tol=float(tol),
        fft_groups=None if fft_groups is None else int(fft_groups),
    )


@functools.partial(jax.jit, static_argnames=("max_iter", "opts"))
def _cbpdn_jit(dictionary, signal, lmbda, rho, weight, *, max_iter: int, opts: Options):
    problem = make_problem(dictionary, signal, lmbda, weight=weight)
    st = init(problem, signal.shape[:2], rho=rho)
    final, stats = solve(problem, st, max_iter=max_iter, opts=opts)
    return _to_sporco_layout(coefficients(final, problem, opts=opts), jnp.ndim(dictionary) == 4, signal.ndim), stats


@functools.partial(jax.jit, static_argnames=("num_iter", "opts"))
def _cbpdn_scan_jit(dictionary, signal, lmbda, rho, weight, *, num_iter: int, opts: Options):
    problem = make_problem(dictionary, signal, lmbda, weight=weight)
    st = init(problem, signal.shape[:2], rho=rho)
    final, stats, hist = solve_scan(problem, st, num_iter=num_iter, opts=opts)
    return _to_sporco_layout(coefficients(final, problem, opts=opts), jnp.ndim(dictionary) == 4, signal.ndim), stats, hist


def _check(dictionary, signal, fft_groups: int | None = None) -> None:
    """Eager argument checks of :func:`cbpdn` / :func:`cbpdn_scan`; skipped while tracing (``jit``/``vmap``/``grad``)."""
    if is_traced(dictionary, signal):
        return
    if fft_groups is not None and int(fft_groups) < 1:
        raise FusionInputError(f"fft_groups must be a positive integer or None, got {fft_groups}")
    d_shape, s_shape = jnp.shape(dictionary), jnp.shape(signal)
    d_nd, s_nd = len(d_shape), len(s_shape)
    if d_nd not in (3, 4) or s_nd not in (2, 3):
        raise FusionInputError(f"dictionary must be (h, w, M) or (h, w, C, M) and signal (H, W) or (H, W, C); "
                         f"got {d_shape} and {s_shape}")
    if d_nd == 4 and (s_nd != 3 or d_shape[2] != s_shape[2]):
        raise FusionInputError(f"a multi-channel dictionary {d_shape} needs a signal (H, W, C) with the same C, "
                               f"got {s_shape}")
    if d_shape[0] > s_shape[0] or d_shape[1] > s_shape[1]:
        raise FusionInputError(f"filters {d_shape[:2]} larger than the signal {s_shape[:2]}")


def cbpdn(
    dictionary: ArrayLike,
    signal: ArrayLike,
    lmbda: float,
    *,
    max_iter: int = 1000,
    rho: float | None = None,
    auto_rho: bool = True,
    relax: float = 1.8,
    tol: float = 1e-3,
    l1_weight: ArrayLike | None = None,
    nonneg: bool = False,
    rho_period: int = 1,
    rho_ratio: float = 1.2,
    rho_scaling: float = 1000.0,
    auto_scaling: bool = True,
    rho_target: float | None = None,
    fft_groups: int | None = None,
) -> tuple[jax.Array, Stats]:
    """Convolutional BPDN by ADMM, the sporco ``ConvBPDN`` algorithm (jitted, vmap-able).

    Called eagerly it checks its arguments (:class:`jfusion.FusionInputError`); inside
    ``jit``/``vmap``/``grad`` it assumes them valid and checks nothing.

    Args:
        dictionary: filters ``(h, w, M)`` or ``(h, w, C, M)`` (sporco layout).
        signal: ``(H, W)`` or ``(H, W, C)`` image (any real range; usually a high-pass layer).
        lmbda: l1 weight (> 0).
        max_iter: iteration bound (sporco ``MaxMainIter``).
        rho: initial penalty; ``None`` -> ``50 lmbda + 1`` (sporco).
        auto_rho: residual balancing of rho.
        relax: over-relaxation alpha.
        tol: relative stopping tolerance on both normalised residuals.
        l1_weight: optional l1 weights (``(M,)``, ``(H, W, M)`` or the full coefficient shape).
        nonneg: non-negative coefficients.
        rho_period, rho_ratio, rho_scaling, auto_scaling, rho_target: residual balancing
            settings (see :class:`Options`).
        fft_groups: FFT calls per transform of the maps (``None``: :func:`default_fft_groups`;
            a speed setting only, see :class:`Options`).

    Returns:
        ``(coef, stats)``: coefficient maps ``y`` of shape ``(H, W, M)`` (``(H, W, C, M)`` for a
        multi-channel signal with a single-channel dictionary) and a :class:`Stats` record.
    """
    _check(dictionary, signal, fft_groups)
    opts = _options(
        relax, auto_rho, tol, nonneg, rho_period, rho_ratio, rho_scaling, auto_scaling, rho_target, fft_groups
    )
    return _cbpdn_jit(dictionary, jnp.asarray(signal), lmbda, rho, l1_weight, max_iter=int(max_iter), opts=opts)


def cbpdn_scan(
    dictionary: ArrayLike,
    signal: ArrayLike,
    lmbda: float,
    *,
    num_iter: int,
    rho: float | None = None,
    auto_rho: bool = True,
    relax: float = 1.8,
    l1_weight: ArrayLike | None = None,
    nonneg: bool = False,
    rho_period: int = 1,
    rho_ratio: float = 1.2,
    rho_scaling: float = 1000.0,
    auto_scaling: bool = True,
    rho_target: float | None = None,
) -> tuple[jax.Array, Stats, Stats]:
    """Fixed-iteration CBPDN on ``lax.scan``: differentiable; returns ``(coef, stats, history)``.

    Same arguments as :func:`cbpdn` (no tolerance: exactly ``num_iter`` iterations). The rho
    adaptation is treated as a constant by ``grad`` (``stop_gradient`` on the residuals).
    """
    _check(dictionary, signal)
    opts = _options(relax, auto_rho, 0.0, nonneg, rho_period, rho_ratio, rho_scaling, auto_scaling, rho_target)
    return _cbpdn_scan_jit(dictionary, jnp.asarray(signal), lmbda, rho, l1_weight, num_iter=int(num_iter), opts=opts)


def encode(
    dictionary: ArrayLike,
    images: ArrayLike,
    lmbda: float,
    *,
    max_iter: int = 500,
    rho: float | None = None,
    opts: Options = Options(),
    batch: str | None = None,
) -> tuple[jax.Array, Stats]:
    """CBPDN of every image of a stack, maps in channel-first layout.

    Each image is an independent problem (its own rho and stopping point, as separate sporco
    calls would give); the dictionary's spectra are computed once for all of them. On the CPU
    backend the solves run one after the other (``lax.map``), elsewhere as one vmapped solve.
    Not jitted on its own: call it inside a jitted function.

    Args:
        dictionary: ``(h, w, M)`` single-channel filters.
        images: ``(..., H, W)`` stack (sources, bands, transform bands).
        lmbda, max_iter, rho, opts: as :func:`cbpdn` (``opts`` an :class:`Options`).
        batch: ``"map"`` (sequential solves), ``"vmap"`` (one batched solve) or ``None`` (``"map"``
            on the CPU backend, ``"vmap"`` elsewhere); the results agree to float32 rounding.

    Returns:
        ``(coef, stats)``: ``coef`` of shape ``(..., M, H, W)`` (coefficient maps ``y``) and
        per-image :class:`Stats` with leading shape ``(...)``.
    """
    images = jnp.asarray(images)
    lead = images.shape[:-2]
    flat = images.reshape((-1,) + images.shape[-2:])
    # the dictionary's spectra once for every image (each image only adds its own DFT)
    shared = make_problem(dictionary, flat[0], lmbda)

    def one(img):
        sf = _rfft(img.astype(shared.lmbda.dtype)[None])
        problem = shared._replace(sf=sf, dsf=jnp.conj(shared.df) * sf[:, None])
        final, stats = solve(problem, init(problem, img.shape, rho=rho), max_iter=max_iter, opts=opts)
        return coefficients(final, problem, opts=opts)[0], stats

    if batch is None:
        batch = "map" if jax.default_backend() == "cpu" else "vmap"
    if batch not in ("map", "vmap"):
        raise ValueError(f"batch must be 'map', 'vmap' or None, got {batch!r}")
    if batch == "map" and flat.shape[0] > 1:
        # one solve after the other: each keeps its own while loop (no batched-loop selects, a real
        # lax.cond for the rho update) and its per-map FFTs stay in cache (a vmapped call
        # transforms every image's map together)
        coef, stats = jax.lax.map(one, flat)
    else:
        coef, stats = jax.vmap(one)(flat)
    coef = coef.reshape(lead + coef.shape[1:])
    stats = jax.tree_util.tree_map(lambda a: a.reshape(lead), stats)
    return coef, stats


def synthesize(dictionary: ArrayLike, coef: ArrayLike) -> jax.Array:
    """``sum_m d_m * x_m`` for channel-first maps ``coef (..., M, H, W)`` -> ``(..., H, W)``.

    Circular convolution on the coefficient grid with the ``(h, w, M)`` filters zero-padded at
    the origin (the reference convention of CSR fusion and sporco's ``reconstruct``).
    """
    coef = jnp.asarray(coef)
    d = jnp.asarray(dictionary, coef.dtype)
    hh, ww = coef.shape[-2:]
    h, w, _ = d.shape
    dk = jnp.pad(jnp.transpose(d, (2, 0, 1)), ((0, 0), (0, hh - h), (0, ww - w)))
    sf = jnp.sum(_rfft(dk) * _rfft(coef), axis=-3)
    return _irfft(sf, (hh, ww))
