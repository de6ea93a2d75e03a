"""Does a kwargs dict provably feed exactly one DDP call?

`ddp_kwargs = dict(find_unused_parameters=True)` may be rewritten only when it reaches one
DDP-family call and nothing else: bound once in a function, splatted once (`**ddp_kwargs`)
into a call that resolves to a DDP API, never read in any other way. A dict passed as
a registered keyword that an API splats into DDP itself (Ray's
`prepare_model(model, parallel_strategy_kwargs=...)`) feeds that call under the same rules.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from codemod.model import Span
from codemod.sites.catalogue import DICT_KEYS, Api, kwargs_parameter_api

if TYPE_CHECKING:
    from codemod.sites.names import NameTable, Scope


class _Finder(Protocol):
    parents: list[ast.AST]
    table: NameTable

    @property
    def scope(self) -> Scope: ...

    def api_of(
        self, func: ast.expr, args: Sequence[ast.expr] = (), scope: Scope | None = None
    ) -> Api | None: ...

    def span_of(self, node: ast.AST) -> Span: ...


def consumer(finder: _Finder, construct: ast.AST) -> tuple[Span | None, str]:
    """(span of the one DDP call fed, "") or (None, why that cannot be proven)."""
    parents = finder.parents
    index = max(i for i, node in enumerate(parents) if node is construct)
    parent = parents[index - 1] if index > 0 else None
    grand = parents[index - 2] if index > 1 else None
    if isinstance(parent, ast.keyword) and parent.arg is None and isinstance(grand, ast.Call):
        return _ddp_call(finder, grand)  # DDP(model, **dict(find_unused_parameters=True))
    name = _variable(construct, parent)
    if name is None:
        return None, "it is passed on as data, so which call receives it cannot be proven"
    scope = finder.scope
    if not isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None, f"`{name}` is a module-level name that other modules may import"
    uses = _Uses(name)
    uses.visit(scope.node)
    if len(uses.bindings) != 1 or not _is_dict(uses.bindings[0]):
        return None, f"`{name}` is bound more than once or not to a plain dict"
    if uses.other or uses.passed:
        return None, f"`{name}` is also read in other ways than one `**{name}`"
    if uses.key_stores > (1 if isinstance(construct, ast.Assign) else 0):
        return None, f"`{name}` has its key set more than once"
    if len(uses.splats) != 1:
        return None, f"`{name}` is splatted into {len(uses.splats)} calls, not exactly one"
    return _ddp_call(finder, uses.splats[0])


def parameter_consumer(finder: _Finder, construct: ast.AST) -> tuple[ast.Call, Api] | None:
    """The one call that takes this dict as a registered kwargs keyword, with its API:
    the dict is the keyword's value, or a function-local name bound once to a plain dict,
    never read except as that one keyword's value."""
    parents = finder.parents
    index = max(i for i, node in enumerate(parents) if node is construct)
    parent = parents[index - 1] if index > 0 else None
    grand = parents[index - 2] if index > 1 else None
    if isinstance(parent, ast.keyword) and isinstance(grand, ast.Call):
        return _parameter_api(finder, grand, parent.arg)
    name = _variable(construct, parent)
    scope = finder.scope
    if name is None or not isinstance(scope.node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    uses = _Uses(name)
    uses.visit(scope.node)
    if len(uses.bindings) != 1 or not _is_dict(uses.bindings[0]) or uses.other or uses.splats:
        return None
    if uses.key_stores > (1 if isinstance(construct, ast.Assign) else 0):
        return None
    if len(uses.passed) != 1:
        return None
    call, keyword = uses.passed[0]
    return _parameter_api(finder, call, keyword)


def _parameter_api(
    finder: _Finder, call: ast.Call, keyword: str | None
) -> tuple[ast.Call, Api] | None:
    if keyword is None:
        return None
    for qualname in sorted(q for q in finder.table.resolve(call.func, finder.scope) if q):
        api = kwargs_parameter_api(qualname, keyword)
        if api is not None:
            return call, api
    return None


def _ddp_call(finder: _Finder, call: ast.Call) -> tuple[Span | None, str]:
    if finder.api_of(call.func, call.args) is None:
        return None, "the call it feeds does not resolve to a DDP API"
    return finder.span_of(call), ""


def _variable(construct: ast.AST, parent: ast.AST | None) -> str | None:
    if isinstance(construct, ast.Assign):  # name["find_unused_parameters"] = True
        target = construct.targets[0]
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            return target.value.id
        return None
    if (
        isinstance(parent, ast.Assign)
        and parent.value is construct
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Name)
    ):
        return parent.targets[0].id
    return None


def _is_dict(value: ast.expr) -> bool:
    if isinstance(value, ast.Dict):
        return True
    return (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict"
    )


class _Uses(ast.NodeVisitor):
    """Every appearance of one name in a function, sorted by role."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bindings: list[ast.expr] = []
        self.splats: list[ast.Call] = []
        self.passed: list[tuple[ast.Call, str]] = []  # call(keyword=name)
        self.key_stores = 0
        self.other = 0
        self._handled: set[int] = set()

    def _ours(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == self.name

    def visit_Call(self, node: ast.Call) -> None:
        for kw in node.keywords:
            if kw.arg is None and self._ours(kw.value):
                self.splats.append(node)
                self._handled.add(id(kw.value))
            elif kw.arg is not None and self._ours(kw.value):
                self.passed.append((node, kw.arg))
                self._handled.add(id(kw.value))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if self._ours(target):
                self.bindings.append(node.value)
                self._handled.add(id(target))
            elif isinstance(target, ast.Subscript) and self._ours(target.value):
                self._handled.add(id(target.value))
                key = target.slice
                if isinstance(key, ast.Constant) and key.value in DICT_KEYS:
                    self.key_stores += 1
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        if node.arg == self.name:
            self.other += 1  # a parameter of the same name: shadowing we do not follow

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == self.name and id(node) not in self._handled:
            self.other += 1
