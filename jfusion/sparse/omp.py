"""Orthogonal matching pursuit (OMP) with an incremental Cholesky factor, vmap-able over signals.

Greedy: pick the atom most correlated with the residual, re-fit all chosen atoms by least
squares (Cholesky factor of their Gram matrix grown by one row per step), repeat until the
squared residual norm is ``<= tol`` or ``max_atoms`` atoms are chosen. Static shapes: the
loop always runs ``max_atoms`` steps on ``lax.fori_loop``; finished signals stop changing
(masked), so ``vmap`` over millions of patches compiles once. Semantics follow
``sklearn.linear_model.orthogonal_mp`` (``tol`` = squared residual norm; stop early on linear
dependence).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.ops.precision import dot, matmul

__all__ = ["omp", "omp_batch"]


class _OMPState(NamedTuple):
    chol: jax.Array  # (T, T) lower-triangular, identity beyond the active size
    idx: jax.Array  # (T,) chosen atoms (0 where unused)
    rhs: jax.Array  # (T,) D_S^T x
    coef: jax.Array  # (T,) least-squares coefficients on the support
    resid: jax.Array  # (n,)
    n_active: jax.Array
    done: jax.Array


def _step(t, st: _OMPState, dictionary, x, gram_diag, tol):
    corr = matmul(dictionary.T, st.resid)
    j = jnp.argmax(jnp.abs(corr))
    d_j = dictionary[:, j]
    # new row of the Cholesky factor: L w = D_S^T d_j (zeros beyond t keep the identity block inert)
    active = jnp.arange(st.idx.shape[0]) < t
    v = jnp.where(active, matmul(dictionary[:, st.idx].T, d_j), 0.0)
    w = jax.scipy.linalg.solve_triangular(st.chol, v, lower=True)
    diag2 = gram_diag[j] - dot(w, w)
    dependent = (diag2 <= jnp.finfo(x.dtype).eps * gram_diag[j]) | jnp.any(active & (st.idx == j))
    stop = st.done | dependent
    diag = jnp.sqrt(jnp.where(dependent, 1.0, diag2))
    chol = st.chol.at[t, :].set(jnp.where(active, w, 0.0)).at[t, t].set(diag)
    idx = st.idx.at[t].set(j.astype(jnp.int32))
    rhs = st.rhs.at[t].set(dot(d_j, x))
    act1 = jnp.arange(st.idx.shape[0]) <= t
    rhs_m = jnp.where(act1, rhs, 0.0)
    y = jax.scipy.linalg.solve_triangular(chol, rhs_m, lower=True)
    coef = jnp.where(act1, jax.scipy.linalg.solve_triangular(chol.T, y, lower=False), 0.0)
    resid = x - matmul(dictionary[:, idx], coef)
    new = _OMPState(chol, idx, rhs, coef, resid, st.n_active + 1, dot(resid, resid) <= tol)
    return jax.tree_util.tree_map(lambda a, b: jnp.where(stop, a, b), st, new)


def omp(dictionary: ArrayLike, x: ArrayLike, *, max_atoms: int, tol: float | None = None) -> jax.Array:
    """Sparse code of one signal ``x (n,)`` over ``dictionary (n, K)`` -> ``(K,)``.

    Args:
        dictionary: ``(n, K)`` atoms as columns (unit norm is not required).
        x: ``(n,)`` signal.
        max_atoms: the most atoms chosen (static; the loop length).
        tol: stop once ``|x - D a|^2 <= tol`` (``None``: exactly ``max_atoms`` unless ``x`` is
            represented exactly first).

    Returns:
        The coefficient vector ``(K,)`` with at most ``max_atoms`` non-zeros.
    """
    d = jnp.asarray(dictionary)
    x = jnp.asarray(x, d.dtype)
    t = int(max_atoms)
    tol_v = jnp.asarray(0.0 if tol is None else tol, d.dtype)
    gram_diag = jnp.sum(d * d, axis=0)
    st = _OMPState(
        chol=jnp.eye(t, dtype=d.dtype),
        idx=jnp.zeros((t,), jnp.int32),
        rhs=jnp.zeros((t,), d.dtype),
        coef=jnp.zeros((t,), d.dtype),
        resid=x,
        n_active=jnp.asarray(0, jnp.int32),
        done=dot(x, x) <= tol_v,
    )
    st = jax.lax.fori_loop(0, t, functools.partial(_step, dictionary=d, x=x, gram_diag=gram_diag, tol=tol_v), st)
    return jnp.zeros((d.shape[1],), d.dtype).at[st.idx].add(st.coef)


@functools.partial(jax.jit, static_argnames=("max_atoms", "tol"))
def omp_batch(dictionary: ArrayLike, signals: ArrayLike, *, max_atoms: int, tol: float | None = None) -> jax.Array:
    """:func:`omp` vmapped over ``signals (N, n)`` -> ``(N, K)``."""
    return jax.vmap(lambda s: omp(dictionary, s, max_atoms=max_atoms, tol=tol))(signals)
