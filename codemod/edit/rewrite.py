"""Apply the chosen fixes with libcst: remove a keyword, write False, or add `k=False`.

Sites are found with `ast`; here libcst parses the same text, finds each target again by
its start position (and keyword), and changes only those nodes. Everything else is
libcst's exact round trip. libcst is slow on big modules (minutes at 5 MB, and its native
parser aborts the process on some huge inputs), so it parses only the top-level
statements that hold an edit, sliced out by their lines and spliced back; the caller's
token check still compares the whole file.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Sequence
from typing import Union

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from codemod.edit.add_arg import with_keyword
from codemod.edit.remove_arg import without_arg
from codemod.edit.verify import Change
from codemod.model import Fix, Span
from codemod.sites.frameworks.lightning import strategy_false
from codemod.sites.frameworks.lightning_legacy import suffixed_false
from codemod.sites.python import Edit


class RewriteError(Exception):
    """The edit could not be mapped onto the libcst tree; the file is left alone."""


def _new_value(value: cst.BaseExpression, fix: Fix) -> cst.BaseExpression:
    if fix is Fix.STRATEGY_FALSE:
        assert isinstance(value, cst.SimpleString)
        new = strategy_false(value.value)
        if new == value.value:  # Lightning 1.x "ddp": True by default, so say False
            new = suffixed_false(value.value)
        return value.with_changes(value=new)
    return cst.Name("False", lpar=value.lpar, rpar=value.rpar)


def _token(value: cst.BaseExpression, fix: Fix) -> str:
    new = _new_value(value, fix)
    return new.value if isinstance(new, (cst.Name, cst.SimpleString)) else ""


Target = Union[cst.Arg, cst.DictElement, cst.Assign, cst.AnnAssign, cst.Call, cst.SimpleString]


class _Locator(cst.CSTVisitor):
    """Finds the nodes the edits name, and the Call that owns each Arg."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, edits: Sequence[Edit]) -> None:
        super().__init__()
        self.wanted = {(e.target, e.start): e for e in edits}
        self.found: dict[Edit, Target] = {}
        self.owner: dict[Edit, cst.Call] = {}
        self.spans: dict[cst.CSTNode, Span] = {}
        self.calls: list[cst.Call] = []
        self._ends = {(e.target, e.start): e.end for e in edits}

    def _start(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node).start
        return pos.line, pos.column

    def _span(self, node: cst.CSTNode) -> Span:
        r = self.get_metadata(PositionProvider, node)
        return Span(r.start.line, r.start.column + 1, r.end.line, r.end.column + 1)

    def _take(self, kind: str, node: Target, name: str | None) -> None:
        edit = self.wanted.get((kind, self._start(node)))
        if edit is not None and edit.name == name:
            self.found[edit] = node
            self.spans[node] = self._span(node)
            if not isinstance(node, cst.SimpleString):  # a string is its own value
                self.spans[node.value] = self._span(node.value)
            if kind == "arg" and self.calls:
                self.owner[edit] = self.calls[-1]

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.append(node)
        key = ("call", self._start(node))
        if key in self.wanted:  # `f(a)(b)`: both calls start there, only one ends there
            end = self.get_metadata(PositionProvider, node).end
            if self._ends[key] == (end.line, end.column):
                self.found[self.wanted[key]] = node
                self.spans[node] = self._span(node)

    def leave_Call(self, original_node: cst.Call) -> None:
        self.calls.pop()

    def visit_Arg(self, node: cst.Arg) -> None:
        self._take("arg", node, node.keyword.value if node.keyword else None)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        key = node.key.evaluated_value if isinstance(node.key, cst.SimpleString) else None
        self._take("element", node, key if isinstance(key, str) else None)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self._take("string", node, node.value)  # a Lightning strategy name, as written

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:  # `ddp_find_unused_parameters: bool = True` in a class
            self._take("annassign", node, get_full_name_for_node(node.target))

    def visit_Assign(self, node: cst.Assign) -> None:
        target = node.targets[0].target if len(node.targets) == 1 else None
        key = None
        if isinstance(target, cst.Subscript) and len(target.slice) == 1:
            index = target.slice[0].slice
            if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
                value = index.value.evaluated_value
                key = value if isinstance(value, str) else None
        elif target is not None:
            key = get_full_name_for_node(target)  # `find_unused_parameters`, `train.ddp.x`
        self._take("assign", node, key)


class _Rewriter(cst.CSTTransformer):
    def __init__(
        self,
        removals: dict[cst.Call, set[cst.Arg]],
        values: dict[cst.CSTNode, Fix],
        additions: dict[cst.Call, str],
    ) -> None:
        super().__init__()
        self.removals = removals
        self.values = values
        self.additions = additions
        self.added: dict[cst.Call, tuple[str, ...]] = {}

    def _value(self, original: Target, updated: Target) -> Target:
        fix = self.values.get(original)
        return (
            updated if fix is None else updated.with_changes(value=_new_value(updated.value, fix))
        )

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        return self._value(original_node, updated_node)  # type: ignore[return-value]

    def leave_DictElement(
        self, original_node: cst.DictElement, updated_node: cst.DictElement
    ) -> cst.DictElement:
        return self._value(original_node, updated_node)  # type: ignore[return-value]

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        return self._value(original_node, updated_node)  # type: ignore[return-value]

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.BaseExpression:
        fix = self.values.get(original_node)
        return updated_node if fix is None else _new_value(updated_node, fix)

    def leave_AnnAssign(
        self, original_node: cst.AnnAssign, updated_node: cst.AnnAssign
    ) -> cst.AnnAssign:
        return self._value(original_node, updated_node)  # type: ignore[return-value]

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        name = self.additions.get(original_node)
        if name is not None:
            updated_node, self.added[original_node] = with_keyword(updated_node, name, "False")
        targets = self.removals.get(original_node)
        if not targets:
            return updated_node
        doomed = [i for i, arg in enumerate(original_node.args) if arg in targets]
        for index in reversed(doomed):
            updated_node = without_arg(updated_node, index)
        return updated_node


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # lines as ast counts them


