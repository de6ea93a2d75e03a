"""gitignore patterns with git's own semantics, for .gitignore files and `exclude`.

pathspec's GitIgnoreSpec lets a pattern that matched a parent folder outrank a later
negation of the path itself (`*`, `!*.py`, `!*/` then ignores `sub/b.py`, which git does
not), so patterns are translated here, as git's wildmatch reads them: the last pattern
that matches the path decides; a folder the walk skips takes its files with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class PatternError(ValueError):
    """A pattern that cannot match anything as written; the message says why."""


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool  # `!pattern`: un-ignore
    dir_only: bool  # `pattern/`: folders only


def _strip_trailing_spaces(line: str) -> str:
    end = len(line)
    while end > 0 and line[end - 1] == " ":
        backslashes = len(line[: end - 1]) - len(line[: end - 1].rstrip("\\"))
        if backslashes % 2:  # `\ ` keeps the space
            break
        end -= 1
    return line[:end]


def _bracket(pattern: str, i: int) -> tuple[str, int]:
    """`[...]` starting at pattern[i]: its regex and the index after it."""
    j = i + 1
    negate = j < len(pattern) and pattern[j] in "!^"
    if negate:
        j += 1
    items: list[str] = []
    first = True
    while j < len(pattern) and (pattern[j] != "]" or first):
        first = False
        char = pattern[j]
        if char == "\\" and j + 1 < len(pattern):
            j += 1
            char = pattern[j]
        if j + 2 < len(pattern) and pattern[j + 1] == "-" and pattern[j + 2] != "]":
            end = pattern[j + 2]
            if end == "\\" and j + 3 < len(pattern):
                end = pattern[j + 3]
                j += 1
            if ord(end) < ord(char):
                raise PatternError(f"bad character range {char}-{end}")
            items.append(f"{re.escape(char)}-{re.escape(end)}")
            j += 3
            continue
        items.append(re.escape(char))
        j += 1
    if j >= len(pattern):
        raise PatternError("unclosed [")
    body = "".join(items)
    return ("[^/" + body + "]" if negate else "(?!/)[" + body + "]"), j + 1


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            stars = i
            while i < n and pattern[i] == "*":
                i += 1
            whole_segment = (stars == 0 or pattern[stars - 1] == "/") and (
                i == n or pattern[i] == "/"
            )
            if i - stars == 2 and whole_segment:
                if i == n:
                    out.append(".*")  # `dir/**`: everything inside; `**`: everything
                else:
                    out.append("(?:.*/)?")  # `**/`: any number of folders, also none
                    i += 1
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            regex, i = _bracket(pattern, i)
            out.append(regex)
        elif char == "\\":
            if i + 1 == n:
                raise PatternError("ends in a backslash")
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def compile_line(line: str) -> Rule | None:
    """One line of a .gitignore; None for blanks and comments; PatternError when bad."""
    if line.startswith("#"):
        return None
    line = _strip_trailing_spaces(line.rstrip("\r"))
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    dir_only = line.endswith("/")
    if dir_only:
        line = line[:-1]
    if not line:
        return None
    anchored = "/" in line
    if line.startswith("/"):
        line = line[1:]
    body = _translate(line)
    prefix = "" if anchored else "(?:.*/)?"
    return Rule(re.compile(prefix + body + r"\Z", re.DOTALL), negate, dir_only)


def compile_lines(lines: list[str]) -> list[Rule]:
    """The usable rules of a .gitignore; a bad line matches nothing, as in git."""
    rules = []
    for line in lines:
        try:
            rule = compile_line(line)
        except PatternError:
            continue
        if rule is not None:
            rules.append(rule)
    return rules


def decide(rules: list[Rule], rel: str, is_dir: bool) -> bool | None:
    """True (ignored), False (re-included) or None (no rule matched), for a POSIX path
    relative to the rules' folder."""
    decision = None
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.regex.match(rel):
            decision = not rule.negate
    return decision
