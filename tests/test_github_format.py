"""--format github: one GitHub Actions workflow command per site that is not off, errors
as ::error, escaped as the Actions runner parses them; and the example CI workflow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from codemod.report import github
from tests.evidence_docs import write_run
from tests.sources import BUILD, DDP_IMPORT, invoke, traced

CHECKOUT = Path(__file__).resolve().parents[1]
FILES = {
    "pkg/allowed.py": DDP_IMPORT + "m = DDP(m, find_unused_parameters=True)\n",
    "traced.py": BUILD,
    "unknown.py": DDP_IMPORT + "m = DDP(m, find_unused_parameters=True)\n",
    "off.py": DDP_IMPORT + "m = DDP(m, find_unused_parameters=False)\n",
    "pyproject.toml": '[tool.ddp-codemod]\nallow = ["pkg/allowed.py"]\n',
}
COMMAND = re.compile(r"^::(warning|error)(?: ([^:]*))?::(.*)$")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    write_run(tmp_path, [[traced(tmp_path, "traced.py")], [traced(tmp_path, "traced.py")]])
    return tmp_path


def _parse(stdout: str) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for line in stdout.splitlines():
        match = COMMAND.match(line)
        assert match, line
        props = dict(p.split("=", 1) for p in match.group(2).split(",")) if match.group(2) else {}
        out.append((match.group(1), props, match.group(3)))
    return out


def test_scan_prints_one_warning_per_site_that_is_not_off(repo: Path):
    result = invoke(repo, "scan", ".", "--format", "github")
    assert result.exit_code == 0, result.output
    commands = _parse(result.stdout)
    assert [(level, p["file"], p["title"]) for level, p, _ in commands] == [
        ("warning", "pkg/allowed.py", "ddp-codemod allowed"),
        ("warning", "traced.py", "ddp-codemod safe"),
        ("warning", "unknown.py", "ddp-codemod unknown"),
    ]
    _, props, message = commands[1]
    assert (props["line"], props["col"], props["endLine"], props["endColumn"]) == (
        "7", "16", "7", "43"
    )  # fmt: skip
    assert message.startswith("torch-ddp find_unused_parameters=True: every synchronising")
    assert result.stderr == ""


def test_paths_are_relative_to_the_working_directory(repo: Path):
    commands = _parse(invoke(repo, "scan", "pkg", "--format", "github").stdout)
    assert [p["file"] for _, p, _ in commands] == ["pkg/allowed.py"]


def test_apply_reports_what_it_rewrote_and_keeps_its_exit_codes(repo: Path):
    dry = invoke(repo, "apply", ".", "--dry-run", "--format", "github")
    assert dry.exit_code == 1
    messages = {p["file"]: m for _, p, m in _parse(dry.stdout)}
    assert messages["traced.py"].endswith("; apply rewrites it")
    assert not messages["unknown.py"].endswith("rewrites it")
    assert "find_unused_parameters" in (repo / "traced.py").read_text()
    done = invoke(repo, "apply", ".", "--format", "github")
    assert done.exit_code == 1
    assert {p["file"]: m for _, p, m in _parse(done.stdout)}["traced.py"].endswith("; rewritten")
    assert invoke(repo, "apply", ".", "--format", "github").exit_code == 0


def test_errors_and_warnings_are_workflow_commands(repo: Path):
    (repo / "broken.py").write_text("find_unused_parameters = (\n")
    result = invoke(repo, "apply", ".", "--dry-run", "--allow", "nope.py", "--format", "github")
    assert result.exit_code == 2
    commands = _parse(result.stdout)
    assert ("error", {"file": "broken.py"}, "syntax error at line 1") in [
        (lvl, p, m.split(",")[0]) for lvl, p, m in commands
    ]
    assert ("warning", {}, "allowlist selector `nope.py` (--allow) matched no site") in commands


def test_escaping_follows_the_actions_toolkit():
    assert github.escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert github.escape_property("a%b\r\n:c,d") == "a%25b%0D%0A%3Ac%2Cd"
    line = github.command("warning", {"file": "we,ird:name.py", "line": 3}, "x\ny")
    assert line == "::warning file=we%2Cird%3Aname.py,line=3::x%0Ay"


def test_example_workflow_runs_the_check_hook_on_pull_requests():
    workflow = yaml.safe_load((CHECKOUT / "examples/ci/ddp-codemod.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    hooks = yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text())
    (check,) = [h for h in hooks if h["id"] == "ddp-codemod-check"]
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    assert any("pip install" in r for r in runs)
    assert any(r.startswith(check["entry"]) and "--format github" in r for r in runs)
