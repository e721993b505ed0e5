"""One generic optax training loop: jitted, data-parallel over a device mesh, resumable.

Every learned model of jfusion trains through :func:`train`::

    from jfusion.training.loop import train

    def loss_fn(model, batch):                  # pure: (model, batch) -> (scalar loss, aux dict)
        logits = model(batch["a"], batch["b"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return loss, {"acc": (logits.argmax(-1) == batch["label"]).mean()}

    result = train(model, optax.adam(1e-3), loss_fn, batch_fn, steps=1000,
                   checkpoint_dir="runs/x", checkpoint_every=100,
                   validate=lambda m, step: {"val_acc": ...}, validate_every=200)

* ``model`` is a Flax NNX module; its ``nnx.Param`` variables are trained, other state is
  carried unchanged (the loss must not mutate it). The trained values are written back
  into ``model``, which is also returned in :class:`TrainResult`.
* ``batches`` is either a function ``step -> batch`` (preferred: a killed run resumes with
  exactly the batches it would have seen) or an iterable (on resume the first
  ``start_step`` items are skipped). A batch is a pytree of arrays whose leading axis is
  the example axis; it is split over all devices of ``mesh`` (default: every device),
  parameters and optimiser state are replicated, so the same code runs on 1 CPU, fake CPU
  devices, several GPUs or a TPU slice (multi-host: see :mod:`jfusion.parallel`; each
  process then passes its own share of the batch).
* With ``checkpoint_dir``, an orbax checkpoint is written every ``checkpoint_every`` steps
  and at the end; calling :func:`train` again with the same directory resumes from the
  newest checkpoint and continues with the same losses as an uninterrupted run.
* A tqdm progress bar shows the loss and the aux metrics; ``validate(model, step)`` runs
  every ``validate_every`` steps and at the end, its dict is logged.
* ``keep_best="val_loss"`` (a key of ``validate``'s dict, minimised) is early stopping on
  validation data: the parameters of the best validation so far are checkpointed under
  ``<checkpoint_dir>-best`` (so a resumed run keeps them) and are what the model holds at the
  end; :attr:`TrainResult.best_step` says which step that was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from tqdm.auto import tqdm

from jfusion.parallel import make_mesh, replicate, shard_batch
from jfusion.training.checkpoint import Checkpointer

__all__ = ["TrainResult", "train", "make_train_step"]

LossFn = Callable[[nnx.Module, Any], tuple[jax.Array, Mapping[str, jax.Array]]]
Validate = Callable[[nnx.Module, int], Mapping[str, float]]


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      model: the trained model (the same object that was passed in, updated in place).
      history: one dict per step run *or restored*: ``{"step", "loss", **aux}`` (floats).
      validation: one dict per validation: ``{"step", **metrics}``.
      start_step: the step the run started from (0, or the resumed checkpoint's step).
      best_step: with ``keep_best``, the step whose parameters the model holds (else ``steps``).
    """

    model: nnx.Module
    history: list[dict[str, float]]
    validation: list[dict[str, float]]
    start_step: int
    best_step: int | None = None


def make_train_step(graphdef: Any, rest: Any, tx: optax.GradientTransformation, loss_fn: LossFn) -> Callable:
    """The jitted update ``(params, opt_state, batch) -> (params, opt_state, loss, aux)``."""

    def step(params, opt_state, batch):
        def objective(p):
            return loss_fn(nnx.merge(graphdef, p, rest), batch)

        (loss, aux), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, aux

    return jax.jit(step, donate_argnums=(0, 1))


def _best_dir(checkpoint_dir: str | Path) -> Path:
    """Where ``keep_best`` checkpoints the best parameters (beside the run's folder, not in it: orbax owns that one)."""
    d = Path(checkpoint_dir).absolute()
    return d.with_name(d.name + "-best")


def _to_host(loss: jax.Array, aux: Mapping[str, jax.Array], step: int) -> dict[str, float]:
    row = {"step": step, "loss": float(loss)}
    row.update({k: float(v) for k, v in aux.items()})
    return row


