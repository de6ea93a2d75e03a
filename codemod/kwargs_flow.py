"""Does a kwargs dict provably feed exactly one DDP call?

`ddp_kwargs = dict(find_unused_parameters=True)` may be rewritten only when it reaches one
DDP-family call and nothing else: bound once in a function, splatted once (`**ddp_kwargs`)
into a call that resolves to a DDP API, never read in any other way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import libcst as cst

from codemod.apis import DICT_KEYS, Api
from codemod.model import Span

if TYPE_CHECKING:
    from codemod.names import Scope


class _Finder(Protocol):
    parents: list[cst.CSTNode]

    @property
    def scope(self) -> Scope: ...

    def api_of(self, func: cst.BaseExpression, args: tuple[cst.Arg, ...] = ()) -> Api | None: ...

    def span_of(self, node: cst.CSTNode) -> Span: ...


def consumer(
    finder: _Finder, construct: cst.CSTNode, carrier: cst.CSTNode | None
) -> tuple[Span | None, str]:
    """(span of the one DDP call fed, "") or (None, why it cannot be proven)."""
    parents = finder.parents
    index = _index(parents, construct)
    parent = parents[index - 1] if index > 0 else None
    grand = parents[index - 2] if index > 1 else None
    if isinstance(parent, cst.Arg) and parent.star == "**" and isinstance(grand, cst.Call):
        return _ddp_call(finder, grand)
    name = _variable(construct, parent)
    if name is None:
        return None, "it is passed on as data, so which call receives it cannot be proven"
    scope = finder.scope
    if not isinstance(scope.node, (cst.FunctionDef, cst.Lambda)):
        return None, f"`{name}` is a module-level name that other modules may import"
    uses = _Uses(name)
    scope.node.visit(uses)
    if len(uses.bindings) != 1 or not _is_dict(uses.bindings[0]):
        return None, f"`{name}` is bound more than once or not to a plain dict"
    if uses.other:
        return None, f"`{name}` is also read in other ways than one `**{name}`"
    if uses.same_key_stores > (0 if carrier is not None else 1):
        return None, f"`{name}` has its key set more than once"
    if len(uses.splats) != 1:
        return None, f"`{name}` is splatted into {len(uses.splats)} calls, not exactly one"
    return _ddp_call(finder, uses.splats[0])


def _ddp_call(finder: _Finder, call: cst.Call) -> tuple[Span | None, str]:
    api = finder.api_of(call.func, tuple(call.args))
    if api is None:
        return None, "the call it feeds does not resolve to a DDP API"
    return finder.span_of(call), ""


def _index(parents: list[cst.CSTNode], node: cst.CSTNode) -> int:
    for i in range(len(parents) - 1, -1, -1):
        if parents[i] is node:
            return i
    return 0


def _variable(construct: cst.CSTNode, parent: cst.CSTNode | None) -> str | None:
    if isinstance(construct, cst.Assign):  # name["find_unused_parameters"] = True
        target = construct.targets[0].target
        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name):
            return target.value.value
        return None
    if (
        isinstance(parent, cst.Assign)
        and parent.value is construct
        and len(parent.targets) == 1
        and isinstance(parent.targets[0].target, cst.Name)
    ):
        return parent.targets[0].target.value
    return None


def _is_dict(value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.Dict):
        return True
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "dict"
    )


class _Uses(cst.CSTVisitor):
    """Every appearance of one name in a function, sorted by role."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.bindings: list[cst.BaseExpression] = []
        self.splats: list[cst.Call] = []
        self.same_key_stores = 0
        self.other = 0
        self._handled: set[int] = set()

    def _is_ours(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Name) and node.value == self.name

    def visit_Call(self, node: cst.Call) -> None:
        for arg in node.args:
            if arg.star == "**" and self._is_ours(arg.value):
                self.splats.append(node)
                self._handled.add(id(arg.value))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            t = target.target
            if self._is_ours(t):
                self.bindings.append(node.value)
                self._handled.add(id(t))
            elif isinstance(t, cst.Subscript) and self._is_ours(t.value):
                self._handled.add(id(t.value))
                index = t.slice[0].slice if len(t.slice) == 1 else None
                if (
                    isinstance(index, cst.Index)
                    and isinstance(index.value, cst.SimpleString)
                    and index.value.evaluated_value in DICT_KEYS
                ):
                    self.same_key_stores += 1

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._handled.add(id(node.attr))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._handled.add(id(node.keyword))

    def visit_Param(self, node: cst.Param) -> None:
        if self._is_ours(node.name):
            self.other += 1  # a parameter of the same name: shadowing we do not follow
        self._handled.add(id(node.name))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._handled.add(id(node.name))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._handled.add(id(node.name))

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name and id(node) not in self._handled:
            self.other += 1
