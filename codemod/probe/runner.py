"""`ddp-codemod probe`: run a factory's model with True and with False, judge, time, record.

Bad input (the factory, --site, --device) is found here, in this process, before any rank
starts. Then run A (True) and run B (False) each get their own process group and port, so a
B that fails or hangs cannot poison A; only when the verdict is safe does a third group time
A, B and (when every step used the same parameters) C, static_graph=True, one after another.
The timing is a phase of its own, with its own deadline: cut short, it keeps the rounds that
finished, and the verdict stands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.model import EVIDENCE_DIR
from codemod.probe import (
    DEFAULT_STEPS,
    DEFAULT_TIMEOUT_S,
    DEFAULT_TIMING,
    DEFAULT_TIMING_TIMEOUT_S,
    DEFAULT_WORLD_SIZE,
    TIMING_ROUNDS,
)
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
    unseen,
)
from codemod.probe.site import SiteError, SiteRef, resolve
from codemod.probe.stats import Summary, fmt_ms, ratio_by_round, summarize

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
    rounds: int | None = None  # timing rounds; None: what --timing says
    timing: str = DEFAULT_TIMING  # none / quick / full
    timing_timeout: float = DEFAULT_TIMING_TIMEOUT_S
    device: str = "cpu"
    environ: tuple[tuple[str, str], ...] = ()  # variables make() read, for the command line
    record_paths: int | None = None  # steps whose code paths are noted; None: every step

    @property
    def path_steps(self) -> int:
        return self.steps if self.record_paths is None else min(self.record_paths, self.steps)

    @property
    def timing_rounds(self) -> int:
        return TIMING_ROUNDS[self.timing] if self.rounds is None else self.rounds

    def command(self) -> list[str]:
        """The probe as a command line, for the evidence and the reports that cite it.

        Variables the factory read come first, as a shell would take them (`FOO=1 ...`):
        the run that proved the site depended on them.
        """
        cmd = [f"{k}={v}" for k, v in self.environ] + ["ddp-codemod", "probe", self.target]
        if self.site:
            cmd += ["--site", self.site]
        cmd += ["--steps", str(self.steps), "--world-size", str(self.world_size)]
        if self.record_paths is not None:
            cmd += ["--record-paths", str(self.record_paths)]
        return cmd + (["--device", self.device] if self.device != "cpu" else [])


@dataclass
class Timing:
    summaries: dict[str, Summary] = field(default_factory=dict)  # "A", "B", "C"
    ratio: float | None = None  # median A / median B
    ratio_range: tuple[float, float] | None = None  # the same ratio round by round
    c_ratio: float | None = None  # median A / median C
    c_max_abs_diff: float | None = None  # C's final state against B's
    error: str | None = None  # the timing run failed (the verdict stands)
    rounds: int = 0  # rounds that finished
    planned: int = 0
    cut: bool = False  # the timing deadline came first; `rounds` of `planned` finished
    memory: dict[str, int] = field(default_factory=dict)  # variant -> peak bytes per rank
    memory_measure: str | None = None  # "cuda_max_memory_allocated" / "rss_growth"
    model_copies: int | None = None  # the most model copies a rank held at once

    @property
    def measurable(self) -> bool:
        """True and False differ by more than the rounds move: every round on one side of 1."""
        if self.ratio_range is None or self.rounds < 2:
            return False
        low, high = self.ratio_range
        return low > 1 or high < 1


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
        if t is None or "C" not in t.summaries or (t.c_max_abs_diff is None and t.cut):
            return None
        exact = self.request.world_size == 2 and self.request.device == "cpu"
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
            "device": self.request.device,
            "timing": self.request.timing if self.request.rounds is None else "custom",
            "site_files": sorted(f["path"] for f in self.site.files_read) if self.site else [],
            "unexercised": self.finding.unexercised,
            "fixed_by_config": self.finding.fixed_by_config,
        }
        if t is not None:
            for name, summary in t.summaries.items():
                out[f"{name.lower()}_median_ms"] = round(summary.median, 4)
                out[f"{name.lower()}_spread_ms"] = [round(summary.p25, 4), round(summary.p75, 4)]
            out["ratio"] = _round(t.ratio)
            out["ratio_range"] = [_round(x) for x in t.ratio_range] if t.ratio_range else None
            out["c_ratio"] = _round(t.c_ratio)
            out["c_max_abs_diff"] = t.c_max_abs_diff
            out["timing_error"] = t.error
            out["timing_rounds"] = t.rounds
            out["timing_cut"] = t.cut
            out["measurable"] = t.measurable
            out["memory_peak_bytes"] = dict(t.memory)
            out["memory_measure"] = t.memory_measure
            out["model_copies"] = t.model_copies
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


def _validate(req: Request) -> dict[str, str]:
    """Import, call and check the factory here: bad input is one line, before any rank runs.

    Returns the environment variables make() read.
    """
    try:
        with _output_to_stderr():
            factory = factories.load(req.target, str(req.cwd))
            factories.seed(SEED)
            setup = factories.build(factory)
            factories.check_batches(setup, req.target)
    except factories.FactoryError as exc:
        raise ProbeError(str(exc)) from None
    return setup.environ


@contextlib.contextmanager
def _output_to_stderr() -> Iterator[None]:
    """What the user's code prints while it runs here goes to stderr: stdout carries only
    the report, which `--format json` makes one JSON object. Both `sys.stdout` (so logging
    handlers it creates, such as mmengine's, write to stderr later too) and file descriptor 1
    (C extensions, subprocesses) are redirected."""
    sys.stdout.flush()
    try:
        saved: int | None = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 (a daemon): sys.stdout alone, then
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def check_device(device: str, world_size: int) -> None:
    """--device cuda needs CUDA, NCCL and a GPU per rank; ProbeError (one line) if not."""
    if device != "cuda":
        return
    import torch
    import torch.distributed as dist

    if not torch.cuda.is_available():
        raise ProbeError(f"--device cuda: no CUDA device is visible to torch {torch.__version__}")
    if not dist.is_nccl_available():
        raise ProbeError(f"--device cuda: torch {torch.__version__} has no NCCL")
    count = torch.cuda.device_count()
    if world_size > count:
        raise ProbeError(
            f"--device cuda: --world-size {world_size} needs {world_size} GPUs (one rank per "
            f"GPU), {count} visible"
        )


def _same_batches(a: RunResult, b: RunResult) -> str | None:
    """Where runs A and B trained on different data (rank, step), None when they did not."""
    for ra, rb in zip(a.ranks, b.ranks):
        da = (ra.result or {}).get("digests") or []
        db = (rb.result or {}).get("digests") or []
        for step, (x, y) in enumerate(zip(da, db)):
            if x != y:
                return f"rank {ra.rank}, step {step}"
    return None


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


def _rounds_so_far(folder: Path | None) -> list[dict[str, Any]]:
    """The rounds rank 0 reported finished (progress-0.jsonl), in order."""
    from codemod.probe.worker import PROGRESS

    try:
        text = (folder / PROGRESS).read_text(encoding="utf-8") if folder else ""
    except OSError:
        return []
    rounds = []
    for line in text.splitlines():
        try:
            rounds.append(json.loads(line))
        except ValueError:
            break  # the line rank 0 was writing when it was stopped
    return rounds


def _timing(run: RunResult, req: Request) -> Timing:
    planned = req.timing_rounds
    measure = "cuda_max_memory_allocated" if req.device == "cuda" else "rss_growth"
    result = (run.ranks[0].result or {}) if run.ranks else {}
    if run.ok:
        times: dict[str, list[list[float]]] = result.get("times") or {}
        memory = result.get("memory") or {}
    elif run.hung:  # the deadline: keep what finished
        done = _rounds_so_far(run.folder)
        times = {}
        for entry in done:
            for name, took in (entry.get("times") or {}).items():
                times.setdefault(name, []).append(took)
        memory = (done[-1].get("memory") or {}) if done else {}
    else:
        return Timing(error=failure(run, req.timing_timeout).replace("run time", "timing"))
    t = Timing(
        summaries={n: summarize([s for r in rs for s in r]) for n, rs in times.items() if rs},
        rounds=min((len(rs) for rs in times.values()), default=0),
        planned=planned,
        cut=not run.ok,
        memory={k: int(v) for k, v in memory.items() if isinstance(v, (int, float))},
        memory_measure=measure,
        model_copies=result.get("model_copies") if run.ok else None,
    )
    if "A" in t.summaries and "B" in t.summaries:
        t.ratio = t.summaries["A"].median / t.summaries["B"].median
        t.ratio_range = ratio_by_round(times["A"], times["B"])
    if "C" in t.summaries:
        t.c_ratio = t.summaries["A"].median / t.summaries["C"].median
        t.c_max_abs_diff = result.get("c_max_abs_diff") if run.ok else None
    return t


def _round_line(entry: dict[str, Any]) -> str:
    """`timing round 1/3: A 7.12 ms, B 6.26 ms, C 6.25 ms per step (A/B 1.14x)`."""
    medians = {n: summarize(ts).median for n, ts in (entry.get("times") or {}).items() if ts}
    parts = ", ".join(f"{n} {fmt_ms(m)} ms" for n, m in medians.items())
    ratio = ""
    if medians.get("A") and medians.get("B"):
        ratio = f" (A/B {medians['A'] / medians['B']:.2f}x)"
    return f"timing round {entry.get('round')}/{entry.get('rounds')}: {parts} per step{ratio}"


def _watcher(progress: Callable[[str], None]) -> Callable[[Path], None]:
    """Print each timing round as rank 0 reports it."""
    shown: dict[Path, int] = {}

    def watch(folder: Path) -> None:
        done = _rounds_so_far(folder) if (folder / "progress-0.jsonl").exists() else []
        for entry in done[shown.get(folder, 0) :]:
            progress(_round_line(entry))
        shown[folder] = max(shown.get(folder, 0), len(done))

    return watch


def run(req: Request, progress: Callable[[str], None] = lambda line: None) -> ProbeResult:
    """The whole probe. ProbeError when it cannot reach a verdict."""
    check_device(req.device, req.world_size)
    try:
        site = resolve(req.site, req.cwd) if req.site else None
    except SiteError as exc:
        raise ProbeError(str(exc)) from None
    environ = _validate(req)
    req = dataclasses.replace(req, environ=tuple(sorted(environ.items())))
    job = {
        "target": req.target,
        "cwd": str(req.cwd),
        "root": str(site.root if site else req.cwd),  # files read are recorded under it
        "seed": SEED,
        "steps": req.steps,
        "rounds": req.timing_rounds,
        "device": req.device,
        "record_paths": req.path_steps,
    }
    w, timeout = req.world_size, req.timeout
    ranks = f"{w} rank" + ("s" if w != 1 else "")
    with tempfile.TemporaryDirectory(prefix="ddp-codemod-probe-") as tmp:
        folder = Path(tmp)
        progress(f"run A: find_unused_parameters=True, {ranks}, {req.steps} steps")
        a = launch("A", {**job, "mode": "A"}, w, timeout, folder)
        b = None
        if a.ok or true_fails(a):
            progress(f"run B: find_unused_parameters=False, {ranks}, {req.steps} steps")
            b = launch("B", {**job, "mode": "B"}, w, timeout, folder)
        comparison = None
        if a.ok and b is not None and b.ok and a.folder and b.folder:
            where = _same_batches(a, b)
            if where is not None:
                raise ProbeError(
                    f"batch(step, rank) gave run A and run B different data ({where}); "
                    "derive it from (step, rank) only"
                )
            comparison = compare(a.folder, b.folder, w, w == 2 and req.device == "cpu")
        finding = judge(a, b, comparison, timeout)
        source = {"A": a, "B": b}.get(finding.evidence_from or "")
        finding = unseen(finding, source, Path(job["root"]))
        if finding.verdict is None:
            user_code = not a.hung and not true_fails(a)  # where in the factory it broke
            raise ProbeError(finding.summary + (_where(a) if user_code else ""))
        same_set = a.ok and _same_set(a)
        timing = None
        rounds = req.timing_rounds
        if finding.verdict == "safe" and not finding.true_fails and rounds > 0:
            variants = ["A", "B", "C"] if same_set else ["A", "B"]
            progress(
                f"timing {', '.join(variants)}: {rounds} rounds of {req.steps} steps each, "
                f"one after another (deadline {req.timing_timeout:g} s)"
            )
            timing_job = {**job, "mode": "time", "variants": variants}
            timed = launch(
                "time", timing_job, w, req.timing_timeout, folder, watch=_watcher(progress)
            )
            timing = _timing(timed, req)
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
