"""The probe's verdict from what runs A and B did, and its step-time statistics.

The runs are data here (what ranks wrote and how they ended); tests/test_probe.py makes them
for real.
"""

from __future__ import annotations

import pytest

from codemod.probe.compare import Comparison
from codemod.probe.launch import RankResult, RunResult
from codemod.probe.outcome import first_line, judge
from codemod.probe.stats import ratio_by_round, summarize

NOT_REDUCED = (
    "RuntimeError: Expected to have finished reduction in the prior iteration before starting "
    "a new one. This error indicates that your module has parameters that were not used in "
    "producing loss. You can enable unused parameter detection by passing the keyword argument"
)
READY_TWICE = "RuntimeError: Expected to mark a variable ready only once. This error is caused"
EQUAL = Comparison(True, True, 0.0, None, 4)


def ok(name: str, *unused: dict[str, int]) -> RunResult:
    ranks = [
        RankResult(r, 0, {"ok": True, "record": {"unused": u, "unused_sets_stable": True}}, "")
        for r, u in enumerate(unused or ({}, {}))
    ]
    return RunResult(name, ranks)


def failed(
    name: str, error: str, peer: str = "RuntimeError: Connection closed by peer"
) -> RunResult:
    return RunResult(
        name,
        [
            RankResult(0, 1, {"ok": False, "error": peer, "finished_at": 1.0}, ""),
            RankResult(1, 1, {"ok": False, "error": error, "finished_at": 2.0}, ""),
        ],
    )


def hung(name: str) -> RunResult:
    return RunResult(name, [RankResult(0, None, None, ""), RankResult(1, None, None, "")], True)


def test_clean_runs_that_end_equal_are_safe_from_a():
    finding = judge(ok("A"), ok("B"), EQUAL, 60)
    assert (finding.verdict, finding.evidence_from) == ("safe", "A")


def test_b_failing_is_unsafe_names_from_a_and_cites_the_ddp_error_not_the_peer():
    finding = judge(ok("A", {"aux.w": 4}, {"aux.w": 4}), failed("B", NOT_REDUCED), None, 60)
    assert (finding.verdict, finding.unused, finding.evidence_from) == ("unsafe", {"aux.w": 4}, "A")
    assert finding.notes == [
        "run B (find_unused_parameters=False) failed on rank 1: RuntimeError: Expected to have "
        "finished reduction in the prior iteration before starting a new one."
    ]


def test_unused_counts_are_the_most_of_any_rank():
    finding = judge(ok("A", {"x": 1}, {"x": 3, "y": 0}), failed("B", NOT_REDUCED), None, 60)
    assert finding.unused == {"x": 3}


def test_b_hanging_is_a_finding_without_evidence_when_a_names_nothing():
    finding = judge(ok("A"), hung("B"), None, 60)
    assert (finding.verdict, finding.evidence_from) == ("unsafe", None)
    assert finding.notes[0] == (
        "run B (find_unused_parameters=False) hung: no result after 60 s; its processes were killed"
    )


def test_different_final_parameters_are_unsafe_without_evidence():
    differ = Comparison(False, True, 1e-3, "rank 0 B param:fc.weight", 4)
    finding = judge(ok("A"), ok("B"), differ, 60)
    assert (finding.verdict, finding.evidence_from) == ("unsafe", None)


def test_b_finishing_does_not_outvote_a_recorder_that_saw_an_unused_parameter():
    finding = judge(ok("A", {"x": 1}, {}), ok("B"), EQUAL, 60)
    assert (finding.verdict, finding.unused, finding.evidence_from) == ("unsafe", {"x": 1}, "A")


def test_true_failing_where_false_works_is_safe_from_b():
    finding = judge(failed("A", READY_TWICE, READY_TWICE), ok("B"), None, 60)
    assert (finding.verdict, finding.evidence_from, finding.true_fails) == ("safe", "B", True)
    assert "dropping the flag fixes the run" in finding.summary


