"""The probe's report: a few text lines for people, or one JSON object for programs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codemod.probe.outcome import failure
from codemod.probe.runner import ProbeResult, Timing
from codemod.probe.stats import Summary, fmt_bytes, fmt_ms
from codemod.report.words import plural

MAX_NAMES = 8
_LABELS = {"A": "A (True)", "B": "B (False)", "C": "C (static_graph)"}


ONE_RANK = "one rank: rank-dependent use not checked"
_MEASURES = {
    "cuda_max_memory_allocated": "torch.cuda.max_memory_allocated",
    "rss_growth": "growth of the rank's peak RSS while it trained, from /proc",
}


def _ms(s: Summary) -> str:
    return f"{fmt_ms(s.median)} ms [{fmt_ms(s.p25)}-{fmt_ms(s.p75)}]"


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


def ratio_line(t: Timing) -> str | None:
    """What the A/B ratio says, no more: a saving only when every round shows one."""
    if t.ratio is None:
        return None
    if t.ratio_range is None or t.rounds < 2:
        return f"A/B: {t.ratio:.2f}x from one round: too few rounds to tell a difference"
    low, high = t.ratio_range
    rounds = f"rounds {low:.2f}-{high:.2f}x"
    if not t.measurable:
        return f"A/B: no measurable difference on this machine (A/B {t.ratio:.2f}x, {rounds})"
    if low > 1:
        saved = 1 - 1 / t.ratio
        return f"A/B: {t.ratio:.2f}x ({rounds}): dropping the flag saves {saved:.0%} per step"
    costs = 1 / t.ratio - 1
    return f"A/B: {t.ratio:.2f}x ({rounds}): True was faster here; dropping it costs {costs:.0%}"


def _timing(result: ProbeResult) -> list[str]:
    t = result.timing
    if result.request.timing_rounds == 0 and result.finding.verdict == "safe":
        return [] if result.finding.true_fails else ["timing: not run (--timing none)"]
    if t is None:
        return []
    if t.error:
        return [f"timing: {t.error}"]
    lines: list[str | None] = []
    if t.cut:
        lines.append(
            f"timing cut after {plural(t.rounds, 'round')} of {t.planned} "
            f"(--timing-timeout {result.request.timing_timeout:g} s); the verdict stands"
        )
    if not t.summaries:
        return [line for line in lines if line]
    runs = ", ".join(f"{_LABELS[n]} {_ms(s)}" for n, s in t.summaries.items())
    steps = next(iter(t.summaries.values())).steps
    lines.append(f"step time, median [p25-p75] of {steps} steps: {runs}")
    lines.append(ratio_line(t))
    if t.memory:
        peaks = ", ".join(f"{n} {fmt_bytes(t.memory[n])}" for n in t.summaries if n in t.memory)
        measure = _MEASURES.get(t.memory_measure or "", t.memory_measure)
        lines.append(f"peak memory per rank: {peaks} ({measure})")
    return [line for line in lines if line]


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
    if t is not None and "C" in t.summaries and t.cut:
        return (
            f"static_graph=True: every step used the same parameters (C {_ms(t.summaries['C'])}; "
            "not compared with B: timing was cut)"
        )
    if result.same_set and result.finding.unused:
        return (
            "static_graph=True: may replace find_unused_parameters=True, every step left the "
            "same parameters unused (not timed)"
        )
    if result.same_set:
        return "static_graph=True: every step used the same parameters (not timed)"
    return "static_graph=True: no, the set of parameters without a gradient changed between steps"


def _one_rank(result: ProbeResult) -> list[str]:
    """World size 1 proves nothing about ranks; say so as scan will (evidence too thin)."""
    if result.request.world_size != 1:
        return []
    return [
        f"{ONE_RANK}; scan reads world-size-1 evidence as too thin to rewrite: probe with "
        "--world-size 2 or more for that"
    ]


def _environ(result: ProbeResult) -> str | None:
    env = result.request.environ
    if not env:
        return None
    shown = " ".join(f"{k}={v}" for k, v in env)
    return f"environment make() read: {shown} (in the evidence's command line)"


def text(result: ProbeResult) -> str:
    f = result.finding
    one_rank = f" ({ONE_RANK})" if result.request.world_size == 1 and f.verdict == "safe" else ""
    lines = [f"{f.verdict}: {f.summary}{one_rank}"]
    body: list[str | None] = []
    if result.site is not None:
        body.append(f"site: {result.site.label}")
    body += [*_one_rank(result), _environ(result)]
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
    if not result.site.marked and result.request.out is None:
        place = "where probe ran" if result.site.root == cwd.resolve() else "beside the site"
        line += (
            f" (no .git or pyproject.toml above {result.site.rel}: written {place}; "
            f"scan from {_where(result.site.root, cwd)})"
        )
    return line


def as_json(result: ProbeResult) -> str:
    doc: dict[str, Any] = {
        "verdict": result.finding.verdict,
        "summary": result.finding.summary,
        "notes": result.finding.notes,
        "unused": result.finding.unused,
        "site": result.site.label if result.site else None,
        "root": str(result.site.root) if result.site else None,
        "root_marked": result.site.marked if result.site else None,
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
