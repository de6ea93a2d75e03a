"""Hugging Face `TrainingArguments` and its family: written, defaulted, and declared.

`ddp_find_unused_parameters` defaults to None, which means "auto": the Trainer passes
True unless the model is a PreTrainedModel with gradient checkpointing on. transformers
5.24 decides it in `Trainer._build_accelerator_args` (src/transformers/trainer.py:
`find_unused = not (self.model.is_activation_checkpointing or
self.args.activation_checkpointing)` for a PreTrainedModel, `True` otherwise); 4.x did the
same in `Trainer._wrap_model` through `model.is_gradient_checkpointing`. So turning it off
means writing False, and a family call that leaves it out is an implicit site: the keyword
is added. A repo dataclass that subclasses the family and declares
`ddp_find_unused_parameters: bool = True` sets it for every run that parses it. The
Trainer builds the DDP later (through accelerate), so evidence pairs by function.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import TYPE_CHECKING

from codemod.model import Coverage, Fix, Kind, State
from codemod.sites import catalogue

if TYPE_CHECKING:
    from codemod.evidence.load import Process
    from codemod.sites.python import Edit, Finder

HF_TRAINER = Kind("hf-trainer", built_later=True)

TRANSFORMERS_ARGS = ("TrainingArguments", "Seq2SeqTrainingArguments")
# trl's configs subclass TrainingArguments (trl/trainer/base_config.py `_BaseConfig`), also
# those moved to trl.experimental; PPOConfig only from trl 0.12 (a plain dataclass before).
TRL_CONFIGS = (
    "SFTConfig",
    "DPOConfig",
    "GRPOConfig",
    "RewardConfig",
    "PPOConfig",
    "KTOConfig",
    "RLOOConfig",
    "ORPOConfig",
    "CPOConfig",
    "BCOConfig",
    "OnlineDPOConfig",
    "XPOConfig",
    "NashMDConfig",
    "GKDConfig",
    "GOLDConfig",
    "PRMConfig",
    "GMPOConfig",
    "OnPolicyConfig",
)
FAMILY_NAMES = frozenset(TRANSFORMERS_ARGS + TRL_CONFIGS)
CHECKPOINTING = ("gradient_checkpointing", "activation_checkpointing")

RULE = (
    "`ddp_find_unused_parameters` is not passed, and its default (None) turns "
    "find_unused_parameters on: the Trainer passes True unless the model is a "
    "PreTrainedModel with gradient checkpointing on (transformers "
    "`Trainer._build_accelerator_args`)"
)
TRL_NOTE = (
    "; trl >= 0.22 configs turn gradient_checkpointing on by default, which makes it False "
    "for a PreTrainedModel"
)
SPLAT = (
    "the call passes `**{splat}`, which may set ddp_find_unused_parameters, so neither the "
    "value nor a keyword to add can be told here; report only"
)
CHECKPOINTED = (
    "`{keyword}=True`: for a PreTrainedModel the Trainer's default is then already False "
    "(True for any other model, a PeftModel included); report only"
)
OLD_PPO = (
    "trl's PPOConfig subclasses TrainingArguments only from trl 0.12 (a plain dataclass "
    "without the field before), so adding the keyword could break it; report only"
)
CHECKPOINT_EXPR = (
    "`{keyword}={value}` decides the Trainer's default (False with checkpointing on a "
    "PreTrainedModel, True otherwise), so only a run can tell; report only"
)


def with_version(coverage: Coverage, processes: list[Process]) -> Coverage:
    """A safe or unsafe verdict on the Trainer's default names the transformers the runs
    used: the default's rule lives in its code, and moved between 4.x and 5.x."""
    versions = sorted(
        {p.frameworks["transformers"] for p in processes if "transformers" in p.frameworks}
    )
    if coverage.state not in (State.SAFE, State.UNSAFE) or not versions:
        return coverage
    used = ", ".join(f"transformers {v}" for v in versions)
    return dataclasses.replace(coverage, reason=f"{coverage.reason}; the runs used {used}")


def is_family(qualname: str) -> bool:
    """`transformers.TrainingArguments`, `trl.trainer.sft_config.SFTConfig`, ..."""
    top, last = qualname.split(".", 1)[0], qualname.rsplit(".", 1)[-1]
    return (top == "transformers" and last in TRANSFORMERS_ARGS) or (
        top == "trl" and last in TRL_CONFIGS
    )


def _last_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def family_class(
    finder: Finder, func: ast.expr, scope: object = None, depth: int = 0
) -> str | None:
    """The TrainingArguments-family class `func` names: a known one, a repo subclass
    found project-wide, or a class of this file whose bases lead to one."""
    for qualname in sorted(q for q in finder.table.resolve(func, scope or finder.scope) if q):
        if is_family(qualname) or finder.ctx.implicit.is_hf_class(qualname):
            return qualname
        local = finder.table.classes.get(qualname)
        if local is not None and depth < 8:
            node, outer = local
            for base in node.bases:
                if family_class(finder, base, outer, depth + 1):
                    return qualname
    return None


