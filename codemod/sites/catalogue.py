"""The catalogue of APIs that take find_unused_parameters, filled in by framework modules.

Each module in `codemod.sites.frameworks` registers what its framework contributes: the
qualified names of its APIs and how each is turned off, the callables that take a class
first (`partial`, `lazy_instance`), and handlers for keywords and assignments that spell
the setting another way (a Lightning strategy string, Hugging Face's
`ddp_find_unused_parameters`, a yacs default). `load()` imports every such module once, the
way pyupgrade walks its plugins, so a new framework is one new module and its fixtures.

A callee matches by its resolved qualified name, never by a bare name: Megatron's and
fairseq's own `DistributedDataParallel` classes must not look like torch's.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from codemod.model import Fix, Kind

if TYPE_CHECKING:
    import ast

    from codemod.sites.python import Edit, Finder

KEYWORD = "find_unused_parameters"
HF_KEYWORD = "ddp_find_unused_parameters"
DICT_KEYS = frozenset({KEYWORD, HF_KEYWORD})


@dataclass(frozen=True)
class Api:
    """An API that takes the keyword, with what writing it off means there."""

    kind: Kind
    fix: Fix  # under --style remove; --style false always writes False
    name: str  # the qualified name it resolved to


# A keyword other than find_unused_parameters that sets the flag, on any callee.
KeywordHandler = Callable[["Finder", "ast.Call", "ast.keyword", "Edit"], None]
# A module-level `dotted.name = value`; returns True when it was a site of its own.
AssignmentHandler = Callable[["Finder", "ast.Assign", "ast.expr", str], bool]
# Any visited node of one ast type (the finder visits only subtrees on lines that
# mention the setting or, for implicit sites, name their API, so this stays cheap).
NodeHandler = Callable[["Finder", Any], None]
_H = TypeVar("_H")

_EXACT: dict[str, tuple[Kind, Fix]] = {}
_BY_PACKAGE: dict[tuple[str, str], tuple[Kind, Fix]] = {}  # (top-level package, last name)
_FACTORIES: set[tuple[str, str]] = set()
# (top-level package, last name, keyword) -> the API that splats that keyword's dict into DDP
_KWARGS_PARAMS: dict[tuple[str, str, str], tuple[Kind, Fix]] = {}
_KEYWORDS: dict[str, KeywordHandler] = {}
_ASSIGNMENTS: list[AssignmentHandler] = []
_NODES: dict[type, list[NodeHandler]] = {}
_loaded = False


def _split(qualname: str) -> tuple[str, str]:
    return qualname.split(".", 1)[0], qualname.rsplit(".", 1)[-1]


def api(kind: Kind, fix: Fix, *qualnames: str) -> None:
    """Register APIs by their full qualified names."""
    for qualname in qualnames:
        _EXACT[qualname] = (kind, fix)


def package_api(kind: Kind, fix: Fix, packages: tuple[str, ...], names: tuple[str, ...]) -> None:
    """Register APIs by top-level package and last name: packages re-export them from
    many modules (`pytorch_lightning.strategies.DDPStrategy`, `...strategies.ddp.DDPStrategy`)."""
    for package in packages:
        for name in names:
            _BY_PACKAGE[(package, name)] = (kind, fix)


def factory(package: str, name: str) -> None:
    """A callable that takes a class first and its keywords after: `partial(DDP, ...)`."""
    _FACTORIES.add((package, name))


def kwargs_parameter(
    kind: Kind, fix: Fix, packages: tuple[str, ...], name: str, parameter: str
) -> None:
    """A callable whose keyword `parameter` takes a dict it passes to DDP as **kwargs:
    Ray's `prepare_model(model, parallel_strategy_kwargs={...})`."""
    for package in packages:
        _KWARGS_PARAMS[(package, name, parameter)] = (kind, fix)


def keyword(name: str) -> Callable[[_H], _H]:
    """Register a handler for calls that pass keyword `name`."""

    def register(handler: _H) -> _H:
        _KEYWORDS[name] = handler  # type: ignore[assignment]
        return handler

    return register


def assignment(handler: _H) -> _H:
    """Register a handler for module-level assignments to a dotted name."""
    _ASSIGNMENTS.append(handler)  # type: ignore[arg-type]
    return handler


def node(*types: type) -> Callable[[_H], _H]:
    """Register a handler for every visited node of these ast types."""

    def register(handler: _H) -> _H:
        for kind in types:
            _NODES.setdefault(kind, []).append(handler)  # type: ignore[arg-type]
        return handler

    return register


def load() -> None:
    """Import every framework module once; each registers itself on import."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from codemod.sites import frameworks

    for info in sorted(pkgutil.iter_modules(frameworks.__path__), key=lambda i: i.name):
        importlib.import_module(f"{frameworks.__name__}.{info.name}")


def known_api(qualname: str) -> Api | None:
    """The API a fully qualified name denotes, from torch and the known frameworks."""
    load()
    hit = _EXACT.get(qualname) or _BY_PACKAGE.get(_split(qualname))
    return Api(hit[0], hit[1], qualname) if hit else None


def api_last_names() -> set[str]:
    """Last names of the APIs whose DDP is built where they are called (not later by a
    framework): what a file must mention to hold a helper that forwards into one."""
    load()
    exact = {q.rsplit(".", 1)[-1] for q, (kind, _) in _EXACT.items() if not kind.built_later}
    return exact | {name for (_, name), (kind, _) in _BY_PACKAGE.items() if not kind.built_later}


def kwargs_parameter_api(qualname: str, parameter: str) -> Api | None:
    """The API when `qualname(..., parameter={...})` feeds that dict to DDP."""
    load()
    hit = _KWARGS_PARAMS.get((*_split(qualname), parameter))
    return Api(hit[0], hit[1], qualname) if hit else None


def is_factory(qualname: str) -> bool:
    load()
    return _split(qualname) in _FACTORIES


def is_torch_ddp(qualname: str) -> bool:
    found = known_api(qualname)
    return found is not None and found.kind == Kind.TORCH_DDP


def keyword_handlers() -> dict[str, KeywordHandler]:
    load()
    return _KEYWORDS


def assignment_handlers() -> list[AssignmentHandler]:
    load()
    return _ASSIGNMENTS


def node_handlers() -> dict[type, list[NodeHandler]]:
    load()
    return _NODES


def false_like(word: str) -> str:
    """`false` in the case style of `word`: true -> false, True -> False, TRUE -> FALSE."""
    if word.isupper():
        return "FALSE"
    return "False" if word[:1].isupper() else "false"
