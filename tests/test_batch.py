"""`ddp-codemod batch` over generated git repos: reports, branches and commits only where
allowed, and leaves every checkout, index and current branch as it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from codemod.batch import manifest
from codemod.batch import run as batch
from tests.evidence_docs import write_run
from tests.sources import BUILD, GIT_IDENTITY, SITE, invoke, traced

ALLOW = '[tool.ddp-codemod]\nallow = ["train.py"]\n'


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def make(repo: Path, files: dict[str, str], *, init: bool = True) -> Path:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    if init:
        git(repo, "init", "-q", "-b", "main")
        (repo / ".gitignore").write_text(".ddp-codemod/\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "initial")
    return repo


def record(repo: Path, *, unused: dict[str, int] | None = None) -> None:
    """Evidence as the recorder writes it in a git repo: it names the root commit."""
    files = write_run(repo, [[traced(repo, "train.py")], [traced(repo, "train.py", unused=unused)]])
    root_commit = git(repo, "rev-list", "--max-parents=0", "HEAD")
    for path in files:
        doc = json.loads(path.read_text())
        doc["repo"]["git_root_commit"] = root_commit
        path.write_text(json.dumps(doc))


def fleet(base: Path) -> dict[str, Path]:
    """Five repos (one dirty, one not a repo) and a manifest that also names a missing one."""
    repos = {
        "allowed": make(base / "allowed", {"pyproject.toml": ALLOW, "train.py": SITE}),
        "evidence": make(base / "evidence", {"train.py": BUILD}),
        "dirty": make(base / "dirty", {"pyproject.toml": ALLOW, "train.py": SITE}),
        "nothing": make(base / "nothing", {"train.py": BUILD, "other.py": SITE}),
        "plain": make(base / "plain", {"pyproject.toml": ALLOW, "train.py": SITE}, init=False),
    }
    record(repos["evidence"])
    record(repos["nothing"], unused={"aux.weight": 4})
    with (repos["dirty"] / "train.py").open("a") as f:
        f.write("# local edit, not committed\n")
    (base / "fleet.txt").write_text(
        "# the fleet\n\nallowed\nevidence\n  dirty  \n# nothing is next\nnothing\nplain\nmissing\n"
    )
    return repos


def state(repo: Path) -> tuple:
    """Everything batch must leave alone in a repo's checkout."""
    if not (repo / ".git").exists():
        return ("plain", (repo / "train.py").read_text())
    return (
        git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain"),
        (repo / "train.py").read_text(),
        git(repo, "worktree", "list", "--porcelain").count("worktree "),
    )


def cli(cwd: Path, *args: str):
    return invoke(cwd, "batch", *args)


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").split()


