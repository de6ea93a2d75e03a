"""The batch report: one line per repo on the terminal, a Markdown table or JSON on disk.

Per repo: what happened, its sites by verdict, the files changed, the unused parameters
that keep unsafe sites as they are, errors, and the branch / commit; then totals.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

from codemod.batch.run import CHANGED, FAILED, SKIPPED, WOULD_CHANGE, Outcome
from codemod.report.text import tally_counts
from codemod.report.words import plural


def _where(outcome: Outcome) -> str:
    if outcome.commit:
        return f" on branch {outcome.branch} ({outcome.commit[:12]})"
    if outcome.worktree:
        return f" on branch {outcome.branch}, uncommitted, in work tree {outcome.worktree}"
    if outcome.branch:
        return f" on a new branch {outcome.branch}"
    return ""


def line(outcome: Outcome) -> str:
    """`repo: rewrote 2 sites in 1 file on branch ddp/off (abc123)` and the like."""
    head = f"{outcome.repo}: "
    if outcome.status in (FAILED, SKIPPED):
        return head + f"{outcome.status}: {outcome.message}"
    found = tally_counts(outcome.verdicts)
    if outcome.status in (CHANGED, WOULD_CHANGE):
        verb = "rewrote" if outcome.status == CHANGED else "would rewrite"
        sites = plural(len(outcome.rewritten), "site")
        return head + f"{verb} {sites} in {plural(len(outcome.files), 'file')}{_where(outcome)}"
    return head + f"nothing to change ({found})"


def totals(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    sites: Counter[str] = Counter()
    for outcome in outcomes:
        sites.update(outcome.verdicts)
    return {
        "repos": len(outcomes),
        "by_status": dict(Counter(o.status for o in outcomes)),
        "sites": dict(sites),
        "rewritten": sum(len(o.rewritten) for o in outcomes),
        "files": sum(len(o.files) for o in outcomes),
        "errors": sum(len(o.errors) for o in outcomes),
    }


def as_json(outcomes: Sequence[Outcome], shard: tuple[int, int] | None = None) -> str:
    repos = []
    for outcome in outcomes:
        data = asdict(outcome)
        data["unused"] = [{"site": s, "parameters": p} for s, p in outcome.unused]
        repos.append(data)
    doc: dict[str, Any] = {"repos": repos, "totals": totals(outcomes)}
    if shard is not None:
        doc["shard"] = {"index": shard[0], "count": shard[1]}
    return json.dumps(doc, indent=2) + "\n"


class ReportError(Exception):
    """A JSON report that cannot be merged; the message is one line."""


_FIELDS = {f.name for f in fields(Outcome)}
_REQUIRED = ("repo", "path", "status")


def read_json(text: str) -> tuple[list[Outcome], tuple[int, int] | None]:
    """The outcomes of one `--report X.json`, and its shard (index, count) when it has one."""
    try:
        doc = json.loads(text)
        repos = doc["repos"]
        outcomes = []
        for data in repos:
            if not all(isinstance(data.get(k), str) for k in _REQUIRED):
                raise ValueError(f"a repo without {', '.join(_REQUIRED)}")
            known = {k: v for k, v in data.items() if k in _FIELDS}
            known["unused"] = [(u["site"], dict(u["parameters"])) for u in data.get("unused", [])]
            outcomes.append(Outcome(**known))
        shard = doc.get("shard")
        where = (int(shard["index"]), int(shard["count"])) if shard is not None else None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ReportError(f"not a ddp-codemod batch JSON report ({exc})") from None
    return outcomes, where


def merge(reports: Sequence[tuple[str, str]]) -> tuple[list[Outcome], list[str]]:
    """Join (name, text) JSON reports of shards: their outcomes, and warnings about shards
    that are missing. A repo in two reports is an error."""
    outcomes: list[Outcome] = []
    seen: dict[str, str] = {}
    shards: set[tuple[int, int]] = set()
    for name, text in reports:
        try:
            found, shard = read_json(text)
        except ReportError as exc:
            raise ReportError(f"{name}: {exc}") from None
        if shard is not None:
            shards.add(shard)
        for outcome in found:
            if outcome.path in seen:
                raise ReportError(
                    f"{outcome.repo} is in more than one report ({seen[outcome.path]}, {name})"
                )
            seen[outcome.path] = name
            outcomes.append(outcome)
    warnings = []
    for count in sorted({n for _, n in shards}):
        missing = [k for k in range(1, count + 1) if (k, count) not in shards]
        warnings += [f"shard {k}/{count} missing from the merged reports" for k in missing]
    return outcomes, warnings


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _cells(items: Sequence[str]) -> str:
    return "<br>".join(_cell(i) for i in items) if items else ""


def _unused(site: str, params: dict[str, int]) -> str:
    """`train.py:5:16: aux.weight (4)`: iterations each parameter went without a gradient."""
    return f"{site}: " + ", ".join(f"{name} ({count})" for name, count in params.items())


def markdown(outcomes: Sequence[Outcome]) -> str:
    rows = [
        "| repo | status | sites | rewritten | files | unused parameters (unsafe sites) "
        "| errors | branch / commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        unused = [_unused(site, params) for site, params in o.unused]
        status = o.status + (f": {o.message}" if o.message else "")
        where = " ".join(x for x in (o.branch or "", o.commit[:12] if o.commit else "") if x)
        rows.append(
            f"| {_cell(o.repo)} | {_cell(status)} | {_cell(tally_counts(o.verdicts))} "
            f"| {len(o.rewritten)} | {_cells(o.files)} | {_cells(unused)} "
            f"| {_cells(o.errors)} | {_cell(where)} |"
        )
    t = totals(outcomes)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(t["by_status"].items()))
    rows.append(
        f"| **total: {plural(t['repos'], 'repo')}** | {by_status} | {tally_counts(t['sites'])} "
        f"| {t['rewritten']} | {t['files']} | | {t['errors']} | |"
    )
    return "# ddp-codemod batch\n\n" + "\n".join(rows) + "\n"
