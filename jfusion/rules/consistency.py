"""Consistency verification of decision / weight maps.

* :func:`majority_filter`: each pixel takes the source chosen most often in its window
  (Li, Manjunath, Mitra 1995).
* :func:`remove_small_regions` / :func:`clean_binary_map` / :func:`clean_label_map` (S labels):
  MATLAB ``bwareaopen`` with 8-connectivity, jit-able: connected components are labelled by min-label propagation
  with pointer jumping inside a ``lax.while_loop`` (no host round trip).
* :func:`guided_refine`: guided-filter smoothing of weight maps (Li, Kang, Hu 2013; Liu et
  al. 2017).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jfusion.ops.filters import Border, guided_filter, pad2d, window_sum
from jfusion.rules.combine import max_sources, sum_sources

__all__ = ["majority_filter", "label_components", "remove_small_regions", "clean_binary_map", "clean_label_map", "guided_refine"]


def majority_filter(
    weights: ArrayLike, *, size: int = 3, border: Border = "symmetric", scores: ArrayLike | None = None
) -> jax.Array:
    """Majority vote of one-hot decision maps ``(S, ..., H, W)`` over ``size x size`` windows.

    Returns one-hot ``(S, ..., H, W)``: each pixel goes to the source that wins most of its
    window. For ``S = 2`` and odd windows there are no ties; for ``S > 2`` ties are broken
    by the larger ``scores`` (e.g. the activity, ``(S, ..., H, W)``), which keeps the rule
    independent of the order of the sources (without ``scores``: the first source wins).
    """
    weights = jnp.asarray(weights)
    votes = window_sum(weights, size, border=border)
    if scores is not None:
        sc = jnp.asarray(scores, votes.dtype)
        sc = sc / (max_sources(jnp.abs(sc))[None] + 1e-30)  # in [-1, 1]
        votes = jnp.round(votes) + 0.25 * sc
    idx = jnp.argmax(votes, axis=0)
    return jax.nn.one_hot(idx, weights.shape[0], axis=0, dtype=weights.dtype)


def label_components(mask: ArrayLike) -> jax.Array:
    """8-connected component labels of a boolean ``(H, W)`` mask.

    Each foreground pixel gets the smallest flat index ``i * W + j`` of its component;
    background pixels get ``H * W``. Iterates neighbour-min + pointer jumping in a
    ``lax.while_loop`` until nothing changes (converges in O(log) rounds for compact
    regions, at most O(H W) for pathological spirals).
    """
    mask = jnp.asarray(mask, bool)
    h, w = mask.shape
    n = h * w
    big = np.int32(n)
    init = jnp.where(mask, jnp.arange(n, dtype=jnp.int32).reshape(h, w), big)

    def neighbour_min(lab: jax.Array) -> jax.Array:
        p = pad2d(lab, 1, 1, 1, 1, border="replicate")
        p = jnp.where(pad2d(mask, 1, 1, 1, 1, border="zero"), p, big)
        m = jax.lax.reduce_window(p, big, jax.lax.min, (3, 3), (1, 1), "VALID")
        return jnp.where(mask, m, big)

    def body(state):
        lab, _ = state
        new = neighbour_min(lab)
        flat = jnp.concatenate([new.reshape(-1), jnp.array([n], jnp.int32)])
        new = jnp.minimum(new, flat[new])  # pointer jumping: adopt the label's label
        new = jnp.minimum(new, flat[flat[new]])
        return new, jnp.any(new != lab)

    lab, _ = jax.lax.while_loop(lambda s: s[1], body, (init, jnp.array(True)))
    return lab


def remove_small_regions(mask: ArrayLike, min_area: int) -> jax.Array:
    """MATLAB ``bwareaopen(mask, min_area, 8)``: drop 8-connected foreground regions smaller than ``min_area``."""
    mask = jnp.asarray(mask, bool)
    lab = label_components(mask)
    n = mask.size
    counts = jax.ops.segment_sum(jnp.ones(n, jnp.int32), lab.reshape(-1), num_segments=n + 1)
    area = counts[lab]
    return mask & (area >= min_area)


def clean_binary_map(mask: ArrayLike, min_area: int) -> jax.Array:
    """Remove small 1-regions, then fill small 0-regions (``bwareaopen`` on the map and on its complement)."""
    m = remove_small_regions(mask, min_area)
    return ~remove_small_regions(~m, min_area)


def clean_label_map(labels: ArrayLike, n_labels: int, min_area: int) -> jax.Array:
    """:func:`clean_binary_map` for ``n_labels`` classes: small regions of every label taken over by their surroundings.

    8-connected regions of a label smaller than ``min_area`` pixels are dropped (``bwareaopen`` per label); the
    dropped pixels then take the label of a kept 8-neighbour, the kept regions growing one pixel per step until
    nothing is left (where two labels reach a pixel in the same step the larger wins). If no region is kept the
    labels are returned unchanged.

    Args:
      labels: ``(H, W)`` integer labels in ``[0, n_labels)``.
      n_labels: number of labels (static).
      min_area: regions smaller than this are removed.

    Returns:
      ``(H, W)`` int32 labels.
    """
    labels = jnp.asarray(labels, jnp.int32)
    h, w = labels.shape
    ids = jnp.arange(n_labels, dtype=jnp.int32)[:, None, None]
    kept = jnp.any(jax.vmap(remove_small_regions, (0, None))(labels[None] == ids, min_area), axis=0)
    lab = jnp.where(kept, labels, -1)

    def body(state):
        x, i = state
        grown = jax.lax.reduce_window(x, -1, jax.lax.max, (3, 3), (1, 1), ((1, 1), (1, 1)))
        return jnp.where(x < 0, grown, x), i + 1

    lab, _ = jax.lax.while_loop(lambda s: jnp.any(s[0] < 0) & (s[1] < h + w), body, (lab, jnp.int32(0)))
    return jnp.where(jnp.any(kept) & (lab >= 0), lab, labels)


def guided_refine(weights: ArrayLike, guide: ArrayLike, *, radius: int, eps: float, normalise: bool = True) -> jax.Array:
    """Guided-filter refinement of weight maps ``(S, H, W)`` with guides ``(S, H, W)`` or ``(H, W)``.

    With ``normalise`` the refined maps are clipped at 0 and renormalised to sum to 1 over ``S``.
    """
    weights = jnp.asarray(weights)
    guide = jnp.broadcast_to(jnp.asarray(guide, weights.dtype), weights.shape)
    out = guided_filter(guide, weights, radius, eps)
    if normalise:
        out = jnp.maximum(out, 0.0) + 1e-12
        out = out / sum_sources(out, keepdims=True)
    return out
