"""Sites in YAML configs, and their byte-exact rewrite.

A real YAML parser (PyYAML's composer, which resolves `true`/`yes`/`on` exactly as the
`yaml.safe_load` in training code does) locates each value; the rewrite replaces that one
token in the text, so comments, key order, quoting, anchors and line endings stay as they
were. A quoted `"true"` is a string, not a boolean: reported, never rewritten. A mapping
that names its class (`_target_`, `class_path`/`init_args`, `target`/`params`) holds a
site only when that class is a DDP API (`config_targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from codemod.model import KEEP_COMMENT, Fix, Kind, Site, Span
from codemod.recorder._ddp_codemod_source import MODULE_QUALNAME
from codemod.sites.catalogue import DICT_KEYS, false_like
from codemod.sites.config_targets import (
    ESPNET_CALLEE,
    ESPNET_KEY,
    Holder,
    callee_for,
    is_espnet_config,
)
from codemod.sites.frameworks.lightning import STRATEGY_NAME, strategy_false

_BOOL = "tag:yaml.org,2002:bool"
# libyaml's parser when PyYAML has it: the same nodes, tags and marks, ~10x faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TRUE = frozenset({"true", "yes", "on"})


class YamlError(Exception):
    """The file is not YAML we can read; one line."""


@dataclass(frozen=True)
class ValueEdit:
    """Character offsets of the value token to replace."""

    start: int
    end: int


def _span(start: yaml.Mark, end: yaml.Mark) -> Span:
    return Span(start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def new_value(node_text: str, fix: Fix) -> str:
    return strategy_false(node_text) if fix is Fix.STRATEGY_FALSE else false_like(node_text)


def find(text: str, file: Path, rel: str) -> list[tuple[Site, ValueEdit]]:
    """Every site in a YAML stream (all documents)."""
    try:
        documents = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YamlError(f"YAML error{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}") from None
    found: list[tuple[Site, ValueEdit]] = []
    seen: set[int] = set()
    # (node, dotted path, the key it is the value of, the parent mapping's scalars)
    stack: list[tuple[yaml.Node, str, str | None, dict[str, str] | None]] = [
        (doc, "", None, None) for doc in reversed(documents) if doc
    ]
    while stack:
        node, path, parent_key, parent = stack.pop()
        if id(node) in seen:  # an alias: its anchor is reported where it is defined
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(
                (child, f"{path}[{i}]", None, None)
                for i, child in reversed(list(enumerate(node.value)))
            )
            continue
        if not isinstance(node, yaml.MappingNode):
            continue
        scalars = {
            k.value: v.value
            for k, v in node.value
            if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)
        }
        holder = Holder(scalars, parent_key, parent)
        espnet = not path and any(
            isinstance(k, yaml.ScalarNode) and k.value == ESPNET_KEY for k, _ in node.value
        )
        if espnet:  # ESPnet's own key, at the top of an ESPnet training config only
            keys = {k.value: None for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
            espnet = is_espnet_config(file, keys)
        children = []
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            dotted = f"{path}.{name}" if path else str(name)
            if name in DICT_KEYS:
                callee = callee_for(name, holder)
            elif name == ESPNET_KEY and espnet:
                callee = ESPNET_CALLEE
            else:
                callee = None
            site = _site(key, value, name, dotted, text, file, rel, callee)
            if site is not None:
                found.append(site)
            elif name != "<<":
                children.append((value, dotted, name, scalars))
        stack.extend(reversed(children))
    return sorted(found, key=lambda item: item[1].start)


def _site(
    key: yaml.Node,
    value: yaml.Node,
    name: str | None,
    dotted: str,
    text: str,
    file: Path,
    rel: str,
    callee: str | None,
) -> tuple[Site, ValueEdit] | None:
    """`callee`: what a setting key here configures; None when the key is data here."""
    if not isinstance(value, yaml.ScalarNode):
        return None
    raw = text[value.start_mark.index : value.end_mark.index]
    report_only = ""
    if callee is not None:
        literal = raw.lower() in _TRUE if value.tag == _BOOL else None
        fix = Fix.WRITE_FALSE
        if literal is None and value.tag == "tag:yaml.org,2002:str" and value.value:
            report_only = (
                f"the value {raw} is a string, not a YAML boolean (and a non-empty string "
                "is truthy); report only"
            )
    elif name == "strategy" and STRATEGY_NAME.match(value.value):
        literal = value.value.lower().endswith("_true")
        fix = Fix.STRATEGY_FALSE
        callee = ""
    else:
        return None
    line_end = text.find("\n", value.end_mark.index)
    rest = text[value.end_mark.index : line_end if line_end >= 0 else len(text)]
    site = Site(
        path=rel,
        file=file,
        span=_span(key.start_mark, value.end_mark),
        setting_span=_span(key.start_mark, key.end_mark),
        kind=Kind.YAML,
        setting=dotted,
        value=raw,
        literal=literal,
        fix=fix,
        qualname=MODULE_QUALNAME,
        callee=callee or "",
        keep=KEEP_COMMENT.search(rest) is not None,
        report_only=report_only,
    )
    return site, ValueEdit(value.start_mark.index, value.end_mark.index)


def rewrite(text: str, edits: list[tuple[ValueEdit, Fix]]) -> str:
    """Replace each value token, last first so earlier offsets stay valid."""
    out = text
    for edit, fix in sorted(edits, key=lambda e: e[0].start, reverse=True):
        out = out[: edit.start] + new_value(out[edit.start : edit.end], fix) + out[edit.end :]
    return out
