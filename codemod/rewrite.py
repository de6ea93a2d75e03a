"""Apply the chosen fixes to a parsed module: remove a keyword or write False.

Only the nodes named in the edits change; everything else is libcst's exact round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import libcst as cst

from codemod.finder import Edit
from codemod.model import Fix
from codemod.remove_arg import without_arg

_TRUE_SUFFIX = re.compile(r"_(true)(?=['\"]+$)", re.IGNORECASE)


def _false_like(word: str) -> str:
    if word.isupper():
        return "FALSE"
    if word[0].isupper():
        return "False"
    return "false"


def strategy_false(literal: str) -> str:
    """`"ddp_find_unused_parameters_true"` -> `"ddp_find_unused_parameters_false"`, case kept."""
    return _TRUE_SUFFIX.sub(lambda m: "_" + _false_like(m.group(1)), literal)


def new_value_token(value: cst.BaseExpression, fix: Fix) -> str:
    """The one token that replaces the literal `value` under `fix`."""
    if fix is Fix.STRATEGY_FALSE:
        assert isinstance(value, cst.SimpleString)
        return strategy_false(value.value)
    return "False"


def _false_value(value: cst.BaseExpression, fix: Fix) -> cst.BaseExpression:
    if fix is Fix.STRATEGY_FALSE:
        assert isinstance(value, cst.SimpleString)
        return value.with_changes(value=new_value_token(value, fix))
    return cst.Name("False", lpar=value.lpar, rpar=value.rpar)


class _Rewriter(cst.CSTTransformer):
    def __init__(self, edits: Iterable[tuple[Edit, Fix]]) -> None:
        super().__init__()
        self.removals: dict[cst.Call, set[cst.CSTNode]] = {}
        self.values: dict[cst.CSTNode, Fix] = {}
        for edit, fix in edits:
            if fix is Fix.REMOVE:
                assert edit.call is not None
                self.removals.setdefault(edit.call, set()).add(edit.target)
            else:
                self.values[edit.target] = fix

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        fix = self.values.get(original_node)
        if fix is None:
            return updated_node
        return updated_node.with_changes(value=_false_value(updated_node.value, fix))

    def leave_DictElement(
        self, original_node: cst.DictElement, updated_node: cst.DictElement
    ) -> cst.DictElement:
        fix = self.values.get(original_node)
        if fix is None:
            return updated_node
        return updated_node.with_changes(value=_false_value(updated_node.value, fix))

    def leave_Assign(self, original_node: cst.Assign, updated_node: cst.Assign) -> cst.Assign:
        fix = self.values.get(original_node)
        if fix is None:
            return updated_node
        return updated_node.with_changes(value=_false_value(updated_node.value, fix))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        targets = self.removals.get(original_node)
        if not targets:
            return updated_node
        doomed = [i for i, arg in enumerate(original_node.args) if arg in targets]
        for index in reversed(doomed):
            updated_node = without_arg(updated_node, index)
        return updated_node


def rewrite(module: cst.Module, edits: Iterable[tuple[Edit, Fix]]) -> cst.Module:
    return module.visit(_Rewriter(edits))
