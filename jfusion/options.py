"""Typed, documented options of every registered method and metric, and the one check of them.

Every registered function takes its options as keyword-only arguments with a type annotation
and a default (``def f(x, *, levels: int = 4)``). At registration, :func:`build_options` turns
that signature into a tuple of :class:`Option` specs (name, type, default, doc, choices or
bounds) stored in the registry entry's ``options`` field (the same field for general methods,
pan-sharpening methods and metrics, :class:`jfusion.registry.Info`):

- the **type** comes from the annotation (``int``, ``float``, ``bool``, ``str``,
  ``tuple[int, ...]``, ``tuple[float, ...]``, arrays, ``Literal[...]`` choices, ``X | None``);
- the **doc** from the function's ``Args:`` docstring section, else the registration's
  declaration (``register(..., options={"name": opt(doc=...)})``), else the package-wide
  vocabulary :data:`COMMON` (``levels``, ``clip``, ``ratio``, ``sensor``, ...);
- **choices** from ``Literal`` annotations or ``opt(choices=...)``; **bounds** (inclusive) from
  ``opt(low=..., high=...)`` or :data:`COMMON`.

:func:`validate_options` is the one check used by :func:`jfusion.fuse`,
:func:`jfusion.pansharpen`, :func:`jfusion.evaluate` and the CLI; :func:`parse_options` converts
the CLI's ``KEY=VALUE`` strings by the declared type first. Both raise
:class:`jfusion.FusionInputError` naming the option and what to pass (unknown names list the
valid ones). Checks run once, eagerly, at the public boundary; the pure functions behind the
registry never re-check.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from jfusion.errors import FusionInputError

__all__ = ["Option", "Constraint", "opt", "build_options", "validate_options", "parse_options", "COMMON", "TYPES"]

TYPES: tuple[str, ...] = ("int", "float", "bool", "str", "tuple[int, ...]", "tuple[float, ...]", "array", "None")
"""The option types the specs use (an option's ``types`` is one or more of these)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Constraint:
    """What a registration declares about an option beyond its signature (see :func:`opt`)."""

    doc: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    fixed: str = ""


def opt(
    *,
    doc: str = "",
    choices: Iterable[Any] | None = None,
    low: float | None = None,
    high: float | None = None,
    fixed: str = "",
) -> Constraint:
    """Declare an option's doc, its allowed values (``choices``) or inclusive bounds ``[low, high]``.

    ``fixed``: the option is set by the caller (e.g. ``data_range`` by :func:`jfusion.evaluate`);
    the text says by whom, and :func:`validate_options` refuses it from users.
    """
    return Constraint(doc=doc, choices=None if choices is None else tuple(choices), low=low, high=high, fixed=fixed)


COMMON: dict[str, Constraint] = {
    "levels": opt(doc="number of decomposition levels (pyramid / wavelet depth)", low=1, high=16),
    "window": opt(doc="side of the square activity window in pixels", low=1, high=99),
    "clip": opt(doc="clip the result to [0, 1] (False keeps the raw reconstruction, e.g. for gradients)"),
    "data_range": opt(
        doc="value range of the images",
        fixed="set by jfusion.evaluate (255: metrics run on the 0..255 grey-level scale)",
    ),
    "ratio": opt(doc="PAN / MS resolution ratio (jfusion.pansharpen infers it from the shapes)", low=1, high=64),
    "sensor": opt(doc="sensor for MTF gains and learned weights: QB, IKONOS, GeoEye1, WV2, WV3 (None: generic MTF)"),
    "bit_depth": opt(doc="radiometric depth of the data in bits (inputs are divided by 2**bit_depth)", low=1, high=32),
    "interp": opt(doc="MS upsampling: '23tap' (polynomial interpolator, power-of-two ratios) or 'bicubic'"),
    "block": opt(doc="side of the square blocks / windows in pixels", low=1, high=4096),
    "win_size": opt(doc="side of the SSIM window in pixels", low=1, high=255),
    "k1": opt(doc="SSIM luminance stabiliser K1 (C1 = (K1 L)^2)", low=0.0),
    "k2": opt(doc="SSIM contrast stabiliser K2 (C2 = (K2 L)^2)", low=0.0),
    "weights": opt(doc="shipped weights asset name (jfusion.weights)"),
}
"""The package's option vocabulary: doc and bounds of options that mean the same everywhere.

A function's own docstring and its registration's declarations take precedence; bounds apply to
numeric options only."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Option:
    """One keyword option of a registered function.

    Attributes:
      name: the keyword.
      types: accepted types, from :data:`TYPES` (``("int", "None")`` for ``int | None``).
      default: the signature's default.
      doc: what it does (one or a few sentences).
      choices: the allowed values, or None.
      low, high: inclusive bounds of a numeric option (each element of a tuple option), or None.
      fixed: non-empty when the option is set by the caller, not by users (says by whom).
    """

    name: str
    types: tuple[str, ...]
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    fixed: str = ""

    @property
    def type(self) -> str:
        """The type as written in help: ``"int"``, ``"float | None"``, ``"str | array"``."""
        return " | ".join(self.types)

    def allowed(self) -> str:
        """The allowed values in words: ``"one of a, b"``, ``"in [1, 16]"``, ``">= 0"`` or ``""``."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f">= {self.low:g}"
        if self.high is not None:
            return f"<= {self.high:g}"
        return ""

    def describe(self) -> str:
        """One line: ``levels (int in [1, 16], default 4): number of decomposition levels``."""
        allowed = self.allowed()
        kind = self.type + (f" {allowed}" if allowed and self.choices is None else "")
        choice = f", {allowed}" if self.choices is not None else ""
        return f"{self.name} ({kind}{choice}, default {self.default!r}): {self.doc}"

    # ----------------------------------------------------------------------- checking
    def check(self, value: Any, *, owner: str) -> Any:
        """``value`` converted to the declared type (``2`` -> ``2.0`` for a float); FusionInputError otherwise."""
        if value is None:
            if "None" in self.types:
                return None
            self._fail(owner, value, "None is not accepted")
        errors = []
        for t in self.types:
            if t == "None":
                continue
            try:
                out = _CONVERT[t](value)
            except (TypeError, ValueError) as err:
                errors.append(str(err))
                continue
            self._check_value(out, t, owner, value)
            return out
        self._fail(owner, value, "; ".join(errors))

    def parse(self, text: str, *, owner: str) -> Any:
        """A CLI string converted by the declared type, then :meth:`check`-ed."""
        text = text.strip()
        if "None" in self.types and text.lower() in ("none", "null"):
            return None
        errors = []
        for t in self.types:
            if t == "None":
                continue
            try:
                value = _PARSE[t](text)
            except (TypeError, ValueError, SyntaxError) as err:
                errors.append(str(err))
                continue
            return self.check(value, owner=owner)
        self._fail(owner, text, "; ".join(errors))

    def _check_value(self, out: Any, t: str, owner: str, value: Any) -> None:
        if self.choices is not None and t != "array" and out not in self.choices:
            self._fail(owner, value, "not an allowed value")
        if t in ("int", "float"):
            items = (out,)
        elif t.startswith("tuple"):
            items = out
        else:
            return
        for v in items:
            if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
                self._fail(owner, value, "out of range")

    def _fail(self, owner: str, value: Any, why: str) -> typing.NoReturn:
        allowed = self.allowed()
        raise FusionInputError(
            f"{owner}: option {self.name}={value!r}: {why}; pass {self.type}"
            + (f" {allowed}" if allowed else "")
            + f" (default {self.default!r})."
        )


def _int(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected an integer, got {type(v).__name__}")
    if isinstance(v, (float, np.floating)):
        if not (math.isfinite(v) and float(v).is_integer()):
            raise ValueError(f"expected an integer, got {v!r}")
    return int(v)


def _float(v: Any) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number, got {type(v).__name__}")
    if not math.isfinite(float(v)):
        raise ValueError(f"expected a finite number, got {v!r}")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"expected True or False, got {type(v).__name__}")
    return bool(v)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {type(v).__name__}")
    return v


def _tuple(elem: Callable[[Any], Any]) -> Callable[[Any], tuple]:
    def convert(v: Any) -> tuple:
        if isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list, np.ndarray)) or len(v) == 0:
            raise TypeError(f"expected a non-empty tuple, got {type(v).__name__}")
        return tuple(elem(x.item() if isinstance(x, np.generic) else x) for x in v)

    return convert


