"""Target-adaptive fine-tuning of a learned pan-sharpening network (Scarpa, Vitale, Cozzolino 2018, PNN+).

Before fusing a pair ``(ms, pan)``, the shipped network is fine-tuned on that pair itself: the pair is
degraded by Wald's protocol (sensor MTF, decimation by the ratio), the network maps the degraded pair
to the given MS, and a bounded number of Adam steps on the L1 loss (as in PNN+) adapt its parameters
to the target's content, radiometry and degradation. The fused image is then computed with the adapted
parameters at full resolution.

:func:`fine_tune` is pure and jittable (``lax.fori_loop`` over the steps, whole image per step, so it
is deterministic: no random crops); the learned methods call it when given ``adapt=True``
(``adapt_steps``, ``adapt_lr``). :func:`adapt_eagerly` is the command line's form: the same steps in
jitted chunks with a progress bar and a time budget (``jfusion pansharpen --adapt --adapt-seconds S``).

``adapt="full-resolution"`` replaces the Wald-degraded target by the full-resolution loss of Z-PNN
(Ciotola, Vitale, Mazza, Poggi, Scarpa, "Pansharpening by convolutional neural networks in the full
resolution framework", IEEE TGRS 60, 2022): the network runs on the pair at its own resolution and
:func:`full_resolution_loss` scores its output against the inputs themselves (no degraded copy, no
assumption that the network generalises across scales):

* **spectral**: ``mean |decimate(MTF(F)) - MS|``, the fused image ``F`` low-passed band by band by the
  sensor's MTF filter and decimated (:func:`jfusion.pansharpening.wald.degrade`'s convention), against
  the given MS;
* **spatial**: ``mean((1 - rho_b) * [1 - rho_b > 1 - rho~_b])`` over bands and pixels, ``rho_b`` the local
  correlation coefficient (:func:`local_correlation`, ``2w x 2w`` windows, ``w = ceil(ratio / 2)``)
  between fused band ``b`` and the PAN (clipped below at -1), ``rho~_b`` the one between the
  interpolated MS band and the PAN low-passed by the MTF filter of the first MS band (``w = 8``): a
  pixel counts only where the fused band correlates less with the PAN than the MS already did;
* **total**: ``spectral + beta * spatial`` with the authors' per-sensor ``beta`` (:func:`fr_beta`).

Read from the authors' public code (github matciotola/Z-PNN: ``losses.py``, ``cross_correlation.py``,
``utils.local_corr_mask``, ``sensor.py``), transcribed, not copied. Where this departs from it:
the spectral term uses the whole image with replicate borders and the decimation phase of
:func:`jfusion.pansharpening.wald.decimate` against the original MS (the authors filter 'valid',
dropping a 20-pixel border, and compare with the 23-tap-interpolated MS at its sample positions,
which an interpolating filter makes the same values); the threshold's PAN low-pass uses replicate
borders (theirs: reflection); the authors give no ``beta`` for IKONOS or QuickBird (their
``Sensor`` class has none), which get the 4-band value 0.25 of GeoEye-1; the authors keep the weights
of the epoch with the lowest loss and train DRPNN's last layer at a tenth of the rate, here every
network takes the last step's weights at one rate; their 100 epochs at 5e-5 (GeoEye-1) or 1e-5
(WorldView) are ``adapt_steps=100, adapt_lr=...``, the defaults are PNN+'s 50 steps at 1e-4.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import nnx

__all__ = [
    "fine_tune", "adaptation_pair", "adapt_eagerly", "ADAPT_STEPS", "ADAPT_LR", "ADAPT_MODES", "adapt_mode",
    "local_correlation", "fr_beta", "fr_threshold", "full_resolution_loss", "full_resolution_pair",
    "full_resolution_objective", "fine_tune_full_resolution", "FR_HALF_WIDTH_THRESHOLD",
]

AdaptMode = Literal["wald", "full-resolution"]
ADAPT_MODES: tuple[str, ...] = ("wald", "full-resolution")
"""The fine-tuning losses: ``"wald"`` (PNN+, ``adapt=True``) and ``"full-resolution"`` (Z-PNN)."""

FR_HALF_WIDTH_THRESHOLD = 8
"""Half width of the windows of the spatial term's threshold correlation (Z-PNN's ``semi_width``)."""

ADAPT_STEPS = 50
"""Default fine-tuning steps (PNN+ uses 50 iterations on the target)."""

ADAPT_LR = 1e-4
"""Default Adam learning rate of the fine-tuning."""


def adaptation_pair(
    ms: jax.Array, pan: jax.Array, *, ratio: int, sensor: str | None, inputs: Callable[[jax.Array, jax.Array], jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """``(x, y)``: the network input of the Wald-degraded pair (``inputs(ms_lr, pan_lr)``, ``(h, w, C)``) and the
    target ``ms`` itself (``(h, w, B)``, unscaled: the caller scales both alike). The pair is first cropped to whole
    low-resolution pixels of the degradation (``h``, ``w`` multiples of ``ratio``)."""
    from jfusion.pansharpening import wald

    h, w = ms.shape[0] // ratio * ratio, ms.shape[1] // ratio * ratio
    ms, pan = ms[:h, :w], pan[: h * ratio, : w * ratio]
    ms_lr, pan_lr = wald.degrade(ms, pan, ratio=ratio, sensor=sensor)
    return inputs(ms_lr, pan_lr), jnp.asarray(ms, jnp.float32)


def adapt_mode(adapt: bool | str) -> AdaptMode | None:
    """The fine-tuning a method's ``adapt`` option asks for: ``None`` (False), ``"wald"`` (True or ``"wald"``) or
    ``"full-resolution"`` (the option's values are checked at the boundary, :mod:`jfusion.options`)."""
    if adapt is False:
        return None
    if adapt is True:
        return "wald"
    if adapt not in ADAPT_MODES:
        raise ValueError(f"adapt={adapt!r}: pass False, True, 'wald' or 'full-resolution'")
    return adapt  # type: ignore[return-value]


def _objective(graphdef: Any, rest: Any, x: jax.Array, y: jax.Array, margin: int) -> Callable[[Any], jax.Array]:
    xp = jnp.pad(x, ((margin, margin), (margin, margin), (0, 0)), mode="edge") if margin else x

    def loss(params: Any) -> jax.Array:
        out = nnx.merge(graphdef, params, rest)(xp[None])[0]
        return jnp.mean(jnp.abs(out - y))

    return loss


def _steps(loss: Callable[[Any], jax.Array], tx: optax.GradientTransformation, n: int | jax.Array, params: Any, state: Any):
    """``n`` Adam steps as one ``while`` loop whose trip count is a traced value: :func:`fine_tune` and every chunk of
    :func:`adapt_eagerly` then run the same compiled loop body (a static count lets XLA unroll or fuse short loops
    differently, and the L1 loss's sign gradients turn those float32 reorderings into visibly different parameters)."""

    def body(_, carry):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    return jax.lax.fori_loop(0, jnp.asarray(n, jnp.int32), body, (params, state))


def fine_tune(
    split: tuple[Any, Any, Any], x: jax.Array, y: jax.Array, *, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, margin: int = 0
) -> Any:
    """The parameters of ``split = (graphdef, params, rest)`` after ``steps`` Adam steps on ``mean |net(x) - y|``.

    Args:
      split: the network as :func:`jfusion.pansharpening.learned.load_params` returns it.
      x: ``(h, w, C)`` network input of the degraded target pair (scaled as in training).
      y: ``(h, w, B)`` target (the given MS, same scaling).
      steps, lr: Adam steps and learning rate (static).
      margin: the receptive margin of a 'valid' network (the input is replicate-padded by it).

    Returns:
      The adapted ``params`` pytree (same structure as ``split[1]``). Pure: jit and vmap it freely.
    """
    graphdef, params, rest = split
    return _minimise(_objective(graphdef, rest, x, y, margin), params, steps=steps, lr=lr)


def _minimise(loss: Callable[[Any], jax.Array], params: Any, *, steps: int, lr: float) -> Any:
    tx = optax.adam(lr)
    params, _ = _steps(loss, tx, int(steps), params, tx.init(params))
    return params


def adapt_eagerly(
    split: tuple[Any, Any, Any], x: jax.Array, y: jax.Array, *, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, margin: int = 0,
    seconds: float | None = None, chunk: int = 10, progress: bool = True, objective: Callable[[Any], jax.Array] | None = None,
) -> tuple[Any, int]:
    """:func:`fine_tune` in jitted chunks of ``chunk`` steps with a tqdm bar, stopping at ``steps`` or once
    ``seconds`` have passed (checked between chunks). Returns ``(params, steps_done)``; with no time limit the
    parameters equal :func:`fine_tune`'s (same steps, same order).

    ``objective``: a loss of the parameters to minimise instead of the Wald L1 of ``(x, y)`` (then unused), e.g.
    :func:`full_resolution_objective`'s; with no time limit the result equals :func:`fine_tune_full_resolution`'s."""
    from tqdm.auto import tqdm

    graphdef, params, rest = split
    tx = optax.adam(lr)
    loss = _objective(graphdef, rest, x, y, margin) if objective is None else objective
    state = tx.init(params)
    run = jax.jit(lambda p, s, n: _steps(loss, tx, n, p, s))  # n traced: one compilation for every chunk size
    done, t0 = 0, time.perf_counter()
    with tqdm(total=int(steps), desc="adapt", disable=not progress) as bar:
        while done < steps:
            n = min(chunk, int(steps) - done)
            params, state = run(params, state, n)
            jax.block_until_ready(params)
            done += n
            bar.update(n)
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
    return params, done


# ----------------------------------------------------------------------------- full resolution (Z-PNN)
_EPS = 1e-20  # the authors' guard of the correlation's denominator


def local_correlation(a: jax.Array, b: jax.Array, *, half_width: int) -> jax.Array:
    """Z-PNN's local correlation coefficient of ``a`` ``(H, W, B)`` with ``b`` ``(H, W)`` (every band) or ``(H, W, B)``.

    Windows are ``2w x 2w`` (``w = half_width``), rows and columns ``i - w + 1 .. i + w`` around pixel ``i``,
    zero outside the image. As in the authors' ``xcorr_torch``, each pixel is first centred by the mean of its
    own window (sum over the window / ``4 w^2``), then ``rho = S_ab / (sqrt(max(S_aa, eps)) sqrt(max(S_bb, eps)) + eps)``
    with ``S`` the window sums of the products of the centred images (``eps = 1e-20``).

    Returns:
      ``(H, W, B)`` float32, in [-1, 1] up to rounding.
    """
    from jfusion.ops.filters import window_sum

    n = 2 * int(half_width)
    a = jnp.moveaxis(jnp.asarray(a, jnp.float32), -1, 0)
    b = jnp.asarray(b, jnp.float32)
    b = b[None] if b.ndim == 2 else jnp.moveaxis(b, -1, 0)

    def wsum(v: jax.Array) -> jax.Array:
        return window_sum(v, n, border="zero")

    da = a - wsum(a) / (n * n)
    db = b - wsum(b) / (n * n)
    s_ab = wsum(da * db)
    s_aa = jnp.maximum(wsum(da * da), _EPS)
    s_bb = jnp.maximum(wsum(db * db), _EPS)
    return jnp.moveaxis(s_ab / (jnp.sqrt(s_aa) * jnp.sqrt(s_bb) + _EPS), 0, -1)


def fr_beta(sensor: str | None, bands: int) -> float:
    """Weight of the spatial term: the authors' 0.36 for WorldView-2/3 and 0.25 for GeoEye-1; sensors they give none
    for (IKONOS, QuickBird, the generic MTF) take 0.36 with 8 bands and 0.25 with fewer."""
    from jfusion.pansharpening.wald import sensor_mtf

    name = sensor_mtf(sensor).name
    if name in ("WV2", "WV3"):
        return 0.36
    if name == "GeoEye1":
        return 0.25
    return 0.36 if bands >= 8 else 0.25


def fr_threshold(ms_up: jax.Array, pan: jax.Array, *, ratio: int, sensor: str | None) -> jax.Array:
    """The spatial term's per-pixel threshold ``1 - rho~`` ``(H, W, B)``: ``rho~`` the local correlation
    (half width :data:`FR_HALF_WIDTH_THRESHOLD`) of the interpolated MS ``ms_up`` ``(H, W, B)`` with the PAN
    ``(H, W)`` low-passed by the MTF filter of the sensor's first MS band (replicate borders)."""
    from jfusion.ops.filters import filter2d_dense
    from jfusion.pansharpening.wald import _band_gains, mtf_kernel

    pan_lp = filter2d_dense(jnp.asarray(pan, jnp.float32), mtf_kernel(_band_gains(sensor, 1)[0], ratio), border="replicate")
    return 1.0 - local_correlation(ms_up, pan_lp, half_width=FR_HALF_WIDTH_THRESHOLD)


def full_resolution_terms(
    fused: jax.Array, ms: jax.Array, pan: jax.Array, threshold: jax.Array, *, ratio: int, sensor: str | None
) -> tuple[jax.Array, jax.Array]:
    """``(spectral, spatial)`` terms of the Z-PNN loss (see the module docstring).

    Args:
      fused: ``(H, W, B)`` the network's output, scaled as its input (``/ 2**bit_depth``).
      ms: ``(H / ratio, W / ratio, B)`` the given MS, same scaling.
      pan: ``(H, W)`` the given PAN, same scaling.
      threshold: ``(H, W, B)`` from :func:`fr_threshold`.
      ratio, sensor: the MTF of the spectral term and the spatial windows (``w = ceil(ratio / 2)``).
    """
    from jfusion.pansharpening.wald import decimate, mtf_filter

    spectral = jnp.mean(jnp.abs(decimate(mtf_filter(fused, ratio=ratio, sensor=sensor), ratio) - ms))
    x = 1.0 - jnp.maximum(local_correlation(fused, pan, half_width=math.ceil(ratio / 2)), -1.0)
    spatial = jnp.mean(jnp.where(x > threshold, x, 0.0))
    return spectral, spatial


def full_resolution_loss(
    fused: jax.Array, ms: jax.Array, pan: jax.Array, threshold: jax.Array, *, ratio: int, sensor: str | None,
    beta: float | None = None,
) -> jax.Array:
    """The Z-PNN loss ``spectral + beta * spatial`` (:func:`full_resolution_terms`; ``beta`` default :func:`fr_beta`).
    A scalar >= 0; the spatial term is at most 2."""
    spectral, spatial = full_resolution_terms(fused, ms, pan, threshold, ratio=ratio, sensor=sensor)
    b = fr_beta(sensor, fused.shape[-1]) if beta is None else float(beta)
    return spectral + b * spatial


def full_resolution_pair(
    ms: jax.Array, pan: jax.Array, *, ratio: int, sensor: str | None, bit_depth: int,
    inputs: Callable[[jax.Array, jax.Array], jax.Array],
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """``(x, ms_n, pan_n, threshold)`` of the full-resolution fine-tuning of the pair ``ms (h, w, B)``, ``pan (r h, r w)``:
    the network input ``inputs(ms, pan)`` ``(r h, r w, C)`` (its first ``B`` channels the interpolated MS, channel
    ``B`` the PAN, both ``/ 2**bit_depth``), the MS and PAN ``/ 2**bit_depth`` and :func:`fr_threshold` of them."""
    scale = 2.0**bit_depth
    ms = jnp.asarray(ms, jnp.float32)
    x = inputs(ms, jnp.asarray(pan, jnp.float32))
    b = ms.shape[-1]
    thr = jax.lax.stop_gradient(fr_threshold(x[..., :b], x[..., b], ratio=ratio, sensor=sensor))
    return x, ms / scale, jnp.asarray(pan, jnp.float32) / scale, thr


def full_resolution_objective(
    split: tuple[Any, Any, Any], x: jax.Array, ms: jax.Array, pan: jax.Array, threshold: jax.Array, *, ratio: int,
    sensor: str | None, margin: int = 0, beta: float | None = None,
) -> Callable[[Any], jax.Array]:
    """``loss(params)``: :func:`full_resolution_loss` of the network ``split`` run on ``x`` (replicate-padded by ``margin``)."""
    graphdef, _, rest = split
    xp = jnp.pad(x, ((margin, margin), (margin, margin), (0, 0)), mode="edge") if margin else x

    def loss(params: Any) -> jax.Array:
        out = nnx.merge(graphdef, params, rest)(xp[None])[0]
        return full_resolution_loss(out, ms, pan, threshold, ratio=ratio, sensor=sensor, beta=beta)

    return loss


def fine_tune_full_resolution(
    split: tuple[Any, Any, Any], x: jax.Array, ms: jax.Array, pan: jax.Array, threshold: jax.Array, *, ratio: int,
    sensor: str | None, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, margin: int = 0, beta: float | None = None,
) -> Any:
    """The parameters of ``split`` after ``steps`` Adam steps on the full-resolution loss of the pair.

    Args:
      split: the network as :func:`jfusion.pansharpening.learned.load_params` returns it.
      x, ms, pan, threshold: :func:`full_resolution_pair` of the target pair.
      ratio, sensor: as for :func:`full_resolution_terms`.
      steps, lr: Adam steps and learning rate (static).
      margin: the receptive margin of a 'valid' network.
      beta: weight of the spatial term (default :func:`fr_beta`).

    Returns:
      The adapted ``params`` (same structure as ``split[1]``). Pure and deterministic (whole image each step).
    """
    loss = full_resolution_objective(split, x, ms, pan, threshold, ratio=ratio, sensor=sensor, margin=margin, beta=beta)
    return _minimise(loss, split[1], steps=steps, lr=lr)
