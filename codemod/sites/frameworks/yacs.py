"""yacs defaults (`_C.FIND_UNUSED_PARAM = True`): reported, never rewritten.

Experiment YAML files and the command line override a yacs default, so the value a run
uses is not in the file that sets it. Defaults live at module level, or (detectron2
projects) in an `add_*_config(cfg)` function that sets them on its `cfg` argument, directly
or through a local alias (`_C = cfg`); elsewhere in a function such an assignment is a
runtime change, not a default, and no site.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from codemod.model import Fix, Kind
from codemod.sites import catalogue
from codemod.sites.names import dotted_name

if TYPE_CHECKING:
    from codemod.sites.python import Finder

YACS_KEY = re.compile(r"^FIND_UNUSED_PARAM(S|ETERS)?$")
ADD_CONFIG = re.compile(r"^add_\w*config$")
_REASON = (
    "a yacs default: experiment YAML files and the command line can override it, "
    "so the value a run uses is not here; report only"
)


@catalogue.assignment
def yacs_default(finder: Finder, node: ast.Assign, target: ast.expr, dotted: str) -> bool:
    if "." not in dotted or not YACS_KEY.match(dotted.rsplit(".", 1)[-1]):
        return False
    _report(finder, node, target, dotted)
    return True


def _report(finder: Finder, node: ast.Assign, target: ast.expr, dotted: str) -> None:
    """A yacs default: a config-py site that is only ever reported."""
    edit = finder.edit("assign", node, dotted)
    finder.add(
        node,
        target,
        Kind.CONFIG_PY,
        dotted,
        node.value,
        Fix.WRITE_FALSE,
        "",
        edit,
        report_only=_REASON,
    )


def _config_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The function's first parameter and the local names bound straight to it."""
    positional = [*function.args.posonlyargs, *function.args.args]
    if not positional:
        return set()
    names = {positional[0].arg}
    for statement in function.body:
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Name)
            and statement.value.id in names
        ):
            names.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    return names


@catalogue.node(ast.Assign)
def add_config_default(finder: Finder, node: ast.Assign) -> None:
    """`def add_x_config(cfg): _C = cfg; _C.SOLVER.FIND_UNUSED_PARAM = True`."""
    function = finder.scope.node
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return  # module level: yacs_default's
    if not ADD_CONFIG.match(function.name) or len(node.targets) != 1:
        return
    target = node.targets[0]
    dotted = dotted_name(target)
    if dotted is None or "." not in dotted or not YACS_KEY.match(dotted.rsplit(".", 1)[-1]):
        return
    if dotted.split(".", 1)[0] in _config_names(function):
        _report(finder, node, target, dotted)