def _array(v: Any) -> Any:
    if isinstance(v, (str, bytes)):
        raise TypeError("expected an array, got a string")
    a = np.asarray(v)
    if a.dtype.kind not in "biuf" or a.size == 0:
        raise TypeError(f"expected a non-empty numeric array, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError("the array contains NaN/Inf")
    return v


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": _str,
    "tuple[int, ...]": _tuple(_int),
    "tuple[float, ...]": _tuple(_float),
    "array": _array,
}

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse_bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        pass
    value = float(text)  # "2.0" is an integer; "2.5" fails in check()
    if not value.is_integer():
        raise ValueError(f"expected an integer, got {text!r}")
    return int(value)


def _parse_tuple(text: str) -> tuple:
    inner = text.strip().strip("()[]")
    parts = [p for p in re.split(r"[,\s]+", inner) if p]
    return tuple(ast.literal_eval(p) for p in parts)


def _no_array(text: str) -> Any:
    raise ValueError("arrays cannot be given on the command line")


_PARSE: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "float": float,
    "bool": _parse_bool,
    "str": str,
    "tuple[int, ...]": _parse_tuple,
    "tuple[float, ...]": _parse_tuple,
    "array": _no_array,
}


# ------------------------------------------------------------------------- building
_ARRAY_NAMES = {"ArrayLike", "jax.Array", "Array", "np.ndarray", "jax.typing.ArrayLike"}


