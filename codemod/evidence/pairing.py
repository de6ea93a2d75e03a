"""Pair recorded DDP instances with the sites of one file and judge what they prove.

A direct call (torch DDP, a subclass, a helper's call, a kwargs dict's consumer) pairs by
the recorded call site or a recorded repo frame inside the site's span. DDP built by a
framework (accelerate, Lightning, Hugging Face) pairs by function: the run's repo stack
passed through the function holding the site. A recorded hash of the source tells fresh
evidence from stale. Safe needs world size >= 2, every rank, and at least min-steps
synchronising iterations per instance with no parameter left without a gradient.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from codemod.evidence.load import Instance, Process
from codemod.model import Coverage, Kind, ProbeTimes, RunSummary, Site, Span, State
from codemod.recorder._ddp_codemod_source import lines_sha256


def _spans(site: Site) -> tuple[Span, ...]:
    return (site.span,) if site.feeds is None else (site.span, site.feeds)


def _holds(site: Site, line: int) -> bool:
    return any(span.contains_line(line) for span in _spans(site))


class _Collector:
    def __init__(self, sites: list[Site], lines: list[str]) -> None:
        self.sites = sites
        self.lines = lines
        self.fresh: dict[int, list[Instance]] = defaultdict(list)
        self.stale: dict[int, list[Instance]] = defaultdict(list)
        self.ambiguous: dict[int, str] = {}
        self.processes: dict[int, list[Process]] = defaultdict(list)
        self._hashes: dict[tuple[int, int], str | None] = {}

    def hash_at(self, line: int, end_line: int) -> str | None:
        """The current hash of lines line..end_line; every rank asks for the same spans."""
        key = (line, end_line)
        if key not in self._hashes:
            ok = 1 <= line <= end_line <= len(self.lines)
            self._hashes[key] = lines_sha256(self.lines, line, end_line) if ok else None
        return self._hashes[key]

    def add(self, index: int, inst: Instance, fresh: bool) -> None:
        bucket = (self.fresh if fresh else self.stale)[index]
        if not any(known is inst for known in bucket):
            bucket.append(inst)
        self.saw(index, inst.process)

    def saw(self, index: int, process: Process) -> None:
        """`process` paired with site `index` (or ran its function: a version to settle)."""
        seen = self.processes[index]
        if not any(known is process for known in seen):
            seen.append(process)

    def direct(self, inst: Instance, rel: str) -> set[int]:
        """Pair by the recorded call site; returns the sites it reached."""
        cs = inst.call_site
        if cs is None or cs.path != rel:
            return set()
        fresh = self.hash_at(cs.line, cs.end_line) == cs.lines_sha256
        targets = [
            i
            for i, s in enumerate(self.sites)
            if not s.kind.built_later and _holds(s, cs.line) and s.qualname == cs.qualname
        ]
        if not fresh:  # the call moved? find unchanged text elsewhere in the same function
            moved = [
                i
                for i, s in enumerate(self.sites)
                if not s.kind.built_later
                and s.qualname == cs.qualname
                and any(self.hash_at(sp.line, sp.end_line) == cs.lines_sha256 for sp in _spans(s))
            ]
            if len(moved) == 1:  # two calls with that very text: which moved is unknowable
                targets, fresh = moved, True
            elif not targets:  # edited beyond recognition: every such site in the function
                targets = [
                    i
                    for i, s in enumerate(self.sites)
                    if not s.kind.built_later and s.qualname == cs.qualname
                ]
        for i in targets:
            ok = fresh
            if self.sites[i].kind == Kind.KWARGS_DICT and inst.frames:
                frame = inst.frames[0]  # the dict may change while the call does not
                same = self.hash_at(frame.function_line, frame.function_end_line)
                ok = ok and frame.path == rel and same == frame.function_sha256
            self.add(i, inst, ok)
        return set(targets)

    def frames(self, inst: Instance, rel: str, reached: set[int]) -> None:
        """Pair by repo frames: a frame inside a site's span, or a framework site's function."""
        for frame in inst.frames:
            if frame.path != rel:
                continue
            fresh = (
                self.hash_at(frame.function_line, frame.function_end_line) == frame.function_sha256
            )
            for i, s in enumerate(self.sites):
                if i in reached or s.kind.built_later or s.kind == Kind.KWARGS_DICT:
                    continue
                if s.qualname == frame.qualname and _holds(s, frame.line):
                    self.add(i, inst, fresh)
            for i, s in enumerate(self.sites):  # whatever the flag, the run's versions count
                if s.settles and s.kind.built_later and s.qualname == frame.qualname:
                    self.saw(i, inst.process)
            if not inst.find_unused_parameters or inst.call_site is not None:
                continue  # only DDP built inside framework code pairs by function
            framework = [
                i
                for i, s in enumerate(self.sites)
                if s.kind.built_later and s.literal is True and s.qualname == frame.qualname
            ]
            if len(framework) == 1:
                self.add(framework[0], inst, fresh)
            elif framework:
                for i in framework:
                    self.ambiguous[i] = (
                        f"{len(framework)} framework sites in `{frame.qualname}` could have built "
                        "the traced DDP, so the evidence cannot tell which"
                    )


def cover(
    sites: list[Site],
    rel: str,
    lines: list[str],
    instances: Iterable[Instance],
    min_steps: int,
    processes: dict[int, list[Process]] | None = None,
) -> dict[int, Coverage]:
    """Coverage for the sites (by index) of the file at repo-relative path `rel`.

    `processes`, when given, receives for each site the processes whose DDP paired with
    it, and for a site that `settles` on a version every process that ran its function:
    what their recorded framework versions say is the caller's to judge.
    """
    collector = _Collector(sites, lines)
    for inst in instances:
        reached = collector.direct(inst, rel)
        collector.frames(inst, rel, reached)
    if processes is not None:
        processes.update(collector.processes)
    out: dict[int, Coverage] = {}
    for i in range(len(sites)):
        if collector.fresh.get(i):
            out[i] = _judge(collector.fresh[i], min_steps)
        elif collector.stale.get(i):
            runs = _summaries(collector.stale[i])
            out[i] = Coverage(
                State.STALE,
                f"the code changed since `{runs[0].command}` {_redo(runs)}",
                {},
                runs,
            )
        elif i in collector.ambiguous:
            out[i] = Coverage(State.AMBIGUOUS, collector.ambiguous[i], {}, ())
    return out


def _redo(runs: tuple[RunSummary, ...], done: str = "traced it; ") -> str:
    """`traced it; trace again`, or for probe evidence `probed it; probe again`."""
    if runs and all(r.kind == "probe" for r in runs):
        return done.replace("traced", "probed") + "probe again"
    return done + "trace again"


def _command(inst: Instance) -> str:
    return shlex.join(inst.process.command) or "?"


def _same_set(group: list[Instance]) -> bool:
    """Every iteration of every instance left the same parameters unused (maybe none)."""
    sets = {frozenset(n for n, c in i.unused.items() if c) for i in group}
    return (
        len(sets) == 1
        and all(i.unused_sets_stable for i in group)
        and min(i.iterations for i in group) >= 2
    )


def _number(value: object) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return float(value) if ok else None  # type: ignore[arg-type]


@dataclass(frozen=True)
class _ProbeTimes(ProbeTimes):
    """ProbeTimes plus whether True and False differed beyond the round-to-round noise; the
    JSON entry (ProbeTimes.as_json) stays as it was."""

    measurable: bool = True


def _probe_times(group: list[Instance]) -> ProbeTimes | None:
    """The step times a probe stored in its evidence's top-level "probe" object, if any.

    Measurable: as the probe judged it, else every round's A/B ratio on one side of 1
    (`ratio_range`); older evidence without either counts as measured.
    """
    data = group[0].process.extra.get("probe")
    if group[0].process.kind != "probe" or not isinstance(data, dict):
        return None
    true_ms, false_ms = _number(data.get("a_median_ms")), _number(data.get("b_median_ms"))
    if true_ms is None or false_ms is None:
        return None
    static = _number(data.get("c_median_ms")) if data.get("static_graph_ok") is True else None
    measurable = data.get("measurable")
    if not isinstance(measurable, bool):
        span = data.get("ratio_range")
        low, high = (
            (_number(x) for x in span)
            if isinstance(span, list) and len(span) == 2
            else (None, None)
        )
        measurable = low is None or high is None or not low <= 1 <= high
    return _ProbeTimes(true_ms, false_ms, static, measurable)


def _global(inst: Instance) -> tuple[int, int]:
    """The instance's process as a rank of the whole job (the default process group): a
    run covers a site only with evidence from every one of those, not just a sub-group's."""
    process = inst.process
    if process.rank is not None and process.world_size is not None:
        return process.rank, max(process.world_size, inst.world_size)
    return inst.rank, inst.world_size


