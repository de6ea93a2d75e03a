"""Every folder under fixtures/<group>/<case>/ is one behaviour of `apply`.

A case holds `input.py` (or an `input/` tree), `output.py` (or `output/`) when the files
change, `report.json` with the exit code and the sites and errors expected, and
optionally `args.txt` with extra `apply` arguments (default: allow every site).
Each case is applied for real, applied a second time (nothing changes), and applied as
a --dry-run diff that `git apply` must turn into the same output.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from codemod.cli.main import main
from tests.sources import runner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(p.parent for p in FIXTURES.glob("*/*/report.json"))


def _case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


def _copy_input(case: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    if (case / "input").is_dir():
        shutil.copytree(case / "input", dest, dirs_exist_ok=True)
    else:
        shutil.copyfile(case / "input.py", dest / "input.py")


def _expected_tree(case: Path, tmp: Path) -> Path:
    expected = tmp / "expected"
    _copy_input(case, expected)
    if (case / "output").is_dir():
        shutil.copytree(case / "output", expected, dirs_exist_ok=True)
    elif (case / "output.py").is_file():
        shutil.copyfile(case / "output.py", expected / "input.py")
    return expected


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _apply(work: Path, args: list[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(work)
    return runner().invoke(main, ["apply", ".", *args], catch_exceptions=False)


def _args(case: Path) -> list[str]:
    path = case / "args.txt"
    return shlex.split(path.read_text()) if path.is_file() else ["--allow", "**"]


def _check_report(actual: dict, expected: dict) -> None:
    sites = actual["sites"]
    assert len(sites) == len(expected["sites"]), json.dumps(sites, indent=2)
    for got, want in zip(sites, expected["sites"]):
        subset = {key: got.get(key) for key in want}
        assert subset == want, json.dumps(got, indent=2)
    assert len(actual["errors"]) == len(expected.get("errors", [])), actual["errors"]
    for got, want in zip(actual["errors"], expected.get("errors", [])):
        assert got["path"] == want["path"]
        assert want["message"] in got["message"]


def test_fixture_cases_exist():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_apply(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    expected_report = json.loads((case / "report.json").read_text())
    work = tmp_path / "work"
    _copy_input(case, work)
    result = _apply(work, [*_args(case), "--format", "json"], monkeypatch)
    assert result.exit_code == expected_report["exit"], result.output
    _check_report(json.loads(result.stdout), expected_report)
    assert _tree(work) == _tree(_expected_tree(case, tmp_path))

    again = _apply(work, [*_args(case), "--format", "json"], monkeypatch)
    assert again.exit_code == (2 if expected_report.get("errors") else 0), again.output
    assert _tree(work) == _tree(_expected_tree(case, tmp_path))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_dry_run_diff_applies(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work = tmp_path / "work"
    _copy_input(case, work)
    before = _tree(work)
    result = _apply(work, [*_args(case), "--dry-run"], monkeypatch)
    assert _tree(work) == before, "--dry-run must write nothing"
    diff = result.stdout_bytes
    expected = _tree(_expected_tree(case, tmp_path))
    if expected == before:
        assert diff == b""
        return
    subprocess.run(["git", "apply", "-"], cwd=work, input=diff, check=True)
    assert _tree(work) == expected
