"""Find the repo's helpers that forward `**kwargs` into a DDP call.

`def build_ddp(model, *args, **kwargs): return MMDistributedDataParallel(model, *args,
**kwargs)` passes whatever keyword its caller gives straight on, so
`build_ddp(model, find_unused_parameters=True)` sets the flag at the helper call, and that
call is the site: removing the keyword there turns it off in the DDP call. That holds only
when the helper has no `find_unused_parameters` parameter of its own (then the keyword
binds to it, and the DDP call inside is the site), its DDP call takes `**kwargs` as its
only splat and no keyword of that name, and nothing else in the helper reads, changes or
passes on the kwargs beyond other keys (`kwargs["device_ids"] = ...`). A helper that
forwards into DDP but fails one of these is reported at its calls, never rewritten.

Helpers are found over the whole repo (decided on bytes first, like subclasses), and a
helper that forwards into another helper is followed too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codemod.sites.catalogue import DICT_KEYS, KEYWORD, Api, api_last_names, known_api
from codemod.sites.names import NameTable, Scope

_ROUNDS = 4  # helpers of helpers of helpers: enough for any repo seen

# What a callee resolves to from inside a helper: (api, why not provable) or None.
Resolver = Callable[[ast.expr, Scope], "tuple[Api, str] | None"]


@dataclass(frozen=True)
class Helper:
    module: str  # defining module, e.g. "pkg.utils.distribution"
    name: str  # top-level function name in it
    api: Api  # the DDP API the forwarded keyword reaches
    problem: str  # "" when the helper provably forwards the keyword untouched


def _splat_of(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The helper's `**kwargs` name, unless the helper takes the keyword itself."""
    args = node.args
    if args.kwarg is None:
        return None
    named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if any(a.arg == KEYWORD for a in named):
        return None
    return args.kwarg.arg


def _own_nodes(node: ast.AST) -> Iterator[tuple[ast.AST, ast.AST]]:
    """(node, parent) for the function's own nodes, not those of functions, lambdas and
    classes inside it."""
    stack = [(child, node) for child in ast.iter_child_nodes(node)]
    while stack:
        child, parent = stack.pop()
        yield child, parent
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend((grandchild, child) for grandchild in ast.iter_child_nodes(child))


def _other_key(node: ast.AST | None) -> bool:
    """A literal key that is not the setting: `kwargs["device_ids"]`, `"x" in kwargs`."""
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value not in DICT_KEYS
    )


def _key_problem(key: ast.AST | None, name: str) -> str:
    if isinstance(key, ast.Constant) and key.value in DICT_KEYS:
        return f"it reads or changes {name}[{key.value!r}]"
    return f"it reads or changes a key of **{name} that may be {KEYWORD}"


_KEY_METHODS = frozenset({"get", "setdefault", "pop"})


def forwarding(
    node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope, resolve: Resolver
) -> tuple[Api, str] | None:
    """(the DDP API, "" or why not provable) when `node` forwards `**kwargs` into DDP;
    `scope` is the function's own, where its callees are resolved."""
    name = _splat_of(node)
    if name is None:
        return None
    parents: dict[int, ast.AST] = {}
    uses: list[ast.Name] = []
    for child, parent in _own_nodes(node):
        parents[id(child)] = parent
        if isinstance(child, ast.Name) and child.id == name:
            uses.append(child)
    found: list[Api] = []
    problems: list[str] = []
    for use in uses:
        parent = parents[id(use)]
        grand = parents.get(id(parent))
        if isinstance(parent, ast.keyword) and parent.arg is None and isinstance(grand, ast.Call):
            target = resolve(grand.func, scope)
            if target is None:
                problems.append(f"it also passes **{name} to `{ast.unparse(grand.func)}`")
                continue
            found.append(target[0])
            if target[1]:
                problems.append(target[1])
            if sum(kw.arg is None for kw in grand.keywords) > 1:
                problems.append(f"its DDP call takes other `**` arguments besides **{name}")
            if any(kw.arg == KEYWORD for kw in grand.keywords):
                problems.append(f"its DDP call sets {KEYWORD} itself")
        elif isinstance(parent, ast.Subscript) and parent.value is use:
            if not _other_key(parent.slice):
                problems.append(_key_problem(parent.slice, name))
        elif isinstance(parent, ast.Compare) and use in parent.comparators:
            if not (_other_key(parent.left) and len(parent.ops) == 1):
                problems.append(_key_problem(parent.left, name))
        elif (
            isinstance(parent, ast.Attribute)
            and parent.attr in _KEY_METHODS
            and isinstance(grand, ast.Call)
            and grand.func is parent
        ):
            if not (grand.args and _other_key(grand.args[0])):
                problems.append(_key_problem(grand.args[0] if grand.args else None, name))
        else:
            problems.append(f"it also uses **{name} in other ways than passing it to DDP")
    if not found:
        return None
    fixes = {api.fix for api in found}
    if len({api.kind for api in found}) > 1 or len(fixes) > 1:
        problems.append("it forwards into DDP calls that turn the setting off differently")
    api = found[0]
    return api, problems[0] if problems else ""


