"""Helpers for the hostile-input tests: the CLI in a child process with a timeout (a hang
fails the test instead of the suite), and an unprivileged user for permission checks."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
DDP_IMPORT = "from torch.nn.parallel import DistributedDataParallel as DDP\n"
SITE = DDP_IMPORT + "model = DDP(model, find_unused_parameters=True)\n"
USER = "ddpt"


def cli(
    *args: str, cwd: Path, user: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m codemod ARGS` from `cwd`; a hang past `timeout` fails the test."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("DDP_CODEMOD_DEBUG", None)
    kwargs = {}
    if user is not None:
        kwargs["user"] = user
        env["HOME"] = pwd.getpwnam(user).pw_dir
    try:
        return subprocess.run(
            [sys.executable, "-m", "codemod", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ddp-codemod {' '.join(args)} hung for {timeout} s")


def unprivileged() -> str | None:
    """A user without root's powers to run the CLI as: ourselves when not root, else
    USER (created when missing). Skips when there is none, fails instead in CI."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd"):
            subprocess.run(["useradd", "-m", USER], capture_output=True, timeout=30)
    try:
        pwd.getpwnam(USER)
        return USER
    except KeyError:
        pass
    if os.environ.get("DDP_CODEMOD_CI"):
        pytest.fail(f"cannot create the unprivileged user {USER}")
    pytest.skip("no unprivileged user to drop privileges to")
    return None


def shared_dir(user: str | None) -> Path:
    """A fresh folder the unprivileged user owns (pytest's tmp_path is root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="ddp-hostile-"))
    os.chmod(folder, 0o755)
    if user is not None and os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


def chown_tree(root: Path, user: str) -> None:
    """Give `root` and everything under it (not through symlinks) to `user`."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    os.chown(root, entry.pw_uid, entry.pw_gid)


def write(root: Path, rel: str, text: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
