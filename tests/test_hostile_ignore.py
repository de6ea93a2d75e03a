"""H16 and H10: .gitignore means what git says it means (checked against git itself), and
a bad pattern or selector in config or on the command line is one error line, not a crash."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from codemod.discover import walk
from tests.hostile import SITE
from tests.sources import invoke, invoke_json, write

FILES = [
    "a.py",
    "b.py",
    "keep.py",
    "top.py",
    "x1.py",
    "#hash.py",
    "!bang.py",
    "c.py",
    "sub/b.py",
    "sub/top.py",
    "sub/keep.py",
    "sub/inner/d.py",
    "sub/gen/e.py",
    "gen/f.py",
    "a/b.py",
    "a/x/y/b.py",
    "docs/keep.py",
    "docs/other.py",
    "deep/er/still/g.py",
]

# (top-level .gitignore lines, {folder: its own .gitignore lines})
TABLE: list[tuple[list[str], dict[str, list[str]]]] = [
    (["*", "!*.py", "!*/"], {}),
    (["*", "!*/", "!*.py"], {}),
    (["*.py", "!keep.py"], {}),
    (["/top.py"], {}),
    (["top.py"], {}),
    (["sub/"], {}),
    (["sub"], {}),
    (["sub/*", "!sub/inner/"], {}),
    (["**/gen/*.py"], {}),
    (["gen/"], {}),
    (["a/**/b.py"], {}),
    (["docs/**", "!docs/keep.py"], {}),
    (["docs/", "!docs/keep.py"], {}),
    (["\\#hash.py", "\\!bang.py"], {}),
    (["x?.py", "[ab].py"], {}),
    (["[!a].py"], {}),
    (["c.py   "], {}),
    (["b.py"], {"sub": ["!b.py"]}),
    (["*"], {"sub": ["!*.py"]}),
    (["deep/**/g.py"], {}),
    (["**/still"], {}),
    (["*/inner"], {}),
    (["sub/**/"], {}),
    (["[z-a].py", "a.py"], {}),
]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    ).stdout


@pytest.mark.parametrize("top, nested", TABLE, ids=[" ".join(t[0]) + str(t[1]) for t in TABLE])
def test_walk_ignores_what_git_ignores(tmp_path: Path, top, nested):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    for rel in FILES:
        write(repo, rel, "x = 1\n")
    write(repo, ".gitignore", "\n".join(top) + "\n")
    for folder, lines in nested.items():
        write(repo, f"{folder}/.gitignore", "\n".join(lines) + "\n")
    git_sees = set(_git(repo, "ls-files", "-o", "--exclude-standard").splitlines())
    git_sees = {p.strip('"') for p in git_sees if p.strip('"').endswith(".py")}
    ours = {
        p.relative_to(repo).as_posix() for p in walk.walk(repo, walk.Ignore(), suffixes=(".py",))
    }
    assert ours == git_sees


# H10 --------------------------------------------------------------------------------------
def test_tool_that_is_not_a_table_is_one_error(tmp_path: Path):
    write(tmp_path, "pyproject.toml", "tool = 3\n[x]\ny = 'ddp-codemod'\n")
    write(tmp_path, ".git/HEAD", "")
    write(tmp_path, "train.py", SITE)
    code, report, stderr = invoke_json(tmp_path, "scan", ".")
    assert "internal error" not in stderr
    assert code == 2
    assert report["errors"] == [{"path": "pyproject.toml", "message": "`tool` must be a table"}]
    assert len(report["sites"]) == 1


def test_invalid_exclude_pattern_is_one_error_and_the_others_apply(tmp_path: Path):
    write(tmp_path, "pyproject.toml", '[tool.ddp-codemod]\nexclude = ["[z-a]", "skip/"]\n')
    write(tmp_path, "train.py", SITE)
    write(tmp_path, "skip/x.py", SITE)
    code, report, stderr = invoke_json(tmp_path, "scan", ".")
    assert "internal error" not in stderr
    assert code == 2
    assert report["errors"] == [
        {
            "path": "pyproject.toml",
            "message": "[tool.ddp-codemod] exclude: invalid pattern '[z-a]' "
            "(bad character range z-a); ignored",
        }
    ]
    assert [s["path"] for s in report["sites"]] == ["train.py"]


def test_invalid_allow_selector_in_config_is_one_error(tmp_path: Path):
    write(tmp_path, "pyproject.toml", '[tool.ddp-codemod]\nallow = ["[z-a].py", "train.py"]\n')
    write(tmp_path, "train.py", SITE)
    code, report, stderr = invoke_json(tmp_path, "apply", ".", "--dry-run")
    assert "internal error" not in stderr
    assert code == 2
    assert report["errors"] == [
        {
            "path": "pyproject.toml",
            "message": "[tool.ddp-codemod] allow: invalid selector `[z-a].py` "
            "(bad character range z-a); ignored",
        }
    ]
    assert report["sites"][0]["verdict"] == "allowed"


def test_invalid_allow_option_is_one_error_and_the_run_goes_on(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    result = invoke(tmp_path, "apply", ".", "--dry-run", "--allow", "[z-a].py", "--allow", "*.py")
    assert "internal error" not in result.stderr
    assert result.exit_code == 2
    assert (
        "--allow: error: invalid selector `[z-a].py` (bad character range z-a); ignored"
        in result.stderr
    )
    assert "Would rewrite 1 site in 1 file." in result.stderr


def test_invalid_allow_option_on_the_fast_path(tmp_path: Path):
    write(tmp_path, "other.py", "x = 1\n")
    result = invoke(tmp_path, "apply", "other.py", "--allow", "[z-a].py")
    assert "internal error" not in result.stderr
    assert result.exit_code == 2
    assert "--allow: error: invalid selector `[z-a].py`" in result.stderr


def test_invalid_allow_json_report(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    result = invoke(tmp_path, "scan", ".", "--format", "json")
    assert json.loads(result.stdout)["errors"] == []
