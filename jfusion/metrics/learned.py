"""The learned fusion metric of the survey's Fig. 8 (Liu et al. 2018, section 5.3; spec section 9.4), EXPERIMENTAL.

``cnn_metric`` scores how similar the fused image is to each source with a classification-type CNN
over patch pairs, the survey's proposal made concrete:

* **network**: a 2-channel :class:`~jfusion.models.WeightNet` (source patch and fused patch stacked as
  the two channels of one branch: conv 3x3 - ReLU - conv 3x3 - ReLU - max-pool 2x2/2 - conv 3x3 - ReLU,
  fully connected hidden layer, ``K`` outputs). 2-channel rather than siamese because a similarity
  depends on the pixel-wise relation of the two patches, which the first layer of a 2-channel net
  sees directly (Zagoruyko & Komodakis 2015 found it the most accurate patch comparator), and it is
  half the computation of two branches;
* **classes**: ``K`` quantised similarity scores ``s_k = k / (K - 1)`` in [0, 1], the top one (1) for
  identical patches only; the similarity of a pair is the expected score ``sum_k p_k s_k``;
* **training** (``jfusion train cnn-metric``, :mod:`jfusion.training.metric`): natural 16x16 patches and
  copies perturbed by Gaussian noise, blur, grey-level quantisation, salt-and-pepper, contrast change
  and brightness shift at random strengths, labelled by the patch-pair SSIM banded into the ``K``
  classes (:mod:`jfusion.data.distort`);
* **dense scoring**: the fully connected layers run as convolutions (:meth:`WeightNet.dense_logits`),
  so a whole ``H x W`` image gives a score map of the 16x16 patches at stride 2; the map of each
  (source, fused) pair is averaged, then the averages are averaged over the sources.

The score is in [0, 1] (higher is better) and differentiable in the fused image, so ``1 - cnn_metric``
serves as a training loss. It is a learned proxy of patch SSIM, not a reference-exact index: identical
images score close to 1 (the network's probability of the top class), not exactly 1, so the registry
declares no ideal value. Inputs are grey (RGB through ``rgb2gray`` under :func:`jfusion.evaluate`).

Layering: the one metric that depends on :mod:`jfusion.models` and :mod:`jfusion.weights` (the other metrics
depend on :mod:`jfusion.ops` only); they are imported when the weights are first loaded, not with the package.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.metrics._common import as_metric_float
from jfusion.metrics._registry import register_metric
from jfusion.options import opt

__all__ = ["cnn_metric", "cnn_metric_map", "similarity_map", "DEFAULT_WEIGHTS", "MIN_SIDE"]

DEFAULT_WEIGHTS = "cnn_metric"
"""The shipped weights (``jfusion/weights/cnn_metric``), trained by ``jfusion train cnn-metric``."""
MIN_SIDE = 16
"""Least image side: one 16x16 patch."""


def _load(weights: str):
    from jfusion.weights import load_weightnet

    from flax import nnx

    from jfusion.ops.precision import HIGHEST

    with jax.ensure_compile_time_eval():  # concrete weights even when first called under jit
        try:
            model = load_weightnet(weights)
        except FileNotFoundError as err:
            raise ValueError(
                f"cnn_metric: {err}; train them with `jfusion train cnn-metric --install`, or pass weights= a weights folder"
            ) from None
    # A metric is fixed arithmetic: full float32 products on every backend (XLA's GPU default is TF32), so its
    # values do not depend on the device; each call gets a fresh module, the cached weights are not changed.
    for _, m in nnx.iter_graph(model):
        if isinstance(m, nnx.Conv):
            m.precision = HIGHEST
    return model


def similarity_map(model, a: jax.Array, b: jax.Array) -> jax.Array:
    """Dense expected similarity of ``model`` for image pairs ``a, b (N, H, W)`` in [0, 1] -> ``(N, ceil(H/2) - 7, ceil(W/2) - 7)``.

    Entry ``(j, i)`` is ``sum_k p_k s_k`` for the 16x16 patches with top-left corner ``(2j, 2i)``.
    """
    return model.dense_weight(a[..., None], b[..., None])


def _check_side(shape: tuple[int, ...]) -> None:
    if min(shape[-2:]) < MIN_SIDE:
        raise ValueError(
            f"cnn_metric needs images of at least {MIN_SIDE} x {MIN_SIDE} px (one patch), got {shape[-2]} x {shape[-1]}"
        )


def cnn_metric_map(
    source: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, weights: str = DEFAULT_WEIGHTS
) -> jax.Array:
    """The score map of one (source, fused) pair.

    Args:
      source, fused: ``(H, W)`` grey images in ``[0, data_range]``, ``H, W >= 16``.
      data_range: the value of white.
      weights: shipped weights name or a weights folder (``jfusion train cnn-metric --out DIR`` writes ``DIR/weights``).

    Returns:
      ``(ceil(H/2) - 7, ceil(W/2) - 7)`` similarity of the 16x16 patches at stride 2, each in [0, 1].

    Raises:
      ValueError: an image smaller than 16 x 16, or weights that do not exist.
    """
    s = as_metric_float(source) / data_range
    f = as_metric_float(fused) / data_range
    _check_side(f.shape)
    return similarity_map(_load(weights), s[None], f[None])[0]


@register_metric(
    "cnn_metric", direction="higher", convention="jfusion-fig8", colour="gray", range=(0.0, 1.0), ideal=None,
    symmetric=True,
    description="Learned CNN similarity of the fused image to each source (survey Fig. 8), experimental",
    options={"weights": opt(doc="shipped weights name or a weights folder (jfusion train cnn-metric --out DIR: DIR/weights)")},
)
def cnn_metric(
    sources: ArrayLike, fused: ArrayLike, *, data_range: float = 1.0, weights: str = DEFAULT_WEIGHTS
) -> jax.Array:
    """Mean over sources of the mean CNN similarity map of (source, fused); in [0, 1], higher is better.

    Args:
      sources: ``(S, H, W)`` grey sources in ``[0, data_range]``, ``H, W >= 16``.
      fused: ``(H, W)`` in the same range.
      data_range: the value of white (:func:`jfusion.evaluate` passes 255).
      weights: shipped weights name (default ``"cnn_metric"``) or a weights folder.

    Returns:
      Scalar in [0, 1]; differentiable in ``fused`` (and ``sources``).

    Raises:
      ValueError: an image smaller than 16 x 16 (:func:`jfusion.evaluate` reports it as a
        :class:`~jfusion.FusionInputError`), or weights that do not exist.
    """
    x = as_metric_float(sources) / data_range
    f = as_metric_float(fused) / data_range
    _check_side(f.shape)
    model = _load(weights)
    maps = similarity_map(model, x, jnp.broadcast_to(f, x.shape))  # one batch of S pairs
    return jnp.mean(jnp.mean(maps, axis=(-2, -1)))
