"""Prove a rewrite touched only what it meant to, token by token.

The new source must tokenize to the old token stream minus each removed argument (and one
comma), with each replaced value swapped for its new token, and with each added keyword's
tokens (`, name = False` and maybe a trailing comma) right before its call's closing
bracket; comments may only vanish from the removed argument's own lines. Anything else
means a bug in the rewriter, and the file is left alone.
"""

from __future__ import annotations

import io
import tokenize
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from codemod.model import Fix, Span

_SKIP = frozenset(
    {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
)


@dataclass(frozen=True)
class Change:
    """One intended edit: a span removed whole, a value span replaced by one token, or
    tokens added to a call (ADD_FALSE: `span` is the call)."""

    fix: Fix
    span: Span  # the argument / element / assignment / call
    value_span: Span
    added: tuple[str, ...] = ()  # ADD_FALSE: the tokens inserted before the call's `)`


@dataclass(frozen=True)
class _Token:
    string: str
    start: tuple[int, int]  # (line, 0-based column)


def _tokens(text: str) -> tuple[list[_Token], list[_Token]]:
    """(significant tokens, comments)."""
    code: list[_Token] = []
    comments: list[_Token] = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in _SKIP:
            continue
        target = comments if tok.type == tokenize.COMMENT else code
        target.append(_Token(tok.string, tok.start))
    return code, comments


def _inside(token: _Token, span: Span) -> bool:
    start = (span.line, span.col - 1)
    end = (span.end_line, span.end_col - 1)
    return start <= token.start < end


def _expected(old: list[_Token], changes: Iterable[tuple[Change, str]]) -> list[str]:
    """The old token strings with every change applied."""
    drop: set[int] = set()
    replace: dict[int, str] = {}
    insert: dict[int, tuple[str, ...]] = {}
    for change, new_value in changes:
        if change.fix is Fix.ADD_FALSE:
            inside = [i for i, t in enumerate(old) if _inside(t, change.span)]
            if not inside or old[inside[-1]].string != ")" or not change.added:
                raise ValueError("an added keyword must go before a call's closing bracket")
            insert[inside[-1]] = change.added
        elif change.fix is Fix.REMOVE:
            inside = [i for i, t in enumerate(old) if _inside(t, change.span)]
            drop.update(inside)
            after = inside[-1] + 1
            if after < len(old) and old[after].string == ",":
                drop.add(after)
            elif inside[0] > 0 and old[inside[0] - 1].string == ",":
                drop.add(inside[0] - 1)
        else:
            inside = [i for i, t in enumerate(old) if _inside(t, change.value_span)]
            if len(inside) != 1:
                raise ValueError("a replaced value must be one token")
            replace[inside[0]] = new_value
    out: list[str] = []
    for i, token in enumerate(old):
        out.extend(insert.get(i, ()))
        if i in replace:
            out.append(replace[i])
        elif i not in drop:
            out.append(token.string)
    return out


def check(old_text: str, new_text: str, changes: list[tuple[Change, str]]) -> str | None:
    """None when `new_text` is exactly `old_text` with `changes`; else what went wrong.

    Each change comes with the token its value becomes ("" for removals).
    """
    try:
        old_code, old_comments = _tokens(old_text)
        new_code, new_comments = _tokens(new_text)
    except (tokenize.TokenError, SyntaxError) as exc:
        return f"the rewritten code does not tokenize ({exc})"
    try:
        expected = _expected(old_code, changes)
    except (ValueError, IndexError) as exc:
        return f"the edit does not map onto the source tokens ({exc})"
    if [t.string for t in new_code] != expected:
        return "the rewrite changed more tokens than the setting itself"
    lost = Counter(t.string for t in old_comments) - Counter(t.string for t in new_comments)
    gained = Counter(t.string for t in new_comments) - Counter(t.string for t in old_comments)
    if gained:
        return "the rewrite added a comment"
    removable = Counter(
        t.string
        for t in old_comments
        for change, _ in changes
        if change.fix is Fix.REMOVE and change.span.line <= t.start[0] <= change.span.end_line
    )
    if lost - removable:
        return "the rewrite would drop a comment"
    return None
