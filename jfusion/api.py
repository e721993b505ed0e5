"""The public face: ``fuse``, ``pansharpen``, ``evaluate``, the registry look-ups.

These are the only functions that check their input eagerly; they raise
:class:`jfusion.FusionInputError` and then call the pure (jit-compiled) method.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jfusion.errors import FusionInputError, validate_sources
from jfusion.methods.registry import MethodInfo, check_size, get_info, get_method
from jfusion.options import validate_options
from jfusion.registry import TASKS, Info, check_tasks

__all__ = ["fuse", "get_method", "list_methods", "pansharpen", "evaluate", "MethodInfo", "TASKS"]


def list_methods(*, task: str | None = None) -> list[Info]:
    """Every registered method of the package, sorted by name: general fusion, pan-sharpening and MS/HS.

    Args:
      task: only the methods for one of :data:`jfusion.registry.TASKS` (``"multi-focus"``, ...,
        ``"pansharpening"``, ``"mshs"``).

    Returns:
      :class:`jfusion.methods.registry.MethodInfo` and
      :class:`jfusion.pansharpening.registry.PansharpeningInfo` entries (both
      :class:`jfusion.registry.Info`: ``name``, ``fn``, ``tasks``, ``reference``, ``summary``).
    """
    from jfusion.methods.registry import REGISTRY as methods
    from jfusion.pansharpening.registry import REGISTRY as remote

    check_tasks((task,) if task is not None else None)
    infos = methods.list() + remote.list()
    return sorted((i for i in infos if task is None or task in i.tasks), key=lambda i: i.name)


@functools.lru_cache(maxsize=128)
def _compiled(name: str, options: tuple[tuple[str, Any], ...]) -> Callable[[jax.Array], jax.Array]:
    info = get_info(name)
    return jax.jit(functools.partial(info.fn, **dict(options)))


def fuse(sources: Sequence[ArrayLike] | ArrayLike, *, method: str = "laplacian", **options: Any) -> jax.Array:
    """Fuse the sources of one scene with a registered method.

    Args:
      sources: S >= 2 images of one scene, a sequence of ``(H, W)`` / ``(H, W, C)`` arrays or one
        stacked array ``(S, H, W[, C])``; float in [0, 1], uint8 or uint16. Grey and RGB may be mixed.
        A single 3-D array whose last axis has 1, 3 or 4 entries is one ``(H, W, C)`` image and
        is refused (one source); pass such a grey stack as a list.
      method: a registered name (``jfusion.list_methods()``).
      **options: the method's keyword options, checked against its typed spec
        (``jfusion methods NAME`` or ``get_info(method).options`` lists them; values are
        converted to the declared types; hashable values are compiled once per shape).

    Returns:
      The fused image as a float32 JAX array with the shape of one (promoted) source (for the
      super-resolution methods, ``uwt-srcnn`` and ``srcnn-fusion``, ``scale`` times larger in H and W:
      ``get_info(method).output_shape(shape, options)``), in
      [0, 1] for every method: the result is clipped at the end (``clip=False`` keeps the raw
      reconstruction, which may overshoot near strong edges).

    Raises:
      FusionInputError: fewer than two sources, sizes or band counts that differ, empty
        images, NaN/Inf, unsupported dtypes or values outside [0, 1], images smaller than
        the method's ``min_size``; unknown options, option values of the wrong type (2.5 for
        an int), out of range or not among the choices.

    Warns:
      jfusion.tiling.LargeImageWarning: the method's estimated working memory for these sources
        is more than half the available memory; the message gives the
        :func:`jfusion.tiling.fuse_tiled` call that fuses it in bounded memory.

    Sources already on a device (``jax.Array``) are validated there and never copied to the
    host and back.
    """
    info = get_info(method)
    options = validate_options(info, options)
    stack = validate_sources(sources, min_sources=info.min_sources, max_sources=info.max_sources, keep_device=True)
    check_size(info, stack.shape, options=options)
    _warn_if_large(info.name, stack.shape, options)
    stack = jnp.asarray(stack)
    try:
        key = tuple(sorted(options.items()))
        hash(key)
    except TypeError:
        return info.fn(stack, **options)
    return _compiled(method, key)(stack)


def _warn_if_large(method: str, shape: tuple[int, ...], options: dict[str, Any]) -> None:
    from jfusion.tiling import LargeImageWarning, memory_advice

    advice = memory_advice(method, shape, options)
    if advice is not None:
        import warnings

        warnings.warn(advice, LargeImageWarning, stacklevel=3)


def pansharpen(ms: ArrayLike, pan: ArrayLike, *, method: str = "gsa", **options: Any) -> jax.Array:
    """Pan-sharpen a multispectral image; see :func:`jfusion.pansharpening.pansharpen`."""
    from jfusion.pansharpening import pansharpen as _pansharpen

    return _pansharpen(ms, pan, method=method, **options)


def evaluate(sources: Any, fused: ArrayLike, *, metrics: Sequence[str] | None = None, **options: Any) -> dict[str, float]:
    """Objective fusion metrics; see :func:`jfusion.metrics.evaluate`."""
    from jfusion.metrics import evaluate as _evaluate

    return _evaluate(sources, fused, metrics=metrics, **options)
