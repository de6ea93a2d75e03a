"""H6 and H9: the walk visits each real folder once, never follows folder symlinks, and
says which folders it could not read instead of aborting or skipping them silently."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.hostile import SITE, chown_tree, cli, shared_dir, unprivileged
from tests.sources import write


def _sites(result) -> list[str]:
    return [s["path"] for s in json.loads(result.stdout)["sites"]]


# H6 ---------------------------------------------------------------------------------------
def test_two_folder_symlinks_to_dot_do_not_hang(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    (tmp_path / "a").symlink_to(".")
    (tmp_path / "b").symlink_to(".")
    result = cli("scan", ".", "--format", "json", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert _sites(result) == ["train.py"]


def test_symlink_to_a_parent_reports_each_site_once(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    write(tmp_path, "sub/b.py", SITE)
    (tmp_path / "sub" / "up").symlink_to("..")
    result = cli("scan", ".", "--format", "json", cwd=tmp_path, timeout=20)
    assert _sites(result) == ["sub/b.py", "train.py"]
    applied = cli("apply", ".", "--allow", "**", cwd=tmp_path, timeout=20)
    assert applied.returncode == 1, applied.stderr
    assert "error" not in applied.stderr
    assert "Rewrote 2 sites in 2 files." in applied.stderr


def test_a_file_reached_twice_through_symlinks_is_reported_once(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    (tmp_path / "link.py").symlink_to("train.py")
    result = cli("scan", ".", "--format", "json", cwd=tmp_path, timeout=20)
    assert _sites(result) == ["link.py"]  # the first name in walk order


def test_two_path_arguments_naming_one_file_report_it_once(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    (tmp_path / "link.py").symlink_to("train.py")
    result = cli("scan", "train.py", "link.py", "--format", "json", cwd=tmp_path, timeout=20)
    assert _sites(result) == ["train.py"]


def test_a_folder_named_twice_through_a_symlink_is_reported_once(tmp_path: Path):
    """Real paths of walked files are joined, not resolved: the link to the folder and the
    folder itself must still meet (and a file argument inside it too)."""
    write(tmp_path, "repo/train.py", SITE)
    write(tmp_path, "repo/sub/b.py", SITE)
    (tmp_path / "alias").symlink_to("repo")
    args = ("repo", "alias", "alias/sub", "repo/sub/b.py")
    result = cli("scan", *args, "--format", "json", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert _sites(result) == ["sub/b.py", "train.py"]


# H9 ---------------------------------------------------------------------------------------
@pytest.fixture
def user_tree():
    user = unprivileged()
    root = shared_dir(user)
    yield user, root
    for folder, dirs, _ in os.walk(root):
        for name in dirs:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)
    shutil.rmtree(root, ignore_errors=True)


def test_unreadable_folder_is_one_error_and_the_rest_goes_on(user_tree):
    user, root = user_tree
    write(root, "train.py", SITE)
    write(root, "locked/x.py", SITE)
    chown_tree(root, user)
    os.chmod(root / "locked", 0)
    result = cli("scan", ".", "--format", "json", cwd=root, user=user, timeout=20)
    assert "internal error" not in result.stderr
    assert result.returncode == 2, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == [
        {"path": "locked", "message": "cannot read folder: Permission denied"}
    ]
    assert _sites(result) == ["train.py"]


def test_folder_that_can_be_traversed_but_not_listed_is_an_error(user_tree):
    user, root = user_tree
    write(root, "train.py", SITE)
    write(root, "hidden/x.py", SITE)
    chown_tree(root, user)
    os.chmod(root / "hidden", 0o311)
    result = cli("scan", ".", "--format", "json", cwd=root, user=user, timeout=20)
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["errors"] == [
        {"path": "hidden", "message": "cannot read folder: Permission denied"}
    ]
    assert _sites(result) == ["train.py"]


def test_scan_of_a_root_like_tree_does_not_crash(user_tree):
    """What `scan /` meets: unreadable folders, devices, FIFOs, sockets, loops."""
    user, root = user_tree
    write(root, "home/me/train.py", SITE)
    write(root, "root/secret.py", SITE)
    write(root, "etc/ssl/private/key.py", SITE)
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/root").symlink_to("../..")
    (root / "dev").mkdir()
    (root / "dev/zero.py").symlink_to("/dev/zero")
    os.mkfifo(root / "dev/fifo.py")
    (root / "lib").symlink_to(".")
    (root / "lost.py").symlink_to("nowhere.py")
    chown_tree(root, user)
    os.chmod(root / "root", 0o700)
    os.chown(root / "root", 0, 0) if os.geteuid() == 0 else os.chmod(root / "root", 0)
    os.chmod(root / "etc/ssl/private", 0o100)
    result = cli("scan", ".", "--format", "json", cwd=root, user=user, timeout=30)
    assert "internal error" not in result.stderr
    assert result.returncode == 2
    errors = {e["path"]: e["message"] for e in json.loads(result.stdout)["errors"]}
    assert errors == {
        "dev/fifo.py": "cannot read: not a regular file",
        "dev/zero.py": "cannot read: not a regular file",
        "etc/ssl/private": "cannot read folder: Permission denied",
        "lost.py": "cannot read: No such file or directory",
        "root": "cannot read folder: Permission denied",
    }
    assert _sites(result) == ["home/me/train.py"]