def _every_rank(ranks: tuple[int, ...], world_size: int) -> bool:
    """ranks == 0..world_size-1, by arithmetic: world_size comes from a file."""
    return len(ranks) == world_size and (
        not ranks or (ranks[0] == 0 and ranks[-1] == world_size - 1)
    )


def _summaries(instances: list[Instance]) -> tuple[RunSummary, ...]:
    by_run: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_run[inst.process.run_id].append(inst)
    return tuple(
        RunSummary(
            kind=group[0].process.kind,
            command=_command(group[0]),
            world_size=max(_global(i)[1] for i in group),
            ranks=tuple(sorted({_global(i)[0] for i in group})),
            iterations=min(i.iterations for i in group),
            files=tuple(sorted({i.process.file.name for i in group})),
            static_graph_hint=_same_set(group),
            probe=_probe_times(group),
            changed=tuple(sorted({path for i in group for path in i.process.changed})),
            unrecorded=tuple(sorted({path for i in group for path in i.process.unrecorded})),
        )
        for group in by_run.values()
    )


def _measured(runs: tuple[RunSummary, ...]) -> str:
    """`; probe: 7.98 ms per step with True, 6.59 ms without (1.21x)` and the static_graph hint.

    Numbers only where the probe measured a difference: a ratio inside the rounds' noise is
    no saving. Milliseconds in fixed point, as the probe's report writes them (0.412, 7.12,
    91.7, 1110).
    """

    def ms(value: float) -> str:
        return (
            f"{value:.0f}" if value >= 100 else f"{value:.4f}" if value < 0.001 else f"{value:.3g}"
        )

    out = ""
    timed = next((r.probe for r in runs if r.probe), None)
    shown = timed is not None and getattr(timed, "measurable", True)
    if timed is not None and not shown:
        out += "; probe: no measurable step-time difference between True and False"
    elif timed is not None:
        out += (
            f"; probe: {ms(timed.true_ms)} ms per step with True, {ms(timed.false_ms)} ms "
            f"without ({timed.ratio:.2f}x)"
        )
    if runs and all(r.static_graph_hint for r in runs):
        out += "; every iteration used the same parameters, so static_graph=True fits too"
        if shown and timed is not None and timed.static_graph_ms is not None:
            out += f" ({ms(timed.static_graph_ms)} ms per step)"
    return out