def _candidate(finder: Finder, func: ast.expr) -> bool:
    """A cheap look at the callee's last name before any resolution."""
    name = _last_name(func)
    if name is None:
        return False
    if name in FAMILY_NAMES or name in finder.ctx.implicit.names() or name in finder.implicit_names:
        return True
    return any(q.rsplit(".", 1)[-1] == name for q in finder.table.classes)


def _splat_sets(kw: ast.keyword) -> bool:
    """`**{"ddp_find_unused_parameters": ...}`: written after all, a kwargs-dict site."""
    return isinstance(kw.value, ast.Dict) and any(
        isinstance(k, ast.Constant) and k.value == catalogue.HF_KEYWORD for k in kw.value.keys
    )


def _splat_may_set(kw: ast.keyword) -> bool:
    """`**{...}` with only string keys, none of them ours, cannot set it; anything else can."""
    value = kw.value
    if not isinstance(value, ast.Dict):
        return True
    return any(
        not (isinstance(k, ast.Constant) and isinstance(k.value, str))
        or k.value == catalogue.HF_KEYWORD
        for k in value.keys
    )


def _report_only(finder: Finder, call: ast.Call) -> str:
    for kw in call.keywords:
        if kw.arg is None and _splat_may_set(kw):
            return SPLAT.format(splat=finder.pos.source(finder.span_of(kw.value)))
    for kw in call.keywords:
        if kw.arg in CHECKPOINTING:
            value = kw.value
            if isinstance(value, ast.Constant) and value.value is True:
                return CHECKPOINTED.format(keyword=kw.arg)
            if not (isinstance(value, ast.Constant) and value.value in (False, None)):
                source = finder.pos.source(finder.span_of(value))
                return CHECKPOINT_EXPR.format(keyword=kw.arg, value=source)
    return ""


@catalogue.keyword(catalogue.HF_KEYWORD)
def training_arguments(finder: Finder, call: ast.Call, kw: ast.keyword, edit: Edit) -> None:
    assert kw.arg is not None
    callee = finder.callee_name(call.func)
    finder.add(call, kw, HF_TRAINER, kw.arg, kw.value, Fix.WRITE_FALSE, callee, edit)


@catalogue.node(ast.Call)
def implicit_training_arguments(finder: Finder, call: ast.Call) -> None:
    """`TrainingArguments(output_dir=...)` without the keyword: the default turns it on."""
    if not _candidate(finder, call.func):
        return
    if any(kw.arg == catalogue.HF_KEYWORD or _splat_sets(kw) for kw in call.keywords):
        return  # written: the keyword or the kwargs-dict handler reports it
    callee = family_class(finder, call.func)
    if callee is None:
        return
    report_only = _report_only(finder, call)
    if callee.startswith("trl.") and callee.endswith(".PPOConfig"):
        report_only = report_only or OLD_PPO
    note = TRL_NOTE if callee.startswith("trl.") else ""
    finder.add(
        call,
        call.func,
        HF_TRAINER,
        catalogue.HF_KEYWORD,
        call,
        Fix.ADD_FALSE,
        callee,
        finder.call_edit(call, catalogue.HF_KEYWORD),
        literal=None if report_only else True,
        report_only=report_only,
        implicit=RULE + note,
        value_text="None (auto)",
    )


def _is_dataclass(finder: Finder, node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        outer = finder.scopes[-2] if len(finder.scopes) > 1 else finder.scope
        names = finder.table.resolve(target, outer)
        if any(q and q.rsplit(".", 1)[-1] == "dataclass" for q in names):
            return True
    return False


@catalogue.node(ast.ClassDef)
def argument_dataclass(finder: Finder, node: ast.ClassDef) -> None:
    """`ddp_find_unused_parameters: bool = field(default=True)` in a @dataclass that
    subclasses the family: the default every run that parses this class gets."""
    fields = [
        s
        for s in node.body
        if isinstance(s, ast.AnnAssign)
        and isinstance(s.target, ast.Name)
        and s.target.id == catalogue.HF_KEYWORD
        and s.value is not None
    ]
    if not fields or not _is_dataclass(finder, node):
        return
    outer = finder.scopes[-2] if len(finder.scopes) > 1 else finder.scope
    base = next((b for b in node.bases if family_class(finder, b, outer)), None)
    if base is None:
        return
    callee = finder.scope.qualname
    for stmt in fields:
        assert stmt.value is not None
        value: ast.expr = stmt.value
        edit = finder.edit("annassign", stmt, catalogue.HF_KEYWORD)
        if isinstance(value, ast.Call) and _last_name(value.func) == "field":
            default = next((kw for kw in value.keywords if kw.arg == "default"), None)
            if default is None:
                continue  # default_factory, or no default: nothing literal to turn off
            value = default.value
            edit = finder.edit("arg", default, "default")
        if isinstance(value, ast.Constant) and value.value is None:
            continue  # None is "auto": the calls that build it are the sites
        finder.add(
            stmt,
            stmt.target,
            HF_TRAINER,
            catalogue.HF_KEYWORD,
            value,
            Fix.WRITE_FALSE,
            callee,
            edit,
        )
