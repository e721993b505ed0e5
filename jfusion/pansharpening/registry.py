"""The pan-sharpening method registry.

Every pan-sharpening method is a pure function ``fn(ms, pan, *, ratio, sensor, **options)``
taking the low-resolution MS ``(h, w, B)`` and the PAN ``(r h, r w)`` in sensor units and
returning ``(r h, r w, B)`` in the same units. ``ratio`` and ``sensor`` and every option are
static (hashable), so ``jax.jit(partial(fn, ratio=4, sensor="IKONOS"))`` compiles once per
shape. Learned methods also take ``bit_depth`` (their inputs are divided by ``2**bit_depth``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax

__all__ = ["PansharpeningInfo", "register", "get_info", "list_pansharpening_methods"]

Family = Literal["baseline", "cs", "mra", "learned", "mshs"]


@dataclasses.dataclass(frozen=True)
class PansharpeningInfo:
    """What the registry knows about one pan-sharpening method."""

    name: str
    fn: Callable[..., jax.Array]
    family: Family
    reference: str
    learned: bool = False
    summary: str = ""


_REGISTRY: dict[str, PansharpeningInfo] = {}


def register(name: str, *, family: Family, reference: str) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator registering ``fn(ms, pan, *, ratio, sensor, **options)`` under ``name``."""

    def deco(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _REGISTRY[name] = PansharpeningInfo(name, fn, family, reference, family in ("learned", "mshs"), summary)
        return fn

    return deco


def _load_all() -> None:
    import jfusion.pansharpening  # noqa: F401  (importing the package registers every method)


def get_info(name: str) -> PansharpeningInfo:
    """The :class:`PansharpeningInfo` of ``name`` (``ValueError`` naming the choices if unknown)."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown pan-sharpening method {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def list_pansharpening_methods(family: Family | None = None) -> list[PansharpeningInfo]:
    """Registered pan-sharpening methods sorted by name (only one ``family`` when given)."""
    _load_all()
    infos = sorted(_REGISTRY.values(), key=lambda m: m.name)
    return [m for m in infos if family is None or m.family == family]
