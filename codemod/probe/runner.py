"""`ddp-codemod probe`: run a factory's model with True and with False, judge, time, record.

Bad input (the factory, --site) is found here, in this process, before any rank starts.
Then run A (True) and run B (False) each get their own process group and port, so a B that
fails or hangs cannot poison A; only when the verdict is safe does a third group time A, B
and (when every step used the same parameters) C, static_graph=True, side by side.
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.model import EVIDENCE_DIR
from codemod.probe import DEFAULT_ROUNDS, DEFAULT_STEPS, DEFAULT_TIMEOUT_S, DEFAULT_WORLD_SIZE
from codemod.probe import factory as factories
from codemod.probe.compare import Comparison, compare
from codemod.probe.launch import RunResult, launch
from codemod.probe.outcome import (
    Finding,
    failure,
    first_line,
    judge,
    primary,
    records,
    true_fails,
)
from codemod.probe.site import SiteError, SiteRef, resolve
from codemod.probe.stats import Summary, ratio_by_round, summarize

SEED = 0


class ProbeError(Exception):
    """The probe cannot judge (bad input, or run A failed or hung); one line, exit 2."""


@dataclass(frozen=True)
class Request:
    target: str  # MODULE:FACTORY
    cwd: Path
    site: str | None = None
    steps: int = DEFAULT_STEPS
    world_size: int = DEFAULT_WORLD_SIZE
    timeout: float = DEFAULT_TIMEOUT_S
    out: str | None = None  # evidence folder relative to cwd; default <root>/.ddp-codemod
    rounds: int = DEFAULT_ROUNDS  # timing rounds, each `steps` steps of every variant

    def command(self) -> list[str]:
        """The probe as a command line, for the evidence and the reports that cite it."""
        cmd = ["ddp-codemod", "probe", self.target]
        if self.site:
            cmd += ["--site", self.site]
        return [*cmd, "--steps", str(self.steps), "--world-size", str(self.world_size)]


@dataclass
class Timing:
    summaries: dict[str, Summary] = field(default_factory=dict)  # "A", "B", "C"
    ratio: float | None = None  # median A / median B
    ratio_range: tuple[float, float] | None = None  # the same ratio round by round
    c_ratio: float | None = None  # median A / median C
    c_max_abs_diff: float | None = None  # C's final state against B's
    error: str | None = None  # the timing run failed (the verdict stands)


@dataclass
class ProbeResult:
    request: Request
    finding: Finding
    site: SiteRef | None
    a: RunResult
    b: RunResult | None
    comparison: Comparison | None
    timing: Timing | None
    same_set: bool  # every step of every rank left the same parameters unused
    evidence: list[Path] = field(default_factory=list)
    replaced: int = 0  # older probe files of the same site removed
    out: Path | None = None

    @property
    def static_graph_ok(self) -> bool | None:
        """C ran and ended where B did; None when it was not tried."""
        t = self.timing
        if t is None or "C" not in t.summaries:
            return None
        exact = self.request.world_size == 2
        return t.c_max_abs_diff is not None and (
            t.c_max_abs_diff == 0 if exact else t.c_max_abs_diff <= 1e-5
        )

    def probe_json(self) -> dict[str, Any]:
        """The `probe` object of the evidence files and of `--format json`."""
        t = self.timing
        out: dict[str, Any] = {
            "verdict": self.finding.verdict,
            "steps": self.request.steps,
            "world_size": self.request.world_size,
            "params_equal": self.comparison.equal if self.comparison else None,
            "max_abs_diff": self.comparison.max_abs_diff if self.comparison else None,
            "same_set_every_step": self.same_set,
            "static_graph_ok": self.static_graph_ok,
            "true_fails": self.finding.true_fails,
            "a_error": _error_of(self.a),
            "b_error": _error_of(self.b),
            "hung": [r.name for r in (self.a, self.b) if r is not None and r.hung],
        }
        if t is not None:
            for name, summary in t.summaries.items():
                out[f"{name.lower()}_median_ms"] = round(summary.median, 4)
                out[f"{name.lower()}_spread_ms"] = [round(summary.p25, 4), round(summary.p75, 4)]
            out["ratio"] = _round(t.ratio)
            out["ratio_range"] = [_round(x) for x in t.ratio_range] if t.ratio_range else None
            out["c_ratio"] = _round(t.c_ratio)
            out["timing_error"] = t.error
        return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _error_of(run: RunResult | None) -> str | None:
    if run is None or run.ok:
        return None
    if run.hung:
        return "hung"
    rank = primary(run)
    return first_line(rank.error) if rank else None


def _validate(req: Request) -> None:
    """Import, call and check the factory here: bad input is one line, before any rank runs."""
    try:
        factory = factories.load(req.target, str(req.cwd))
        factories.seed(SEED)
        setup = factories.build(factory)
        factories.check_batches(setup, req.target)
    except factories.FactoryError as exc:
        raise ProbeError(str(exc)) from None


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _where(run: RunResult) -> str:
    """` (at probe_factory.py:12 in loss)`: the innermost frame of the failing rank."""
    rank = primary(run)
    trace = str(((rank.result if rank else None) or {}).get("traceback") or "")
    frames = _FRAME.findall(trace)
    if not frames:
        return ""
    path, line, function = frames[-1]
    return f" (at {Path(path).name}:{line} in {function})"


def _same_set(run: RunResult) -> bool:
    recs = records(run)
    sets = {frozenset(n for n, c in (r.get("unused") or {}).items() if c) for r in recs}
    return bool(recs) and len(sets) == 1 and all(r.get("unused_sets_stable") for r in recs)


def _timing(run: RunResult, timeout: float) -> Timing:
    if not run.ok:
        return Timing(error=failure(run, timeout))
    result = run.ranks[0].result or {}
    times: dict[str, list[list[float]]] = result.get("times") or {}
    t = Timing(summaries={n: summarize([s for r in rs for s in r]) for n, rs in times.items()})
    if "A" in t.summaries and "B" in t.summaries:
        t.ratio = t.summaries["A"].median / t.summaries["B"].median
        t.ratio_range = ratio_by_round(times["A"], times["B"])
    if "C" in t.summaries:
        t.c_ratio = t.summaries["A"].median / t.summaries["C"].median
        t.c_max_abs_diff = result.get("c_max_abs_diff")
    return t


def run(req: Request, progress: Callable[[str], None] = lambda line: None) -> ProbeResult:
    """The whole probe. ProbeError when it cannot reach a verdict."""
    try:
        site = resolve(req.site, req.cwd) if req.site else None
    except SiteError as exc:
        raise ProbeError(str(exc)) from None
    _validate(req)
    job = {
        "target": req.target,
        "cwd": str(req.cwd),
        "seed": SEED,
        "steps": req.steps,
        "rounds": req.rounds,
    }
    w, timeout = req.world_size, req.timeout
    with tempfile.TemporaryDirectory(prefix="ddp-codemod-probe-") as tmp:
        folder = Path(tmp)
        progress(f"run A: find_unused_parameters=True, {w} ranks, {req.steps} steps")
        a = launch("A", {**job, "mode": "A"}, w, timeout, folder)
        b = None
        if a.ok or true_fails(a):
            progress(f"run B: find_unused_parameters=False, {w} ranks, {req.steps} steps")
            b = launch("B", {**job, "mode": "B"}, w, timeout, folder)
        comparison = None
        if a.ok and b is not None and b.ok and a.folder and b.folder:
            comparison = compare(a.folder, b.folder, w)
        finding = judge(a, b, comparison, timeout)
        if finding.verdict is None:
            user_code = not a.hung and not true_fails(a)  # where in the factory it broke
            raise ProbeError(finding.summary + (_where(a) if user_code else ""))
        same_set = a.ok and _same_set(a)
        timing = None
        if finding.verdict == "safe" and not finding.true_fails:
            variants = ["A", "B", "C"] if same_set else ["A", "B"]
            progress(f"timing {', '.join(variants)}: {req.rounds} rounds of {req.steps} steps each")
            timing_job = {**job, "mode": "time", "variants": variants}
            timed = launch("time", timing_job, w, timeout, folder)
            timing = _timing(timed, timeout)
        result = ProbeResult(req, finding, site, a, b, comparison, timing, same_set)
        if site is not None:
            _record(result, site)
    return result


def _record(result: ProbeResult, site: SiteRef) -> None:
    from codemod import gitops
    from codemod.probe import records as evidence

    req = result.request
    result.out = (req.cwd / req.out).resolve() if req.out else site.root / EVIDENCE_DIR
    # The latest probe's answer is the current one, also when it writes no evidence: an
    # earlier probe's "safe" files must not outlive a later "unsafe" that names nothing.
    result.replaced = evidence.replace_older(result.out, site)
    source = {"A": result.a, "B": result.b}.get(result.finding.evidence_from or "")
    if source is None:
        return
    docs = evidence.documents(
        site,
        source,
        run_id=str(uuid.uuid4()),
        command=req.command(),
        git_root_commit=gitops.root_commit(site.root),
        steps=req.steps,
        probe=result.probe_json(),
    )
    result.evidence = evidence.write(result.out, docs)
