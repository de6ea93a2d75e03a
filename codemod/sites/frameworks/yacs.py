"""yacs defaults (`_C.FIND_UNUSED_PARAM = True`): reported, never rewritten.

Experiment YAML files and the command line override a yacs default, so the value a run
uses is not in the file that sets it.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from codemod.model import Fix, Kind
from codemod.sites import catalogue

if TYPE_CHECKING:
    from codemod.sites.python import Finder

YACS_KEY = re.compile(r"^FIND_UNUSED_PARAM(S|ETERS)?$")
_REASON = (
    "a yacs default: experiment YAML files and the command line can override it, "
    "so the value a run uses is not here; report only"
)


@catalogue.assignment
def yacs_default(finder: Finder, node: ast.Assign, target: ast.expr, dotted: str) -> bool:
    if "." not in dotted or not YACS_KEY.match(dotted.rsplit(".", 1)[-1]):
        return False
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
    return True
