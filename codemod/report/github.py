"""`--format github`: GitHub Actions workflow commands, which the runner turns into
annotations on the pull request's diff (what ruff's `--output-format github` prints).

One `::warning` per site that is not already off, titled with its verdict; every file
error is an `::error`, every warning a bare `::warning`. Values are escaped the way the
Actions toolkit escapes them: `%`, CR and LF everywhere, and `:` and `,` in properties.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from codemod.model import FileError, Site, Verdict
from codemod.report.text import ordered, site_text

_DATA = (("%", "%25"), ("\r", "%0D"), ("\n", "%0A"))
_PROPERTY = (*_DATA, (":", "%3A"), (",", "%2C"))


def escape_data(text: str) -> str:
    for char, code in _DATA:
        text = text.replace(char, code)
    return text


def escape_property(text: str) -> str:
    for char, code in _PROPERTY:
        text = text.replace(char, code)
    return text


def command(level: str, properties: Mapping[str, object], message: str) -> str:
    """`::level k=v,k=v::message`, escaped."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items())
    return f"::{level}{' ' if props else ''}{props}::{escape_data(message)}"


def _file(file: Path, cwd: Path) -> str:
    """Relative to the working directory (the checkout, in Actions) when under it."""
    rel = os.path.relpath(file, cwd)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return os.path.abspath(file)
    return Path(rel).as_posix()


def _site(site: Site, cwd: Path, changed_note: str | None) -> str:
    message = site_text(site)
    if changed_note is not None and site.changed:
        message += f"; {changed_note}"
    span = site.setting_span
    properties = {
        "file": _file(site.file, cwd),
        "line": span.line,
        "col": span.col,
        "endLine": span.end_line,
        "endColumn": span.end_col,
        "title": f"ddp-codemod {site.verdict.value}",
    }
    return command("warning", properties, message)


def lines(
    sites: Sequence[Site],
    errors: Sequence[FileError],
    warnings: Sequence[str],
    cwd: Path,
    changed_note: str | None = None,
) -> list[str]:
    """Every workflow command of one run; `changed_note` ends the message of changed sites."""
    shown = [s for s in ordered(list(sites)) if s.verdict is not Verdict.OFF]
    out = [_site(s, cwd, changed_note) for s in shown]
    out += [command("error", {"file": e.path}, e.message) for e in errors]
    out += [command("warning", {}, w) for w in warnings]
    return out
