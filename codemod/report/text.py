"""Turn a RunResult into what people and programs read: text lines or one JSON object."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from codemod.model import FileError, Site, Verdict
from codemod.report.words import applied, plural

_SPACE = re.compile(r"\s+")


def ordered(sites: list[Site]) -> list[Site]:
    return sorted(sites, key=lambda s: (s.path, s.span.line, s.span.col, s.setting))


def site_json(site: Site, with_changed: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": site.path,
        "line": site.span.line,
        "end_line": site.span.end_line,
        "col": site.span.col,
        "end_col": site.span.end_col,
        "kind": site.kind.value,
        "setting": site.setting,
        "value": site.value,
        "verdict": site.verdict.value,
        "reason": site.reason,
        "qualname": site.qualname,
        "callee": site.callee,
        "setting_line": site.setting_span.line,
        "setting_col": site.setting_span.col,
        "fix": site.fix.value,
    }
    if site.feeds is not None:
        out["feeds"] = {"line": site.feeds.line, "end_line": site.feeds.end_line}
    if site.unused:
        out["unused"] = dict(site.unused)
    if site.evidence:
        out["evidence"] = [run.as_json() for run in site.evidence]
    if site.unexercised:
        out["unexercised"] = [dict(b) for b in site.unexercised]
    if site.fixed_by_config:
        out["fixed_by_config"] = [dict(b) for b in site.fixed_by_config]
    if with_changed:
        out["changed"] = site.changed
    return out


def error_json(error: FileError) -> dict[str, str]:
    return {"path": error.path, "message": error.message}


def as_json(sites: list[Site], errors: list[FileError], with_changed: bool) -> str:
    return json.dumps(
        {
            "sites": [site_json(s, with_changed) for s in ordered(sites)],
            "errors": [error_json(e) for e in errors],
        },
        indent=2,
    )


def shown(path: str) -> str:
    """A path as one line of text shows it: as it is, or when it holds a newline or another
    character that does not print, quoted and escaped the way git quotes such paths."""
    if path.isprintable():
        return path
    out = []
    for char in path:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return '"' + "".join(out) + '"'


def _one_line(message: str) -> str:
    """Free text (a reason, an error message) with non-printing characters escaped."""
    if message.isprintable():
        return message
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message
    )


def site_line(site: Site) -> str:
    where = f"{shown(site.path)}:{site.setting_span.line}:{site.setting_span.col}"
    return f"{where}: {site.verdict.value}: {site_text(site)}"


def site_text(site: Site) -> str:
    """`torch-ddp find_unused_parameters=True: reason`: a site's line after its verdict."""
    value = _SPACE.sub(" ", site.value)
    setting = f"{site.setting}={value}" if value else site.setting
    return f"{site.kind.value} {setting}: {_one_line(site.reason)}"


def unmatched_selector(text: str, origin: str) -> str:
    return f"allowlist selector `{shown(text)}` ({shown(origin)}) matched no site"


def error_line(error: FileError) -> str:
    return f"{shown(error.path)}: error: {_one_line(error.message)}"


def tally(sites: list[Site]) -> str:
    """`3 sites: 1 allowed, 2 unknown` in the order verdicts are declared."""
    return tally_counts(Counter(s.verdict.value for s in sites))


def tally_counts(counts: Mapping[str, int]) -> str:
    """tally() from counts by verdict name (batch adds them up over repos)."""
    parts = [f"{counts[v.value]} {v.value}" for v in Verdict if counts.get(v.value)]
    return plural(sum(counts.values()), "site") + (": " + ", ".join(parts) if parts else "")


def apply_summary(sites: list[Site], files: int, dry_run: bool) -> str:
    rest = [s for s in sites if not s.changed]
    head = applied(sum(s.changed for s in sites), files, dry_run)
    if not rest:
        return head + "."
    return f"{head}; left alone {tally(rest)}."


# Verdicts whose sites a run or an allowlist entry could still make rewritable.
_COVERABLE = (Verdict.UNKNOWN, Verdict.STALE)
NEXT_STEP = (
    "hint: to cover a site left alone, record your training with "
    "`ddp-codemod trace -- COMMAND`, check the model with "
    "`ddp-codemod probe MODULE:FACTORY --site PATH:LINE`, or allowlist it with "
    "`--allow PATH:LINE`"
)


def left_alone(sites: list[Site]) -> list[str]:
    """apply's line for each site it did not rewrite, except those already off."""
    rest = [s for s in sites if not s.changed and s.verdict is not Verdict.OFF]
    return [site_line(s) for s in ordered(rest)]


def next_step(sites: list[Site]) -> str | None:
    """The hint after apply's summary, when a site left alone could still be covered."""
    if any(not s.changed and s.verdict in _COVERABLE for s in sites):
        return NEXT_STEP
    return None