@pytest.mark.parametrize(
    ("a", "b", "says"),
    [
        (hung("A"), None, "run A (find_unused_parameters=True) hung: no result after 60 s"),
        (failed("A", "ZeroDivisionError: division by zero"), None, "ZeroDivisionError"),
        (failed("A", READY_TWICE), failed("B", NOT_REDUCED), "; run B (find_unused_parameters="),
    ],
    ids=["a-hung", "a-failed", "both-failed"],
)
def test_no_verdict_when_a_hangs_or_fails_for_another_reason(a, b, says):
    finding = judge(a, b, None, 60)
    assert finding.verdict is None
    assert says in finding.summary


def test_first_line_keeps_a_short_line_and_cuts_a_long_one():
    assert first_line("ValueError: bad\n  more") == "ValueError: bad"
    assert first_line("x" * 300).endswith("...") and len(first_line("x" * 300)) == 200
    assert first_line("") == "no error message"


def test_step_time_summaries_and_the_ratio_by_round():
    s = summarize([0.001, 0.002, 0.003, 0.004, 0.005])
    assert (s.median, s.p25, s.p75, s.steps) == (3.0, 2.0, 4.0, 5)
    assert ratio_by_round([[2.0, 2.0], [3.0]], [[1.0, 1.0], [2.0]]) == (1.5, 2.0)


def test_a_verdict_without_evidence_still_retires_an_earlier_probe_of_the_site(tmp_path):
    import json
    from pathlib import Path

    from codemod.model import Kind
    from codemod.probe.report import text
    from codemod.probe.runner import ProbeResult, Request, _record
    from codemod.probe.site import SiteRef

    call = {"path": "m.py", "line": 3, "end_line": 3, "qualname": "build", "lines_sha256": "0"}
    site = SiteRef(tmp_path, "m.py", 3, Kind.TORCH_DDP, "m.py:3 (build)", call, (), ())
    old = tmp_path / ".ddp-codemod" / "evidence-h-1-1.json"
    old.parent.mkdir()
    old.write_text(
        json.dumps({"kind": "probe", "files_read": [], "instances": [{"call_site": call}]})
    )
    finding = judge(ok("A"), hung("B"), None, 60)  # unsafe, names nothing: no evidence
    request = Request("f.py:make", Path(tmp_path), site="m.py::build")
    result = ProbeResult(request, finding, site, ok("A"), hung("B"), None, None, False)
    _record(result, site)
    assert not old.exists()
    assert (result.evidence, result.replaced) == ([], 1)
    assert "removed 1 from an earlier probe of m.py:3 (build)" in text(result)


def _timing(**kw):
    from codemod.probe.runner import Timing

    return Timing(**kw)


def _result(tmp_path, timed=None, world_size=2, **request):
    from pathlib import Path

    from codemod.probe.runner import ProbeResult, Request

    req = Request("f.py:make", Path(tmp_path), world_size=world_size, **request)
    finding = judge(ok("A"), ok("B"), EQUAL, 60)
    return ProbeResult(req, finding, None, ok("A"), ok("B"), EQUAL, timed, True)


@pytest.mark.parametrize(
    ("ratio", "rounds_range", "rounds", "says"),
    [
        (
            0.92,
            (0.83, 1.10),
            3,
            "A/B: no measurable difference on this machine (A/B 0.92x, rounds 0.83-1.10x)",
        ),
        (
            1.14,
            (1.05, 1.30),
            3,
            "A/B: 1.14x (rounds 1.05-1.30x): dropping the flag saves 12% per step",
        ),
        (
            0.90,
            (0.85, 0.95),
            3,
            "A/B: 0.90x (rounds 0.85-0.95x): True was faster here; dropping it costs 11%",
        ),
        (1.20, (1.20, 1.20), 1, "A/B: 1.20x from one round: too few rounds to tell a difference"),
    ],
)
def test_the_ratio_claims_a_saving_only_when_every_round_shows_one(
    ratio, rounds_range, rounds, says
):
    from codemod.probe.report import ratio_line

    t = _timing(ratio=ratio, ratio_range=rounds_range, rounds=rounds)
    assert ratio_line(t) == says
    assert t.measurable is (rounds > 1 and not rounds_range[0] <= 1 <= rounds_range[1])


