"""The method registry: every general fusion method registers its pure function here.

A method's *core* is written for one channel, sources stacked as ``(S, H, W)``
(``colour="ycbcr"``), or for the images as given (``colour="native"``, e.g. Mertens
exposure fusion which needs RGB). :func:`register` wraps the core into the public pure
function ``fn(sources, **options)`` that accepts ``(S, H, W)`` and ``(S, H, W, C)`` and
routes colour through the one shared YCbCr helper (:mod:`jfusion.methods.colour`).
That wrapped function is what :func:`jfusion.get_method` returns: no eager checks, so
``jax.jit(jax.vmap(fn))`` runs over a batch of scenes.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax

from jfusion.errors import FusionInputError
from jfusion.methods.colour import fuse_channels
from jfusion.registry import GENERAL_TASKS, METHOD_NAMESPACE, Info, Registry, check_tasks, first_line

__all__ = ["MethodInfo", "REGISTRY", "register", "get_method", "get_info", "list_methods", "check_size", "TASKS"]

TASKS = GENERAL_TASKS

ColourMode = Literal["ycbcr", "native"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MethodInfo(Info):
    """What the registry knows about one general fusion method (fields of :class:`jfusion.registry.Info` plus these).

    Attributes:
      core: the one-channel (or native-colour) function that ``fn`` wraps.
      colour: ``"ycbcr"`` (the shared colour helper) or ``"native"``.
      min_sources, max_sources: how many sources it takes.
      weights: the shipped asset it loads, if any.
      min_size: the smallest image side it takes: a number, or a function of the call's
        options (the core's defaults filled in) for sizes an option sets. The eager
        boundary (:func:`jfusion.fuse`, :func:`jfusion.fuse_tiled`) checks it with
        :func:`check_size`; the pure ``fn`` never does.
    """

    core: Callable[..., jax.Array]
    colour: ColourMode = "ycbcr"
    min_sources: int = 2
    max_sources: int | None = None
    weights: str | None = None
    min_size: int | Callable[[Mapping[str, Any]], int] = 1

    def required_size(self, options: Mapping[str, Any] | None = None) -> int:
        """The smallest image side this method takes with ``options``."""
        if not callable(self.min_size):
            return int(self.min_size)
        defaults = {
            k: p.default for k, p in inspect.signature(self.core).parameters.items() if p.default is not p.empty
        }
        return int(self.min_size({**defaults, **dict(options or {})}))


def check_size(info: MethodInfo, shape: tuple[int, ...], *, options: Mapping[str, Any] | None = None, what: str = "images") -> None:
    """Raise :class:`FusionInputError` if the ``(S, H, W[, C])`` ``shape`` is below ``info``'s ``min_size``."""
    need = info.required_size(options)
    h, w = int(shape[1]), int(shape[2])
    if h < need or w < need:
        raise FusionInputError(f"sources: {info.name} needs {what} of at least {need}x{need} pixels, got {h}x{w}")


REGISTRY: Registry[MethodInfo] = Registry("method", loader="jfusion.methods", namespace=METHOD_NAMESPACE)


def register(
    name: str,
    *,
    tasks: tuple[str, ...],
    reference: str,
    colour: ColourMode = "ycbcr",
    min_sources: int = 2,
    max_sources: int | None = None,
    weights: str | None = None,
    min_size: int | Callable[[Mapping[str, Any]], int] = 1,
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator registering a core fusion function under ``name``; returns the public function.

    ``min_size`` declares the smallest image side (see :class:`MethodInfo`); the boundary checks it.
    """
    check_tasks(tasks, allowed=TASKS)

    def deco(core: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        clip_param = inspect.signature(core).parameters.get("clip")
        default_clip = bool(clip_param.default) if clip_param is not None and clip_param.default is not clip_param.empty else False
        if colour == "native":
            public = core
        else:

            @functools.wraps(core)
            def public(sources, **options):
                # Methods clip to [0, 1] unless called with clip=False; RGB is clipped after YCbCr.
                return fuse_channels(
                    functools.partial(core, **options), sources, clip=bool(options.get("clip", default_clip))
                )

        REGISTRY.add(MethodInfo(
            name=name,
            fn=public,
            core=core,
            tasks=tuple(tasks),
            reference=reference,
            colour=colour,
            min_sources=min_sources,
            max_sources=max_sources,
            weights=weights,
            min_size=min_size,
            summary=first_line(core),
        ))
        return public

    return deco


def get_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method (:class:`FusionInputError` naming the choices if unknown)."""
    return REGISTRY.get(name)


def get_method(name: str) -> Callable[..., jax.Array]:
    """The pure function behind ``name``: ``fn(sources, **options) -> fused`` (no eager checks)."""
    return get_info(name).fn


def list_methods(task: str | None = None) -> list[MethodInfo]:
    """Registered general fusion methods, sorted by name; only those for ``task`` when given.

    :func:`jfusion.list_methods` lists these and the pan-sharpening / MS-HS methods together.
    """
    check_tasks((task,) if task is not None else None, allowed=TASKS)
    return REGISTRY.list(None if task is None else (lambda m: task in m.tasks))
