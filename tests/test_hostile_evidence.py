"""H14, H15: one hostile evidence file (or --evidence argument) is one error line; every
other evidence file still counts and the run never aborts, hangs or runs out of memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.evidence_docs import write_run
from tests.hostile import cli
from tests.sources import BUILD, invoke, invoke_json, traced


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(BUILD)
    write_run(tmp_path, [[traced(tmp_path, "train.py")], [traced(tmp_path, "train.py")]])
    return tmp_path


def _bad_doc(repo: Path) -> dict:
    """A third, otherwise valid file of another run, to be spoiled by each case."""
    out = repo / "spare"
    (path,) = write_run(repo, [[traced(repo, "train.py")]], run_id="run-9", out=out)
    doc = json.loads(path.read_text())
    path.unlink()
    out.rmdir()
    return doc


def _write_bad(repo: Path, text: str) -> None:
    (repo / ".ddp-codemod" / "bad.json").write_text(text)


def _spoiled(repo: Path, case: str) -> str:
    doc = _bad_doc(repo)
    if case == "nested":
        return json.dumps(doc)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    if case == "digits":
        return json.dumps(doc).replace('"pid": 1000', '"pid": 1' + "0" * 5000)
    if case == "nul":
        doc["files_read"] = [{"path": "train\u0000.py", "sha256": "0" * 64}]
    elif case == "world":
        doc["instances"][0]["world_size"] = 10**12
    elif case == "negative":
        doc["instances"][0]["unused"] = {"fc.weight": -5}
    elif case == "rank":
        doc["instances"][0]["rank"] = -1
    return json.dumps(doc)


CASES = {
    "nested": "evidence ignored: nested too deeply",
    "digits": "evidence ignored: a number has too many digits",
    "nul": "evidence ignored: names an invalid path",
    "world": "evidence ignored: malformed evidence: 'world_size' is out of range",
    "negative": "evidence ignored: malformed evidence: 'unused' has a negative count",
    "rank": "evidence ignored: malformed evidence: 'rank' is out of range",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_hostile_evidence_file_is_one_error(repo: Path, case: str):
    _write_bad(repo, _spoiled(repo, case))
    code, report, stderr = invoke_json(repo, "scan", ".")
    assert "internal error" not in stderr
    assert code == 2
    assert report["errors"] == [{"path": ".ddp-codemod/bad.json", "message": CASES[case]}]
    (site,) = report["sites"]
    assert site["verdict"] == "safe", site["reason"]  # the other evidence still counts


def test_evidence_file_over_the_size_limit(repo: Path):
    _write_bad(repo, " " * (33 * 1024 * 1024) + "{}")
    code, report, _ = invoke_json(repo, "scan", ".")
    assert code == 2
    assert report["errors"] == [
        {
            "path": ".ddp-codemod/bad.json",
            "message": (
                "evidence ignored: too large to read as evidence (33 MB; the limit is 32 MB)"
            ),
        }
    ]
    assert report["sites"][0]["verdict"] == "safe"


# H15 --------------------------------------------------------------------------------------
def test_missing_evidence_path_is_an_error(repo: Path):
    code, report, _ = invoke_json(repo, "scan", ".", "--evidence", "nope")
    assert code == 2
    assert report["errors"] == [
        {"path": "nope", "message": "--evidence: no such file or directory"}
    ]
    assert report["sites"][0]["verdict"] == "safe"


def test_missing_evidence_path_is_an_error_on_the_fast_path_too(repo: Path):
    (repo / "other.py").write_text("x = 1\n")
    result = invoke(repo, "scan", "other.py", "--evidence", "nope")
    assert result.exit_code == 2
    assert "nope: error: --evidence: no such file or directory" in result.stderr


def test_naming_the_default_evidence_folder_again_is_no_duplicate(repo: Path):
    code, report, _ = invoke_json(repo, "scan", ".", "--evidence", ".ddp-codemod")
    assert (code, report["errors"]) == (0, [])
    assert report["sites"][0]["verdict"] == "safe"


def test_evidence_fifo_does_not_hang(repo: Path, tmp_path_factory: pytest.TempPathFactory):
    pipe = tmp_path_factory.mktemp("fifo") / "pipe.json"  # outside the tree scan walks
    os.mkfifo(pipe)
    result = cli("scan", ".", "--evidence", str(pipe), "--format", "json", cwd=repo, timeout=15)
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["errors"] == [
        {"path": str(pipe), "message": "cannot read: not a regular file"}
    ]


def test_evidence_dev_zero_is_not_read(repo: Path):
    result = cli("scan", ".", "--evidence", "/dev/zero", "--format", "json", cwd=repo, timeout=15)
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["errors"] == [
        {"path": "/dev/zero", "message": "cannot read: not a regular file"}
    ]


def test_unreadable_evidence_folder_entry_is_skipped(repo: Path):
    (repo / ".ddp-codemod" / "zero.json").symlink_to("/dev/zero")
    result = cli("scan", ".", "--format", "json", cwd=repo, timeout=15)
    assert result.returncode == 0, result.stderr
