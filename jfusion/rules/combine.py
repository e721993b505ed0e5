"""Combination rules: turn per-source activities into weights and fuse coefficients.

Sources are on the leading axis: coefficients and activities are ``(S, ...)``; weight maps
are ``(S, ...)`` summing to 1 over ``S``. Every rule is N-way (``S >= 2``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["max_weights", "choose_max", "weighted_average", "soft_max_weights", "soft_choose_max", "apply_weights"]


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
    return jnp.sum(weights * coeffs, axis=0)


def choose_max(coeffs: ArrayLike, activity: ArrayLike | None = None) -> jax.Array:
    """Hard choose-max: at each position keep the coefficient of the most active source.

    Args:
      coeffs: ``(S, ...)``.
      activity: ``(S, ...)``; defaults to ``|coeffs|`` (the max-absolute rule).
    """
    coeffs = jnp.asarray(coeffs)
    activity = jnp.abs(coeffs) if activity is None else jnp.asarray(activity)
    return apply_weights(coeffs, max_weights(activity))


def weighted_average(coeffs: ArrayLike, weights: ArrayLike | None = None, *, eps: float = 1e-12) -> jax.Array:
    """``sum_s w_s c_s / sum_s w_s`` (plain mean when ``weights`` is ``None``)."""
    coeffs = jnp.asarray(coeffs)
    if weights is None:
        return jnp.mean(coeffs, axis=0)
    w = jnp.asarray(weights, coeffs.dtype)
    return apply_weights(coeffs, w / (jnp.sum(w, axis=0, keepdims=True) + eps))


def soft_max_weights(activity: ArrayLike, *, temperature: float = 0.1) -> jax.Array:
    """Softmax over sources of ``activity / temperature``: differentiable choose-max weights.

    As ``temperature -> 0`` this tends to :func:`max_weights` (ties split evenly); large
    temperatures tend to the plain average.
    """
    activity = jnp.asarray(activity)
    return jax.nn.softmax(activity / temperature, axis=0)


def soft_choose_max(coeffs: ArrayLike, activity: ArrayLike | None = None, *, temperature: float = 0.1) -> jax.Array:
    """Differentiable choose-max: coefficients blended by :func:`soft_max_weights`."""
    coeffs = jnp.asarray(coeffs)
    activity = jnp.abs(coeffs) if activity is None else jnp.asarray(activity)
    return apply_weights(coeffs, soft_max_weights(activity, temperature=temperature))
