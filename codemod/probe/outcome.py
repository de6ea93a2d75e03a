"""What runs A and B prove together: safe, unsafe, or no verdict (the probe itself failed).

- A (True) and B (False) both finish and end equal, and A's recorder saw every parameter
  get a gradient in every step: safe, A's record is the evidence.
- B fails or hangs: unsafe. A's record names the parameters and is the evidence; when it
  names none, nothing proves which parameter it was, so no evidence is written.
- A fails with "marked as ready twice" (reentrant checkpointing, a parameter used by two
  forwards) and B finishes: safe, and dropping the flag fixes the run; B's record is the
  evidence. B runs with the same recorder, counting one iteration per step.
- A fails for any other reason or hangs: the probe cannot judge (exit 2).
- Safe, but the evidence's code paths (recorded in every step) show a branch that could
  skip parameters and that no step took: unknown, naming it (`unseen`, as scan judges it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.probe.compare import Comparison
from codemod.probe.launch import RankResult, RunResult

READY_TWICE = ("marked as ready twice", "mark a variable ready only once")
NOT_REDUCED = ("expected to have finished reduction",)
PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe")
RUN_NAMES = {"A": "A (find_unused_parameters=True)", "B": "B (find_unused_parameters=False)"}


@dataclass
class Finding:
    verdict: str | None  # "safe" / "unsafe"; None when the probe could not judge
    summary: str  # one line
    unused: dict[str, int] = field(default_factory=dict)  # parameter -> steps without gradient
    notes: list[str] = field(default_factory=list)
    evidence_from: str | None = None  # "A" / "B": whose per-rank records become evidence
    true_fails: bool = False  # A failed where B worked: dropping the flag fixes the run
    # branches that could skip parameters and no step took (codemod.evidence.branches JSON)
    unexercised: list[dict[str, object]] = field(default_factory=list)
    fixed_by_config: list[dict[str, object]] = field(default_factory=list)


def _has(text: str | None, markers: tuple[str, ...]) -> bool:
    low = (text or "").lower()
    return any(m in low for m in markers)


def primary(run: RunResult) -> RankResult | None:
    """The rank whose error explains the run: a DDP error, else the earliest other failure.

    A rank that raises makes its peers fail with "Connection closed by peer": that is noise.
    """
    failed = [r for r in run.ranks if not r.ok]
    if not failed:
        return None

    def rank(r: RankResult) -> tuple[bool, bool, float]:
        when = (r.result or {}).get("finished_at")
        return (
            not _has(r.error, READY_TWICE + NOT_REDUCED),
            _has(r.error, PEER_GONE),
            float(when) if isinstance(when, (int, float)) else float("inf"),
        )

    return min(failed, key=rank)


def failure(run: RunResult, timeout: float) -> str:
    """`run B (find_unused_parameters=False) failed on rank 1: RuntimeError: ...`."""
    name = RUN_NAMES.get(run.name, run.name)
    if run.hung:
        return f"run {name} hung: no result after {timeout:g} s; its processes were killed"
    rank = primary(run)
    if rank is None:
        return f"run {name} finished"
    return f"run {name} failed on rank {rank.rank}: {first_line(rank.error)}"


def first_line(text: str | None, limit: int = 200) -> str:
    """An error's first line; DDP's run on for paragraphs, so its first sentence then."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "no error message"
    line = lines[0]
    if len(line) > limit:
        end = line.find(". ")
        line = line[: end + 1] if 0 < end < limit else line[: limit - 3] + "..."
    return line


def records(run: RunResult) -> list[dict[str, Any]]:
    return [dict((r.result or {}).get("record") or {}) for r in run.ranks]


def unused(run: RunResult) -> dict[str, int]:
    """Parameter -> the most steps any rank ran it without a gradient."""
    out: dict[str, int] = {}
    for record in records(run):
        for name, count in (record.get("unused") or {}).items():
            if count:
                out[name] = max(out.get(name, 0), int(count))
    return out


def true_fails(run: RunResult) -> bool:
    """The run failed with DDP's "marked as ready twice": what True does and False does not."""
    return not run.ok and not run.hung and _has(_error(run), READY_TWICE)


def judge(a: RunResult, b: RunResult | None, cmp: Comparison | None, timeout: float) -> Finding:
    if not a.ok and not true_fails(a):
        return Finding(None, failure(a, timeout))
    if not a.ok:  # True fails: "marked as ready twice"
        if b is None or not b.ok:
            reason = failure(b, timeout) if b is not None else "run B did not run"
            return Finding(None, f"{failure(a, timeout)}; {reason}")
        return Finding(
            "safe",
            "find_unused_parameters=True fails here and False works: dropping the flag fixes "
            "the run",
            notes=[failure(a, timeout), "B finished every step: every parameter got a gradient"],
            evidence_from="B",
            true_fails=True,
        )
    names = unused(a)
    assert b is not None, "B runs whenever A finished"
    if not b.ok:
        notes = [failure(b, timeout)]
        if names:
            return Finding(
                "unsafe", "find_unused_parameters=True is needed", names, notes, evidence_from="A"
            )
        notes.append(
            "A's recorder saw every parameter get a gradient, so nothing names the cause; "
            "no evidence written"
        )
        return Finding("unsafe", "find_unused_parameters=False does not run here", {}, notes)
    if names:  # B ran although a step left parameters without a gradient: trust the recorder
        notes = ["B finished, but A's recorder saw parameters without a gradient"]
        return Finding(
            "unsafe", "find_unused_parameters=True is needed", names, notes, evidence_from="A"
        )
    if cmp is None or not cmp.equal:
        return Finding("unsafe", "runs A and B end with different parameters; no evidence written")
    return Finding(
        "safe",
        "find_unused_parameters=True can go: every parameter got a gradient in every step",
        evidence_from="A",
    )


def unseen(finding: Finding, run: RunResult | None, root: Path) -> Finding:
    """A safe finding whose evidence (`run`'s records) noted its code paths: unknown when a
    branch that could skip parameters ran in no step of any rank, judged by the same
    analysis scan applies to that evidence; configuration branches are listed either way."""
    paths = [r["paths"] for r in records(run) if isinstance(r.get("paths"), dict)] if run else []
    if finding.verdict != "safe" or not paths:
        return finding
    from codemod.evidence import branches

    found = branches.analyse(root, paths)
    fixed = [b.as_json() for b in found.fixed]
    blind = branches.blind_spot(found)
    if not found.risky and blind is not None:  # not seen is not safe
        return dataclasses.replace(
            finding,
            verdict="unknown",
            summary="every parameter got a gradient in every step, but the probe could not "
            "see which code paths ran",
            notes=[f"{blind}; {branches.blind_hint('probe')}", *finding.notes],
            fixed_by_config=fixed,
        )
    if not found.risky:
        return dataclasses.replace(finding, fixed_by_config=fixed)
    n = len(found.risky)
    return dataclasses.replace(
        finding,
        verdict="unknown",
        summary="every parameter got a gradient in every step, but "
        f"{'branches' if n > 1 else 'a branch'} that could skip parameters never ran",
        notes=[
            branches.headline(found.risky),
            branches.hint(found.risky, "probe"),
            *finding.notes,
        ],
        unexercised=[b.as_json() for b in found.risky],
        fixed_by_config=fixed,
    )


def _error(run: RunResult) -> str | None:
    rank = primary(run)
    return rank.error if rank else None
