"""Every public default is keyword-only (issue 12 item 7; dm_pix's ``test_kwarg_only_defaults``).

Walks every importable jfusion module with :mod:`pkgutil`. A module is public when no part of
its dotted name starts with ``_``; its public callables are the names without a leading
underscore that it defines itself, or re-exports from a private jfusion module (the
``_registry.py`` / ``_common.py`` pattern), and ``__init__`` of its public classes (dataclasses
and NamedTuples excluded: their generated ``__init__`` takes fields positionally by design).
Every parameter of those with a default must be keyword-only: ``def f(x, y, *, levels=4)``.

``tools/kwonly.py`` rewrites definitions and call sites to this form.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import jfusion

# qualified name -> why its defaults stay positional (an external protocol fixes the signature).
EXCEPTIONS: dict[str, str] = {}

# Modules that need an optional dependency (skipped when it is missing, checked when present).
OPTIONAL = {"jfusion.data.tfds_focus": "tensorflow_datasets"}


def _is_private(modname: str) -> bool:
    return any(part.startswith("_") for part in modname.split("."))


def _modules() -> Iterator[ModuleType]:
    yield jfusion
    for info in pkgutil.walk_packages(jfusion.__path__, "jfusion."):
        if _is_private(info.name):
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:
            if info.name not in OPTIONAL:
                raise


def _defining_module(obj: Any) -> str:
    return getattr(inspect.unwrap(obj), "__module__", "") or ""


def _owned(name: str, obj: Any, mod: ModuleType) -> bool:
    """Defined in ``mod``, or in a private jfusion module and re-exported by ``mod`` (in its ``__all__``)."""
    where = _defining_module(obj)
    if where == mod.__name__:
        return True
    return where.startswith("jfusion.") and _is_private(where) and name in getattr(mod, "__all__", ())


def public_callables() -> dict[str, Callable[..., Any]]:
    """``{qualified name: function}`` for every public function and public class ``__init__``."""
    out: dict[str, Callable[..., Any]] = {}
    for mod in _modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or not _owned(name, obj, mod):
                continue
            if inspect.isclass(obj):
                if dataclasses.is_dataclass(obj) or issubclass(obj, tuple) or "__init__" not in obj.__dict__:
                    continue
                out[f"{_defining_module(obj)}.{obj.__qualname__}.__init__"] = obj.__dict__["__init__"]
            elif inspect.isfunction(inspect.unwrap(obj)):
                fn = inspect.unwrap(obj)
                out[f"{fn.__module__}.{fn.__qualname__}"] = obj
    return out


def positional_defaults(fn: Callable[..., Any]) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.default is not p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def test_the_walk_sees_the_package():
    names = public_callables()
    # a sample across layers, so an empty or broken walk cannot pass the test below
    for q in ("jfusion.api.fuse", "jfusion.sparse.cbpdn.cbpdn", "jfusion.transforms.pyramids.laplacian_pyramid",
              "jfusion.pansharpening.pansharpen", "jfusion.models.focus_cnn.WeightNet.__init__"):
        assert q in names, q
    assert len(names) > 200


def test_kwarg_only_defaults():
    names = public_callables()
    bad = {q: ps for q, fn in names.items() if q not in EXCEPTIONS and (ps := positional_defaults(fn))}
    assert not bad, "defaults that are not keyword-only (run `python tools/kwonly.py`):\n" + "\n".join(
        f"  {q}: {', '.join(ps)}" for q, ps in sorted(bad.items())
    )
    stale = [q for q in EXCEPTIONS if q not in names or not positional_defaults(names[q])]
    assert not stale, f"exceptions no longer needed: {stale}"
