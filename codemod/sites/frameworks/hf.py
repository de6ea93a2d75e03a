"""Hugging Face `TrainingArguments(ddp_find_unused_parameters=...)`, on any callee.

Its default, None, means "auto": True unless gradient checkpointing is on, so turning it
off means writing False. The Trainer builds the DDP later, so evidence pairs by function.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from codemod.model import Fix, Kind
from codemod.sites import catalogue

if TYPE_CHECKING:
    from codemod.sites.python import Edit, Finder

HF_TRAINER = Kind("hf-trainer", built_later=True)


@catalogue.keyword(catalogue.HF_KEYWORD)
def training_arguments(finder: Finder, call: ast.Call, kw: ast.keyword, edit: Edit) -> None:
    assert kw.arg is not None
    callee = finder.callee_name(call.func)
    finder.add(call, kw, HF_TRAINER, kw.arg, kw.value, Fix.WRITE_FALSE, callee, edit)
