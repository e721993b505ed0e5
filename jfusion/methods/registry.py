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
from collections.abc import Callable
from typing import Literal

import jax

from jfusion.methods.colour import fuse_channels

__all__ = ["MethodInfo", "register", "get_method", "get_info", "list_methods", "TASKS"]

TASKS = ("multi-focus", "multi-exposure", "medical", "infrared-visible", "general")

ColourMode = Literal["ycbcr", "native"]


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about one method."""

    name: str
    fn: Callable[..., jax.Array]
    core: Callable[..., jax.Array]
    tasks: tuple[str, ...]
    reference: str
    colour: ColourMode = "ycbcr"
    min_sources: int = 2
    max_sources: int | None = None
    weights: str | None = None
    summary: str = ""


_REGISTRY: dict[str, MethodInfo] = {}


def register(
    name: str,
    *,
    tasks: tuple[str, ...],
    reference: str,
    colour: ColourMode = "ycbcr",
    min_sources: int = 2,
    max_sources: int | None = None,
    weights: str | None = None,
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator registering a core fusion function under ``name``; returns the public function."""
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"unknown task {t!r}; known: {TASKS}")

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

        summary = (core.__doc__ or "").strip().splitlines()[0] if core.__doc__ else ""
        _REGISTRY[name] = MethodInfo(
            name=name,
            fn=public,
            core=core,
            tasks=tuple(tasks),
            reference=reference,
            colour=colour,
            min_sources=min_sources,
            max_sources=max_sources,
            weights=weights,
            summary=summary,
        )
        return public

    return deco


def _load_all() -> None:
    # Importing the method modules registers them; done lazily to keep import cheap.
    import jfusion.methods  # noqa: F401


def get_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method (``ValueError`` naming the choices if unknown)."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def get_method(name: str) -> Callable[..., jax.Array]:
    """The pure function behind ``name``: ``fn(sources, **options) -> fused`` (no eager checks)."""
    return get_info(name).fn


def list_methods(task: str | None = None) -> list[MethodInfo]:
    """Registered methods, sorted by name; only those for ``task`` when given."""
    _load_all()
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {TASKS}")
    infos = sorted(_REGISTRY.values(), key=lambda m: m.name)
    return [m for m in infos if task is None or task in m.tasks]