# The acceptance case ----------------------------------------------------------------
def test_fleet_branch_commit_report(tmp_path: Path):
    repos = fleet(tmp_path)
    before = {name: state(repo) for name, repo in repos.items()}
    result = cli(tmp_path, "fleet.txt", "--branch", "ddp/off", "--commit", "--report", "out.md")
    assert result.exit_code == 2, result.output
    assert {name: state(repo) for name, repo in repos.items()} == before

    for name in ("allowed", "evidence"):
        repo = repos[name]
        assert branches(repo) == ["ddp/off", "main"]
        assert "find_unused_parameters" not in git(repo, "show", "ddp/off:train.py")
        assert git(repo, "diff", "--name-only", "main", "ddp/off") == "train.py"
        assert git(repo, "rev-parse", "ddp/off~1") == git(repo, "rev-parse", "main")
        assert git(repo, "log", "-1", "--format=%an", "ddp/off") == "Workflow Test"
    message = git(repos["allowed"], "log", "-1", "--format=%B", "ddp/off")
    assert message.startswith("ddp-codemod: turn off find_unused_parameters at 1 site\n")
    assert "- train.py:2:20 <module> (torch-ddp): allowed:" in message
    assert "allowlisted by `train.py` (pyproject.toml)" in message
    message = git(repos["evidence"], "log", "-1", "--format=%B", "ddp/off")
    assert "- train.py:7:16 build (torch-ddp): safe:" in message
    assert "evidence: trace of `torchrun --nproc_per_node=2 train.py`" in message
    assert "evidence-testhost-run-1-0.json, evidence-testhost-run-1-1.json" in message
    for name in ("dirty", "nothing"):
        assert branches(repos[name]) == ["main"]

    lines = result.stdout.splitlines()
    assert lines[0].startswith("allowed: rewrote 1 site in 1 file on branch ddp/off (")
    assert lines[1].startswith("evidence: rewrote 1 site in 1 file on branch ddp/off (")
    assert lines[2] == (
        "dirty: skipped: uncommitted changes in train.py (commit or stash them, or --allow-dirty)"
    )
    assert lines[3] == "nothing: nothing to change (2 sites: 1 unsafe, 1 unknown)"
    assert lines[4] == "plain: failed: not a git work tree (--branch needs one)"
    assert lines[5] == "missing: failed: no such directory"
    assert result.stderr == (
        "6 repos: 2 changed, 1 clean, 2 failed, 1 skipped; 2 sites rewritten in 2 files.\n"
    )

    report = (tmp_path / "out.md").read_text()
    rows = [r for r in report.splitlines() if r.startswith("| ")]
    assert len(rows) == 1 + 6 + 1  # header, repos, total
    assert rows[4].startswith("| nothing | clean | 2 sites: 1 unsafe, 1 unknown | 0 |")
    assert "train.py:7:16: aux.weight (4)" in rows[4]
    assert "| allowed | changed | 1 site: 1 allowed | 1 | train.py |" in rows[1]
    assert rows[-1].startswith("| **total: 6 repos** |")
    assert "| 2 | 2 | | 0 | |" in rows[-1]  # 2 rewritten, 2 files, 0 errors


def test_json_report_and_dry_run_change_nothing(tmp_path: Path):
    repos = fleet(tmp_path)
    before = {name: state(repo) for name, repo in repos.items()}
    result = cli(tmp_path, "fleet.txt", "--branch", "ddp/off", "--dry-run", "--report", "r.json")
    assert result.exit_code == 2
    assert {name: state(repo) for name, repo in repos.items()} == before
    assert all(branches(repo) == ["main"] for n, repo in repos.items() if n != "plain")
    report = json.loads((tmp_path / "r.json").read_text())
    by_repo = {r["repo"]: r for r in report["repos"]}
    assert [r["repo"] for r in report["repos"]] == [
        "allowed", "evidence", "dirty", "nothing", "plain", "missing"
    ]  # fmt: skip
    assert by_repo["allowed"]["status"] == "would-change"
    assert by_repo["allowed"]["rewritten"] == ["train.py:2:20"]
    assert by_repo["evidence"]["verdicts"] == {"safe": 1}
    assert by_repo["nothing"]["unused"] == [
        {"site": "train.py:7:16", "parameters": {"aux.weight": 4}}
    ]
    assert by_repo["dirty"]["status"] == "skipped"
    assert by_repo["missing"]["status"] == "failed"
    assert report["totals"]["by_status"] == {
        "would-change": 2, "skipped": 1, "clean": 1, "failed": 2
    }  # fmt: skip
    assert report["totals"]["sites"] == {"allowed": 2, "safe": 1, "unsafe": 1, "unknown": 1}
    assert result.stderr.endswith("; 2 sites would be rewritten in 2 files.\n")


# Without --branch: the working tree is the target -------------------------------------------
def test_in_place_rewrites_clean_and_plain_repos_and_skips_dirty(tmp_path: Path):
    repos = fleet(tmp_path)
    result = cli(tmp_path, "allowed", "plain", "dirty", "evidence")
    assert result.exit_code == 1, result.output
    for name in ("allowed", "plain", "evidence"):
        assert "find_unused_parameters" not in (repos[name] / "train.py").read_text(), name
    assert "find_unused_parameters" in (repos["dirty"] / "train.py").read_text()
    assert git(repos["allowed"], "rev-parse", "--abbrev-ref", "HEAD") == "main"

    result = cli(tmp_path, "dirty", "--allow-dirty")
    assert result.exit_code == 1
    text = (repos["dirty"] / "train.py").read_text()
    assert "find_unused_parameters" not in text and "# local edit" in text


