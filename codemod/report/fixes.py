"""Split a file's rewrite into one replacement per site, for reports that carry fixes.

The rewriter works on whole files; a SARIF result wants the edit of its own site. The
old and new text are diffed by line and then by character inside each changed block,
and every edit goes to the innermost changed site whose span holds it. The pieces must
rebuild the new file exactly, or the file gets no fixes at all.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from codemod.discover.source import SourceError, decode
from codemod.model import Site, Span

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Replacement:
    """Replace old text from `start` up to (not including) `end` by `text`.

    Positions are (line, column), both 1-based, columns in code points: the same
    coordinates as a Site's spans.
    """

    start: tuple[int, int]
    end: tuple[int, int]
    text: str


class _Lines:
    """Offsets <-> (line, column) for one text, splitting lines like the tokenizer."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(m.end() for m in _LINE_END.finditer(text))]

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col - 1

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1


def _edits(old: str, new: str) -> list[tuple[int, int, int, int]]:
    """(old start, old end, new start, new end) character ranges that differ."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    old_at = [0]
    for line in old_lines:
        old_at.append(old_at[-1] + len(line))
    new_at = [0]
    for line in new_lines:
        new_at.append(new_at[-1] + len(line))
    out: list[tuple[int, int, int, int]] = []
    blocks = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, a1, a2, b1, b2 in blocks.get_opcodes():
        if tag == "equal":
            continue
        o, n = old_at[a1], new_at[b1]
        chars = difflib.SequenceMatcher(None, old[o : old_at[a2]], new[n : new_at[b2]], False)
        for ctag, i1, i2, j1, j2 in chars.get_opcodes():
            if ctag != "equal":
                out.append((o + i1, o + i2, n + j1, n + j2))
    return out


def _owner(spans: Sequence[tuple[int, int]], at: int) -> int | None:
    """The innermost span holding offset `at`."""
    best: int | None = None
    for index, (start, end) in enumerate(spans):
        if start <= at < end and (best is None or start >= spans[best][0]):
            best = index
    return best


def per_site(sites: Sequence[Site], old: bytes, new: bytes) -> dict[int, Replacement]:
    """One replacement per changed site of one file, by the site's index in `sites`."""
    try:
        old_text, new_text = decode(old).text, decode(new).text
    except SourceError:
        return {}
    lines = _Lines(old_text)
    changed = [i for i, site in enumerate(sites) if site.changed]
    spans = [_offsets(lines, sites[i].span) for i in changed]
    ranges: dict[int, list[int]] = {}  # site index -> [old start, old end, new start, new end]
    for i1, i2, j1, j2 in _edits(old_text, new_text):
        owner = _owner(spans, i1)
        if owner is None:
            return {}
        index = changed[owner]
        if index in ranges:
            r = ranges[index]
            ranges[index] = [min(r[0], i1), max(r[1], i2), min(r[2], j1), max(r[3], j2)]
        else:
            ranges[index] = [i1, i2, j1, j2]
    out = {
        index: Replacement(lines.position(r[0]), lines.position(r[1]), new_text[r[2] : r[3]])
        for index, r in ranges.items()
    }
    return out if apply(old_text, out.values()) == new_text else {}


def _offsets(lines: _Lines, span: Span) -> tuple[int, int]:
    return lines.offset(span.line, span.col), lines.offset(span.end_line, span.end_col)


def apply(text: str, replacements: Iterable[Replacement]) -> str:
    """`text` with non-overlapping replacements made; what a SARIF consumer would do."""
    lines = _Lines(text)
    pieces: list[str] = []
    at = 0
    for r in sorted(replacements, key=lambda r: r.start):
        start, end = lines.offset(*r.start), lines.offset(*r.end)
        if start < at:
            raise ValueError("overlapping replacements")
        pieces += [text[at:start], r.text]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)
