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
