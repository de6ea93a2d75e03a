"""Find the sites in one parsed Python module.

A site is a literal place in code that sets find_unused_parameters (or Hugging Face's
ddp_find_unused_parameters, or a Lightning strategy name) for an API we can resolve.
Comments, docstrings, strings stored as data, parameter defaults, dataclass fields and
attribute assignments are never sites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from codemod import kwargs_flow
from codemod.apis import DICT_KEYS, HF_KEYWORD, KEYWORD, STRATEGY_NAME, Api, is_factory, known_api
from codemod.model import Fix, Kind, Site, Span
from codemod.names import NameTable, Scope, dotted_name
from codemod.source import lines_of
from codemod.subclasses import Subclasses

KEEP_COMMENT = re.compile(r"#\s*ddp-codemod:\s*keep\b")


@dataclass(frozen=True)
class Edit:
    """Where the rewriter acts for one site, and the text it may touch."""

    target: cst.CSTNode  # the Arg, DictElement or Assign that carries the value
    call: cst.Call | None  # the Call owning an Arg, for removals
    span: Span  # the target: removed whole by Fix.REMOVE
    value_span: Span  # the value: replaced by the other fixes


@dataclass(frozen=True)
class Found:
    site: Site
    edit: Edit


@dataclass(frozen=True)
class FileContext:
    """Where the module lives: for paths in sites and for module names."""

    file: Path
    rel: str  # shown path
    project_rel: str  # POSIX, relative to the project root: how evidence names it
    module_name: str  # dotted, relative to the project root
    is_package: bool


def find_sites(
    wrapper: MetadataWrapper, text: str, ctx: FileContext, subclasses: Subclasses
) -> list[Found]:
    """All sites in the module wrapped by `wrapper` (whose source text is `text`)."""
    table = NameTable(wrapper.module, ctx.module_name, ctx.is_package)
    finder = _Finder(table, ctx, subclasses, lines_of(text), text)
    wrapper.visit(finder)
    return finder.found


def _span(code_range: CodeRange) -> Span:
    return Span(
        code_range.start.line,
        code_range.start.column + 1,
        code_range.end.line,
        code_range.end.column + 1,
    )


def _literal(expr: cst.BaseExpression) -> bool | None:
    if isinstance(expr, cst.Name) and expr.value in ("True", "False"):
        return expr.value == "True"
    return None


def _string_value(expr: cst.BaseExpression) -> str | None:
    if isinstance(expr, cst.SimpleString) and "b" not in expr.prefix.lower():
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


class _Finder(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        table: NameTable,
        ctx: FileContext,
        subclasses: Subclasses,
        lines: list[str],
        text: str,
    ) -> None:
        super().__init__()
        self.table = table
        self.ctx = ctx
        self.subclasses = subclasses
        self.lines = lines
        self.text = text
        self._line_starts = _line_starts(text)
        self.scopes: list[Scope] = [table.root]
        self.parents: list[cst.CSTNode] = []
        self.found: list[Found] = []

    # Traversal bookkeeping -----------------------------------------------------------
    def on_visit(self, node: cst.CSTNode) -> bool:
        scope = self.table.scopes.get(node)
        if scope is not None and scope is not self.scopes[-1]:
            self.scopes.append(scope)
        self.parents.append(node)  # visit_X sees itself at parents[-1]
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self.parents.pop()
        if len(self.scopes) > 1 and self.scopes[-1].node is original_node:
            self.scopes.pop()

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    @property
    def qualname(self) -> str:
        return self.scope.qualname

    # Resolution ----------------------------------------------------------------------
    def api_of(self, func: cst.BaseExpression, args: Sequence[cst.Arg] = ()) -> Api | None:
        """The DDP-family API a callee resolves to, looking through partial / lazy_instance."""
        for qualname in sorted(q for q in self.table.resolve(func, self.scope) if q):
            api = known_api(qualname) or self.subclasses.api(qualname)
            if api is not None:
                return api
            if is_factory(qualname) and args and args[0].keyword is None and not args[0].star:
                inner = self.api_of(args[0].value)
                if inner is not None:
                    return inner
        return self._super_init_api(func)

    def _super_init_api(self, func: cst.BaseExpression) -> Api | None:
        """`super().__init__(...)` inside a DDP subclass's own __init__."""
        if not (
            isinstance(func, cst.Attribute)
            and func.attr.value == "__init__"
            and isinstance(func.value, cst.Call)
            and dotted_name(func.value.func) == "super"
        ):
            return None
        method = self.scope
        owner = method.parent
        if not isinstance(method.node, cst.FunctionDef) or owner is None or not owner.is_class:
            return None
        assert isinstance(owner.node, cst.ClassDef)
        for base in owner.node.bases:
            if base.keyword is None and not base.star:
                api = self.api_of(base.value) if owner.parent else None
                if api is not None and api.kind is Kind.TORCH_DDP:
                    return Api(Kind.TORCH_DDP, api.fix, f"{api.name}.__init__")
        return None

    # Sites ---------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        api = self.api_of(node.func, node.args)
        for arg in node.args:
            keyword = arg.keyword.value if arg.keyword is not None else None
            if keyword is None:
                continue
            if keyword in DICT_KEYS and self._is_builtin_dict(node.func):
                self._kwargs_dict(node, arg, arg.value, self._edit(arg, None))
            elif keyword == KEYWORD and api is not None:
                self._add(
                    node,
                    arg,
                    api.kind,
                    keyword,
                    arg.value,
                    api.fix,
                    api.name,
                    self._edit(arg, node),
                )
            elif keyword == HF_KEYWORD:
                self._add(
                    node,
                    arg,
                    Kind.HF_TRAINER,
                    keyword,
                    arg.value,
                    Fix.WRITE_FALSE,
                    self._callee_name(node.func),
                    self._edit(arg, node),
                )
            elif keyword == "strategy":
                self._strategy(node, arg)

    def _strategy(self, call: cst.Call, arg: cst.Arg) -> None:
        name = _string_value(arg.value)
        match = STRATEGY_NAME.match(name) if name is not None else None
        if match is None:
            return
        literal = match.group(2).lower() == "true"
        self._add(
            call,
            arg,
            Kind.LIGHTNING,
            "strategy",
            arg.value,
            Fix.STRATEGY_FALSE,
            self._callee_name(call.func),
            self._edit(arg, call),
            literal=literal,
        )

    def visit_DictElement(self, node: cst.DictElement) -> None:
        key = _string_value(node.key)
        if key in DICT_KEYS:
            owner = self.parents[-2]  # the Dict holding this element
            self._kwargs_dict(owner, node, node.value, self._edit(node, None), setting=key)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1:
            return
        target = node.targets[0].target
        if isinstance(target, cst.Subscript) and len(target.slice) == 1:
            index = target.slice[0].slice
            key = _string_value(index.value) if isinstance(index, cst.Index) else None
            if key in DICT_KEYS:
                self._kwargs_dict(node, target, node.value, self._edit(node, None), setting=key)

    def _is_builtin_dict(self, func: cst.BaseExpression) -> bool:
        return self.table.resolve(func, self.scope) == {"dict"}

    def _callee_name(self, func: cst.BaseExpression) -> str:
        names = sorted(q for q in self.table.resolve(func, self.scope) if q)
        return names[0] if names else (dotted_name(func) or "")

    def _kwargs_dict(
        self,
        construct: cst.CSTNode,
        setting_node: cst.CSTNode,
        value: cst.BaseExpression,
        edit: Edit,
        setting: str | None = None,
    ) -> None:
        if setting is None:
            assert isinstance(setting_node, cst.Arg) and setting_node.keyword is not None
            setting = setting_node.keyword.value
        carrier = construct if not isinstance(construct, cst.Assign) else None
        feeds, note = kwargs_flow.consumer(self, construct, carrier)
        self._add(
            construct,
            setting_node,
            Kind.KWARGS_DICT,
            setting,
            value,
            Fix.WRITE_FALSE,
            "dict",
            edit,
            feeds=feeds,
            note=note,
        )

    def _add(
        self,
        construct: cst.CSTNode,
        setting_node: cst.CSTNode,
        kind: Kind,
        setting: str,
        value: cst.BaseExpression,
        fix: Fix,
        callee: str,
        edit: Edit,
        literal: bool | None = None,
        feeds: Span | None = None,
        note: str = "",
    ) -> None:
        span = self.span_of(construct)
        if literal is None:
            literal = _literal(value)
        site = Site(
            path=self.ctx.rel,
            file=self.ctx.file,
            span=span,
            setting_span=self.span_of(setting_node),
            kind=kind,
            setting=setting,
            value=self.source_of(value),
            literal=literal,
            fix=fix,
            qualname=self.qualname,
            callee=callee,
            keep=any(
                KEEP_COMMENT.search(line) for line in self.lines[span.line - 1 : span.end_line]
            ),
            feeds=feeds,
            note=note,
        )
        self.found.append(Found(site, edit))

    def _edit(self, target: cst.Arg | cst.DictElement | cst.Assign, call: cst.Call | None) -> Edit:
        return Edit(target, call, self.span_of(target), self.span_of(target.value))

    def span_of(self, node: cst.CSTNode) -> Span:
        return _span(self.get_metadata(PositionProvider, node))

    def source_of(self, node: cst.CSTNode) -> str:
        span = self.span_of(node)
        start = self._line_starts[span.line - 1] + span.col - 1
        end = self._line_starts[span.end_line - 1] + span.end_col - 1
        return self.text[start:end]


_NEWLINE = re.compile(r"\r\n|\r|\n")


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts, splitting on \\r\\n, \\n and \\r like libcst."""
    return [0, *(m.end() for m in _NEWLINE.finditer(text))]