def _statement_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    """1-based inclusive line ranges of the top-level statements (decorators included);
    statements that share a line (`a = 1; b = 2`) share one range."""
    merged: list[tuple[int, int]] = []
    for node in tree.body:
        decorators = getattr(node, "decorator_list", [])
        start = min([node.lineno, *(d.lineno for d in decorators)])
        end = node.end_lineno or node.lineno
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _shift_edit(edit: Edit, lines: int) -> Edit:
    """The edit with its positions `lines` further down (negative: up)."""
    end = None if edit.end is None else (edit.end[0] + lines, edit.end[1])
    return dataclasses.replace(edit, start=(edit.start[0] + lines, edit.start[1]), end=end)


def _shift_span(span: Span, lines: int) -> Span:
    return Span(span.line + lines, span.col, span.end_line + lines, span.end_col)


def rewrite(
    text: str, edits: Sequence[tuple[Edit, Fix]], tree: ast.Module | None = None
) -> tuple[str, list[tuple[Change, str]]]:
    """The new text, and the changes it makes as the verifier needs them.

    `tree` is the module's `ast` (parsed again when not given): it says where the
    top-level statements start and end.
    """
    if tree is None:
        tree = ast.parse(text)
    groups: dict[tuple[int, int], list[tuple[Edit, Fix]]] = {}
    ranges = _statement_ranges(tree)
    for edit, fix in edits:
        line = edit.start[0]
        found = next((r for r in ranges if r[0] <= line <= r[1]), None)
        if found is None:  # not inside any statement: cannot happen, but never guess
            return _rewrite_module(text, edits)
        groups.setdefault(found, []).append((edit, fix))
    lines = _LINE.findall(text)
    changes: list[tuple[Change, str]] = []
    pieces: list[str] = []
    done = 0  # lines of `text` already in `pieces`
    for (start, end), group in sorted(groups.items()):
        offset = start - 1
        snippet = "".join(lines[offset:end])
        local = [(_shift_edit(e, -offset), f) for e, f in group]
        new_snippet, local_changes = _rewrite_module(snippet, local)
        pieces.append("".join(lines[done:offset]))
        pieces.append(new_snippet)
        done = end
        for change, token in local_changes:
            changes.append(
                (
                    dataclasses.replace(
                        change,
                        span=_shift_span(change.span, offset),
                        value_span=_shift_span(change.value_span, offset),
                    ),
                    token,
                )
            )
    pieces.append("".join(lines[done:]))
    return "".join(pieces), changes


def _rewrite_module(
    text: str, edits: Sequence[tuple[Edit, Fix]]
) -> tuple[str, list[tuple[Change, str]]]:
    """libcst over `text` as a module of its own; edit positions are relative to it."""
    wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
    locator = _Locator([edit for edit, _ in edits])
    wrapper.visit(locator)
    removals: dict[cst.Call, set[cst.Arg]] = {}
    values: dict[cst.CSTNode, Fix] = {}
    additions: dict[cst.Call, str] = {}
    added: list[tuple[cst.Call, int]] = []  # (call, index in changes): tokens known after
    changes: list[tuple[Change, str]] = []
    for edit, fix in edits:
        node = locator.found.get(edit)
        if node is None:
            raise RewriteError(
                f"cannot find `{edit.name}` at line {edit.start[0]} in the syntax tree"
            )
        if fix is Fix.REMOVE:
            owner = locator.owner.get(edit)
            if owner is None or not isinstance(node, cst.Arg):
                raise RewriteError(f"`{edit.name}` at line {edit.start[0]} is not a call argument")
            removals.setdefault(owner, set()).add(node)
            token = ""
        elif isinstance(node, cst.SimpleString):
            values[node] = fix
            token = _token(node, fix)
            changes.append((Change(fix, locator.spans[node], locator.spans[node]), token))
            continue
        elif fix is Fix.ADD_FALSE:
            if not isinstance(node, cst.Call):
                raise RewriteError(f"`{edit.name}` at line {edit.start[0]} is not added to a call")
            additions[node] = edit.name
            span = locator.spans[node]
            added.append((node, len(changes)))
            changes.append((Change(fix, span, span), ""))
            continue
        else:
            values[node] = fix
            token = _token(node.value, fix)
        changes.append((Change(fix, locator.spans[node], locator.spans[node.value]), token))
    rewriter = _Rewriter(removals, values, additions)
    new = wrapper.module.visit(rewriter)
    for call, index in added:
        change, _ = changes[index]
        changes[index] = (dataclasses.replace(change, added=rewriter.added[call]), "")
    return new.code, changes
