"""The probe's report: a few text lines for people, or one JSON object for programs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codemod.probe.outcome import failure
from codemod.probe.runner import ProbeResult
from codemod.probe.stats import Summary
from codemod.report.text import plural

MAX_NAMES = 8
_LABELS = {"A": "A (True)", "B": "B (False)", "C": "C (static_graph)"}


def _ms(s: Summary) -> str:
    return f"{s.median:.3g} ms [{s.p25:.3g}-{s.p75:.3g}]"


def _where(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd)
    except ValueError:
        return str(path)


def _unused(result: ProbeResult) -> str | None:
    unused = result.finding.unused
    if not unused:
        return None
    names = sorted(unused.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{n} ({c})" for n, c in names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    steps = result.request.steps
    return f"unused parameters (steps without a gradient, of {steps}): {shown}{more}"


def _runs(result: ProbeResult) -> str:
    req = result.request
    parts = []
    for run in (result.a, result.b):
        if run is None:
            continue
        state = "finished" if run.ok else ("hung" if run.hung else "failed")
        parts.append(f"{_LABELS[run.name]} {state} in {run.seconds:.1f} s")
    return f"runs: world size {req.world_size}, {req.steps} steps each; " + ", ".join(parts)


def _equality(result: ProbeResult) -> str | None:
    cmp = result.comparison
    if cmp is None:
        return None
    test = "bit for bit" if cmp.bitwise else "allclose"
    if cmp.equal:
        return (
            f"final parameters and buffers: equal, {test} ({cmp.tensors} tensors per rank; "
            f"largest difference {cmp.max_abs_diff:.3g})"
        )
    return (
        f"final parameters and buffers: DIFFERENT ({test}); largest difference "
        f"{cmp.max_abs_diff:.3g} in {cmp.worst}"
    )


def _timing(result: ProbeResult) -> list[str]:
    t = result.timing
    if t is None:
        return []
    if t.error:
        return [f"timing: {t.error}"]
    runs = ", ".join(f"{_LABELS[n]} {_ms(s)}" for n, s in t.summaries.items())
    steps = next(iter(t.summaries.values())).steps if t.summaries else 0
    lines = [f"step time, median [p25-p75] of {steps} steps: {runs}"]
    if t.ratio is not None:
        spread = ""
        if t.ratio_range:
            spread = f" (round by round {t.ratio_range[0]:.2f}-{t.ratio_range[1]:.2f}x)"
        saved = 1 - 1 / t.ratio
        lines.append(f"A/B: {t.ratio:.2f}x{spread}: dropping the flag saves {saved:.0%} per step")
    return lines


def _static_graph(result: ProbeResult) -> str:
    t = result.timing
    ok = result.static_graph_ok
    if result.finding.true_fails:
        return "static_graph=True: not checked (run A cannot run)"
    if ok is not None and t is not None:
        c = t.summaries["C"]
        if ok:
            return (
                f"static_graph=True: fits, every step used the same parameters "
                f"(C {_ms(c)}, A/C {t.c_ratio:.2f}x, ends equal to B)"
            )
        return f"static_graph=True: C ended differently from B (by {t.c_max_abs_diff:.3g})"
    if result.same_set and result.finding.unused:
        return (
            "static_graph=True: may replace find_unused_parameters=True, every step left the "
            "same parameters unused (not timed)"
        )
    if result.same_set:
        return "static_graph=True: every step used the same parameters (not timed)"
    return "static_graph=True: no, the set of parameters without a gradient changed between steps"


def text(result: ProbeResult) -> str:
    f = result.finding
    lines = [f"{f.verdict}: {f.summary}"]
    body: list[str | None] = []
    if result.site is not None:
        body.append(f"site: {result.site.label}")
    body += [_runs(result), _unused(result), *f.notes, _equality(result), *_timing(result)]
    body.append(_static_graph(result))
    body.append(_evidence(result))
    lines += [f"  {line}" for line in body if line]
    return "\n".join(lines)


def _evidence(result: ProbeResult) -> str:
    cwd = result.request.cwd
    if result.site is None:
        return "evidence: none written (no --site)"
    if not result.evidence:
        if result.replaced:
            return (
                f"evidence: none written; removed {result.replaced} from an earlier probe of "
                f"{result.site.label}, which no longer holds"
            )
        return "evidence: none written"
    n = len(result.evidence)
    where = _where(result.evidence[0].parent, cwd)
    line = f"evidence: wrote {plural(n, 'file')} to {where}/ for {result.site.label}"
    if result.replaced:
        line += f", replacing {result.replaced} from an earlier probe of it"
    return line


def as_json(result: ProbeResult) -> str:
    doc: dict[str, Any] = {
        "verdict": result.finding.verdict,
        "summary": result.finding.summary,
        "notes": result.finding.notes,
        "unused": result.finding.unused,
        "site": result.site.label if result.site else None,
        "command": result.request.command(),
        "runs": {
            r.name: {
                "ok": r.ok,
                "hung": r.hung,
                "seconds": round(r.seconds, 3),
                "error": None if r.ok else failure(r, result.request.timeout),
            }
            for r in (result.a, result.b)
            if r is not None
        },
        "comparison": result.comparison.as_json() if result.comparison else None,
        "probe": result.probe_json(),
        "evidence": [str(p) for p in result.evidence],
        "replaced": result.replaced,
    }
    return json.dumps(doc, indent=2)
