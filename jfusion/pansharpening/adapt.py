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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

__all__ = ["fine_tune", "adaptation_pair", "adapt_eagerly", "ADAPT_STEPS", "ADAPT_LR"]

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


def _objective(graphdef: Any, rest: Any, x: jax.Array, y: jax.Array, margin: int) -> Callable[[Any], jax.Array]:
    xp = jnp.pad(x, ((margin, margin), (margin, margin), (0, 0)), mode="edge") if margin else x

    def loss(params: Any) -> jax.Array:
        out = nnx.merge(graphdef, params, rest)(xp[None])[0]
        return jnp.mean(jnp.abs(out - y))

    return loss


def _steps(loss: Callable[[Any], jax.Array], tx: optax.GradientTransformation, n: int, params: Any, state: Any):
    def body(_, carry):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    return jax.lax.fori_loop(0, n, body, (params, state))


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
    tx = optax.adam(lr)
    loss = _objective(graphdef, rest, x, y, margin)
    params, _ = _steps(loss, tx, int(steps), params, tx.init(params))
    return params


def adapt_eagerly(
    split: tuple[Any, Any, Any], x: jax.Array, y: jax.Array, *, steps: int = ADAPT_STEPS, lr: float = ADAPT_LR, margin: int = 0,
    seconds: float | None = None, chunk: int = 10, progress: bool = True,
) -> tuple[Any, int]:
    """:func:`fine_tune` in jitted chunks of ``chunk`` steps with a tqdm bar, stopping at ``steps`` or once
    ``seconds`` have passed (checked between chunks). Returns ``(params, steps_done)``; with no time limit the
    parameters equal :func:`fine_tune`'s (same steps, same order)."""
    from tqdm.auto import tqdm

    graphdef, params, rest = split
    tx = optax.adam(lr)
    loss = _objective(graphdef, rest, x, y, margin)
    state = tx.init(params)
    run = jax.jit(lambda p, s, n: _steps(loss, tx, n, p, s), static_argnums=2)
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
