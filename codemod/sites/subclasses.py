"""Find the repo's own subclasses of torch's DistributedDataParallel.

`class MMDistributedDataParallel(DistributedDataParallel)` inherits torch's default
(False), so its calls are torch-ddp sites. A file is parsed only when the bases of one of
its class statements name a DDP class (or a name the file binds to one), decided on its
bytes; subclasses of subclasses are found by iterating on names.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from codemod.model import Fix, Kind
from codemod.sites import helpers
from codemod.sites.catalogue import KEYWORD, Api, is_torch_ddp
from codemod.sites.names import NameTable

# A class statement's bases, up to the first ")": enough to see a DDP name among them.
# Led by the literal `class` (a `^[ \t]*` start under re.M tried every line and ran 8x
# slower); `class_bases` keeps the matches that begin a line.
_CLASS_BASES = re.compile(rb"class\s+\w+\s*\(([^)]*)\)")


def class_bases(data: bytes) -> list[bytes]:
    """The bases text of every class statement in `data`, decided on bytes."""
    out = []
    match = _CLASS_BASES.search(data)
    while match is not None:
        start = match.start()
        if data[data.rfind(b"\n", 0, start) + 1 : start].strip(b" \t"):
            match = _CLASS_BASES.search(data, start + 1)  # `# subclass X(` may span a class
        else:
            out.append(match.group(1))
            match = _CLASS_BASES.search(data, match.end())
    return out


def _aliases(data: bytes, names: set[bytes]) -> set[bytes]:
    """Other names this file binds to one of `names`: `import X as Y`, `Y = mod.X`."""
    joined = b"|".join(re.escape(n) for n in sorted(names))
    found = set(re.findall(rb"\b(?:" + joined + rb")\s+as\s+(\w+)", data))
    found |= set(re.findall(rb"(?m)^[ \t]*(\w+)\s*=\s*[\w.]*\b(?:" + joined + rb")[ \t]*$", data))
    return found


def may_define_subclass(data: bytes, names: set[bytes]) -> bool:
    """Decided on bytes before any parse: a class whose bases name a DDP class (or a name
    this file binds to one) may be a subclass; most files that mention DDP hold none."""
    if not any(n in data for n in names):
        return False
    bases = class_bases(data)
    if not bases:
        return False
    wanted = names | _aliases(data, names)
    return any(re.search(rb"\b" + re.escape(n) + rb"\b", b) for b in bases for n in wanted)


@dataclass(frozen=True)
class Subclass:
    module: str  # defining module, e.g. "mmdet.core.ddp"
    name: str  # class qualname inside it
    fix: Fix


@dataclass(frozen=True)
class _ClassDef:
    module: str
    name: str
    bases: frozenset[str | None]
    init_default: str | None  # __init__'s find_unused_parameters default as source; "" = required


class Subclasses:
    """Lookup from a resolved qualified name to a repo-defined DDP subclass, and to a repo
    helper that forwards `**kwargs` into DDP (found in the same repo-wide search)."""

    def __init__(
        self, found: Iterable[Subclass] = (), forwarding: helpers.Helpers | None = None
    ) -> None:
        self._by_name: dict[str, list[Subclass]] = {}
        for sub in found:
            self._by_name.setdefault(sub.name.rsplit(".", 1)[-1], []).append(sub)
        self._helpers = forwarding or helpers.Helpers()

    def lookup(self, qualname: str) -> Subclass | None:
        module, _, name = qualname.rpartition(".")
        if not module:
            return None  # a bare name is never enough
        wanted = module.split(".")
        for sub in self._by_name.get(name, []):
            if _contains_run(sub.module.split("."), wanted):
                return sub
        return None

    def api(self, qualname: str) -> Api | None:
        sub = self.lookup(qualname)
        return Api(Kind.TORCH_DDP, sub.fix, qualname) if sub else None

    def helper(self, qualname: str) -> helpers.Helper | None:
        return self._helpers.lookup(qualname)


class PendingSubclasses(Subclasses):
    """Stands in before the repo's subclasses are known: finds none, but notes whether a
    file asked about a name that could be one, so only then is the repo searched."""

    def __init__(self) -> None:
        super().__init__()
        self.missed = False

    def api(self, qualname: str) -> Api | None:
        if "." in qualname:
            self.missed = True
        return None

    def helper(self, qualname: str) -> helpers.Helper | None:
        return self.api(qualname)  # type: ignore[return-value]  # always None


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    """`pkg.core` matches module `src.pkg.core.ddp`: src layouts and package re-exports."""
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


def discover(files: Iterable[tuple[Path, str, bytes]]) -> Subclasses:
    """Subclasses and forwarding helpers defined in `files` (absolute path, module name,
    bytes); helpers are found once the subclasses they may forward into are known."""
    pending = list(files)
    found = _subclasses(pending)
    table = Subclasses(found)
    return Subclasses(found, helpers.discover(pending, table.api, {s.name for s in found}))


def _subclasses(pending: list[tuple[Path, str, bytes]]) -> list[Subclass]:
    names = {"DistributedDataParallel"}
    parsed: set[Path] = set()
    defs: list[_ClassDef] = []
    while True:
        # A file that names a DDP class anywhere (also in `import ... as DDP`, so aliased
        # bases are found) and has a class statement may define a subclass.
        needles = {n.encode() for n in names}
        batch = [f for f in pending if f[0] not in parsed and may_define_subclass(f[2], needles)]
        if not batch:
            break
        for path, module, data in batch:
            parsed.add(path)
            defs.extend(_class_defs(data, module, path))
        found = _resolve(defs)
        new_names = {s.name.rsplit(".", 1)[-1] for s in found} - names
        if not new_names:
            return found
        names |= new_names
    return _resolve(defs)


def _resolve(defs: list[_ClassDef]) -> list[Subclass]:
    """Fixpoint: a class is a DDP subclass if a base is torch DDP or a known subclass."""
    found: dict[tuple[str, str], Subclass] = {}
    changed = True
    while changed:
        changed = False
        table = Subclasses(found.values())
        for d in defs:
            if (d.module, d.name) in found:
                continue
            parent_fix: Fix | None = None
            for base in d.bases:
                if base is None:
                    continue
                if is_torch_ddp(base):
                    parent_fix = Fix.REMOVE
                    break
                sub = table.lookup(base)
                if sub is not None:
                    parent_fix = sub.fix
                    break
            if parent_fix is None:
                continue
            found[(d.module, d.name)] = Subclass(
                d.module, d.name, own_fix(parent_fix, d.init_default)
            )
            changed = True
    return list(found.values())


def _class_defs(data: bytes, module: str, path: Path) -> list[_ClassDef]:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # a broken file defines nothing we can use; it is reported elsewhere
    table = NameTable(tree, module, path.name == "__init__.py")
    out: list[_ClassDef] = []
    for node, scope in table.scopes.items():
        if not isinstance(node, ast.ClassDef) or scope.parent is None:
            continue
        bases = frozenset(
            candidate
            for base in node.bases
            if not isinstance(base, ast.Starred)
            for candidate in table.resolve(base, scope.parent)
        )
        out.append(_ClassDef(module, scope.qualname, bases, init_default(node)))
    return out


def own_fix(parent: Fix, init_default: str | None) -> Fix:
    """A subclass removes the keyword like its parent, unless its own __init__ declares the
    parameter with a default other than False: then only writing False turns it off."""
    if init_default is None:
        return parent
    return Fix.REMOVE if init_default == "False" else Fix.WRITE_FALSE


def init_default(node: ast.ClassDef) -> str | None:
    """How the class's own __init__ declares find_unused_parameters, if it does."""
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "__init__":
            args = statement.args
            positional = [*args.posonlyargs, *args.args]
            defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
            defaults += args.defaults
            pairs = [*zip(positional, defaults), *zip(args.kwonlyargs, args.kw_defaults)]
            for arg, default in pairs:
                if arg.arg == KEYWORD:
                    return "" if default is None else ast.unparse(default)
    return None
