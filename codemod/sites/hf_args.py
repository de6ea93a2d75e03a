"""Argument files an `HfArgumentParser` run chose, that leave `ddp_find_unused_parameters` out.

`parser.parse_yaml_file(sys.argv[1])` / `parse_json_file(...)` (LLaMA-Factory, axolotl and
many scripts) fill TrainingArguments from a flat file; a file without the key leaves the
Trainer's "auto" default, which turns the flag on. Which files those are cannot be told
from the code soundly (a loader may be anybody's, and an unknown key breaks a strict one),
so only a file that a traced run named on its command line, whose DDP was built by
framework code with transformers loaded and no Lightning, and which sets a key only
TrainingArguments knows, is a site (`ConfigFacts.hf_args`). The fix adds the key as the
last top-level entry, in the file's own style, or the site is report only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from codemod.model import Fix, Kind, Site, Span
from codemod.sites import catalogue

KEY = catalogue.HF_KEYWORD
# TrainingArguments fields that no other tool's config is likely to share
TRAINING_KEYS = frozenset(
    {
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "gradient_accumulation_steps",
        "lr_scheduler_type",
        "save_strategy",
        "eval_strategy",
        "evaluation_strategy",
        "logging_steps",
        "save_total_limit",
        "warmup_ratio",
    }
)
RULE = (
    "a traced Hugging Face run chose this argument file, which leaves "
    "`ddp_find_unused_parameters` out, so its default (None) turns find_unused_parameters "
    "on: the Trainer passes True unless the model is a PreTrainedModel with gradient "
    "checkpointing on"
)
KEPT_STYLE = "; the key cannot be added in the file's own style ({why}); report only"
_MARKER = re.compile(r"^(?:---|\.\.\.)(?:\s|$)", re.M)


@dataclass(frozen=True)
class Insertion:
    """The whole new text: the edit an argument-file site stands for."""

    new_text: str


def is_argument_mapping(value: object) -> bool:
    """A flat mapping that sets a TrainingArguments-only key and not ours."""
    return (
        isinstance(value, dict)
        and all(isinstance(k, str) for k in value)
        and KEY not in value
        and any(k in TRAINING_KEYS for k in value)
    )


def _eol(text: str) -> str | None:
    """The file's one line ending; None when it mixes them."""
    crlf = text.count("\r\n")
    if text.count("\r") != crlf or (crlf and text.count("\n") != crlf):
        return None
    return "\r\n" if crlf else "\n"


def _yaml_insertion(text: str) -> tuple[str | None, str]:
    import yaml

    eol = _eol(text)
    if eol is None:
        return None, "it mixes line endings"
    if _MARKER.search(text):
        return None, "it has document markers"
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None, "it does not parse"
    if not isinstance(node, yaml.MappingNode) or node.flow_style or node.start_mark.column:
        return None, "its top level is not a block mapping"
    if "\t" in text or "\ufeff" in text:
        return None, "it holds tabs or a byte-order mark"
    line = f"{KEY}: false"
    new = text + line + eol if text.endswith(eol) else text + eol + line
    return new, ""


def _json_insertion(text: str) -> tuple[str | None, str]:
    eol = _eol(text)
    if eol is None:
        return None, "it mixes line endings"
    body = text.rstrip()
    if not body.endswith("}"):
        return None, "it is not one object"
    inner = body[:-1]
    last = inner.rstrip()
    gap = inner[len(last) :]
    first = re.match(r"\{([ \t]*)(\r?\n)([ \t]+)\"", text)
    if first is None or first.group(1) or eol not in gap:
        return None, "it is not an object with one member a line"
    indent = first.group(3)
    new = f'{last},{eol}{indent}"{KEY}": false{gap}}}{text[len(body) :]}'
    return new, ""


def verify(old: object, new_text: str, json_file: bool) -> bool:
    """The new file parses to the old mapping plus exactly the new key, False, last."""
    import yaml

    try:
        new = json.loads(new_text) if json_file else yaml.safe_load(new_text)
    except (ValueError, yaml.YAMLError):
        return False
    return (
        isinstance(old, dict)
        and isinstance(new, dict)
        and new == {**old, KEY: False}
        and list(new)[-1] == KEY
    )


def find(text: str, file: Path, rel: str) -> tuple[Site, Insertion | None] | None:
    """The site of a chosen argument file, or None when it is no argument mapping."""
    json_file = rel.endswith(".json")
    try:
        if json_file:
            old = json.loads(text)
        else:
            import yaml

            old = yaml.safe_load(text)
    except Exception:  # any parse failure (a YAMLError, too deep): no mapping, no site
        return None
    if not is_argument_mapping(old):
        return None
    new, why = (_json_insertion if json_file else _yaml_insertion)(text)
    if new is not None and not verify(old, new, json_file):
        new, why = None, "parsing it with the key added did not give the old mapping plus it"
    lines = text.splitlines() or [""]
    span = Span(1, 1, len(lines), len(lines[-1]) + 1)
    site = Site(
        path=rel,
        file=file,
        span=span,
        setting_span=Span(len(lines), 1, len(lines), len(lines[-1]) + 1),
        kind=Kind.JSON if json_file else Kind.YAML,
        setting=KEY,
        value="None (auto)",
        literal=True,
        fix=Fix.ADD_FALSE,
        qualname="<module>",
        callee="transformers.HfArgumentParser",
        report_only=RULE + KEPT_STYLE.format(why=why) if new is None else "",
        implicit=RULE,
    )
    return site, (Insertion(new) if new is not None else None)