def test_milliseconds_are_fixed_point_at_every_size(tmp_path):
    from codemod.probe.report import text
    from codemod.probe.stats import Summary, fmt_ms

    assert [fmt_ms(x) for x in (1110.4, 91.73, 7.123, 0.4123)] == ["1110", "91.7", "7.12", "0.412"]
    big = Summary(1110.4, 1002.0, 1234.5, 24)
    t = _timing(summaries={"A": big, "B": big}, ratio=1.0, ratio_range=(0.9, 1.1), rounds=3)
    report = text(_result(tmp_path, t))
    assert "A (True) 1110 ms [1002-1234]" in report
    assert "e+" not in report and "saves" not in report


def test_timing_cut_short_keeps_the_rounds_that_finished_and_the_verdict(tmp_path):
    import json

    from codemod.probe.report import text
    from codemod.probe.runner import Request
    from codemod.probe.runner import _timing as timing_of

    folder = tmp_path / "time-0"
    folder.mkdir()
    rounds = [
        {
            "round": i,
            "rounds": 3,
            "times": {"A": [0.012, 0.011], "B": [0.010, 0.010]},
            "memory": {"A": 2048, "B": 1024},
        }
        for i in (1, 2)
    ]
    (folder / "progress-0.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rounds) + '{"round": 3, "ti'  # cut mid-write
    )
    run = RunResult(
        "time",
        [RankResult(0, None, None, ""), RankResult(1, None, None, "")],
        hung=True,
        folder=folder,
    )
    t = timing_of(run, Request("f.py:make", tmp_path, timing_timeout=20))
    assert (t.cut, t.rounds, t.planned, t.summaries["A"].steps) == (True, 2, 3, 4)
    assert t.memory == {"A": 2048, "B": 1024} and t.error is None
    report = text(_result(tmp_path, t, timing_timeout=20))
    assert report.startswith("safe: ")
    assert "timing cut after 2 rounds of 3 (--timing-timeout 20 s); the verdict stands" in report
    assert "hung" not in report
    assert "peak memory per rank: A 2 KiB, B 1 KiB" in report


def test_no_timing_says_so(tmp_path):
    from codemod.probe.report import text

    assert "timing: not run (--timing none)" in text(_result(tmp_path, None, timing="none"))


def test_world_size_one_says_rank_dependent_use_was_not_checked(tmp_path):
    from codemod.probe.report import text

    lines = text(_result(tmp_path, None, world_size=1, timing="none")).splitlines()
    assert lines[0].endswith("(one rank: rank-dependent use not checked)")
    assert "scan reads world-size-1 evidence as too thin to rewrite" in lines[1]


def test_probe_evidence_with_every_file_read_is_still_replaced_by_a_new_probe(tmp_path):
    import json

    from codemod.model import Kind
    from codemod.probe.records import replace_older
    from codemod.probe.site import SiteRef

    call = {"path": "m.py", "line": 3, "end_line": 3, "qualname": "build", "lines_sha256": "0"}
    site = SiteRef(tmp_path, "m.py", 3, Kind.TORCH_DDP, "m.py:3 (build)", call, (), ())
    out = tmp_path / ".ddp-codemod"
    out.mkdir()
    read = [{"path": "m.py", "sha256": "1"}, {"path": "factory.py", "sha256": "2"}]
    doc = {
        "kind": "probe",
        "files_read": read,
        "instances": [{"call_site": call}],
        "probe": {"site_files": []},
    }
    (out / "evidence-h-1-1.json").write_text(json.dumps(doc))
    assert replace_older(out, site) == 1


