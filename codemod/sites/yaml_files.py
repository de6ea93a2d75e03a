"""Sites in YAML configs, and their byte-exact rewrite.

A real YAML parser (PyYAML's composer, which resolves `true`/`yes`/`on` exactly as the
`yaml.safe_load` in training code does) locates each value; the rewrite replaces that one
token in the text, so comments, key order, quoting, anchors and line endings stay as they
were. A quoted `"true"` is a string, not a boolean: reported, never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from codemod.model import KEEP_COMMENT, Fix, Kind, Site, Span
from codemod.recorder._ddp_codemod_source import MODULE_QUALNAME
from codemod.sites.catalogue import DICT_KEYS, false_like
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
    stack: list[tuple[yaml.Node, str]] = [(doc, "") for doc in reversed(documents) if doc]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:  # an alias: its anchor is reported where it is defined
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(
                (child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node.value)))
            )
            continue
        if not isinstance(node, yaml.MappingNode):
            continue
        children = []
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            dotted = f"{path}.{name}" if path else str(name)
            site = _site(key, value, name, dotted, text, file, rel)
            if site is not None:
                found.append(site)
            elif name != "<<":
                children.append((value, dotted))
        stack.extend(reversed(children))
    return sorted(found, key=lambda item: item[1].start)


def _site(
    key: yaml.Node, value: yaml.Node, name: str | None, dotted: str, text: str, file: Path, rel: str
) -> tuple[Site, ValueEdit] | None:
    if not isinstance(value, yaml.ScalarNode):
        return None
    raw = text[value.start_mark.index : value.end_mark.index]
    report_only = ""
    if name in DICT_KEYS:
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
        callee="",
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
