"""The one registry shape behind methods, pan-sharpening / MS-HS methods and metrics.

Every registry of the package is a :class:`Registry` of frozen info dataclasses that share
:class:`Info`'s fields (``name``, ``fn``, ``tasks``, ``reference``, ``summary``). The rules are the
same everywhere:

- names are lower case (``register`` refuses others); look-ups are case-insensitive;
- a name registered twice is an error, also across the method registries (general and
  pan-sharpening methods share one name space, since :func:`jfusion.list_methods` lists both);
- the registering modules are imported lazily, on the first look-up: the loader package and every
  public module in it, so a new method or metric is one new module (no import list to edit);
- an unknown name raises :class:`jfusion.FusionInputError` (a ``ValueError``) naming the choices;
- ``list()`` returns the entries sorted by name;
- every entry carries its typed, documented keyword options (``options``, one shape for all
  registries, :mod:`jfusion.options`), checked by :func:`jfusion.options.validate_options`.

Tasks (:data:`TASKS`) are the one list of task names: the general fusion tasks, then
``"pansharpening"`` and ``"mshs"``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, TypeVar

from jfusion.errors import FusionInputError
from jfusion.options import Option

__all__ = ["Info", "Registry", "TASKS", "GENERAL_TASKS", "REMOTE_TASKS", "check_tasks"]

GENERAL_TASKS: tuple[str, ...] = ("multi-focus", "multi-exposure", "medical", "infrared-visible", "general")
REMOTE_TASKS: tuple[str, ...] = ("pansharpening", "mshs")
TASKS: tuple[str, ...] = GENERAL_TASKS + REMOTE_TASKS


def check_tasks(tasks: tuple[str, ...] | None, *, allowed: tuple[str, ...] = TASKS) -> None:
    """Raise :class:`FusionInputError` if a name in ``tasks`` is not one of ``allowed``."""
    for t in tasks or ():
        if t not in allowed:
            raise FusionInputError(f"unknown task {t!r}; pass one of {', '.join(allowed)}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Info:
    """The fields every registry entry has.

    Attributes:
      name: the registered (lower-case) name.
      fn: the pure function behind the name.
      tasks: the tasks it serves (a subset of :data:`TASKS`; empty for metrics).
      reference: the paper or code it follows.
      summary: one line for tables and ``--help``.
      options: the typed, documented keyword options (:class:`jfusion.options.Option`), built at
        registration from the function's signature and the registration's declarations;
        :func:`jfusion.options.validate_options` checks calls against them.
    """

    label: ClassVar[str] = "entry"

    name: str
    fn: Callable[..., Any]
    tasks: tuple[str, ...] = ()
    reference: str = ""
    summary: str = ""
    options: tuple[Option, ...] = ()

    def option(self, name: str) -> Option:
        """The spec of one option (KeyError if ``name`` is not an option)."""
        for o in self.options:
            if o.name == name:
                return o
        raise KeyError(name)


InfoT = TypeVar("InfoT", bound=Info)


def first_line(fn: Callable[..., Any]) -> str:
    """The first line of ``fn``'s docstring ('' without one)."""
    doc = (fn.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


class Registry(Generic[InfoT]):
    """Name -> :class:`Info` map with the package's one set of rules (see the module docstring).

    Args:
      kind: what is registered, for messages (``"method"``, ``"metric"``, ...).
      loader: the module whose import registers every entry (imported on the first look-up), or
        several such modules.
      namespace: registries that share a name space (a name may be in only one of them).
    """

    def __init__(self, kind: str, *, loader: str | tuple[str, ...], namespace: list[Registry[Any]] | None = None) -> None:
        self.kind = kind
        self._loaders = (loader,) if isinstance(loader, str) else tuple(loader)
        self._entries: dict[str, InfoT] = {}
        self._namespace = namespace if namespace is not None else []
        self._namespace.append(self)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for loader in self._loaders:
            package = importlib.import_module(loader)
            for mod in pkgutil.iter_modules(getattr(package, "__path__", [])):
                if not mod.name.startswith("_"):
                    importlib.import_module(f"{loader}.{mod.name}")

    def add(self, info: InfoT) -> InfoT:
        """Register ``info`` under ``info.name``; ``ValueError`` for a non-lower-case or taken name."""
        if info.name != info.name.lower() or not info.name:
            raise ValueError(f"{self.kind} name {info.name!r}: registered names are non-empty and lower case")
        for reg in self._namespace:
            if info.name in reg._entries:
                raise ValueError(f"{self.kind} {info.name!r} registered twice (already a {reg.kind})")
        self._entries[info.name] = info
        return info

    def get(self, name: str) -> InfoT:
        """The entry of ``name`` (case-insensitive); :class:`FusionInputError` naming the choices."""
        self._load()
        key = str(name).lower()
        if key not in self._entries:
            raise FusionInputError(f"unknown {self.kind} {name!r}; registered: {', '.join(sorted(self._entries))}.")
        return self._entries[key]

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[InfoT]:
        return iter(self.list())

    def list(self, predicate: Callable[[InfoT], bool] | None = None) -> list[InfoT]:
        """Entries sorted by name, only those for which ``predicate`` holds when given."""
        self._load()
        infos = sorted(self._entries.values(), key=lambda i: i.name)
        return [i for i in infos if predicate is None or predicate(i)]

    def names(self, predicate: Callable[[InfoT], bool] | None = None) -> list[str]:
        """The names of :meth:`list`."""
        return [i.name for i in self.list(predicate)]


# General fusion and pan-sharpening / MS-HS methods share one name space.
METHOD_NAMESPACE: list[Registry[Any]] = []
