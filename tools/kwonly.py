"""Make every public default keyword-only, and rewrite the calls that pass them positionally.

Usage (from anywhere; idempotent, so it can be rerun after other branches land)::

    python tools/kwonly.py            # rewrite in place, print what changed and what to check by hand
    python tools/kwonly.py --check    # change nothing; exit 1 if something would change

1. **Definitions** (``jfusion/**/*.py``): in every public top-level function (name without a
   leading underscore) and the ``__init__`` of every public top-level class that is not a
   dataclass or NamedTuple, a ``*`` goes before the first positional parameter with a default
   (an existing bare ``*`` is removed, so the parameters after it stay keyword-only). Skipped
   and reported: defaults on positional-only parameters, signatures with ``*args`` (a ``*``
   cannot go before ``*args`` without changing what it collects), and :data:`SKIP`.
2. **Calls** in ``jfusion/``, ``tests/``, ``benchmarks/``, ``tools/``, the code cells of
   ``notebooks/*.ipynb`` and the ``python`` code blocks of ``README.md``: a call resolved to such
   a function that passes more positional arguments than the function now takes positionally
   gets the extra ones as keywords (``f(x, 4)`` -> ``f(x, levels=4)``). The extra positional
   arguments map, in order, onto the first keyword-only parameters: the ones step 1 moved.

Call targets are resolved by name through the file's imports (``from jfusion.x import f``,
``import jfusion.x as m``, ``jfusion.a.b.f(...)``), following re-exports between jfusion modules,
and, inside a jfusion module, its own top-level functions. Names a function scope rebinds are
locals and left alone. Reported for a manual fix, never guessed: a name bound both by a jfusion
import and by something else, calls with ``*args`` to a changed function, a keyword already
given, and references to a changed function that are not calls (``partial(f, ...)``,
``vmap(f)``, a callback), whose later calls cannot be seen by name.

Edits are textual insertions and deletions at AST positions, so formatting and comments stay.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "jfusion"
CALL_DIRS = ("jfusion", "tests", "benchmarks", "tools")

# "module.qualname" -> reason: definitions whose positional defaults an external protocol fixes.
SKIP: dict[str, str] = {}

MOVED: list[str] = []  # "module.qualname" of the definitions changed by this run


# ------------------------------------------------------------------------------------------
# text edits at AST positions (ast columns are UTF-8 byte offsets)
# ------------------------------------------------------------------------------------------
class Source:
    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        self.starts = [0]
        for i, b in enumerate(self.data):
            if b == 0x0A:
                self.starts.append(i + 1)
        self.edits: list[tuple[int, int, bytes]] = []  # (start, end, replacement)

    def offset(self, lineno: int, col: int) -> int:
        return self.starts[lineno - 1] + col

    def line_prefix(self, lineno: int, col: int) -> bytes:
        return self.data[self.starts[lineno - 1] : self.offset(lineno, col)]

    def insert(self, at: int, text: str) -> None:
        self.edits.append((at, at, text.encode("utf-8")))

    def replace(self, start: int, end: int, text: str) -> None:
        self.edits.append((start, end, text.encode("utf-8")))

    def result(self) -> str:
        out = self.data
        for start, end, rep in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out = out[:start] + rep + out[end:]
        return out.decode("utf-8")


# ------------------------------------------------------------------------------------------
# step 1: definitions
# ------------------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_files() -> list[Path]:
    return sorted(p for p in (ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts)


def _is_plain_class(node: ast.ClassDef) -> bool:
    """Not a dataclass and not a NamedTuple/tuple (their generated ``__init__`` takes fields positionally)."""
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "dataclass":
            return False
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name in ("NamedTuple", "tuple"):
            return False
    return True


def public_defs(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """``(qualname, def)`` of the public top-level functions and public classes' ``__init__``."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_") and _is_plain_class(node):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    yield f"{node.name}.__init__", item


