"""Combination rules: turn per-source activities into weights and fuse coefficients.

Sources are on the leading axis: coefficients and activities are ``(S, ...)``; weight maps
are ``(S, ...)`` summing to 1 over ``S``. Every rule is N-way (``S >= 2``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["sum_sources", "mean_sources", "max_sources", "min_sources", "max_weights", "choose_max", "weighted_average", "soft_max_weights", "soft_choose_max", "apply_weights"]


def _fold(x: jax.Array, op) -> jax.Array:
    # Reductions over the (short, static) sources axis are unrolled into elementwise ops:
    # XLA:CPU (jax 0.10) reduces over a major axis ~100x slower than it adds S planes
    # (measured: sum over axis 0 of (3, 3, 512, 512) 76 ms vs 0.8 ms unrolled).
    out = x[0]
    for i in range(1, x.shape[0]):
        out = op(out, x[i])
    return out


def sum_sources(x: ArrayLike, *, keepdims: bool = False) -> jax.Array:
    """``sum`` over the leading sources axis (unrolled; see :func:`_fold`)."""
    out = _fold(jnp.asarray(x), jnp.add)
    return out[None] if keepdims else out


def mean_sources(x: ArrayLike) -> jax.Array:
    """Mean over the leading sources axis."""
    x = jnp.asarray(x)
    return _fold(x, jnp.add) / x.shape[0]


def max_sources(x: ArrayLike) -> jax.Array:
    """Max over the leading sources axis."""
    return _fold(jnp.asarray(x), jnp.maximum)


def min_sources(x: ArrayLike) -> jax.Array:
    """Min over the leading sources axis."""
    return _fold(jnp.asarray(x), jnp.minimum)


def max_weights(activity: ArrayLike) -> jax.Array:
    """One-hot ``(S, ...)`` weights selecting the source of largest activity (ties: the first)."""
    activity = jnp.asarray(activity)
    idx = jnp.argmax(activity, axis=0)
    return jax.nn.one_hot(idx, activity.shape[0], axis=0, dtype=activity.dtype)


def apply_weights(coeffs: ArrayLike, weights: ArrayLike) -> jax.Array:
    """``sum_s weights[s] * coeffs[s]``; ``weights`` broadcasts against ``coeffs`` from the left."""
    coeffs = jnp.asarray(coeffs)
    weights = jnp.asarray(weights, coeffs.dtype)
    weights = weights.reshape(weights.shape + (1,) * (coeffs.ndim - weights.ndim))
    return sum_sources(weights * coeffs)


def choose_max(coeffs: ArrayLike, *, activity: ArrayLike | None = None) -> jax.Array:
    """Hard choose-max: at each position keep the coefficient of the most active source.

    Args:
      coeffs: ``(S, ...)``.
      activity: ``(S, ...)``; defaults to ``|coeffs|`` (the max-absolute rule).
    """
    coeffs = jnp.asarray(coeffs)
    activity = jnp.abs(coeffs) if activity is None else jnp.asarray(activity)
    # unrolled running selection (same result as argmax + one-hot, ties to the first source),
    # elementwise so that XLA fuses it with the transform around it
    best, best_act = coeffs[0], activity[0]
    for i in range(1, coeffs.shape[0]):
        take = activity[i] > best_act
        best = jnp.where(take, coeffs[i], best)
        best_act = jnp.where(take, activity[i], best_act)
    return best


def weighted_average(coeffs: ArrayLike, *, weights: ArrayLike | None = None, eps: float = 1e-12) -> jax.Array:
    """``sum_s w_s c_s / sum_s w_s`` (plain mean when ``weights`` is ``None``)."""
    coeffs = jnp.asarray(coeffs)
    if weights is None:
        return mean_sources(coeffs)
    w = jnp.asarray(weights, coeffs.dtype)
    return apply_weights(coeffs, w / (sum_sources(w, keepdims=True) + eps))


def soft_max_weights(activity: ArrayLike, *, temperature: float = 0.1) -> jax.Array:
    """Softmax over sources of ``activity / temperature``: differentiable choose-max weights.

    As ``temperature -> 0`` this tends to :func:`max_weights` (ties split evenly); large
    temperatures tend to the plain average.
    """
    z = jnp.asarray(activity) / temperature
    e = jnp.exp(z - jax.lax.stop_gradient(max_sources(z))[None])
    return e / sum_sources(e, keepdims=True)


def soft_choose_max(coeffs: ArrayLike, *, activity: ArrayLike | None = None, temperature: float = 0.1) -> jax.Array:
    """Differentiable choose-max: coefficients blended by :func:`soft_max_weights`."""
    coeffs = jnp.asarray(coeffs)
    activity = jnp.abs(coeffs) if activity is None else jnp.asarray(activity)
    return apply_weights(coeffs, soft_max_weights(activity, temperature=temperature))