def test_an_untracked_file_to_rewrite_counts_as_uncommitted(tmp_path: Path):
    repo = make(tmp_path / "repo", {"pyproject.toml": ALLOW, "other.py": "x = 1\n"})
    (repo / "train.py").write_text(SITE)
    result = cli(tmp_path, "repo")
    assert result.exit_code == 1
    assert "repo: skipped: uncommitted changes in train.py" in result.stdout
    assert (repo / "train.py").read_text() == SITE


def test_branch_without_commit_keeps_a_work_tree(tmp_path: Path):
    repo = make(tmp_path / "repo", {"pyproject.toml": ALLOW, "train.py": SITE})
    before = state(repo)
    result = cli(tmp_path, "repo", "--branch", "ddp/off")
    assert result.exit_code == 1, result.output
    (tree,) = [
        Path(line.split(" ", 1)[1])
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ") and Path(line.split(" ", 1)[1]) != repo
    ]
    assert tree == repo / ".git" / "ddp-codemod" / "ddp-off"
    assert f"uncommitted, in work tree {tree}" in result.stdout
    assert git(tree, "rev-parse", "--abbrev-ref", "HEAD") == "ddp/off"
    assert git(tree, "status", "--porcelain") == "M train.py"
    assert state(repo)[:4] == before[:4]


def test_existing_branch_fails_that_repo_only(tmp_path: Path):
    taken = make(tmp_path / "taken", {"pyproject.toml": ALLOW, "train.py": SITE})
    git(taken, "branch", "ddp/off")
    free = make(tmp_path / "free", {"pyproject.toml": ALLOW, "train.py": SITE})
    result = cli(tmp_path, "taken", "free", "--branch", "ddp/off", "--commit")
    assert result.exit_code == 2
    assert "taken: failed: branch ddp/off already exists" in result.stdout
    assert branches(free) == ["ddp/off", "main"]


def test_a_bad_file_is_reported_and_fails_the_batch(tmp_path: Path):
    repo = make(
        tmp_path / "repo",
        {"pyproject.toml": ALLOW, "train.py": SITE, "bad.py": "find_unused_parameters = (\n"},
    )
    result = cli(tmp_path, "repo", "--branch", "b", "--commit")
    assert result.exit_code == 2
    assert "  bad.py: error: syntax error at line 1" in result.stdout
    assert branches(repo) == ["b", "main"]  # the good file is still migrated


# Pieces ---------------------------------------------------------------------------------------
def test_manifest_lines_comments_relative_paths_and_duplicates(tmp_path: Path):
    (tmp_path / "repos" / "a").mkdir(parents=True)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "m.txt").write_text("# comment\n\n../repos/a\n  ../repos/a/  \n/abs/b\n")
    entries = manifest.repos(["lists/m.txt", "repos/a", "lists"], tmp_path)
    assert [(e.shown, e.path) for e in entries] == [
        ("../repos/a", tmp_path / "repos" / "a"),
        ("/abs/b", Path("/abs/b")),
        ("lists", tmp_path / "lists"),  # a directory is a repo (and will fail as one)
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("repo", "--commit"),
        ("repo", "--report", "out.txt"),
        ("repo", "--branch", "bad..name"),
        (),
    ],
)
def test_usage_errors(tmp_path: Path, args):
    assert cli(tmp_path, *args).exit_code == 2


