"""H7, H11, H12, H13: what `apply` refuses to write, and what a write keeps or leaves."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from codemod.edit import writer
from tests.hostile import PROJECT, SITE, chown_tree, cli, shared_dir, unprivileged
from tests.sources import GIT_IDENTITY, invoke, write

FIXED = SITE.replace(", find_unused_parameters=True", "")


def _errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": error: " in line]


# H7 ---------------------------------------------------------------------------------------
def test_symlink_to_a_file_outside_the_tree_is_not_written(tmp_path: Path):
    victim = write(tmp_path, "outside/victim.py", SITE)
    repo = tmp_path / "repo"
    write(repo, "train.py", SITE)
    (repo / "link.py").symlink_to("../outside/victim.py")
    result = invoke(repo, "apply", ".", "--allow", "**")
    assert result.exit_code == 2
    assert _errors(result) == ["link.py: error: symlink to a file outside the tree; not written"]
    assert victim.read_text() == SITE
    assert (repo / "train.py").read_text() == FIXED
    assert "Rewrote 1 site in 1 file; left alone 1 site: 1 allowed." in result.stderr


def test_dry_run_shows_no_diff_for_a_file_outside_the_tree(tmp_path: Path):
    write(tmp_path, "outside/victim.py", SITE)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "link.py").symlink_to("../outside/victim.py")
    result = invoke(repo, "apply", ".", "--dry-run", "--allow", "**")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_file_named_through_a_symlinked_folder_outside_the_tree(tmp_path: Path):
    victim = write(tmp_path, "elsewhere/x.py", SITE)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "vendor").symlink_to("../elsewhere")
    result = invoke(repo, "apply", "vendor/x.py", "--allow", "**")
    assert result.exit_code == 2
    assert _errors(result) == [
        "vendor/x.py: error: symlink to a file outside the tree; not written"
    ]
    assert victim.read_text() == SITE


def test_symlink_inside_the_tree_is_written_through(tmp_path: Path):
    write(tmp_path, "real/train.py", SITE)
    (tmp_path / "link.py").symlink_to("real/train.py")
    result = invoke(tmp_path, "apply", "link.py", "--allow", "**")
    assert result.exit_code == 1, result.stderr
    assert (tmp_path / "link.py").is_symlink()
    assert (tmp_path / "real/train.py").read_text() == FIXED


def test_batch_counts_only_what_it_rewrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    write(tmp_path, "outside/victim.py", SITE)
    repo = tmp_path / "repo"
    write(repo, "train.py", SITE)
    write(repo, "pyproject.toml", '[tool.ddp-codemod]\nallow = ["*.py"]\n')
    (repo / "link.py").symlink_to("../outside/victim.py")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, timeout=30)
    subprocess.run(["git", "add", "."], cwd=repo, check=True, timeout=30)
    subprocess.run(["git", "commit", "-qm", "i"], cwd=repo, check=True, timeout=30)
    result = invoke(tmp_path, "batch", "repo", "--jobs", "1")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("1 site rewritten in 1 file."), result.stderr
    assert (tmp_path / "outside/victim.py").read_text() == SITE


def test_a_failed_batch_repo_claims_no_rewrites(tmp_path: Path, monkeypatch):
    from codemod.batch import run as batch

    outcome = batch.Outcome("r", "r", rewritten=["a.py:1:1", "b.py:1:1"], files=["a.py"])
    batch._fail(outcome, "git status: fatal")
    assert (outcome.status, outcome.rewritten, outcome.files) == (batch.FAILED, [], [])


# H11 --------------------------------------------------------------------------------------
def test_read_only_file_is_refused(tmp_path: Path):
    path = write(tmp_path, "train.py", SITE)
    path.chmod(0o444)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 2
    assert _errors(result) == ["train.py: error: read-only; not written"]
    assert path.read_text() == SITE


def test_read_only_file_is_refused_for_its_unprivileged_owner():
    user = unprivileged()
    root = shared_dir(user)
    try:
        path = write(root, "train.py", SITE)
        chown_tree(root, user)
        path.chmod(0o444)
        result = cli("apply", ".", "--allow", "**", cwd=root, user=user, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "train.py: error: read-only; not written" in result.stderr
        assert path.read_text() == SITE
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_hard_linked_file_is_not_written(tmp_path: Path):
    path = write(tmp_path, "train.py", SITE)
    os.link(path, tmp_path / "copy.txt")
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 2
    assert _errors(result) == [
        "train.py: error: has other hard links (2 names in all); not written"
    ]
    assert (tmp_path / "copy.txt").read_text() == SITE


def test_rewrite_keeps_owner_and_group(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("only root can give a file to another user")
    user = unprivileged()
    entry = pwd.getpwnam(user)
    path = write(tmp_path, "train.py", SITE)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    path.chmod(0o640)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 1, result.stderr
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (entry.pw_uid, entry.pw_gid, 0o640)
    assert path.read_text() == FIXED


# H12 --------------------------------------------------------------------------------------
def test_an_edit_saved_while_the_temp_file_is_written_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write(tmp_path, "train.py", SITE)
    edited = SITE + "# saved by the editor\n"

    def editor_saves(target: Path) -> None:
        path.write_text(edited)

    monkeypatch.setattr(writer, "_before_replace", editor_saves)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 2
    assert _errors(result) == [
        "train.py: error: the file changed while ddp-codemod was running; not written"
    ]
    assert path.read_text() == edited
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_same_size_edit_in_the_same_tick_is_caught_by_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write(tmp_path, "train.py", SITE)
    before = path.stat()
    edited = SITE.replace("model, ", "modl,  ")

    def same_size_same_mtime(target: Path) -> None:
        path.write_text(edited)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    monkeypatch.setattr(writer, "_before_replace", same_size_same_mtime)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 2
    assert path.read_text() == edited


# H13 --------------------------------------------------------------------------------------
def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".ddp-codemod"))


def test_ctrl_c_mid_write_leaves_no_temp_file_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write(tmp_path, "train.py", SITE)

    def interrupted(target: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "_before_replace", interrupted)
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 130
    assert _temps(tmp_path) == []
    assert path.read_text() == SITE


def test_sigterm_mid_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, "train.py", SITE)

    def terminated(target: Path) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    old = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(writer, "_before_replace", terminated)
    try:
        result = invoke(tmp_path, "apply", ".", "--allow", "**")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert result.exit_code == 128 + signal.SIGTERM
    assert _temps(tmp_path) == []
    assert path.read_text() == SITE


def test_any_exception_mid_write_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write(tmp_path, "train.py", SITE)

    def bug(target: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(writer, "_before_replace", bug)
    with pytest.raises(RuntimeError):
        writer.replace_bytes(path, SITE.encode(), FIXED.encode())
    assert _temps(tmp_path) == []


def test_stale_temp_files_of_our_own_pattern_are_removed(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    old = write(tmp_path, ".train.py.k2j4_x9q.ddp-codemod", "half")
    fresh = write(tmp_path, ".train.py.a8f3kq2z.ddp-codemod", "in use")
    other = write(tmp_path, ".train.py.notours", "keep")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    result = invoke(tmp_path, "apply", ".", "--allow", "**")
    assert result.exit_code == 1, result.stderr
    assert not old.exists()
    assert fresh.exists() and other.exists()


def test_pool_workers_exit_when_the_parent_is_killed(tmp_path: Path):
    script = (
        "import os, sys, time\n"
        "from codemod import parallel\n"
        "def block(item):\n"
        "    os.write(1, b'%d\\n' % os.getpid())  # one write: two workers may print at once\n"
        "    time.sleep(60)\n"
        "if __name__ == '__main__':\n"
        "    parallel.map_ordered(block, [1, 2], jobs=2)\n"
    )
    write(tmp_path, "parent.py", script)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    parent = subprocess.Popen(
        [sys.executable, "parent.py"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        workers = [int(parent.stdout.readline()) for _ in range(2)]
    finally:
        parent.kill()
        parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.05)
    for pid in alive:  # do not leave them behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert alive == [], "pool workers outlived the killed parent"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def test_report_json_lists_the_refused_file(tmp_path: Path):
    path = write(tmp_path, "train.py", SITE)
    path.chmod(0o444)
    result = invoke(tmp_path, "apply", ".", "--allow", "**", "--format", "json")
    report = json.loads(result.stdout)
    assert report["errors"] == [{"path": "train.py", "message": "read-only; not written"}]
    assert [s["changed"] for s in report["sites"]] == [False]


def test_foreign_owned_writable_file_is_not_given_to_the_writer():
    """An unprivileged user may write the file but could not keep its owner: refused."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user first")
    user = unprivileged()
    root = shared_dir(user)
    try:
        path = write(root, "train.py", SITE)
        path.chmod(0o666)  # root's file, writable by everyone, in the user's folder
        result = cli("apply", ".", "--allow", "**", cwd=root, user=user, timeout=30)
        assert result.returncode == 2, result.stderr
        assert "train.py: error: owned by another user (uid 0); not written" in result.stderr
        assert path.read_text() == SITE and path.stat().st_uid == 0
    finally:
        shutil.rmtree(root, ignore_errors=True)
