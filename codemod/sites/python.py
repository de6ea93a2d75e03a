"""Find the sites in one Python module.

A site is a literal place in code that sets find_unused_parameters (or Hugging Face's
ddp_find_unused_parameters, or a Lightning strategy name) for an API we can resolve.
Comments, docstrings, strings stored as data, parameter defaults, dataclass fields and
attribute assignments are never sites. Runs on `ast`; libcst is only needed to edit.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.discover.implicit import aliases, words
from codemod.discover.prefilter import NEEDLES
from codemod.model import KEEP_COMMENT, Fix, Kind, Site, Span
from codemod.recorder._ddp_codemod_source import source_lines
from codemod.sites import kwargs_flow
from codemod.sites.catalogue import (
    DICT_KEYS,
    KEYWORD,
    Api,
    assignment_handlers,
    is_factory,
    keyword_handlers,
    known_api,
    node_handlers,
)
from codemod.sites.implicit import ImplicitFacts
from codemod.sites.names import NameTable, Scope, dotted_name
from codemod.sites.subclasses import Subclasses, init_default, own_fix


@dataclass(frozen=True)
class Edit:
    """Where the rewriter acts for one site: found again in libcst by start positions."""

    # "arg", "element" (a dict display entry), "assign" (kw["k"] = v), "annassign" (a class
    # field), "call" (a keyword to add to it), "string" (a strategy name), or "none" for
    # report-only sites that no rewrite ever reaches (command-line flags in strings)
    target: str
    start: tuple[int, int]  # (line, 0-based character column) of the target
    name: str  # keyword or key, to double-check the node found (for "call": the one to add)
    end: tuple[int, int] | None = None  # "call": where it ends, `f(a)(b)` shares starts


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
    is_config: bool = False  # an mmengine / detectron2 config: module-level settings are sites
    implicit: ImplicitFacts = field(default_factory=ImplicitFacts)  # project facts, implicit sites


def find_sites(
    tree: ast.Module, text: str, ctx: FileContext, subclasses: Subclasses
) -> list[Found]:
    """All sites in `tree`, the parse of `text`."""
    finder = Finder(NameTable(tree, ctx.module_name, ctx.is_package), ctx, subclasses, text)
    finder.run(tree)
    return finder.found


def _literal(expr: ast.expr) -> bool | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, bool):
        return expr.value
    return None


def _string(expr: ast.AST | None) -> str | None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value
    return None


def _first_line(node: ast.AST) -> int:
    """The first line of `node` or of any child that starts above it, and so on down: in
    Python's grammar only decorators do, but any node that did would be covered."""
    first: int = node.lineno  # type: ignore[attr-defined]
    for child in ast.iter_child_nodes(node):
        line = getattr(child, "lineno", None)
        if line is not None and line < first:
            first = min(first, _first_line(child))
    return first


def line_starts(text: str) -> list[int]:
    """The offset where each line begins (lines end at \\r\\n, \\r or \\n, like the
    tokenizer's). Without \\r, from the lengths `str.split` gives: no Python-level loop
    over the lines of every candidate file."""
    if "\r" in text:
        return [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]
    return [0, *itertools.accumulate(map((1).__add__, map(len, text.split("\n")[:-1])))]


def lines_holding(text: str, starts: list[int], words: Sequence[str]) -> set[int]:
    """1-based numbers of the lines of `text` (beginning at `starts`) that hold one of
    `words`, none of which spans a line: each word is searched in the whole text."""
    found: set[int] = set()
    for word in words:
        at = text.find(word)
        while at != -1:
            line = bisect.bisect_right(starts, at)
            found.add(line)
            at = text.find(word, starts[line] if line < len(starts) else len(text))
    return found


