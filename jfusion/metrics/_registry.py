"""The metric registry (a :class:`jfusion.registry.Registry`): every metric with its direction, reference need and convention."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

from jfusion.options import Constraint, build_options
from jfusion.registry import Info, Registry

__all__ = ["MetricInfo", "REGISTRY", "register_metric", "get_metric_info", "metric_names", "list_metrics"]

Direction = Literal["higher", "lower", "zero"]
ColourRule = Literal["channels", "side_by_side", "gray"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricInfo(Info):
    """What the registry knows about one metric (fields of :class:`jfusion.registry.Info` plus these).

    Attributes:
      name: lower-case key used by :func:`jfusion.metrics.evaluate` and ``jfusion eval``.
      fn: the pure function. General metrics: ``fn(sources (S, H, W), fused (H, W), **opts) -> ()``
        on one channel; remote-sensing metrics: ``fn(reference_or_ms, fused, ...)`` on ``(H, W, B)``.
      direction: ``"higher"`` / ``"lower"`` is better, or ``"zero"`` (ideal value 0, sign meaningful).
      needs_reference: True when a ground-truth image is required (Wald's protocol).
      convention: the default convention and where it comes from (e.g. ``"vifb"``).
      family: the module that implements it.
      colour: how RGB is reduced under the reference convention: per-channel mean (``channels``),
        channels laid side by side (VIFB SF quirk, ``side_by_side``) or ``rgb2gray`` first (``gray``).
      kind: ``"fusion"`` (sources + fused), ``"remote"`` (reference + fused) or ``"remote_noref"``
        (MS + PAN + fused).
      summary: one line for tables and ``--help`` (``register_metric(description=...)``).
      inputs: the positional arguments ``fn`` takes, named from ``sources``, ``fused``,
        ``reference``, ``ms``, ``pan``.
      n_sources: the exact number of sources the metric is defined for (None: any S >= 2).
      range: ``(low, high)``, the values the default convention can take (``math.inf`` where
        unbounded), per source when ``summed``; general metrics on the 0..255 grey scale.
      ideal: the value for a perfect fusion (fused identical to every source, or to the
        reference) where the metric declares one (``None``: no such value, e.g. EN or SD).
      summed: the default convention sums over the S sources (VIFB SSIM, MI, ...): ``range`` and
        ``ideal`` are per source, multiply by S.
      symmetric: the value does not change when the sources are reordered (``kind="fusion"``) or
        when reference and fused are swapped (``kind="remote"``).
    """

    label: ClassVar[str] = "metric"

    direction: Direction
    needs_reference: bool
    convention: str
    family: str
    colour: ColourRule = "channels"
    kind: Literal["fusion", "remote", "remote_noref"] = "fusion"
    n_sources: int | None = None
    inputs: tuple[str, ...] = ("sources", "fused")
    range: tuple[float, float] = (-math.inf, math.inf)
    ideal: float | None = None
    summed: bool = False
    symmetric: bool = True


_DEFAULT_INPUTS = {
    "fusion": ("sources", "fused"),
    "remote": ("reference", "fused"),
    "remote_noref": ("ms", "pan", "fused"),
}
REGISTRY: Registry[MetricInfo] = Registry("metric", loader="jfusion.metrics")


def register_metric(
    name: str,
    *,
    direction: Direction,
    convention: str,
    needs_reference: bool = False,
    colour: ColourRule = "channels",
    kind: Literal["fusion", "remote", "remote_noref"] = "fusion",
    description: str = "",
    n_sources: int | None = None,
    inputs: tuple[str, ...] | None = None,
    range: tuple[float, float] = (-math.inf, math.inf),
    ideal: float | None = None,
    summed: bool = False,
    symmetric: bool = True,
    options: Mapping[str, Constraint] | None = None,
) -> Callable[[Callable], Callable]:
    """Decorator registering ``fn`` under ``name``; returns ``fn`` unchanged.

    ``options`` declares doc, choices or bounds of keyword options (:func:`jfusion.options.opt`);
    ``data_range`` is set by :func:`jfusion.metrics.evaluate` and cannot be passed as an option.
    """

    def deco(fn: Callable) -> Callable:
        REGISTRY.add(MetricInfo(
            name=name,
            fn=fn,
            direction=direction,
            needs_reference=needs_reference,
            convention=convention,
            family=fn.__module__.rsplit(".", 1)[-1],
            colour=colour,
            kind=kind,
            summary=description or (fn.__doc__ or "").strip().splitlines()[0],
            n_sources=n_sources,
            inputs=inputs or _DEFAULT_INPUTS[kind],
            range=(float(range[0]), float(range[1])),
            ideal=ideal,
            summed=summed,
            symmetric=symmetric,
            options=build_options(fn, declared=options),
        ))
        return fn

    return deco


def get_metric_info(name: str) -> MetricInfo:
    """The registry entry of ``name`` (case-insensitive); :class:`FusionInputError` listing the names otherwise."""
    return REGISTRY.get(name)


def metric_names(*, kind: str | None = None) -> list[str]:
    """Registered names sorted by name, optionally of one ``kind``."""
    return REGISTRY.names(None if kind is None else (lambda i: i.kind == kind))


def list_metrics(*, kind: str | None = None) -> list[MetricInfo]:
    """Registry entries (name, direction, needs_reference, convention, ...) sorted by name."""
    return REGISTRY.list(None if kind is None else (lambda i: i.kind == kind))
