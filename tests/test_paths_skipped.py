"""Evidence whose code paths could not be recorded (a compiled forward, another tracer)
cannot say which parameter-skipping branches ran: a clean run then is `unknown`, and the
reason says why, instead of `safe` (issue 12: compiled forwards are risk-unknown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.evidence_docs import write_run
from tests.sources import BUILD, invoke_json
from tests.sources import traced as traced_at


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "train.py").write_text(BUILD)
    return root


def _site(repo: Path, paths: dict | None) -> dict:
    ranks = []
    for _ in range(2):
        inst = traced_at(repo, "train.py")
        if paths is not None:
            inst["paths"] = paths
        ranks.append([inst])
    write_run(repo, ranks)
    _, report, _ = invoke_json(repo, "scan", ".")
    (site,) = report["sites"]
    return site


@pytest.mark.parametrize(
    "why",
    ["compiled: paths not recorded", "another tracer is active", "no free monitoring tool id"],
)
def test_a_clean_run_without_recorded_paths_is_unknown(repo: Path, why: str):
    site = _site(repo, {"skipped": why})
    assert site["verdict"] == "unknown", site["reason"]
    assert why in site["reason"]
    assert "code paths were not recorded" in site["reason"]


def test_evidence_from_before_path_recording_keeps_its_verdict(repo: Path):
    """No `paths` at all (older evidence, or `--record-paths 0`): judged as before."""
    assert _site(repo, None)["verdict"] == "safe"
