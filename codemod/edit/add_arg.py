"""Add one keyword argument to a call, laid out the way the call already is.

An implicit site (`TrainingArguments(...)` without `ddp_find_unused_parameters`,
`DDPStrategy()`) is turned off by writing the explicit False. The new keyword goes last:
on a line of its own, with the indentation of the argument before it and the call's own
trailing-comma habit, when the arguments are one per line (or hang under the first);
inline after `, ` otherwise. Comments stay where they were; none is copied.
"""

from __future__ import annotations

import libcst as cst

Gap = cst.BaseParenthesizableWhitespace


def _bare(gap: cst.ParenthesizedWhitespace) -> cst.ParenthesizedWhitespace:
    """The line break and indentation of `gap`, without its comments or blank lines."""
    return cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(newline=gap.first_line.newline),
        empty_lines=[],
        indent=gap.indent,
        last_line=gap.last_line,
    )


def _closing(gap: Gap, indent: cst.ParenthesizedWhitespace) -> tuple[Gap, Gap]:
    """(what follows the old last argument's comma, what follows the new argument):
    the old gap's end of line and comment lines stay before the new argument, which then
    takes the old gap's last line (the indentation of the closing bracket)."""
    if not isinstance(gap, cst.ParenthesizedWhitespace):
        return indent, gap
    before = cst.ParenthesizedWhitespace(
        first_line=gap.first_line,
        empty_lines=gap.empty_lines,
        indent=indent.indent,
        last_line=indent.last_line,
    )
    after = cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(newline=gap.first_line.newline),
        empty_lines=[],
        indent=gap.indent,
        last_line=gap.last_line,
    )
    return before, after


def _new_arg(name: str, value: str) -> cst.Arg:
    return cst.Arg(
        value=cst.parse_expression(value),
        keyword=cst.Name(name),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )


def with_keyword(call: cst.Call, name: str, value: str) -> tuple[cst.Call, tuple[str, ...]]:
    """`call` with `name=value` added last, and the tokens that were added, in order."""
    arg = _new_arg(name, value)
    words = (name, "=", value)
    args = list(call.args)
    if not args:
        gap = call.whitespace_before_args
        if isinstance(gap, cst.ParenthesizedWhitespace):  # `f(\n)`: one per line, comma after
            line = gap.with_changes(last_line=cst.SimpleWhitespace("    "))
            comma = cst.Comma(whitespace_after=_bare(gap))
            new = arg.with_changes(comma=comma)
            return call.with_changes(args=[new], whitespace_before_args=line), (
                *words,
                ",",
            )
        return call.with_changes(args=[arg]), words
    last = args[-1]
    before_last = call.whitespace_before_args if len(args) == 1 else args[-2].comma
    lead = before_last.whitespace_after if isinstance(before_last, cst.Comma) else before_last
    one_per_line = isinstance(lead, cst.ParenthesizedWhitespace)
    if isinstance(last.comma, cst.Comma):  # a trailing comma: the new argument keeps one
        gap = last.comma.whitespace_after
        if one_per_line:
            assert isinstance(lead, cst.ParenthesizedWhitespace)
            before, after = _closing(gap, _bare(lead))
        else:
            before, after = cst.SimpleWhitespace(" "), gap
        args[-1] = last.with_changes(comma=last.comma.with_changes(whitespace_after=before))
        new = arg.with_changes(comma=cst.Comma(whitespace_after=after))
        return call.with_changes(args=[*args, new]), (*words, ",")
    gap = last.whitespace_after_arg
    if one_per_line:
        assert isinstance(lead, cst.ParenthesizedWhitespace)
        before, after = _closing(gap, _bare(lead))
    else:
        before, after = cst.SimpleWhitespace(" "), gap
    args[-1] = last.with_changes(
        comma=cst.Comma(whitespace_after=before), whitespace_after_arg=cst.SimpleWhitespace("")
    )
    new = arg.with_changes(whitespace_after_arg=after)
    return call.with_changes(args=[*args, new]), (",", *words)
