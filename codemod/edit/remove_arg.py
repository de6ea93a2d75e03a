"""Remove one argument from a call and leave its neighbours as a person would.

libcst keeps the text between arguments in the comma before each one; removing an
argument means merging the gap before it with the gap after it. Full-line comments on
either side survive; only the removed argument's own trailing comment goes with it.
"""

from __future__ import annotations

import libcst as cst

Gap = cst.BaseParenthesizableWhitespace


def _has_comments(gap: Gap) -> bool:
    if not isinstance(gap, cst.ParenthesizedWhitespace):
        return False
    return gap.first_line.comment is not None or any(e.comment for e in gap.empty_lines)


def _has_comment_lines(gap: Gap) -> bool:
    """Comments on lines of their own; a trailing comment belongs to the argument before."""
    return isinstance(gap, cst.ParenthesizedWhitespace) and any(e.comment for e in gap.empty_lines)


def _without_trailing_comment(gap: cst.ParenthesizedWhitespace) -> cst.ParenthesizedWhitespace:
    return gap.with_changes(first_line=cst.TrailingWhitespace(newline=gap.first_line.newline))


def _merge(before: cst.ParenthesizedWhitespace, after: cst.ParenthesizedWhitespace) -> Gap:
    """Line end of `before`, every comment line of both, indentation of `after`."""
    return cst.ParenthesizedWhitespace(
        first_line=before.first_line,
        empty_lines=[*before.empty_lines, *after.empty_lines],
        indent=after.indent,
        last_line=after.last_line,
    )


def _joined(before: Gap, after: Gap, closing: bool) -> Gap:
    """The gap that replaces `before` + removed argument + `after`.

    `closing` is true when a `)` follows: then the line break before the removed argument
    goes too (`x,\\n    k=True)` becomes `x)`), unless comments need it.
    """
    if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(
        after, cst.ParenthesizedWhitespace
    ):
        return _merge(before, after)
    if isinstance(after, cst.ParenthesizedWhitespace):
        return _without_trailing_comment(after)
    if closing and not _has_comments(before):
        return after
    return before


def _gap_after(arg: cst.Arg) -> Gap:
    if isinstance(arg.comma, cst.Comma):
        return arg.comma.whitespace_after
    return arg.whitespace_after_arg


def without_arg(call: cst.Call, index: int) -> cst.Call:
    """`call` with `call.args[index]` removed and commas and whitespace mended."""
    args = list(call.args)
    removed = args.pop(index)
    after = _gap_after(removed)
    if index == 0:
        before = call.whitespace_before_args
        if not args:
            if _has_comments(before) or _has_comment_lines(after):
                gap = _joined(before, after, closing=True)
            else:
                gap = cst.SimpleWhitespace("")
        else:
            gap = _joined(before, after, closing=False)
        return call.with_changes(args=args, whitespace_before_args=gap)

    prev = args[index - 1]
    assert isinstance(prev.comma, cst.Comma)
    before = prev.comma.whitespace_after
    last = index == len(args)
    gap = _joined(before, after, closing=last)
    if last and not isinstance(removed.comma, cst.Comma):
        args[index - 1] = prev.with_changes(
            comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=gap
        )
    else:
        args[index - 1] = prev.with_changes(comma=prev.comma.with_changes(whitespace_after=gap))
    return call.with_changes(args=args)
