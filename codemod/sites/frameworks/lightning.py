"""PyTorch Lightning (and Fabric): DDP strategies and strategy names.

Lightning 1.x turned the flag on itself when it was not passed, so turning it off means
writing False (`find_unused_parameters=False`, `"ddp_find_unused_parameters_false"`),
never removing the keyword. Lightning builds the DDP later, so evidence pairs by function.
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