def _split_union(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "|" and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def _literal_values(obj: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal[...]`` (also nested unions of Literals), else None."""
    if typing.get_origin(obj) is typing.Literal:
        return typing.get_args(obj)
    if typing.get_origin(obj) is typing.Union:
        vals: list[Any] = []
        for a in typing.get_args(obj):
            v = _literal_values(a)
            if v is None:
                return None
            vals.extend(v)
        return tuple(vals)
    return None


def _parse_annotation(annotation: Any, fn: Callable[..., Any], name: str) -> tuple[tuple[str, ...], tuple[Any, ...] | None]:
    """``(types, literal choices)`` of an annotation (a string under ``from __future__ import annotations``)."""
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    types: list[str] = []
    choices: list[Any] = []
    for part in _split_union(text):
        part = part.strip().strip("'\"")
        if part in ("None", "NoneType"):
            types.append("None")
        elif part in ("int", "float", "bool", "str"):
            types.append(part)
        elif part in ("tuple[int, ...]", "tuple[float, ...]"):
            types.append(part)
        elif part in _ARRAY_NAMES:
            types.append("array")
        else:
            obj = None
            if part.startswith(("Literal[", "typing.Literal[")):
                obj = eval(part, {"Literal": typing.Literal, "typing": typing})  # noqa: S307 - annotation text
            else:
                obj = getattr(fn, "__globals__", {}).get(part)
            values = _literal_values(obj)
            if not values:
                raise TypeError(f"{fn.__qualname__}: option {name!r} has annotation {text!r}, which jfusion.options cannot check")
            kinds = {type(v).__name__ for v in values}
            if len(kinds) != 1 or next(iter(kinds)) not in ("str", "int"):
                raise TypeError(f"{fn.__qualname__}: option {name!r}: Literal values must all be str or all int")
            types.append(next(iter(kinds)))
            choices.extend(values)
    types = sorted(dict.fromkeys(types), key=lambda t: t == "None")  # None last
    return tuple(types), (tuple(choices) if choices else None)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def arg_docs(fn: Callable[..., Any]) -> dict[str, str]:
    """The entries of the ``Args:`` section of ``fn``'s Google-style docstring: ``{name: text}``.

    An entry ``"a, b: text"`` documents both names; continuation lines are joined.
    """
    out: dict[str, str] = {}
    lines = (inspect.getdoc(fn) or "").splitlines()
    in_args, indent, current = False, None, []
    for line in lines:
        s = line.strip()
        if s in ("Args:", "Arguments:", "Parameters:", "Keyword Args:", "Options:"):
            in_args, indent, current = True, None, []
            continue
        if not in_args or not s:
            continue
        ind = len(line) - len(line.lstrip())
        if ind == 0:
            in_args = False
            continue
        if indent is None:
            indent = ind
        head, sep, text = s.partition(":")
        names = [n.strip() for n in head.split(",")]
        if ind == indent and sep and all(_IDENT.match(n) for n in names):
            current = names
            for n in names:
                out[n] = text.strip()
        elif current and ind > indent:
            for n in current:
                out[n] = (out[n] + " " + s).strip()
    return out


def build_options(
    fn: Callable[..., Any],
    *,
    declared: Mapping[str, Constraint] | None = None,
    extra: Iterable[Option] = (),
) -> tuple[Option, ...]:
    """The :class:`Option` specs of ``fn``'s keyword-only arguments (see the module docstring).

    Args:
      fn: the registered function (its keyword-only parameters are the options).
      declared: the registration's constraints per option name (doc, choices, bounds, fixed).
      extra: options the registry adds that ``fn`` itself lacks (e.g. the universal ``clip``).

    Raises:
      TypeError: an annotation the checker cannot interpret, a keyword option without a default,
        or a declaration naming no option of ``fn`` (registration-time programming errors).
    """
    declared = dict(declared or {})
    docs = arg_docs(fn)
    out: list[Option] = []
    params = inspect.signature(fn).parameters
    for name, p in params.items():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__qualname__}: keyword option {name!r} has no default")
        if p.annotation is inspect.Parameter.empty:
            raise TypeError(f"{fn.__qualname__}: keyword option {name!r} has no type annotation")
        types, literal = _parse_annotation(p.annotation, fn, name)
        dec = declared.pop(name, Constraint())
        common = COMMON.get(name, Constraint())
        numeric = any(t in ("int", "float") or t.startswith("tuple") for t in types)
        bounds_from = dec if (dec.low is not None or dec.high is not None) else (common if numeric else Constraint())
        out.append(Option(
            name=name,
            types=types,
            default=p.default,
            doc=docs.get(name) or dec.doc or common.doc,
            choices=dec.choices if dec.choices is not None else literal,
            low=bounds_from.low,
            high=bounds_from.high,
            fixed=dec.fixed or common.fixed,
        ))
    names = {o.name for o in out}
    for o in extra:
        if o.name not in names:
            out.append(o)
            names.add(o.name)
    if declared:
        raise TypeError(f"{fn.__qualname__}: declared option(s) {sorted(declared)} are not keyword options of it")
    return tuple(out)


# ------------------------------------------------------------------------- the check
def _owner(info: Any) -> str:
    return f"{getattr(type(info), 'label', 'method')} {info.name!r}"


def _lookup(info: Any, key: str, owner: str) -> Option:
    spec = {o.name: o for o in info.options}
    if key not in spec:
        valid = ", ".join(o.name for o in info.options if not o.fixed) or "(none)"
        where = "jfusion metrics" if getattr(type(info), "label", "") == "metric" else "jfusion methods"
        raise FusionInputError(
            f"{owner}: unknown option {key!r}; valid options: {valid} (`{where} {info.name}` shows their types and ranges)."
        )
    o = spec[key]
    if o.fixed:
        raise FusionInputError(f"{owner}: option {key!r} cannot be set: it is {o.fixed}.")
    return o


def validate_options(info: Any, options: Mapping[str, Any] | None, *, owner: str | None = None) -> dict[str, Any]:
    """Check ``options`` against ``info.options`` and return them converted to the declared types.

    Args:
      info: a registry entry (:class:`jfusion.registry.Info`: method, pan-sharpening method or metric).
      options: ``{name: value}`` as given to ``fuse`` / ``pansharpen`` / ``evaluate``.
      owner: how messages name the entry (default ``"method 'name'"``).

    Raises:
      FusionInputError: an unknown name (the message lists the valid ones), an option set by the
        caller (``fixed``), a value of the wrong type (2.5 for an int), outside the bounds or not
        one of the choices.
    """
    owner = owner or _owner(info)
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if not isinstance(key, str):
            raise FusionInputError(f"{owner}: option names are strings, got {key!r}.")
        out[key] = _lookup(info, key, owner).check(value, owner=owner)
    return out


def parse_options(info: Any, raw: Mapping[str, str], *, owner: str | None = None) -> dict[str, Any]:
    """CLI ``{name: "text"}`` -> typed, checked options (each text converted by its declared type)."""
    owner = owner or _owner(info)
    return {key: _lookup(info, key, owner).parse(text, owner=owner) for key, text in raw.items()}