def test_workers_are_spawn_safe(tmp_path: Path):
    repos = [
        make(tmp_path / f"r{i}", {"pyproject.toml": ALLOW, "train.py": SITE}) for i in range(3)
    ]
    entries = manifest.repos([str(r) for r in [*repos, tmp_path / "missing"]], tmp_path)
    options = batch.Options(dry_run=True)
    pooled = dict(batch.run(entries, options, jobs=2, method="spawn"))
    serial = dict(batch.run(entries, options, jobs=1))
    assert [pooled[i] for i in range(4)] == [serial[i] for i in range(4)]
    assert [o.status for o in serial.values()] == ["would-change"] * 3 + ["failed"]


def test_without_git_plain_folders_still_migrate_in_place(tmp_path: Path, monkeypatch):
    repo = tmp_path / "plain"
    make(repo, {"pyproject.toml": ALLOW, "train.py": SITE}, init=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    result = cli(tmp_path, "plain")
    assert result.exit_code == 1, result.output
    assert "find_unused_parameters" not in (repo / "train.py").read_text()
    assert cli(tmp_path, "plain", "--branch", "x").exit_code == 2  # a usage error, no traceback


# All or nothing per repo --------------------------------------------------------------------
def _no_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh machine: no global or system git config, no GIT_AUTHOR_* / GIT_COMMITTER_*."""
    home = tmp_path / "home"
    home.mkdir()
    for key in GIT_IDENTITY:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # never guess user@host.domain, even where the host name has a domain
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.useConfigOnly")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")


def test_commit_without_a_git_identity_fails_before_creating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    repo = make(tmp_path / "repo", {"pyproject.toml": ALLOW, "train.py": SITE})
    before = state(repo)
    _no_identity(tmp_path, monkeypatch)
    for _ in range(2):  # a rerun meets the same problem, not a branch left behind
        result = cli(tmp_path, "repo", "--branch", "ddp/off", "--commit")
        assert result.exit_code == 2
        assert result.stdout.startswith("repo: failed: no git identity to commit with")
        assert "user.email" in result.stdout
        assert result.stderr == "1 repo: 1 failed; 0 sites rewritten in 0 files.\n"
        assert branches(repo) == ["main"]
        assert state(repo) == before
    monkeypatch.setenv("GIT_AUTHOR_NAME", "A")  # half an identity is not enough
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "a@example.invalid")
    assert "no git identity" in cli(tmp_path, "repo", "--branch", "b", "--commit").stdout
    assert cli(tmp_path, "repo", "--branch", "b").exit_code == 1  # no commit: no identity needed


def test_a_failed_commit_removes_the_branch_and_counts_nothing(tmp_path: Path):
    repo = make(tmp_path / "repo", {"pyproject.toml": ALLOW, "train.py": SITE})
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho refused by the hook >&2\nexit 1\n")
    hook.chmod(0o755)
    before = state(repo)
    for _ in range(2):
        result = cli(tmp_path, "repo", "--branch", "ddp/off", "--commit", "--report", "r.json")
        assert result.exit_code == 2
        assert result.stdout.startswith("repo: failed: git commit: refused by the hook")
        assert result.stderr == "1 repo: 1 failed; 0 sites rewritten in 0 files.\n"
        assert branches(repo) == ["main"]
        assert state(repo) == before
        (entry,) = json.loads((tmp_path / "r.json").read_text())["repos"]
        assert (entry["rewritten"], entry["files"], entry["branch"], entry["commit"]) == (
            [], [], None, None
        )  # fmt: skip


# Shards and merged reports ------------------------------------------------------------------
def _five(base: Path) -> list[str]:
    names = ["r3", "r0", "r4", "r1", "r2"]  # manifest order is not path order
    for name in names:
        make(base / name, {"pyproject.toml": ALLOW, "train.py": SITE})
    (base / "fleet.txt").write_text("\n".join(names) + "\n")
    return names


def _repos_of(stdout: str) -> list[str]:
    return [line.split(":", 1)[0] for line in stdout.splitlines() if not line.startswith(" ")]


def test_shards_split_the_manifest_by_sorted_path(tmp_path: Path):
    _five(tmp_path)
    first = cli(tmp_path, "fleet.txt", "--dry-run", "--shard", "1/2")
    second = cli(tmp_path, "fleet.txt", "--dry-run", "--shard", "2/2")
    assert first.exit_code == second.exit_code == 1
    assert _repos_of(first.stdout) == ["r0", "r4", "r2"]  # sorted r0 r1 r2 r3 r4: 0, 2, 4
    assert _repos_of(second.stdout) == ["r3", "r1"]  # in manifest order
    assert first.stderr.startswith("3 repos: 3 would-change;")
    assert _repos_of(cli(tmp_path, "fleet.txt", "--dry-run", "--shard", "1/1").stdout) == [
        "r3", "r0", "r4", "r1", "r2"
    ]  # fmt: skip
    empty = cli(tmp_path, "fleet.txt", "--dry-run", "--shard", "7/9")  # more shards than repos
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert empty.stderr == "0 repos; 0 sites would be rewritten in 0 files.\n"


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1/0", "2", "a/b", "-1/2"])
def test_bad_shard_is_a_usage_error(tmp_path: Path, shard: str):
    _five(tmp_path)
    result = cli(tmp_path, "fleet.txt", "--dry-run", "--shard", shard)
    assert result.exit_code == 2
    assert "--shard" in result.stderr
    assert result.stdout == ""


def test_merged_shard_reports_match_one_report(tmp_path: Path):
    repos = fleet(tmp_path)
    whole = cli(tmp_path, "fleet.txt", "--branch", "b", "--dry-run", "--report", "all.json")
    for k in (1, 2, 3):
        args = ("--branch", "b", "--dry-run", "--shard", f"{k}/3", "--report", f"s{k}.json")
        cli(tmp_path, "fleet.txt", *args)
    before = {name: state(repo) for name, repo in repos.items()}
    merged = cli(tmp_path, "--merge-reports", "s3.json", "s1.json", "s2.json", "--report", "m.json")
    assert merged.exit_code == 0, merged.output
    assert {name: state(repo) for name, repo in repos.items()} == before
    one = json.loads((tmp_path / "all.json").read_text())
    joined = json.loads((tmp_path / "m.json").read_text())
    assert joined["totals"] == one["totals"]
    assert sorted(r["repo"] for r in joined["repos"]) == sorted(r["repo"] for r in one["repos"])
    assert merged.stderr == whole.stderr

    cli(tmp_path, "--merge-reports", "s1.json", "s2.json", "s3.json", "--report", "m.md")
    rows = [r for r in (tmp_path / "m.md").read_text().splitlines() if r.startswith("| ")]
    assert len(rows) == 1 + 6 + 1
    assert rows[-1].startswith("| **total: 6 repos** |")


def test_merge_warns_about_a_missing_shard(tmp_path: Path):
    _five(tmp_path)
    cli(tmp_path, "fleet.txt", "--dry-run", "--shard", "1/2", "--report", "a.json")
    merged = cli(tmp_path, "--merge-reports", "a.json", "--report", "m.json")
    assert merged.exit_code == 0
    assert "warning: shard 2/2 missing" in merged.stderr
    dup = cli(tmp_path, "--merge-reports", "a.json", "a.json", "--report", "m.json")
    assert dup.exit_code == 2
    assert "r0 is in more than one report" in dup.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--merge-reports", "a.json"),  # no --report
        ("--merge-reports", "a.json", "--report", "m.md", "--branch", "b"),
        ("--merge-reports", "a.json", "--report", "m.md", "--shard", "1/2"),
        ("--merge-reports", "bad.json", "--report", "m.md"),
        ("--merge-reports", "missing.json", "--report", "m.md"),
    ],
)
def test_merge_usage_errors(tmp_path: Path, args):
    _five(tmp_path)
    cli(tmp_path, "fleet.txt", "--dry-run", "--report", "a.json")
    (tmp_path / "bad.json").write_text('{"repos": [{"repo": 1}]}')
    result = cli(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "m.md").exists()
