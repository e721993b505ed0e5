"""The one small wrapper around orbax: save and restore a training state with resume.

A checkpoint holds the model parameters, the optimiser state and a JSON record (the
step's loss history so far), under ``<dir>/<step>/``. Restoring needs a *template* with
the same tree structure (the freshly initialised state), so that shardings and NamedTuple
optimiser states come back exactly as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax

__all__ = ["Checkpointer"]


class Checkpointer:
    """Save/restore ``(params, opt_state, record)`` every ``every`` steps, keeping ``keep`` of them.

    Args:
      directory: checkpoint folder (created); an existing one is resumed from.
      every: save interval in steps (``save`` at other steps is a no-op unless ``force``).
      keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory: str | Path, *, every: int = 100, keep: int = 2):
        import orbax.checkpoint as ocp  # imported on use: `jfusion --help` does not load orbax

        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=max(1, int(every)), max_to_keep=keep, enable_async_checkpointing=False
        )
        self._mgr = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "record"))

    def latest_step(self) -> int | None:
        """The newest saved step, or ``None`` when the folder has no checkpoint."""
        return self._mgr.latest_step()

    def steps(self) -> tuple[int, ...]:
        """The saved steps, oldest first."""
        return tuple(sorted(self._mgr.all_steps()))

    def save(self, step: int, state: Any, record: dict, *, force: bool = False) -> bool:
        """Save ``state`` (a pytree of arrays) and ``record`` (JSON-able) at ``step``."""
        import orbax.checkpoint as ocp

        if force and step in self._mgr.all_steps():
            # A resumed run recomputes, bit for bit, steps that a killed run had saved past the checkpoint it resumed
            # from (e.g. a best-validation checkpoint); orbax refuses to write an existing step, so replace it.
            self._mgr.delete(step)
        saved = self._mgr.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)),
            force=force,
        )
        self._mgr.wait_until_finished()
        return bool(saved)

    def restore(self, template: Any, step: int | None = None) -> tuple[int, Any, dict]:
        """Restore ``(step, state, record)``; ``template`` gives the structure, dtypes and shardings."""
        import orbax.checkpoint as ocp

        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        out = self._mgr.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), record=ocp.args.JsonRestore()),
        )
        return step, out["state"], dict(out["record"])

    def close(self) -> None:
        self._mgr.close()
