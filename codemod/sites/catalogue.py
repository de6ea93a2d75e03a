"""The catalogue of APIs that take find_unused_parameters, and how each is turned off.

A callee matches by its resolved qualified name, never by a bare name: Megatron's and
fairseq's own `DistributedDataParallel` classes must not look like torch's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codemod.model import Fix, Kind

KEYWORD = "find_unused_parameters"
HF_KEYWORD = "ddp_find_unused_parameters"
DICT_KEYS = frozenset({KEYWORD, HF_KEYWORD})
YACS_KEY = re.compile(r"^FIND_UNUSED_PARAM(S|ETERS)?$")  # _C.FIND_UNUSED_PARAM = True

TORCH_DDP = frozenset(
    {
        "torch.nn.parallel.DistributedDataParallel",
        "torch.nn.parallel.distributed.DistributedDataParallel",
    }
)

# Lightning accepts these names in any case; "ddp" alone meant True in Lightning 1.x.
STRATEGY_NAME = re.compile(
    r"^(ddp|ddp_spawn|ddp_fork|ddp_notebook)_find_unused_parameters_(true|false)$", re.IGNORECASE
)


_TRUE_SUFFIX = re.compile(r"_(true)(?=['\"]*$)", re.IGNORECASE)


def false_like(word: str) -> str:
    """`false` in the case style of `word`: true -> false, True -> False, TRUE -> FALSE."""
    if word.isupper():
        return "FALSE"
    return "False" if word[:1].isupper() else "false"


def strategy_false(literal: str) -> str:
    """`"ddp_find_unused_parameters_true"` -> `"ddp_find_unused_parameters_false"`, case kept."""
    return _TRUE_SUFFIX.sub(lambda m: "_" + false_like(m.group(1)), literal)


@dataclass(frozen=True)
class Api:
    """An API that takes the keyword, with what writing it off means there."""

    kind: Kind
    fix: Fix  # under --style remove; --style false always writes False
    name: str  # the qualified name it resolved to


def _split(qualname: str) -> tuple[str, str]:
    return qualname.split(".", 1)[0], qualname.rsplit(".", 1)[-1]


_BY_PACKAGE: dict[tuple[str, str], tuple[Kind, Fix]] = {}
for _top in ("mmcv", "mmengine"):
    for _cls in ("MMDistributedDataParallel", "MMSeparateDistributedDataParallel"):
        _BY_PACKAGE[(_top, _cls)] = (Kind.TORCH_DDP, Fix.REMOVE)
_BY_PACKAGE[("accelerate", "DistributedDataParallelKwargs")] = (Kind.ACCELERATE, Fix.REMOVE)
_BY_PACKAGE[("detectron2", "create_ddp_model")] = (Kind.DETECTRON2, Fix.REMOVE)
for _top in ("lightning", "pytorch_lightning", "lightning_fabric"):
    for _cls in ("DDPStrategy", "DDPSpawnStrategy", "DDPPlugin", "DDPSpawnPlugin"):
        # Lightning 1.x turned the flag on itself when it was not passed: write False.
        _BY_PACKAGE[(_top, _cls)] = (Kind.LIGHTNING, Fix.WRITE_FALSE)

# Callables that take a class first and its keywords after: partial(DDP, ...).
_FACTORIES = frozenset(
    {
        ("functools", "partial"),
        ("jsonargparse", "lazy_instance"),
        ("lightning", "lazy_instance"),
        ("pytorch_lightning", "lazy_instance"),
    }
)


def known_api(qualname: str) -> Api | None:
    """The API a fully qualified name denotes, from torch and the known frameworks."""
    if qualname in TORCH_DDP:
        return Api(Kind.TORCH_DDP, Fix.REMOVE, qualname)
    hit = _BY_PACKAGE.get(_split(qualname))
    return Api(hit[0], hit[1], qualname) if hit else None


def is_factory(qualname: str) -> bool:
    return _split(qualname) in _FACTORIES


def is_torch_ddp(qualname: str) -> bool:
    return qualname in TORCH_DDP or (
        _BY_PACKAGE.get(_split(qualname), (None,))[0] is Kind.TORCH_DDP
    )