def rewrite_definition(src: Source, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """Queue the edit that makes ``fn``'s defaults keyword-only; a reason string when it cannot."""
    a = fn.args
    pos = a.posonlyargs + a.args
    if not a.defaults:
        return None
    first = len(pos) - len(a.defaults)
    if first < len(a.posonlyargs):
        return "defaults on positional-only parameters"
    if a.vararg is not None:
        return "has *args (a '*' before it would change what it collects)"
    target = pos[first]
    prefix = src.line_prefix(target.lineno, target.col_offset)
    at = src.offset(target.lineno, target.col_offset)
    if prefix.strip() == b"":  # one parameter per line: the '*' gets its own line
        src.insert(at, "*,\n" + prefix.decode("utf-8"))
    else:
        src.insert(at, "*, ")
    if a.kwonlyargs:  # drop the old bare '*' between the last positional and the first keyword-only
        last = a.defaults[-1]
        start = src.offset(last.end_lineno, last.end_col_offset)
        k0 = a.kwonlyargs[0]
        end = src.offset(k0.lineno, k0.col_offset)
        region = src.data[start:end].decode("utf-8")
        stars = [m for m in re.finditer(r"\*\s*,\s*", region)]
        if len(stars) != 1 or region.count("*") != 1:
            src.edits.pop()
            return "could not find the bare '*' to move"
        m = stars[0]
        src.replace(start + len(region[: m.start()].encode()), start + len(region[: m.end()].encode()), "")
    return None


def rewrite_definitions(report: list[str]) -> dict[Path, str]:
    changed: dict[Path, str] = {}
    for path in package_files():
        text = path.read_text()
        tree = ast.parse(text)
        src = Source(text)
        mod = module_name(path)
        for qual, fn in public_defs(tree):
            if f"{mod}.{qual}" in SKIP:
                continue
            why = rewrite_definition(src, fn)
            if why:
                report.append(f"{path.relative_to(ROOT)}:{fn.lineno}: {mod}.{qual} not changed: {why}")
            elif fn.args.defaults:
                MOVED.append(f"{mod}.{qual}")
        if src.edits:
            new = src.result()
            ast.parse(new)  # never write a file that does not parse
            changed[path] = new
    return changed


# ------------------------------------------------------------------------------------------
# step 2: the index of signatures and re-exports
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Sig:
    qualname: str
    n_pos: int  # parameters a call may pass positionally (self excluded)
    kwonly: tuple[str, ...]
    vararg: bool


@dataclasses.dataclass
class ModuleIndex:
    name: str
    defs: dict[str, Sig]
    imports: dict[str, set[tuple[str, str | None]]]  # alias -> {(module, attr or None for the module)}


def _sig(qual: str, fn: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> Sig:
    a = fn.args
    n = len(a.posonlyargs) + len(a.args) - (1 if method else 0)
    return Sig(qual, n, tuple(k.arg for k in a.kwonlyargs), a.vararg is not None)


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def import_bindings(tree: ast.AST, module: str, is_package: bool) -> dict[str, set[tuple[str, str | None]]]:
    """Every import binding of a file, at any scope: alias -> {(module, attribute)}."""
    out: dict[str, set[tuple[str, str | None]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for al in node.names:
                if al.asname:
                    out.setdefault(al.asname, set()).add((al.name, None))
                else:
                    top = al.name.split(".")[0]
                    out.setdefault(top, set()).add((top, None))
        elif isinstance(node, ast.ImportFrom):
            src = _resolve_relative(module, is_package, node.level, node.module)
            for al in node.names:
                if al.name == "*":
                    continue
                out.setdefault(al.asname or al.name, set()).add((src, al.name))
    return out


def build_index(texts: dict[Path, str] | None = None) -> dict[str, ModuleIndex]:
    """Signatures, re-exports and imports of every jfusion module (``texts`` overrides files on disk)."""
    texts = texts or {}
    index: dict[str, ModuleIndex] = {}
    for path in package_files():
        tree = ast.parse(texts.get(path, path.read_text()))
        mod = module_name(path)
        defs = {q.split(".")[0]: _sig(f"{mod}.{q}", fn, method=q.endswith(".__init__")) for q, fn in public_defs(tree)}
        index[mod] = ModuleIndex(mod, defs, import_bindings(tree, mod, path.name == "__init__.py"))
    return index


Target = Sig | str  # a function signature or a module name


def resolve(index: dict[str, ModuleIndex], module: str, attr: str | None, depth: int = 0) -> Target | None:
    """What ``module.attr`` is: a public jfusion function/class (its Sig), a jfusion module, or None."""
    if depth > 20:
        return None
    if attr is None:
        return module if module in index else None
    sub = f"{module}.{attr}"
    mi = index.get(module)
    if mi is None:
        return None
    if attr in mi.defs:
        return mi.defs[attr]
    if attr in mi.imports and len(mi.imports[attr]) == 1:
        (m, a), = mi.imports[attr]
        if m == module and a is not None:  # ``from pkg import sub [as alias]`` inside pkg: its submodule
            return f"{m}.{a}" if f"{m}.{a}" in index else None
        if a is None and m == sub:
            return sub if sub in index else None
        return resolve(index, m, a, depth + 1)  # a re-export (it shadows a submodule of the same name)
    if sub in index:
        return sub
    return None


# ------------------------------------------------------------------------------------------
# step 2: calls
# ------------------------------------------------------------------------------------------
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _local_names(fn: ast.AST) -> set[str]:
    """Names a function (or lambda) binds itself: parameters, assignments, loop/with targets, nested defs."""
    names: set[str] = set()
    a = fn.args
    for arg in a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x]:
        names.add(arg.arg)
    body = fn.body if isinstance(fn.body, list) else [fn.body]
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # its own scope
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _module_rebinds(tree: ast.Module) -> set[str]:
    """Module-level names bound by assignment, loops, with, or a class/def (not imports)."""
    names: set[str] = set()
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names


class CallRewriter:
    def __init__(self, index: dict[str, ModuleIndex], moved: set[str], label: str, module: str | None, is_package: bool) -> None:
        self.index = index
        self.moved = moved
        self.label = label
        self.module = module  # the file's own module, for its bare top-level names
        self.is_package = is_package
        self.report: list[str] = []
        self.changed_calls = 0

    def rewrite(self, text: str, line_offset: int = 0, context: ast.Module | None = None) -> str:
        """Rewrite the calls of ``text``; ``context``: the whole program a fragment belongs to (a
        notebook's cells, the README's code blocks), whose imports and bindings apply to it."""
        tree = ast.parse(text)
        scope = context if context is not None else tree
        self.line_offset = line_offset
        self.src = Source(text)
        self.imports = {
            k: v for k, v in import_bindings(scope, self.module or "__main__", self.is_package).items()
            if any(m == PACKAGE or m.startswith(PACKAGE + ".") for m, _ in v)
        }
        self.rebound = _module_rebinds(scope)
        self.own = set(self.index[self.module].defs) if self.module in self.index else set()
        self._visit(tree, [])
        return self.src.result() if self.src.edits else text

    def _where(self, node: ast.AST) -> str:
        return f"{self.label}:{node.lineno + self.line_offset}"

    def _visit(self, node: ast.AST, scopes: list[set[str]]) -> None:
        if isinstance(node, _SCOPES):
            scopes = scopes + [_local_names(node)]
        if isinstance(node, ast.Call):
            self._call(node, scopes)
            for child in [*node.args, *node.keywords]:
                self._visit(child, scopes)
            self._visit_func_children(node.func, scopes)
            return
        if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            target = self._target(node, scopes)
            if isinstance(target, Sig) and self._moved(target) and not target.qualname.endswith(".__init__"):
                self.report.append(f"{self._where(node)}: {target.qualname} used as a value (not a call); check its calls by hand")
            if isinstance(node, ast.Attribute):
                self._visit_func_children(node, scopes)
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child, scopes)

    def _visit_func_children(self, func: ast.AST, scopes: list[set[str]]) -> None:
        # the callee expression itself is not a "value use"; visit what is inside it
        if isinstance(func, ast.Attribute):
            inner = func.value
            while isinstance(inner, ast.Attribute):
                inner = inner.value
            if not isinstance(inner, ast.Name):
                self._visit(inner, scopes)
        elif not isinstance(func, ast.Name):
            self._visit(func, scopes)

    def _moved(self, sig: Sig) -> bool:
        return sig.qualname in self.moved

    def _target(self, node: ast.AST, scopes: list[set[str]]) -> Target | None:
        if isinstance(node, ast.Name):
            name = node.id
            if any(name in s for s in scopes):
                return None  # a local of an enclosing function
            via_import = self.imports.get(name)
            own = name in self.own
            if via_import and (own or name in self.rebound):
                self.report.append(f"{self._where(node)}: {name!r} is both imported from jfusion and bound here; check by hand")
                return None
            if via_import:
                if len(via_import) > 1:
                    self.report.append(f"{self._where(node)}: {name!r} is imported from several places; check by hand")
                    return None
                (m, a), = via_import
                return resolve(self.index, m, a)
            if own:
                return self.index[self.module].defs[name]
            return None
        if isinstance(node, ast.Attribute):
            base = self._target(node.value, scopes)
            if isinstance(base, str):
                return resolve(self.index, base, node.attr)
        return None

    def _call(self, call: ast.Call, scopes: list[set[str]]) -> None:
        sig = self._target(call.func, scopes)
        if not isinstance(sig, Sig) or sig.vararg:
            return
        if any(isinstance(a, ast.Starred) for a in call.args):
            if self._moved(sig):
                self.report.append(f"{self._where(call)}: *args call of {sig.qualname}; check by hand")
            return
        extra = call.args[sig.n_pos :]
        if not extra:
            return
        if len(extra) > len(sig.kwonly):
            self.report.append(f"{self._where(call)}: {sig.qualname} called with too many positional arguments")
            return
        given = {k.arg for k in call.keywords}
        names = sig.kwonly[: len(extra)]
        if given & set(names):
            self.report.append(f"{self._where(call)}: {sig.qualname}: keyword already given; check by hand")
            return
        for arg, name in zip(extra, names):
            self.src.insert(self.src.offset(arg.lineno, arg.col_offset), f"{name}=")
        self.changed_calls += 1


def _program(fragments: list[str]) -> ast.Module:
    """The fragments that parse, as one module (for the imports and bindings they share)."""
    body: list[ast.stmt] = []
    for frag in fragments:
        try:
            body += ast.parse(frag).body
        except SyntaxError:
            continue
    return ast.Module(body=body, type_ignores=[])


def python_files() -> list[Path]:
    out: list[Path] = []
    for d in CALL_DIRS:
        out += sorted(p for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)
    return out


def rewrite_calls(
    index: dict[str, ModuleIndex], files: dict[Path, str], report: list[str], *, moved: set[str]
) -> tuple[dict[Path, str], int]:
    """Rewrite the calls in every file; ``files`` holds texts already changed by step 1.

    ``moved``: the functions step 1 changed in this run (their value uses are reported).
    """
    changed: dict[Path, str] = {}
    n_calls = 0
    for path in python_files():
        text = files.get(path, path.read_text())
        in_pkg = path.is_relative_to(ROOT / PACKAGE)
        rw = CallRewriter(index, moved, str(path.relative_to(ROOT)), module_name(path) if in_pkg else None, path.name == "__init__.py")
        new = rw.rewrite(text)
        report += rw.report
        n_calls += rw.changed_calls
        if new != text:
            ast.parse(new)
            changed[path] = new
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        raw = path.read_text()
        nb = json.loads(raw)
        touched = False
        context = _program(["".join(c["source"]) for c in nb.get("cells", []) if c.get("cell_type") == "code"])
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") != "code":
                continue
            code = "".join(cell["source"])
            rw = CallRewriter(index, moved, f"{path.relative_to(ROOT)}[cell {i}]", None, False)
            try:
                new = rw.rewrite(code, context=context)
            except SyntaxError:
                report.append(f"{path.relative_to(ROOT)}[cell {i}]: not plain Python (magics?); check by hand")
                continue
            report += rw.report
            n_calls += rw.changed_calls
            if new != code:
                cell["source"] = new.splitlines(keepends=True)
                touched = True
        if touched:
            changed[path] = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    readme = ROOT / "README.md"
    if readme.exists():
        text = readme.read_text()
        out, pos = [], 0
        blocks = r"^```(?:python|py)[ \t]*\n(.*?)^```"
        context = _program([m.group(1) for m in re.finditer(blocks, text, flags=re.S | re.M)])
        for m in re.finditer(blocks, text, flags=re.S | re.M):
            body = m.group(1)
            line = text.count("\n", 0, m.start(1))
            rw = CallRewriter(index, moved, "README.md", None, False)
            try:
                new = rw.rewrite(body, line_offset=line, context=context)
            except SyntaxError:
                report.append(f"README.md:{line + 1}: code block is not plain Python; check by hand")
                new = body
            report += rw.report
            n_calls += rw.changed_calls
            out += [text[pos : m.start(1)], new]
            pos = m.end(1)
        out.append(text[pos:])
        new_text = "".join(out)
        if new_text != text:
            changed[readme] = new_text
    return changed, n_calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if something would change")
    args = parser.parse_args(argv)
    report: list[str] = []
    defs = rewrite_definitions(report)
    if not args.check:
        for path, text in defs.items():
            path.write_text(text)
    index = build_index(defs)  # the rewritten definitions
    calls, n_calls = rewrite_calls(index, defs, report, moved=set(MOVED))
    if not args.check:
        for path, text in calls.items():
            path.write_text(text)
    touched = sorted({*defs, *calls})
    print(f"definitions changed in {len(defs)} file(s); {n_calls} call(s) rewritten; {len(touched)} file(s) touched")
    for path in touched:
        print(f"  {path.relative_to(ROOT)}")
    if report:
        print(f"\n{len(report)} site(s) to check by hand:")
        for line in report:
            print(f"  {line}")
    return 1 if args.check and touched else 0


if __name__ == "__main__":
    sys.exit(main())