def _unseen(instances: list[Instance], runs: tuple[RunSummary, ...], clean: str) -> Coverage | None:
    """Clean evidence that recorded its code paths: None when no branch that could skip
    parameters went untaken; else thin coverage naming those branches, or saying which
    code could not be seen (recording skipped: a compiled forward, another tracer).
    Evidence without paths (older files, --record-paths 0) keeps the verdict it had."""
    recorded = [i.code_paths for i in instances if i.code_paths is not None]
    root = next((i.process.root for i in instances if i.process.root is not None), None)
    if not recorded or root is None:
        return None
    from codemod.evidence import branches

    found = branches.analyse(root, recorded)
    fixed = tuple(b.as_json() for b in found.fixed)
    verb = "probe" if all(r.kind == "probe" for r in runs) else "trace"
    blind = branches.blind_spot(found)
    if not found.risky and blind is not None:  # not seen is not safe
        reason = f"{clean}, but {blind}; {branches.blind_hint(verb)}"
        return Coverage(State.THIN, reason, {}, runs, (), fixed)
    if not found.risky:
        if fixed:
            return Coverage(State.SAFE, clean + _measured(runs), {}, runs, (), fixed)
        return None
    reason = f"{clean}, but {branches.headline(found.risky)}; {branches.hint(found.risky, verb)}"
    risky = tuple(b.as_json() for b in found.risky)
    return Coverage(State.THIN, reason, {}, runs, risky, fixed)


def _judge(instances: list[Instance], min_steps: int) -> Coverage:
    runs = _summaries(instances)
    unused: dict[str, int] = {}
    for inst in instances:
        for name, count in inst.unused.items():
            if count:
                unused[name] = max(unused.get(name, 0), count)
    if unused:
        names = ", ".join(f"{n} ({c})" for n, c in sorted(unused.items())[:5])
        more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
        hint = ""
        if all(r.static_graph_hint for r in runs):
            hint = (
                "; the same parameters went unused in every iteration: static_graph=True fits too"
            )
        return Coverage(
            State.UNSAFE,
            f"a {'probed' if all(r.kind == 'probe' for r in runs) else 'traced'} run left "
            f"parameters without a gradient: {names}{more}; "
            f"find_unused_parameters=True is needed{hint}",
            unused,
            runs,
        )
    problems: list[str] = []
    changed: list[str] = []
    for run in runs:
        if run.world_size < 2:
            problems.append(f"`{run.command}` ran at world size {run.world_size}")
        elif not _every_rank(run.ranks, run.world_size):
            problems.append(f"`{run.command}` recorded ranks {list(run.ranks)} of {run.world_size}")
        elif run.iterations < min_steps:
            problems.append(
                f"`{run.command}` saw {run.iterations} synchronising iterations "
                f"(min-steps is {min_steps})"
            )
        elif run.unrecorded:  # it ran code nobody can check for changes
            shown = ", ".join(run.unrecorded[:3]) + (" ..." if len(run.unrecorded) > 3 else "")
            problems.append(
                f"`{run.command}` ran repo code whose source it could not record ({shown}: "
                "bytecode without its .py), so an edit there would go unnoticed"
            )
        elif run.changed:  # the model code it proved clean may have changed too
            shown = ", ".join(run.changed[:3]) + (" ..." if len(run.changed) > 3 else "")
            changed.append(f"`{run.command}` read files that changed since: {shown}")
        else:
            reason = (
                f"every synchronising iteration of `{run.command}` (world size {run.world_size}, "
                f"{run.iterations}+ iterations per rank) gave every trainable parameter a gradient"
            )
            return _unseen(instances, runs, reason) or Coverage(
                State.SAFE, reason + _measured(runs), {}, runs
            )
    if changed:
        return Coverage(State.STALE, "; ".join(changed) + "; " + _redo(runs, ""), {}, runs)
    return Coverage(State.THIN, "evidence too thin: " + "; ".join(problems), {}, runs)


