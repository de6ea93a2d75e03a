"""SARIF 2.1.0 for `--format sarif`: code-scanning UIs and CI gates read it.

Every site is a result whose rule is its verdict; its properties are the site as the JSON
report gives it (kind, verdict, reason, ...). Rewritable sites carry a `fixes` entry with
the exact replacement (ruff and semgrep drop fixes from SARIF; a reviewer here wants to
see the edit). Columns are code points, as in the text and JSON reports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from codemod import __version__
from codemod.model import FileError, Site, Span, Verdict
from codemod.report.text import error_line, ordered, site_json

if TYPE_CHECKING:
    from codemod.model import FileChange
    from codemod.report.fixes import Replacement

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
ROOT = "%SRCROOT%"

# verdict -> (level, what it means)
RULES: dict[Verdict, tuple[str, str]] = {
    Verdict.SAFE: ("warning", "Recorded runs show no unused parameters: turn the setting off."),
    Verdict.ALLOWED: ("warning", "An allowlist entry covers this site: turn the setting off."),
    Verdict.UNSAFE: ("note", "A recorded run had parameters without gradient: keep it."),
    Verdict.STALE: ("note", "The code changed since the recorded run: record it again."),
    Verdict.UNKNOWN: ("note", "No evidence or allowlist entry covers this site."),
    Verdict.DYNAMIC: ("note", "The value is an expression: only a run can tell."),
    Verdict.KEPT: ("none", "Marked `# ddp-codemod: keep`."),
    Verdict.OFF: ("none", "Already False."),
}


def rule_id(verdict: Verdict) -> str:
    return f"find-unused-parameters/{verdict.value}"


def _artifact(file: Path, cwd: Path) -> dict[str, str]:
    """A URI relative to %SRCROOT% (the working directory) when the file is under it."""
    rel = os.path.relpath(file, cwd)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return {"uri": Path(os.path.abspath(file)).as_uri()}
    return {"uri": quote(Path(rel).as_posix()), "uriBaseId": ROOT}


def _region(span: Span) -> dict[str, int]:
    return {
        "startLine": span.line,
        "startColumn": span.col,
        "endLine": span.end_line,
        "endColumn": span.end_col,
    }


def _fix(site: Site, where: dict[str, str], replacement: Replacement) -> dict[str, Any]:
    deleted = Span(*replacement.start, *replacement.end)
    return {
        "description": {"text": f"Turn off {site.setting} ({site.fix.value})"},
        "artifactChanges": [
            {
                "artifactLocation": where,
                "replacements": [
                    {
                        "deletedRegion": _region(deleted),
                        "insertedContent": {"text": replacement.text},
                    }
                ],
            }
        ],
    }


def _result(site: Site, cwd: Path, fix: Replacement | None, with_changed: bool) -> dict[str, Any]:
    where = _artifact(site.file, cwd)
    level, _ = RULES[site.verdict]
    out: dict[str, Any] = {
        "ruleId": rule_id(site.verdict),
        "ruleIndex": list(RULES).index(site.verdict),
        "level": level,
        "message": {
            "text": f"{site.verdict.value}: {site.kind.value} {site.setting}={site.value}: "
            f"{site.reason}"
        },
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": where,
                    "region": _region(site.setting_span),
                    "contextRegion": _region(site.span),
                }
            }
        ],
        "properties": site_json(site, with_changed),  # the JSON report's site
    }
    if fix is not None:
        out["fixes"] = [_fix(site, where, fix)]
    return out


def _replacements(sites: Sequence[Site], changes: Sequence[FileChange]) -> dict[int, Replacement]:
    """Each rewritable site's own replacement, by id(site)."""
    if not changes:
        return {}
    from codemod.report.fixes import per_site

    out: dict[int, Replacement] = {}
    for change in changes:
        mine = [s for s in sites if s.file == change.file and s.rewritable]
        for index, replacement in per_site(mine, change.old, change.new).items():
            out[id(mine[index])] = replacement
    return out


def _notification(level: str, text: str) -> dict[str, Any]:
    return {"level": level, "message": {"text": text}}


def _base_uri(cwd: Path) -> str:
    uri = Path(os.path.abspath(cwd)).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def document(
    sites: Sequence[Site],
    errors: Sequence[FileError],
    warnings: Sequence[str],
    changes: Sequence[FileChange],
    cwd: Path,
    with_changed: bool,
) -> dict[str, Any]:
    fixes = _replacements(sites, changes)
    rules = [
        {
            "id": rule_id(verdict),
            "name": verdict.value,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": level},
        }
        for verdict, (level, text) in RULES.items()
    ]
    notifications = [_notification("warning", w) for w in warnings]
    notifications += [_notification("error", error_line(e)) for e in errors]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ddp-codemod",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {ROOT: {"uri": _base_uri(cwd)}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        "executionSuccessful": not errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": [
                    _result(site, cwd, fixes.get(id(site)), with_changed)
                    for site in ordered(list(sites))
                ],
            }
        ],
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)
