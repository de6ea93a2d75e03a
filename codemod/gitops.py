"""The git commands ddp-codemod runs, each one small and checked.

The first root commit names a repo across clones (evidence from a moved checkout still
counts). For `batch`, branches are made in a separate work tree so the user's checkout,
index and current branch are never touched. Every failure is a GitError with git's own
last line.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path


class GitError(Exception):
    """A git command failed; the message is one line."""


def git(
    cwd: Path, *args: str, check: bool = True, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=input_text,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if check and out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise GitError(f"git {args[0]}: {lines[-1] if lines else f'exit {out.returncode}'}")
    return out


def root_commit(folder: Path) -> str | None:
    """The first root commit of the work tree holding `folder`: the same in every clone."""
    try:
        out = git(folder, "rev-list", "--max-parents=0", "HEAD", check=False)
    except GitError:
        return None
    lines = out.stdout.split()
    return lines[0] if out.returncode == 0 and lines else None


def toplevel(path: Path) -> Path | None:
    """The work tree holding `path`, or None when it is not in one (or git is missing)."""
    try:
        out = git(path, "rev-parse", "--show-toplevel", check=False)
    except GitError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 else None


def head(top: Path) -> str | None:
    out = git(top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return out.stdout.strip() if out.returncode == 0 else None


def valid_branch(name: str) -> bool:
    return git(Path.cwd(), "check-ref-format", "--branch", name, check=False).returncode == 0


def branch_exists(top: Path, name: str) -> bool:
    out = git(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}", check=False)
    return out.returncode == 0


def dirty(top: Path, files: Sequence[str]) -> list[str]:
    """Which of `files` (relative to `top`) differ from HEAD, in the index or the tree."""
    if not files:
        return []
    out = git(top, "status", "--porcelain", "-z", "--untracked-files=all", "--", *files)
    entries = out.stdout.split("\0")
    found: list[str] = []
    skip = False
    for entry in entries:
        if skip:  # the source of a rename
            skip = False
            continue
        if len(entry) > 3:
            found.append(entry[3:])
            skip = entry[0] in "RC"
    return found


def common_dir(top: Path) -> Path:
    out = git(top, "rev-parse", "--git-common-dir")
    return (top / out.stdout.strip()).resolve()


def add_worktree(top: Path, where: Path) -> None:
    """A detached work tree at HEAD: the branch is only made once there is a change."""
    git(top, "worktree", "add", "--quiet", "--detach", str(where), "HEAD")


def remove_worktree(top: Path, where: Path) -> None:
    git(top, "worktree", "remove", "--force", str(where), check=False)
    git(top, "worktree", "prune", check=False)


def slug(branch: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", branch).strip("-") or "branch"


def identity_problem(top: Path) -> str | None:
    """Why a commit in `top` would fail for want of an author or committer, or None.

    `git var` applies the same rules as `git commit` (config, GIT_AUTHOR_* and
    GIT_COMMITTER_*, user.useConfigOnly), so asking costs nothing and creates nothing.
    """
    for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
        out = git(top, "var", ident, check=False)
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines()
            return lines[-1] if lines else f"git var {ident}: exit {out.returncode}"
    return None


def delete_branch(top: Path, name: str) -> None:
    git(top, "branch", "--quiet", "-D", name, check=False)


def new_branch(tree: Path, name: str) -> None:
    git(tree, "checkout", "--quiet", "-b", name)


def commit(tree: Path, files: Sequence[str], message: str) -> str:
    """Commit exactly `files` in `tree`; the new commit's id."""
    git(tree, "add", "--", *files)
    git(tree, "commit", "--quiet", "--only", "-F", "-", "--", *files, input_text=message)
    return git(tree, "rev-parse", "HEAD").stdout.strip()