NOT_CHOSEN = (
    "read by the program on every run, not chosen by the command line of `{command}` (nor "
    "named by a config it chose); configs the trace did not choose may build other models"
)


def file_coverage(
    instances: Iterable[Instance],
    rel: str,
    min_steps: int,
    chosen: Mapping[str, set[str]] | None = None,
) -> Coverage | None:
    """What runs that chose config file `rel` prove about its True settings.

    A run counts when its command line named the file (or a config that refers to it:
    `chosen`, by run id) and one of its processes read it, and every DDP instance of the
    run was built with find_unused_parameters=True; whether the file changed since it read
    it (load.py compares the hashes) tells fresh from stale. A file a run read without
    choosing it proves nothing about the runs that choose other configs. `chosen` None:
    every file a run read counts (probe evidence of a code site, and older callers).
    """
    by_run: dict[str, list[Instance]] = defaultdict(list)
    for inst in instances:
        by_run[inst.process.run_id].append(inst)
    fresh: list[Instance] = []
    stale: list[Instance] = []
    unchosen: list[Instance] = []
    for run_id, group in by_run.items():
        readers = [i.process for i in group if rel in i.process.files_read]
        if not readers or not all(i.find_unused_parameters for i in group):
            continue
        if chosen is not None and rel not in chosen.get(run_id, set()):
            unchosen.extend(group)
            continue
        unchanged = any(rel not in process.changed for process in readers)
        (fresh if unchanged else stale).extend(group)
    if fresh:
        return _judge(fresh, min_steps)
    if stale:
        runs = _summaries(stale)
        return Coverage(
            State.STALE,
            f"the file changed since `{runs[0].command}` read it; {_redo(runs, '')}",
            {},
            runs,
        )
    if unchosen:
        runs = _summaries(unchosen)
        return Coverage(State.THIN, NOT_CHOSEN.format(command=runs[0].command), {}, runs)
    return None


def inherited_coverage(
    own: Coverage | None,
    heirs: dict[str, Coverage | None],
    allowed: set[str],
    named: frozenset[str] = frozenset(),
) -> Coverage | None:
    """A config's site: its own coverage, unless a config that reads its setting blocks it.

    `heirs` maps each config that inherits the setting, or names the file (`named`: an
    include list or a loader may read it from there), to its evidence; `allowed` holds
    those an allowlist entry covers.
    """
    unused = dict(own.unused) if own else {}
    blocked: list[str] = []
    blocked_named: list[str] = []
    for rel, cov in sorted(heirs.items()):
        if cov is not None and cov.state is State.UNSAFE:
            for name, count in cov.unused.items():
                unused[name] = max(unused.get(name, 0), count)
        elif not ((cov is not None and cov.state is State.SAFE) or rel in allowed):
            stale = " (changed since traced)" if cov and cov.state is State.STALE else ""
            (blocked_named if rel in named else blocked).append(rel + stale)
    if own is not None and own.state in (State.UNSAFE, State.STALE):
        return own
    if unused:
        names = ", ".join(f"{n} ({c})" for n, c in sorted(unused.items())[:5])
        return Coverage(
            State.UNSAFE,
            f"a config inheriting this setting left parameters without a gradient: {names}",
            unused,
            own.runs if own else (),
        )
    reasons = []
    if blocked:
        reasons.append(
            f"inherited by {', '.join(blocked)}, which no evidence or allowlist entry covers; "
            "rewriting this base would change them too"
        )
    if blocked_named:
        reasons.append(
            f"named by {', '.join(blocked_named)} (an include list or a loader may read it "
            "from there), which no evidence or allowlist entry covers; rewriting it would "
            "change their runs too"
        )
    if reasons:
        return Coverage(State.BLOCKED, "; ".join(reasons), {}, own.runs if own else ())
    return own
