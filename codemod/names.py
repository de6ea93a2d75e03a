"""A cheap import table: what a dotted name in a file can refer to.

libcst's QualifiedNameProvider costs about ten times a parse on real trees; call sites
only need "which imports, class definitions or aliases could this name be", per scope,
with Python's rule that a name bound anywhere in a function is local to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst

MODULE_QUALNAME = "<module>"
_OPAQUE = None  # a binding whose value we cannot know (parameter, loop variable, call result)


@dataclass
class Scope:
    """Names bound in one module, class or function body."""

    node: cst.CSTNode
    qualname: str  # Python __qualname__ style: "Trainer.setup", "main.<locals>.inner"
    parent: Scope | None
    is_class: bool = False
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    star_modules: list[str] = field(default_factory=list)

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def visible_chain(self) -> Iterable[Scope]:
        """This scope, then enclosing ones; class bodies do not enclose nested functions."""
        yield self
        scope = self.parent
        while scope is not None:
            if not scope.is_class:
                yield scope
            scope = scope.parent


@dataclass(frozen=True)
class Binding:
    """What a name was bound to: a qualified name, an alias expression, or nothing known."""

    target: str | None  # dotted qualified name, or None when opaque
    alias_of: cst.BaseExpression | None = None  # `DDP = torch.nn.parallel.DistributedDataParallel`


def dotted_name(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` for Name / Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def module_name_for(rel_path: str) -> str:
    """`pkg/sub/mod.py` -> `pkg.sub.mod`; `pkg/__init__.py` -> `pkg`."""
    parts = rel_path.split("/")
    last = parts[-1]
    if last.endswith((".py", ".pyi")):
        last = last.rsplit(".", 1)[0]
    parts[-1] = last
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(p for p in parts if p)


class NameTable:
    """Scopes of one module, keyed by the node that opens them."""

    def __init__(self, module: cst.Module, module_name: str, is_package: bool) -> None:
        self.module_name = module_name
        self.is_package = is_package
        self.scopes: dict[cst.CSTNode, Scope] = {}
        self.root = Scope(module, MODULE_QUALNAME, None)
        self.scopes[module] = self.root
        module.visit(_Collector(self))

    def scope_of(self, node: cst.CSTNode) -> Scope:
        return self.scopes[node]

    def resolve(self, expr: cst.BaseExpression, scope: Scope) -> set[str | None]:
        """Qualified names `expr` may denote in `scope`; None stands for "unknown"."""
        return self._resolve(expr, scope, depth=0)

    def _resolve(self, expr: cst.BaseExpression, scope: Scope, depth: int) -> set[str | None]:
        name = dotted_name(expr)
        if name is None or depth > 8:
            return {_OPAQUE}
        head, _, rest = name.partition(".")
        out: set[str | None] = set()
        for base in self._lookup(head, scope, depth):
            out.add(None if base is None else (f"{base}.{rest}" if rest else base))
        return out

    def _lookup(self, head: str, scope: Scope, depth: int) -> set[str | None]:
        stars: list[str] = []
        for visible in scope.visible_chain():
            bindings = visible.bindings.get(head)
            if bindings:
                out: set[str | None] = set()
                for binding in bindings:
                    if binding.alias_of is not None:
                        out |= self._resolve(binding.alias_of, visible, depth + 1)
                    else:
                        out.add(binding.target)
                return out
            stars.extend(visible.star_modules)
        # Unbound here: a builtin, a star import, or a module used by its full name.
        return {head} | {f"{module}.{head}" for module in stars}

    def absolute_module(self, level: int, module: str | None) -> str:
        """Resolve `from ..x import y` against this file's package."""
        if level == 0:
            return module or ""
        package = self.module_name.split(".") if self.module_name else []
        if not self.is_package and package:
            package = package[:-1]
        if level > 1:
            package = package[: max(0, len(package) - (level - 1))]
        return ".".join([*package, module] if module else package)


class _Collector(cst.CSTVisitor):
    """One pass that opens a Scope per module, class and function and fills its bindings."""

    def __init__(self, table: NameTable) -> None:
        super().__init__()
        self.table = table
        self.stack: list[Scope] = [table.root]

    @property
    def scope(self) -> Scope:
        return self.stack[-1]

    def _child_qualname(self, name: str) -> str:
        scope = self.scope
        if scope.qualname == MODULE_QUALNAME:
            return name
        if scope.is_class:
            return f"{scope.qualname}.{name}"
        return f"{scope.qualname}.<locals>.{name}"

    def _local_target(self, name: str) -> str:
        """Qualified name of something defined in this file, e.g. `pkg.mod.Trainer`."""
        qualname = self._child_qualname(name)
        module = self.table.module_name
        return f"{module}.{qualname}" if module else qualname

    def _open(self, node: cst.CSTNode, name: str, is_class: bool) -> None:
        qualname = self._child_qualname(name)
        scope = Scope(node, qualname, self.scope, is_class=is_class)
        self.table.scopes[node] = scope
        self.stack.append(scope)

    # Definitions ---------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scope.bind(node.name.value, Binding(self._local_target(node.name.value)))
        self._open(node, node.name.value, is_class=True)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scope.bind(node.name.value, Binding(self._local_target(node.name.value)))
        self._open(node, node.name.value, is_class=False)
        for param in _params(node.params):
            self.scope.bind(param.name.value, Binding(_OPAQUE))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.stack.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._open(node, "<lambda>", is_class=False)
        for param in _params(node.params):
            self.scope.bind(param.name.value, Binding(_OPAQUE))

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self.stack.pop()

    # Imports -------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.scope.bind(alias.asname.name.value, Binding(full))
            else:
                head = full.split(".", 1)[0]
                self.scope.bind(head, Binding(head))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_name(node.module) if node.module is not None else None
        base = self.table.absolute_module(len(node.relative), module)
        if isinstance(node.names, cst.ImportStar):
            self.scope.star_modules.append(base)
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.scope.bind(local, Binding(f"{base}.{name}" if base else name))

    # Assignments ---------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind_target(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind_target(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._bind_target(node.target, None)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._bind_target(node.target, None)

    def visit_For(self, node: cst.For) -> None:
        self._bind_target(node.target, None)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind_target(node.asname.name, None)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._bind_target(node.name.name, None)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind_target(node.target, None)

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        if isinstance(target, cst.Name):
            if value is not None and dotted_name(value) is not None:
                self.scope.bind(target.value, Binding(_OPAQUE, alias_of=value))
            else:
                self.scope.bind(target.value, Binding(_OPAQUE))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind_target(element.value, None)
        elif isinstance(target, cst.StarredElement):
            self._bind_target(target.value, None)


def _params(params: cst.Parameters) -> Sequence[cst.Param]:
    out: list[cst.Param] = [*params.posonly_params, *params.params, *params.kwonly_params]
    if isinstance(params.star_arg, cst.Param):
        out.append(params.star_arg)
    if params.star_kwarg is not None:
        out.append(params.star_kwarg)
    return out