class Positions:
    """ast positions (UTF-8 byte columns) as character spans and source text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = source_lines(text)
        self.starts = line_starts(text)

    def column(self, line: int, byte_col: int) -> int:
        raw = self.lines[line - 1].encode("utf-8")[:byte_col]
        return len(raw.decode("utf-8", errors="replace"))

    def start(self, node: ast.AST) -> tuple[int, int]:
        return node.lineno, self.column(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def span(self, first: ast.AST, last: ast.AST | None = None) -> Span:
        last = last or first
        line, col = self.start(first)
        end_line = last.end_lineno  # type: ignore[attr-defined]
        end_col = self.column(end_line, last.end_col_offset)  # type: ignore[attr-defined]
        return Span(line, col + 1, end_line, end_col + 1)

    def source(self, span: Span) -> str:
        start = self.starts[span.line - 1] + span.col - 1
        end = self.starts[span.end_line - 1] + span.end_col - 1
        return self.text[start:end]


class Finder:
    """One traversal of one module; framework handlers add sites through `add`."""

    def __init__(
        self, table: NameTable, ctx: FileContext, subclasses: Subclasses, text: str
    ) -> None:
        self.table = table
        self.ctx = ctx
        self.subclasses = subclasses
        self.pos = Positions(text)
        self.scopes: list[Scope] = [table.root]
        self.parents: list[ast.AST] = []
        self.found: list[Found] = []
        self.needles: list[int] = []
        self.implicit_names: frozenset[str] = frozenset()  # aliases of implicit APIs
        self._resolving: set[str] = set()
        self._handlers: dict[type, Callable[[Any], None]] = {
            ast.Call: self.visit_Call,
            ast.Dict: self.visit_Dict,
            ast.Assign: self.visit_Assign,
        }
        self._node_handlers = node_handlers()

    # Traversal bookkeeping -----------------------------------------------------------
    def run(self, tree: ast.Module) -> None:
        """Visit only subtrees that span a line mentioning the setting: every site has its
        keyword, key or strategy name on such a line, and most of a file has none."""
        text = self.pos.text
        lowered = text.lower()  # the same line breaks: lower() maps none to another
        needles = lines_holding(lowered, line_starts(lowered), NEEDLES)
        self.implicit_names = aliases(text)
        implicit = words(text, self.ctx.implicit.names() | self.implicit_names)
        if implicit:  # sites that do not name the flag: lines that name their API
            needles |= lines_holding(text, self.pos.starts, implicit)
        self.needles = sorted(needles)
        if self.needles:
            self.parents.append(tree)
            self._children(tree)

    def _spans_needle(self, node: ast.AST) -> bool:
        end = getattr(node, "end_lineno", None)
        if end is None:
            return True
        i = bisect.bisect_left(self.needles, node.lineno)  # type: ignore[attr-defined]
        if i < len(self.needles) and self.needles[i] <= end:
            return True
        # A needle above the node's own first line may still lie inside a child that starts
        # above it (decorators sit above `def` and `class`): asked only when one is there.
        return i > 0 and self.needles[i - 1] >= _first_line(node)

    def _children(self, node: ast.AST, skip: frozenset[int] = frozenset()) -> None:
        for child in ast.iter_child_nodes(node):
            if id(child) not in skip and self._spans_needle(child):
                self._enter(child)

    def _enter(self, node: ast.AST) -> None:
        decorators: list[ast.expr] = getattr(node, "decorator_list", None) or []
        if decorators:  # evaluated in the enclosing scope, before the definition exists
            self.parents.append(node)
            for decorator in decorators:
                if self._spans_needle(decorator):
                    self._enter(decorator)
            self.parents.pop()
        scope = self.table.scopes.get(node)
        if scope is None and isinstance(node, ast.Lambda):
            scope = self.table.lambda_scope(node, self.scope)
        if scope is not None:
            self.scopes.append(scope)
        self.parents.append(node)  # a handler sees its node at parents[-1]
        handler = self._handlers.get(type(node))
        if handler is not None:
            handler(node)
        for extra in self._node_handlers.get(type(node), ()):
            extra(self, node)
        self._children(node, frozenset(map(id, decorators)))
        self.parents.pop()
        if scope is not None:
            self.scopes.pop()

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    # Resolution ----------------------------------------------------------------------
    def api_of(
        self, func: ast.expr, args: Sequence[ast.expr] = (), scope: Scope | None = None
    ) -> Api | None:
        """The DDP-family API a callee resolves to, looking through partial / lazy_instance."""
        for qualname in sorted(q for q in self.table.resolve(func, scope or self.scope) if q):
            api = known_api(qualname) or self._local_class_api(qualname)
            if api is None and qualname not in self.table.classes:
                api = self.subclasses.api(qualname)
            if api is not None:
                return api
            if is_factory(qualname) and args and not isinstance(args[0], ast.Starred):
                inner = self.api_of(args[0], scope=scope)
                if inner is not None:
                    return inner
        return self._super_init_api(func)

    def _local_class_api(self, qualname: str) -> Api | None:
        """A DDP subclass defined in this very file: its bases say so, no repo search."""
        defined = self.table.classes.get(qualname)
        if defined is None or qualname in self._resolving:
            return None
        node, outer = defined
        self._resolving.add(qualname)
        try:
            for base in node.bases:
                api = self.api_of(base, scope=outer)
                if api is not None and api.kind == Kind.TORCH_DDP:
                    return Api(Kind.TORCH_DDP, own_fix(api.fix, init_default(node)), qualname)
        finally:
            self._resolving.discard(qualname)
        return None

    def _super_init_api(self, func: ast.expr) -> Api | None:
        """`super().__init__(...)` inside a DDP subclass's own __init__."""
        if not (
            isinstance(func, ast.Attribute)
            and func.attr == "__init__"
            and isinstance(func.value, ast.Call)
            and dotted_name(func.value.func) == "super"
        ):
            return None
        method, owner = self.scope, self.scope.parent
        if owner is None or not owner.is_class or isinstance(method.node, ast.ClassDef):
            return None
        assert isinstance(owner.node, ast.ClassDef)
        for base in owner.node.bases:
            api = self.api_of(base)
            if api is not None and api.kind == Kind.TORCH_DDP:
                return Api(Kind.TORCH_DDP, api.fix, f"{api.name}.__init__")
        return None

    def callee_name(self, func: ast.expr) -> str:
        names = sorted(q for q in self.table.resolve(func, self.scope) if q)
        return names[0] if names else (dotted_name(func) or "")

    # Sites ---------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        handlers = keyword_handlers()
        keywords = [kw for kw in node.keywords if kw.arg in DICT_KEYS or kw.arg in handlers]
        if not keywords:
            return
        wants_api = any(kw.arg == KEYWORD for kw in keywords)  # others need no callee
        api = self.api_of(node.func, node.args) if wants_api else None
        is_dict = self.table.resolve(node.func, self.scope) == {"dict"}
        for kw in keywords:
            assert kw.arg is not None
            edit = self.edit("arg", kw, kw.arg)
            if kw.arg in DICT_KEYS and is_dict:
                self._kwargs_dict(node, kw, kw.value, kw.arg, edit)
            elif kw.arg == KEYWORD:
                if api is not None:
                    self.add(node, kw, api.kind, kw.arg, kw.value, api.fix, api.name, edit)
                else:
                    self._helper_call(node, kw, edit)
            elif kw.arg in handlers:
                handlers[kw.arg](self, node, kw, edit)

    def _helper_call(self, node: ast.Call, kw: ast.keyword, edit: Edit) -> None:
        """`build_ddp(model, find_unused_parameters=True)` where the repo's `build_ddp`
        forwards its `**kwargs` into a DDP call: the keyword reaches DDP from here."""
        for qualname in sorted(q for q in self.table.resolve(node.func, self.scope) if q):
            if qualname in self.table.classes:
                continue
            helper = self.subclasses.helper(qualname)
            if helper is None:
                continue
            why = ""
            if helper.problem:
                why = (
                    f"`{helper.name}` passes its **kwargs on to {helper.api.name}, but "
                    f"{helper.problem}, so what DDP gets cannot be proven from here; report only"
                )
            api = helper.api
            assert kw.arg is not None
            self.add(node, kw, api.kind, kw.arg, kw.value, api.fix, qualname, edit, report_only=why)
            return

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            name = _string(key)
            if key is not None and name in DICT_KEYS:
                edit = self.edit("element", key, name)
                self._kwargs_dict(node, key, value, name, edit, setting_end=value)

    def visit_Assign(self, node: ast.Assign) -> None:
        target = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(target, ast.Subscript):
            key = _string(target.slice)
            if key in DICT_KEYS:
                edit = self.edit("assign", node, key)
                self._kwargs_dict(node, target, node.value, key, edit)
        elif target is not None and self.scope is self.table.root:
            self._module_setting(node, target)

    def _module_setting(self, node: ast.Assign, target: ast.expr) -> None:
        """`find_unused_parameters = True` in a config, or a framework's own spelling."""
        dotted = dotted_name(target)
        if dotted is None:
            return
        if any(handler(self, node, target, dotted) for handler in assignment_handlers()):
            return
        if self.ctx.is_config and dotted.rsplit(".", 1)[-1] in DICT_KEYS:
            edit = self.edit("assign", node, dotted)
            self.add(node, target, Kind.CONFIG_PY, dotted, node.value, Fix.WRITE_FALSE, "", edit)

    def _kwargs_dict(
        self,
        construct: ast.AST,
        setting: ast.AST,
        value: ast.expr,
        name: str,
        edit: Edit,
        setting_end: ast.AST | None = None,
    ) -> None:
        path = self._config_path(construct, name) if self.ctx.is_config else None
        if path is not None:
            self.add(
                construct,
                setting,
                Kind.CONFIG_PY,
                path,
                value,
                Fix.WRITE_FALSE,
                "",
                edit,
                setting_end=setting_end,
            )
            return
        fed = kwargs_flow.parameter_consumer(self, construct) if name == KEYWORD else None
        if fed is not None:  # prepare_model(m, parallel_strategy_kwargs={...}): that API's site
            call, api = fed
            feeds = self.span_of(call)
            self.add(
                construct,
                setting,
                api.kind,
                name,
                value,
                api.fix,
                api.name,
                edit,
                feeds=feeds,
                setting_end=setting_end,
            )
            return
        feeds, note = kwargs_flow.consumer(self, construct)
        text = isinstance(value, ast.JoinedStr) or (
            isinstance(value, ast.Constant) and isinstance(value.value, str)
        )
        if feeds is None and text:
            return  # text under the key that reaches no DDP call: a help table, docs
        self.add(
            construct,
            setting,
            Kind.KWARGS_DICT,
            name,
            value,
            Fix.WRITE_FALSE,
            "dict",
            edit,
            feeds=feeds,
            note=note,
            setting_end=setting_end,
        )

    def _config_path(self, construct: ast.AST, name: str) -> str | None:
        """`train.ddp.find_unused_parameters` for a key nested in module-level config dicts."""
        if self.scope is not self.table.root:
            return None
        parts = [name]
        child = construct
        index = max(i for i, node in enumerate(self.parents) if node is construct)
        if isinstance(construct, ast.Assign):  # kw["find_unused_parameters"] = True
            base = dotted_name(construct.targets[0].value)  # type: ignore[attr-defined]
            return f"{base}.{name}" if base else None
        for parent in reversed(self.parents[:index]):
            if isinstance(parent, ast.keyword):
                if parent.arg is None:
                    return None
                parts.append(parent.arg)
            elif isinstance(parent, ast.Dict):
                keys = [k for k, v in zip(parent.keys, parent.values) if v is child]
                key = _string(keys[0]) if keys else None
                if key is None:
                    return None
                parts.append(key)
            elif isinstance(parent, ast.Call):
                if self.table.resolve(parent.func, self.scope) != {"dict"}:
                    return None
            elif isinstance(parent, ast.Assign):
                target = dotted_name(parent.targets[0]) if len(parent.targets) == 1 else None
                if target is None:
                    return None
                parts.append(target)
                return ".".join(reversed(parts))
            else:
                return None
            child = parent
        return None

    def add(
        self,
        construct: ast.AST,
        setting: ast.AST,
        kind: Kind,
        name: str,
        value: ast.expr,
        fix: Fix,
        callee: str,
        edit: Edit,
        literal: bool | None = None,
        feeds: Span | None = None,
        note: str = "",
        setting_end: ast.AST | None = None,
        report_only: str = "",
        implicit: str = "",
        value_text: str | None = None,
        settles: str = "",
    ) -> None:
        """Record a site; `value_text` stands for the value's source when the value is
        only part of a node (a flag's `True` inside a command string)."""
        span = self.span_of(construct)
        site = Site(
            path=self.ctx.rel,
            file=self.ctx.file,
            span=span,
            setting_span=self.pos.span(setting, setting_end),
            kind=kind,
            setting=name,
            value=self.pos.source(self.span_of(value)) if value_text is None else value_text,
            literal=_literal(value) if literal is None else literal,
            fix=fix,
            qualname=self.scope.qualname,
            callee=callee,
            keep=any(
                KEEP_COMMENT.search(line) for line in self.pos.lines[span.line - 1 : span.end_line]
            ),
            feeds=feeds,
            note=note,
            report_only=report_only,
            implicit=implicit,
            settles=settles,
        )
        self.found.append(Found(site, edit))

    def edit(self, target: str, node: ast.AST, name: str) -> Edit:
        """Where the rewriter acts: `node`'s start, found again in libcst."""
        return Edit(target, self.pos.start(node), name)

    def call_edit(self, call: ast.Call, name: str) -> Edit:
        """Add keyword `name` to `call`: found again by its start and its end."""
        span = self.pos.span(call)
        return Edit("call", self.pos.start(call), name, (span.end_line, span.end_col - 1))

    def span_of(self, node: ast.AST) -> Span:
        return self.pos.span(node)
