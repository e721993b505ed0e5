"""``cnn-regression``: end-to-end fusion by a regression-type CNN (the survey's Fig. 5, Section 5.1).

The sources go through the network of :mod:`jfusion.models.regression` (DeepFuse's layers: a shared
encoder per source, a fusion layer symmetric in the sources, a decoder) and come out as the fused image;
no weight map, no rule. Networks are trained per task on synthetic scenes with ground truth (exposure
stacks rendered from a radiance; blur masks over sharp natural images), with 2 and 3 sources; they take
any ``S >= 2``. ``task="multi-exposure"`` (the default) uses the shipped ``cnn_regression_exposure``,
``task="multi-focus"`` the shipped ``cnn_regression_focus`` (one network per task: the two-task runs did not
beat averaging on multi-focus validation, :mod:`jfusion.training.regression`). Colour goes through the
shared YCbCr helper (the network fuses Y).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jfusion import assets
from jfusion.errors import FusionInputError
from jfusion.methods.registry import Support, register
from jfusion.models.regression import RegressionFusionNet, RegressionNetConfig, halo
from jfusion.options import opt
from jfusion.weights import WEIGHTS_DIR, cached_loader

__all__ = ["TASKS", "default_weights", "read_model", "load_regression", "cnn_regression"]

TASKS = ("multi-exposure", "multi-focus")


def default_weights(task: str) -> str:
    """The shipped weights folder of ``task``: ``cnn_regression_exposure`` / ``cnn_regression_focus``."""
    return "cnn_regression_" + task.split("-")[1]


@cached_loader(maxsize=8, asset=True)
def _read(path: str) -> tuple[tuple, dict[str, Any]]:
    asset = assets.read_asset(path)
    if asset.manifest.get("model") != "cnn-regression":
        raise FusionInputError(f"weights={path!r}: holds a {asset.manifest.get('model')!r} network, not cnn-regression's; "
                               "pass weights written by `jfusion train cnn-regression`.")
    model = RegressionFusionNet(config=RegressionNetConfig.from_dict(asset.manifest["config"]), rngs=nnx.Rngs(0))
    return assets.split_with_arrays(model, asset.arrays), asset.manifest


def read_model(path: str | Path) -> RegressionFusionNet:
    """The network stored as the asset ``path`` (``<folder>/weights``)."""
    (graphdef, params, rest), _ = _read(Path(path))
    with jax.ensure_compile_time_eval():
        return nnx.merge(graphdef, params, rest)


def load_regression(*, weights: str | None = None, task: str = "multi-exposure") -> RegressionFusionNet:
    """The network of ``weights``: ``None`` for the shipped network of ``task``, a shipped name, or a folder holding
    ``weights.npz`` / ``weights.json`` written by ``jfusion train cnn-regression``.

    Raises:
      FusionInputError: no such weights, an unknown task, or another network's weights.
    """
    if task not in TASKS:
        raise FusionInputError(f"task={task!r}: pass one of {', '.join(TASKS)}.")
    name = default_weights(task) if weights is None else str(weights)
    folder = Path(name)
    if not (folder / "weights.json").exists():
        folder = WEIGHTS_DIR / name
    if not (folder / "weights.json").exists():
        raise FusionInputError(
            f"weights={name!r} (task={task}): no such weights; the shipped ones are in {WEIGHTS_DIR} "
            f"({default_weights('multi-exposure')}, {default_weights('multi-focus')}), or train them with `jfusion train cnn-regression --task {task}` "
            "and pass weights=<its run folder>."
        )
    return read_model(folder / "weights")


def _support(o) -> Support:
    del o
    return Support(halo(RegressionNetConfig()))


@register(
    "cnn-regression",
    tasks=("multi-focus", "multi-exposure"),
    reference="Liu, Chen, Wang, Wang, Ward, Wang, Deep learning for pixel-level image fusion, Inf. Fusion 42 (2018), "
    "Fig. 5 (regression-type framework); layers of DeepFuse: Prabhakar, Srikar, Babu, ICCV 2017",
    weights="weights/cnn_regression_exposure",
    options={"task": opt(doc="which shipped network: multi-exposure (cnn_regression_exposure) or multi-focus (cnn_regression_focus)", choices=TASKS),
             "weights": opt(doc="None: the shipped network of the task; or a folder of weights written by `jfusion train cnn-regression`")},
    min_size=1,
    support=_support,
    working_bytes=1024,
)
def cnn_regression(sources: ArrayLike, *, task: str = "multi-exposure", weights: str | None = None) -> jax.Array:
    """End-to-end CNN fusion (the survey's regression-type framework).

    Args:
      sources: ``(S, H, W)`` in [0, 1], ``S >= 2`` (colour through the registry's YCbCr helper).
      task: ``"multi-exposure"`` or ``"multi-focus"`` (which shipped network ``weights=None`` means).
      weights: the network (``None``: shipped ``cnn_regression_<exposure|focus>``).

    Returns:
      ``(H, W)`` fused image (raw; the registry clips to [0, 1]).
    """
    model = load_regression(weights=weights, task=task)
    if model.config.kernels != RegressionNetConfig().kernels:
        raise FusionInputError(f"weights={weights!r}: kernels {model.config.kernels} differ from the registered support's "
                               f"{RegressionNetConfig().kernels}; retrain with the default kernels.")
    x = jnp.asarray(sources, jnp.float32)
    return model(x[None])[0]
