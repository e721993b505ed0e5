"""The pan-sharpening / MS-HS method registry (a :class:`jfusion.registry.Registry`).

Every pan-sharpening method is a pure function ``fn(ms, pan, *, ratio, sensor, **options)``
taking the low-resolution MS ``(h, w, B)`` and the PAN ``(r h, r w)`` in sensor units and
returning ``(r h, r w, B)`` in the same units. ``ratio`` and ``sensor`` and every option are
static (hashable), so ``jax.jit(partial(fn, ratio=4, sensor="IKONOS"))`` compiles once per
shape. Learned methods also take ``bit_depth`` (their inputs are divided by ``2**bit_depth``).
MS/HS methods (family ``"mshs"``, task ``"mshs"``) take an HS cube as ``ms`` and the
high-resolution MS/RGB/PAN as ``pan``. The names share one name space with the general methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

import jax

from jfusion.options import Constraint, build_options
from jfusion.registry import METHOD_NAMESPACE, Info, Registry, first_line

__all__ = ["PansharpeningInfo", "REGISTRY", "register", "get_info", "list_pansharpening_methods"]

Family = Literal["baseline", "cs", "mra", "learned", "mshs"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PansharpeningInfo(Info):
    """What the registry knows about one pan-sharpening or MS/HS method (fields of :class:`jfusion.registry.Info` plus these).

    Attributes:
      family: ``"baseline"``, ``"cs"`` (component substitution), ``"mra"`` (multi-resolution
        analysis), ``"learned"`` or ``"mshs"``.
      learned: it loads shipped weights.
      local: its output at a pixel depends only on inputs within a bounded neighbourhood (no
        image-wide statistics), so :func:`jfusion.pansharpening.tiling.pansharpen_tiled` equals
        whole-image pan-sharpening; ``False`` for methods with global moments, regressions or PCA.
      check: the method's own requirements, ``check(ms_shape, pan_shape, *, ratio, sensor,
        options)`` raising :class:`jfusion.FusionInputError` (band counts, shipped weights for
        the sensor); run eagerly by :func:`jfusion.pansharpening.prepare`, never by ``fn``.
    """

    label: ClassVar[str] = "pan-sharpening method"

    family: Family
    learned: bool = False
    local: bool = False
    check: Callable[..., None] | None = None


REGISTRY: Registry[PansharpeningInfo] = Registry("pan-sharpening method", loader="jfusion.pansharpening", namespace=METHOD_NAMESPACE)


def register(
    name: str,
    *,
    family: Family,
    reference: str,
    local: bool = False,
    check: Callable[..., Any] | None = None,
    options: Mapping[str, Constraint] | None = None,
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator registering ``fn(ms, pan, *, ratio, sensor, **options)`` under ``name`` (``check``: see :class:`PansharpeningInfo`).

    ``options`` declares doc, choices or bounds of keyword options (:func:`jfusion.options.opt`).
    ``ratio``, ``sensor`` and ``bit_depth`` are arguments of :func:`jfusion.pansharpen` itself.
    """

    def deco(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        REGISTRY.add(PansharpeningInfo(
            name=name, fn=fn, family=family, reference=reference, learned=family in ("learned", "mshs"), local=local,
            check=check,
            tasks=("mshs",) if family == "mshs" else ("pansharpening",), summary=first_line(fn),
            options=build_options(fn, declared=options),
        ))
        return fn

    return deco


def get_info(name: str) -> PansharpeningInfo:
    """The :class:`PansharpeningInfo` of ``name`` (:class:`FusionInputError` naming the choices if unknown)."""
    return REGISTRY.get(name)


def list_pansharpening_methods(*, family: Family | None = None) -> list[PansharpeningInfo]:
    """Registered pan-sharpening methods sorted by name (only one ``family`` when given)."""
    return REGISTRY.list(None if family is None else (lambda m: m.family == family))