def test_without_a_repo_root_marker_evidence_goes_where_probe_ran(tmp_path):
    from codemod.probe.site import resolve

    build = (
        "from torch.nn.parallel import DistributedDataParallel as DDP\n\n\n"
        "def build(m):\n    return DDP(m, find_unused_parameters=True)\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(build)
    site = resolve("pkg/train.py", tmp_path)
    assert (site.root, site.rel, site.marked) == (tmp_path.resolve(), "pkg/train.py", False)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[tool.ddp-codemod]\n")
    marked = resolve("pkg/train.py", tmp_path)
    assert (marked.root, marked.rel, marked.marked) == (
        (tmp_path / "pkg").resolve(),
        "train.py",
        True,
    )


def test_the_report_says_where_evidence_went_without_a_root(tmp_path):
    from codemod.model import Kind
    from codemod.probe.report import text
    from codemod.probe.site import SiteRef

    site = SiteRef(
        tmp_path, "pkg/m.py", 3, Kind.TORCH_DDP, "pkg/m.py:3 (b)", None, (), (), marked=False
    )
    result = _result(tmp_path, None, timing="none", site="pkg/m.py")
    result.site = site
    result.evidence = [tmp_path / ".ddp-codemod" / "evidence-a.json"]
    assert text(result).endswith(
        "evidence: wrote 1 file to .ddp-codemod/ for pkg/m.py:3 (b) (no .git or pyproject.toml "
        "above pkg/m.py: written where probe ran; scan from .)"
    )


SKIPPING = """\
class Net:
    def forward(self, x):
        if self.frozen:
            return x
        return self.head(x)
"""


def with_paths(tmp_path, lines: list[int]) -> RunResult:
    """Run A whose ranks recorded the given lines of m.py (Net's head owns parameters)."""
    import hashlib

    (tmp_path / "m.py").write_text(SKIPPING)
    digest = hashlib.sha256(SKIPPING.encode()).hexdigest()
    paths = {
        "files": {"m.py": {"sha256": digest, "lines": lines}},
        "modules": {"m.py": [{"class": "Net", "line": 2, "params": ["head"]}]},
        "recorded_iterations": 4,
    }
    run = ok("A")
    for rank in run.ranks:
        rank.result["record"]["paths"] = paths
    return run


def test_a_safe_probe_whose_steps_never_took_a_skipping_branch_is_unknown(tmp_path):
    from codemod.probe.outcome import unseen

    a = with_paths(tmp_path, [3, 5])
    finding = unseen(judge(a, ok("B"), EQUAL, 60), a, tmp_path)
    assert (finding.verdict, finding.evidence_from) == ("unknown", "A")
    assert finding.notes[0] == (
        "1 branch that could skip parameters never ran: m.py:4 `if self.frozen:` (skips head)"
    )
    assert [b["line"] for b in finding.unexercised] == [4]


def test_a_probe_that_took_the_branch_or_recorded_no_paths_keeps_its_verdict(tmp_path):
    from codemod.probe.outcome import unseen

    a = with_paths(tmp_path, [3, 4, 5])
    assert unseen(judge(a, ok("B"), EQUAL, 60), a, tmp_path).verdict == "safe"
    assert unseen(judge(ok("A"), ok("B"), EQUAL, 60), ok("A"), tmp_path).verdict == "safe"


def test_a_safe_probe_whose_paths_were_not_recorded_is_unknown(tmp_path):
    """A compiled model (or another tracer) hides which branches ran: not seen, not safe."""
    from codemod.probe.outcome import unseen

    run = ok("A")
    for rank in run.ranks:
        rank.result["record"]["paths"] = {"skipped": "compiled: paths not recorded"}
    finding = unseen(judge(run, ok("B"), EQUAL, 60), run, tmp_path)
    assert finding.verdict == "unknown"
    assert "its code paths were not recorded (compiled: paths not recorded)" in finding.notes[0]