class Helpers:
    """Lookup from a resolved qualified name to a repo helper that forwards into DDP."""

    def __init__(self, found: Iterable[Helper] = ()) -> None:
        self._by_name: dict[str, list[Helper]] = {}
        for helper in found:
            self._by_name.setdefault(helper.name, []).append(helper)

    def lookup(self, qualname: str) -> Helper | None:
        """By exact module first; else the one helper whose module contains the named one
        (re-exports through a package `__init__`), never a guess between several."""
        module, _, name = qualname.rpartition(".")
        if not module:
            return None
        candidates = self._by_name.get(name, [])
        exact = [h for h in candidates if h.module == module]
        if exact:
            return exact[0]
        wanted = module.split(".")
        near = [h for h in candidates if _contains_run(h.module.split("."), wanted)]
        return near[0] if len(near) == 1 else None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_name.values())


def _contains_run(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i : i + n] == needle for i in range(len(haystack) - n + 1))


# Starts with a literal so the search skips ahead fast; the column is checked apart.
_KWARGS_DEF = re.compile(rb"def[ \t]+\w+[ \t]*\([^)]*\*\*")


def _defines_kwargs_function(data: bytes) -> bool:
    """A top-level `def` (or `async def`) whose parameters take `**`."""
    for match in _KWARGS_DEF.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if data[start : match.start()] in (b"", b"async "):
            return True
    return False


@dataclass
class _Parsed:
    module: str
    table: NameTable
    functions: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, Scope]]


def _parse(data: bytes, module: str, path: Path) -> _Parsed | None:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # reported elsewhere
    table = NameTable(tree, module, path.name == "__init__.py")
    functions = [
        (node, table.scopes[node])
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.args.kwarg is not None
    ]
    return _Parsed(module, table, functions)


def discover(
    files: Iterable[tuple[Path, str, bytes]],
    ddp_api: Callable[[str], Api | None],
    ddp_names: Iterable[str] = (),
) -> Helpers:
    """Helpers defined in `files` (absolute path, module name, bytes); `ddp_api` tells
    what a qualified name is besides the catalogue (the repo's DDP subclasses, whose
    qualified names end in `ddp_names`)."""
    # a top-level `def` whose parameters take `**`: decided on bytes, before any parse
    pending = [f for f in files if b"**" in f[2] and _defines_kwargs_function(f[2])]
    last = {n.rsplit(".", 1)[-1] for n in ddp_names}
    names = {n.encode() for n in api_last_names() | last}
    parsed: dict[Path, _Parsed | None] = {}
    found: dict[tuple[str, str], Helper] = {}
    for _ in range(_ROUNDS):
        for path, module, data in pending:
            if path not in parsed and any(n in data for n in names):
                parsed[path] = _parse(data, module, path)
        table = Helpers(found.values())
        before = len(found)
        for unit in parsed.values():
            if unit is None:
                continue
            resolve = _resolver(unit.table, ddp_api, table)
            for node, scope in unit.functions:
                result = forwarding(node, scope, resolve)
                if result is not None and (unit.module, node.name) not in found:
                    api, problem = result
                    found[(unit.module, node.name)] = Helper(unit.module, node.name, api, problem)
        if len(found) == before:
            break
        names |= {name.encode() for _, name in found}
    return Helpers(found.values())


def _resolver(table: NameTable, ddp_api: Callable[[str], Api | None], helpers: Helpers) -> Resolver:
    def resolve(func: ast.expr, scope: Scope) -> tuple[Api, str] | None:
        for qualname in sorted(q for q in table.resolve(func, scope) if q):
            api = known_api(qualname) or ddp_api(qualname)
            if api is not None and not api.kind.built_later:
                return api, ""
            helper = helpers.lookup(qualname)
            if helper is not None:
                return helper.api, helper.problem
        return None

    return resolve