def train(
    model: nnx.Module,
    optimizer: optax.GradientTransformation,
    loss_fn: LossFn,
    batches: Callable[[int], Any] | Iterable[Any],
    *,
    steps: int,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 100,
    validate: Validate | None = None,
    validate_every: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    log_every: int = 10,
    progress: bool = True,
    desc: str = "train",
    keep_best: str | None = None,
) -> TrainResult:
    """Train ``model`` for ``steps`` optimiser steps (resuming from ``checkpoint_dir`` if it has one).

    Args:
      model: Flax NNX module; its ``nnx.Param`` leaves are optimised.
      optimizer: any optax gradient transformation (schedules included).
      loss_fn: ``loss_fn(model, batch) -> (loss, aux)``, pure and jit-able; ``aux`` is a dict
        of scalar metrics shown in the progress bar and kept in the history.
      batches: ``batch_fn(step) -> batch`` or an iterable of batches (pytrees of arrays,
        leading axis = examples, divisible by the number of devices).
      steps: total number of steps (a resumed run stops at the same total).
      checkpoint_dir: orbax checkpoint folder; resumed from when it holds a checkpoint.
      checkpoint_every: checkpoint interval in steps (a final checkpoint is always written).
      validate: ``validate(model, step) -> dict`` of floats, e.g. held-out accuracy.
      validate_every: validation interval in steps (0: only at the end).
      mesh: device mesh (default: a 1-D mesh over all devices, :func:`jfusion.parallel.make_mesh`).
      log_every: how often the progress bar's postfix is refreshed.
      progress: show the tqdm progress bar.
      desc: progress-bar label.
      keep_best: a key of ``validate``'s dict to minimise: the model ends with the parameters of
        the best validation (early stopping; needs ``validate``).

    Returns:
      :class:`TrainResult` with the trained model and the loss/validation history.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if keep_best is not None and validate is None:
        raise ValueError("keep_best needs a validate function")
    mesh = make_mesh() if mesh is None else mesh
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = replicate(params, mesh)
    opt_state = replicate(optimizer.init(params), mesh)

    history: list[dict[str, float]] = []
    validation: list[dict[str, float]] = []
    start = 0
    ckpt = Checkpointer(checkpoint_dir, every=checkpoint_every) if checkpoint_dir is not None else None
    if ckpt is not None and ckpt.latest_step() is not None:
        start, state, record = ckpt.restore({"params": params, "opt_state": opt_state})
        params, opt_state = state["params"], state["opt_state"]
        history = list(record.get("history", []))
        validation = list(record.get("validation", []))
    best_ckpt = Checkpointer(_best_dir(checkpoint_dir), every=1, keep=1) if (ckpt is not None and keep_best) else None
    best: dict[str, Any] = {"value": float("inf"), "step": None, "params": None}
    if keep_best is not None:
        done_vals = [v for v in validation if keep_best in v]
        if done_vals:
            top = min(done_vals, key=lambda v: v[keep_best])
            best.update(value=float(top[keep_best]), step=int(top["step"]))
            if best_ckpt is not None and best_ckpt.latest_step() is not None:
                at = best["step"] if best["step"] in best_ckpt.steps() else None
                _, state, _ = best_ckpt.restore({"params": params}, step=at)
                best["params"] = state["params"]

    step_fn = make_train_step(graphdef, rest, optimizer, loss_fn)
    if callable(batches):
        get_batch = batches
    else:
        it = iter(batches)
        for _ in range(start):
            next(it)
        get_batch = lambda _step: next(it)  # noqa: E731

    def current_model() -> nnx.Module:
        return nnx.merge(graphdef, params, rest)

    def run_validation(step: int) -> None:
        if validate is None:
            return
        row = {"step": step}
        row.update({k: float(v) for k, v in validate(current_model(), step).items()})
        validation.append(row)
        if keep_best is not None and row[keep_best] < best["value"]:
            best.update(value=row[keep_best], step=step, params=jax.tree.map(lambda a: a.copy(), params))
            if best_ckpt is not None:
                best_ckpt.save(step, {"params": params}, {"step": step}, force=True)
        bar.write(f"[{desc}] step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))

    def record() -> dict:
        return {"history": history, "validation": validation}

    pending: list[tuple[int, jax.Array, Mapping[str, jax.Array]]] = []
    bar = tqdm(total=steps, initial=start, desc=desc, disable=not progress, dynamic_ncols=True)
    try:
        for step in range(start, steps):
            batch = shard_batch(get_batch(step), mesh)
            params, opt_state, loss, aux = step_fn(params, opt_state, batch)
            pending.append((step + 1, loss, aux))
            done = step + 1
            if done % log_every == 0 or done == steps:
                rows = [_to_host(lo, au, s) for s, lo, au in pending]
                pending.clear()
                history.extend(rows)
                bar.set_postfix({k: f"{v:.4f}" for k, v in rows[-1].items() if k != "step"})
            bar.update(1)
            if validate is not None and validate_every and done % validate_every == 0 and done != steps:
                run_validation(done)
            if ckpt is not None and done % checkpoint_every == 0 and done != steps:
                history.extend(_to_host(lo, au, s) for s, lo, au in pending)
                pending.clear()
                ckpt.save(done, {"params": params, "opt_state": opt_state}, record())
        history.extend(_to_host(lo, au, s) for s, lo, au in pending)
        pending.clear()
        if start < steps or not validation:
            run_validation(max(steps, start))
        if ckpt is not None and start < steps:
            ckpt.save(steps, {"params": params, "opt_state": opt_state}, record(), force=True)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
        if best_ckpt is not None:
            best_ckpt.close()
    best_step = steps
    if keep_best is not None and best["params"] is not None:
        params, best_step = best["params"], int(best["step"])
    nnx.update(model, params)
    return TrainResult(model=model, history=history, validation=validation, start_step=start, best_step=best_step)


def cross_entropy_loss(model: nnx.Module, batch: Mapping[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Softmax cross-entropy of a two-input classifier ``model(a, b)`` on ``batch = {a, b, label}``.

    Returns the mean loss and ``{"acc": accuracy}``.
    """
    logits = model(batch["a"], batch["b"])
    labels = batch["label"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    acc = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
    return loss, {"acc": acc}


__all__.append("cross_entropy_loss")
