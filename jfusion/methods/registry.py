"""The method registry: every general fusion method registers its pure function here.

A method's *core* is written for one channel, sources stacked as ``(S, H, W)``
(``colour="ycbcr"``), or for the images as given (``colour="native"``, e.g. Mertens
exposure fusion which needs RGB). :func:`register` wraps the core into the public pure
function ``fn(sources, **options)`` that accepts ``(S, H, W)`` and ``(S, H, W, C)`` and
routes colour through the one shared YCbCr helper (:mod:`jfusion.methods.colour`).
That wrapped function is what :func:`jfusion.get_method` returns: no eager checks, so
``jax.jit(jax.vmap(fn))`` runs over a batch of scenes.

One output rule for every method: the public function clips its result to [0, 1] at the end
(after YCbCr -> RGB for colour), unless called with ``clip=False`` (the raw result, e.g. for
gradients or comparisons with unclipped reference code). ``clip`` is therefore an option of
every method, also of those whose core has no such argument (the sparse and CNN methods, whose
reconstructions overshoot [0, 1] near strong edges), and it defaults to True everywhere.

A method's options are its core's keyword-only arguments (plus ``clip``), typed and documented
in :attr:`MethodInfo.options` (:mod:`jfusion.options`); ``register(..., options=...)``
declares the doc, choices or bounds a signature cannot carry.
Each entry also declares its spatial :class:`Support` for given options (``support=``): how many
pixels of context make a tile's result equal the whole image's, and the window-offset
granularity that keeps a decimating transform's sampling grid. :func:`jfusion.tiling.fuse_tiled`
derives its halo and alignment from it and refuses methods whose support is unbounded (image-wide
statistics, periodic borders, image-size-dependent depths), naming the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import jax
import jax.numpy as jnp

from jfusion.errors import FusionInputError
from jfusion.methods.colour import fuse_channels
from jfusion.options import COMMON, Constraint, Option, build_options
from jfusion.registry import GENERAL_TASKS, METHOD_NAMESPACE, Info, Registry, check_tasks, first_line

__all__ = ["MethodInfo", "Support", "REGISTRY", "register", "get_method", "get_info", "list_methods", "check_size", "TASKS"]

TASKS = GENERAL_TASKS

ColourMode = Literal["ycbcr", "native"]


@dataclasses.dataclass(frozen=True)
class Support:
    """The spatial reach of a method for given options (what tiling needs to be exact).

    Attributes:
      halo: pixels of context on each side of a tile after which the output of the tile's pixels no
        longer depends on anything farther away (an upper bound of the support radius, including the
        method's own border handling); ``None`` when the support is unbounded for these options.
      align: window offsets must be multiples of this (``2**levels`` for pyramids and wavelets, the
        block size of block rules, the patch stride of patch methods), so the windows keep the
        whole image's sampling grid; 1 for shift-invariant methods.
      reason: for an unbounded support, why (and which options would bound it).
      periodic: ``m > 0`` for a method that extends the image symmetrically to a multiple of ``m``
        and treats that as periodic (the SWT): windows at an image border then carry the opposite
        border's context at their far end, where the window's own periodic wrap reads it.
    """

    halo: int | None
    align: int = 1
    reason: str = ""
    periodic: int = 0

    @property
    def bounded(self) -> bool:
        return self.halo is not None

    @staticmethod
    def unbounded(reason: str, *, align: int = 1) -> "Support":
        return Support(None, align, reason)


def _image_wide(options: Mapping[str, Any]) -> Support:
    del options
    return Support.unbounded("it uses image-wide statistics")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MethodInfo(Info):
    """What the registry knows about one general fusion method (fields of :class:`jfusion.registry.Info` plus these).

    Attributes:
      core: the one-channel (or native-colour) function that ``fn`` wraps.
      colour: ``"ycbcr"`` (the shared colour helper) or ``"native"``.
      min_sources, max_sources: how many sources it takes.
      weights: the shipped asset it loads, if any: a path relative to the ``jfusion`` package
        (``"weights/focus_cnn"``, ``"sparse/dictionaries/csr32.npz"``); see :attr:`weights_path`.
      min_size: the smallest image side it takes: a number, the name of the option that sets it
        (``"patch"`` for ``sr``), or a function of the call's options (the core's defaults filled
        in). The eager boundary (:func:`jfusion.fuse`, :func:`jfusion.fuse_tiled`) checks it with
        :func:`check_size`; the pure ``fn`` never does.
      support: ``support(options) -> Support`` for the method's options (defaults filled in); see
        :meth:`support_for`.
      working_bytes: estimated peak working memory per pixel of one source channel (bytes), for
        the large-image warning of :func:`jfusion.fuse`.
      scale_option: for a super-resolution fusion method, the option giving the magnification: the
        output is ``scale`` times larger than the sources (:meth:`output_shape`); ``None``: same size.
    """

    label: ClassVar[str] = "method"

    core: Callable[..., jax.Array]
    colour: ColourMode = "ycbcr"
    min_sources: int = 2
    max_sources: int | None = None
    weights: str | None = None
    min_size: int | str | Callable[[Mapping[str, Any]], int] = 1

    support: Callable[[Mapping[str, Any]], Support] = _image_wide
    working_bytes: int = 256
    scale_option: str | None = None

    def output_scale(self, options: Mapping[str, Any] | None = None) -> int:
        """How many times larger than the sources the output is with ``options`` (1 unless :attr:`scale_option`)."""
        if self.scale_option is None:
            return 1
        return int(self.options_with_defaults(dict(options or {}))[self.scale_option])

    def output_shape(self, shape: tuple[int, ...], options: Mapping[str, Any] | None = None) -> tuple[int, ...]:
        """The fused image's shape for one (promoted) source of ``shape`` ``(H, W[, C])``: ``H, W`` times :meth:`output_scale`."""
        k = self.output_scale(options)
        return (int(shape[0]) * k, int(shape[1]) * k, *shape[2:])

    @property
    def weights_path(self) -> Path | None:
        """Where the shipped asset :attr:`weights` lies (``None`` for a method without one)."""
        return None if self.weights is None else Path(__file__).resolve().parents[1] / self.weights

    @property
    def has_weights(self) -> bool:
        """Whether the method can run as installed: no asset needed, or its asset is present."""
        path = self.weights_path
        return path is None or path.exists()

    def required_size(self, options: Mapping[str, Any] | None = None) -> int:
        """The smallest image side this method takes with ``options``."""
        if isinstance(self.min_size, str):
            return int(dict(options or {}).get(self.min_size, self.option(self.min_size).default))
        if not callable(self.min_size):
            return int(self.min_size)
        defaults = {
            k: p.default for k, p in inspect.signature(self.core).parameters.items() if p.default is not p.empty
        }
        return int(self.min_size({**defaults, **dict(options or {})}))

    def options_with_defaults(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` completed with the core's keyword defaults."""
        params = inspect.signature(self.core).parameters.values()
        full = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY and p.default is not p.empty}
        full.update(options)
        return full

    def support_for(self, options: Mapping[str, Any]) -> Support:
        """The :class:`Support` of this method with ``options`` (the core's defaults filled in)."""
        return self.support(self.options_with_defaults(options))


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
    options: Mapping[str, Constraint] | None = None,
    min_size: int | str | Callable[[Mapping[str, Any]], int] = 1,
    support: Callable[[Mapping[str, Any]], Support] = _image_wide,
    working_bytes: int = 256,
    scale_option: str | None = None,
) -> Callable[[Callable[..., jax.Array]], Callable[..., jax.Array]]:
    """Decorator registering a core fusion function under ``name``; returns the public function.

    ``options`` declares, per keyword option of the core, what its signature cannot say
    (:func:`jfusion.options.opt`: doc, choices, bounds). ``min_size`` declares the smallest image
    side (see :class:`MethodInfo`); the boundary checks it.
    ``support(options) -> Support`` declares the method's spatial reach (default: image-wide,
    so :func:`jfusion.tiling.fuse_tiled` refuses it); ``working_bytes`` its working memory per
    source pixel and channel. ``scale_option`` names the option by which a super-resolution method's
    output is larger than its sources (the colour helper then upsamples the chroma to the output).
    """
    check_tasks(tasks, allowed=TASKS)

    def deco(core: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
        clip_param = inspect.signature(core).parameters.get("clip")
        core_clips = clip_param is not None
        if core_clips and clip_param.default is not True:
            raise ValueError(f"method {name!r}: a core's clip option defaults to True (the one output rule)")
        clip_option = Option(name="clip", types=("bool",), default=True, doc=COMMON["clip"].doc)
        spec = build_options(core, declared=options, extra=(clip_option,))

        @functools.wraps(core)
        def public(sources, **opts):
            # The one output rule: clip to [0, 1] at the end unless clip=False (RGB after YCbCr).
            clip = bool(opts.get("clip", True))
            core_opts = opts if core_clips else {k: v for k, v in opts.items() if k != "clip"}
            if colour == "native":
                out = core(sources, **core_opts)
            else:
                out = fuse_channels(functools.partial(core, **core_opts), sources, clip=clip)
            return jnp.clip(out, 0.0, 1.0) if clip else out

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
            support=support,
            working_bytes=int(working_bytes),
            scale_option=scale_option,
            summary=first_line(core),
            options=spec,
            min_size=min_size,
        ))
        return public

    return deco


def get_info(name: str) -> MethodInfo:
    """The :class:`MethodInfo` of a registered method (:class:`FusionInputError` naming the choices if unknown)."""
    return REGISTRY.get(name)


def get_method(name: str) -> Callable[..., jax.Array]:
    """The pure function behind ``name``: ``fn(sources, **options) -> fused`` (no eager checks)."""
    return get_info(name).fn


def list_methods(*, task: str | None = None) -> list[MethodInfo]:
    """Registered general fusion methods, sorted by name; only those for ``task`` when given.

    :func:`jfusion.list_methods` lists these and the pan-sharpening / MS-HS methods together.
    """
    check_tasks((task,) if task is not None else None, allowed=TASKS)
    return REGISTRY.list(None if task is None else (lambda m: task in m.tasks))
