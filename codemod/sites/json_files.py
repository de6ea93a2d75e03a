"""Sites in JSON configs, and their byte-exact rewrite.

Hugging Face argument files (`"ddp_find_unused_parameters": true`), MONAI bundles (a
`"_target_": "torch.nn.parallel.DistributedDataParallel"` object with
`"find_unused_parameters": true`) and any other `find_unused_parameters` key. The standard
library's parser gives no positions, so a small strict parser here (RFC 8259, with the
standard library scanning each string and decoding each number token) records where every
value lies;
the rewrite replaces one `true` token by `false`, and the result is parsed again to prove
it. Objects that name their class follow the same rule as YAML (`config_targets`); a
string value (`"true"`, MONAI's `"$True"` expression) is reported, never rewritten. Our
own evidence files are data.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring
from pathlib import Path
from typing import Any

from codemod.model import Fix, Kind, Site, Span
from codemod.recorder._ddp_codemod_source import FORMAT, MODULE_QUALNAME
from codemod.sites.catalogue import DICT_KEYS
from codemod.sites.config_targets import Holder, callee_for

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WORDS = {"true": True, "false": False, "null": None}
_MAX_DEPTH = 400  # deeper than any config; keeps the recursive parser off Python's limit


class JsonError(Exception):
    """The file is not JSON we can read; one line."""


@dataclass
class Node:
    """One JSON value and where its token(s) lie: text[start:end]."""

    kind: str  # object, array, string, number, true, false, null
    start: int
    end: int
    value: Any = None  # scalars: the decoded value
    items: list[Any] = field(default_factory=list)  # object: (key, value) nodes; array: nodes


@dataclass(frozen=True)
class ValueEdit:
    """Character offsets of the `true` token to replace."""

    start: int
    end: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, at: int | None = None) -> JsonError:
        index = self.pos if at is None else at
        line = self.text.count("\n", 0, index) + 1
        column = index - (self.text.rfind("\n", 0, index) + 1) + 1
        return JsonError(f"JSON error at line {line}, column {column}: {message}")

    def skip(self) -> None:
        self.pos = _WS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def document(self) -> Node:
        self.skip()
        node = self.value(0)
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("extra data after the document")
        return node

    def value(self, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise self.fail("nested too deeply")
        text, pos = self.text, self.pos
        char = text[pos : pos + 1]
        if char == "{":
            return self.container(depth, "}", "object")
        if char == "[":
            return self.container(depth, "]", "array")
        if char == '"':
            return self.string()
        for word, value in _WORDS.items():
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return Node(word, pos, self.pos, value)
        match = _NUMBER.match(text, pos)
        if match and match.end() > pos:
            self.pos = match.end()
            return Node("number", pos, self.pos, json.loads(match.group(0)))
        raise self.fail("expected a value" if char else "unexpected end of the file")

    def string(self) -> Node:
        """The standard library's C string scanner: a regex over a notebook's base64
        outputs took most of a scan's time for notebooks."""
        start = self.pos
        try:
            value, self.pos = scanstring(self.text, start + 1, True)
        except ValueError:  # unterminated, a control character, a bad escape
            raise self.fail("unterminated or invalid string") from None
        return Node("string", start, self.pos, value)

    def container(self, depth: int, close: str, kind: str) -> Node:
        node = Node(kind, self.pos, self.pos)
        self.pos += 1
        self.skip()
        if self.text.startswith(close, self.pos):
            self.pos += 1
            node.end = self.pos
            return node
        while True:
            if kind == "object":
                if not self.text.startswith('"', self.pos):
                    raise self.fail("expected a string key")
                key = self.string()
                self.skip()
                if not self.text.startswith(":", self.pos):
                    raise self.fail("expected ':'")
                self.pos += 1
                self.skip()
                node.items.append((key, self.value(depth + 1)))
            else:
                node.items.append(self.value(depth + 1))
            self.skip()
            char = self.text[self.pos : self.pos + 1]
            self.pos += 1
            if char == close:
                node.end = self.pos
                return node
            if char != ",":
                raise self.fail(f"expected ',' or '{close}'", self.pos - 1)
            self.skip()


def parse(text: str) -> Node:
    """The document with every value's position; JsonError when it is not strict JSON."""
    try:
        return _Parser(text).document()
    except RecursionError:
        raise JsonError("JSON error: nested too deeply") from None


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in re.finditer(r"\r\n|\r|\n", text))]

    def position(self, offset: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def span(self, start: int, end: int) -> Span:
        return Span(*self.position(start), *self.position(end))


def _scalars(node: Node) -> dict[str, object]:
    return {k.value: v.value for k, v in node.items if v.kind == "string"}


def find(text: str, file: Path, rel: str) -> list[tuple[Site, ValueEdit]]:
    """Every site in a JSON document."""
    root = parse(text)
    if root.kind == "object" and _scalars(root).get("format") == FORMAT:
        return []  # ddp-codemod's own evidence: it records the flag, it does not set it
    lines = _Lines(text)
    found: list[tuple[Site, ValueEdit]] = []
    # (node, dotted path, the key it is the value of, the parent object's string entries)
    stack: list[tuple[Node, str, str | None, dict[str, object] | None]] = [(root, "", None, None)]
    while stack:
        node, path, parent_key, parent = stack.pop()
        if node.kind == "array":
            stack.extend(
                (child, f"{path}[{i}]", None, None)
                for i, child in reversed(list(enumerate(node.items)))
            )
            continue
        if node.kind != "object":
            continue
        scalars = _scalars(node)
        holder = Holder(scalars, parent_key, parent)
        children = []
        for key, value in node.items:
            name = key.value
            dotted = f"{path}.{name}" if path else name
            callee = callee_for(name, holder) if name in DICT_KEYS else None
            if callee is not None and value.kind not in ("object", "array"):
                found.append(_site(key, value, dotted, callee, text, lines, file, rel))
            elif callee is None:
                children.append((value, dotted, name, scalars))
        stack.extend(reversed(children))
    return sorted(found, key=lambda item: item[1].start)


def _site(
    key: Node,
    value: Node,
    dotted: str,
    callee: str,
    text: str,
    lines: _Lines,
    file: Path,
    rel: str,
) -> tuple[Site, ValueEdit]:
    raw = text[value.start : value.end]
    literal = value.value if value.kind in ("true", "false") else None
    report_only = ""
    if value.kind == "string" and value.value:
        report_only = (
            f"the value {raw} is a string, not a JSON boolean (an expression or a non-empty "
            "string, which is truthy); report only"
        )
    site = Site(
        path=rel,
        file=file,
        span=lines.span(key.start, value.end),
        setting_span=lines.span(key.start, key.end),
        kind=Kind.JSON,
        setting=dotted,
        value=raw,
        literal=literal,
        fix=Fix.WRITE_FALSE,
        qualname=MODULE_QUALNAME,
        callee=callee,
        report_only=report_only,
    )
    return site, ValueEdit(value.start, value.end)


def rewrite(text: str, edits: list[ValueEdit]) -> str:
    """Each `true` token becomes `false`, last first so earlier offsets stay valid."""
    out = text
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        if out[edit.start : edit.end] != "true":
            raise JsonError(f"expected `true` at offset {edit.start}")
        out = out[: edit.start] + "false" + out[edit.end :]
    try:
        json.loads(out)  # a second, independent parser agrees it is still JSON
    except ValueError as exc:
        raise JsonError(f"the rewritten file is not JSON: {exc}") from None
    return out
