"""Command-line flags in shell scripts: reported, never rewritten.

`--find_unused_parameters`, fairseq's `--find-unused-parameters` / `--find-unused-params`,
`--ddp_find_unused_parameters True`, mmengine's `--cfg-options find_unused_parameters=True`
or ESPnet's `--unused_parameters true` mean whatever the script that parses them makes of
them, so the report points at them and leaves them alone. The same flags passed from Python
(`subprocess.run([...])`, `sys.argv = [...]`) are found by `frameworks/command_line.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from codemod.model import Fix, Kind, Site, Span
from codemod.recorder._ddp_codemod_source import MODULE_QUALNAME

# ESPnet's trainer flag is `--unused_parameters true` (often inside `--asr_args "..."`)
_TOKEN = re.compile(
    r"[^\s'\"]*find[_-]unused[_-]param[^\s'\"]*|--unused_parameters\b[^\s'\"]*", re.IGNORECASE
)
_NEXT = re.compile(r"\s+([^\s\\-][^\s\\]*)")
_COMMENT = re.compile(r"(^|\s)#")
BOOL_WORDS = frozenset({"true", "false", "1", "0"})
REASON = (
    "a command-line flag means what the script that parses it makes of it; report only, "
    "edit it by hand if evidence shows the setting is safe to turn off"
)


def flags(code: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, setting, value) of each flag in one line of a command: the value is
    what follows `=`, or the next word when it reads as a boolean."""
    for match in _TOKEN.finditer(code):
        setting, equals, value = match.group(0).partition("=")
        end = match.end()
        if not equals:
            following = _NEXT.match(code, end)
            word = following.group(1).rstrip("'\"") if following else ""  # --asr_args "... true"
            if following and word.lower() in BOOL_WORDS:
                value, end = word, following.start(1) + len(word)
        yield match.start(), end, setting, value


def find(text: str, file: Path, rel: str) -> list[Site]:
    sites: list[Site] = []
    for number, line in enumerate(text.splitlines(), start=1):
        comment = _COMMENT.search(line)
        code = line[: comment.start()] if comment else line
        for start, end, setting, value in flags(code):
            span = Span(number, start + 1, number, end + 1)
            sites.append(
                Site(
                    path=rel,
                    file=file,
                    span=span,
                    setting_span=span,
                    kind=Kind.SHELL,
                    setting=setting,
                    value=value,
                    literal=None,
                    fix=Fix.WRITE_FALSE,
                    qualname=MODULE_QUALNAME,
                    callee="",
                    report_only=REASON,
                )
            )
    return sites
