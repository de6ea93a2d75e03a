"""PyTorch Lightning (and Fabric): DDP strategies and strategy names.

Lightning 1.x turned the flag on itself when it was not passed, so turning it off means
writing False (`find_unused_parameters=False`, `"ddp_find_unused_parameters_false"`),
never removing the keyword. Lightning builds the DDP later, so evidence pairs by function.
A strategy name that reaches `strategy=` through a conditional or a variable is a site on
its string literal, rewritten only when the variable is bound once in its function and
read nowhere but in `strategy=`; otherwise it is reported.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from codemod.model import Fix, Kind
from codemod.sites import catalogue

if TYPE_CHECKING:
    from codemod.sites.python import Edit, Finder

LIGHTNING = Kind("lightning", built_later=True)

# Lightning accepts these names in any case; "ddp" alone meant True in Lightning 1.x.
STRATEGY_NAME = re.compile(
    r"^(ddp|ddp_spawn|ddp_fork|ddp_notebook)_find_unused_parameters_(true|false)$", re.IGNORECASE
)
_TRUE_SUFFIX = re.compile(r"_(true)(?=['\"]*$)", re.IGNORECASE)

catalogue.package_api(
    LIGHTNING,
    Fix.WRITE_FALSE,
    ("lightning", "pytorch_lightning", "lightning_fabric"),
    ("DDPStrategy", "DDPSpawnStrategy", "DDPPlugin", "DDPSpawnPlugin"),
)
for _package in ("jsonargparse", "lightning", "pytorch_lightning"):
    catalogue.factory(_package, "lazy_instance")


def strategy_false(literal: str) -> str:
    """`"ddp_find_unused_parameters_true"` -> `"ddp_find_unused_parameters_false"`, case kept."""
    return _TRUE_SUFFIX.sub(lambda m: "_" + catalogue.false_like(m.group(1)), literal)


@catalogue.keyword("strategy")
def strategy_string(finder: Finder, call: ast.Call, kw: ast.keyword, edit: Edit) -> None:
    """`Trainer(strategy="ddp_find_unused_parameters_true")`."""
    value = kw.value
    name = value.value if isinstance(value, ast.Constant) else None
    match = STRATEGY_NAME.match(name) if isinstance(name, str) else None
    if match is None:
        return
    assert kw.arg is not None
    literal = match.group(2).lower() == "true"
    callee = finder.callee_name(call.func)
    finder.add(
        call, kw, LIGHTNING, kw.arg, value, Fix.STRATEGY_FALSE, callee, edit, literal=literal
    )


# Strategy names that reach `strategy=` through a conditional or a local variable --------
_QUOTED = re.compile(r"""^(['"])[^'"\\]*\1$""")  # one plain token: safe to rewrite in place
_NOT_ONLY = (
    "the strategy name reaches `strategy=` through `{name}`, which {why}, so rewriting it "
    "might change more than this Trainer; report only"
)
_NOT_PLAIN = "the strategy name is not one plain string literal; report only"


def _branch_owner(finder: Finder) -> tuple[int, ast.AST]:
    """(index in parents of the first node above the string that is not a conditional it
    is a branch of, the node just below that one)."""
    parents = finder.parents
    index = len(parents) - 1
    child = parents[index]
    while index > 0:
        parent = parents[index - 1]
        if not (isinstance(parent, ast.IfExp) and child is not parent.test):
            return index - 1, child
        child, index = parent, index - 1
    return -1, child


def _strategy_keywords(scope: ast.AST, name: str) -> tuple[list[ast.Call], int, int]:
    """(calls taking `strategy=name`, bindings of `name`, other uses of it) in `scope`."""
    calls: list[ast.Call] = []
    fed: set[int] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "strategy" and isinstance(kw.value, ast.Name) and kw.value.id == name:
                    calls.append(node)
                    fed.add(id(kw.value))
    bindings = other = 0
    for node in ast.walk(scope):
        if isinstance(node, ast.Name) and node.id == name and id(node) not in fed:
            if isinstance(node.ctx, ast.Load):
                other += 1
            else:
                bindings += 1
        elif (isinstance(node, ast.arg) and node.arg == name) or (
            isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names
        ):
            bindings += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bindings += sum((a.asname or a.name.split(".")[0]) == name for a in node.names)
    return calls, bindings, other


@catalogue.node(ast.Constant)
def strategy_through_expression(finder: Finder, node: ast.Constant) -> None:
    """`s = "ddp_find_unused_parameters_true" if n > 1 else "auto"`, then `strategy=s`;
    or the conditional inside `strategy=` itself. The site is the string literal."""
    if not isinstance(node.value, str):
        return
    match = STRATEGY_NAME.match(node.value)
    if match is None:
        return
    at, child = _branch_owner(finder)
    owner = finder.parents[at] if at >= 0 else None
    reason = ""
    if isinstance(owner, ast.keyword):
        if owner.arg != "strategy" or child is node:
            return  # another keyword, or `strategy="..."` itself: strategy_string's site
        call = finder.parents[at - 1]
        if not isinstance(call, ast.Call):
            return
    elif (
        isinstance(owner, ast.Assign)
        and len(owner.targets) == 1
        and isinstance(owner.targets[0], ast.Name)
    ):
        name = owner.targets[0].id
        scope = finder.scope.node
        calls, bindings, other = _strategy_keywords(scope, name)
        if not calls:
            return  # never reaches a strategy: a string stored as data
        call = calls[0]
        why = ""
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            why = "is a module-level name that other modules may import"
        elif bindings != 1:
            why = "is bound more than once in the function"
        elif other:
            why = "is also read in other ways than `strategy=`"
        reason = _NOT_ONLY.format(name=name, why=why) if why else ""
    else:
        return
    text = finder.pos.source(finder.span_of(node))
    if not reason and not _QUOTED.match(text):
        reason = _NOT_PLAIN
    literal = match.group(2).lower() == "true"
    finder.add(
        node,
        node,
        LIGHTNING,
        "strategy",
        node,
        Fix.STRATEGY_FALSE,
        finder.callee_name(call.func),
        finder.edit("string", node, text),
        literal=literal,
        report_only=reason,
    )
