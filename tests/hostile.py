"""Helpers for the hostile-input tests: the CLI in a child process with a timeout (a hang
fails the test instead of the suite), and an unprivileged user for permission checks."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
DDP_IMPORT = "from torch.nn.parallel import DistributedDataParallel as DDP\n"
SITE = DDP_IMPORT + "model = DDP(model, find_unused_parameters=True)\n"
USER = "ddpt"


def cli(
    *args: str, cwd: Path, user: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m codemod ARGS` from `cwd` (as `user`, when given); a hang past `timeout`
    fails the test."""
    if user is not None and os.geteuid() == 0:
        return _forked_as(user, args, cwd, timeout)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("DDP_CODEMOD_DEBUG", None)
    try:
        return subprocess.run(
            [sys.executable, "-m", "codemod", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"ddp-codemod {' '.join(args)} hung for {timeout} s")


def _forked_as(
    user: str, args: tuple[str, ...], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """The CLI in a forked child that dropped root for `user` before running it.

    A fork, not `subprocess.run(user=...)`: the interpreter may live where the user
    cannot execute it (a pyenv under /root), and a fork needs no exec. SIGALRM ends a
    child that hangs.
    """
    entry = pwd.getpwnam(user)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 99
            try:
                signal.alarm(int(timeout))
                _preload()  # the user may not be able to read the standard library
                os.setgroups([])
                os.setgid(entry.pw_gid)
                os.setuid(entry.pw_uid)
                os.environ["HOME"] = entry.pw_dir
                os.environ.pop("DDP_CODEMOD_DEBUG", None)
                os.chdir(cwd)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
                sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
                from codemod.cli.main import main

                main(list(args), prog_name="ddp-codemod")
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
            pytest.fail(f"ddp-codemod {' '.join(args)} hung for {timeout} s (as {user})")
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            args, code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        )


PRELOAD = (
    "codemod.api",
    "codemod.process",
    "codemod.parallel",
    "codemod.gitops",
    "codemod.edit.rewrite",
    "codemod.edit.writer",
    "codemod.edit.diff",
    "codemod.evidence.load",
    "codemod.evidence.pairing",
    "codemod.configs.facts",
    "codemod.sites.subclasses",
    "codemod.sites.yaml_files",
    "codemod.report.sarif",
    "codemod.batch.run",
    "concurrent.futures",
    "concurrent.futures.process",
    "multiprocessing",
    "multiprocessing.context",
    "multiprocessing.popen_fork",
    "multiprocessing.queues",
    "multiprocessing.synchronize",
    "pkgutil",
    "libcst",
    "libcst.metadata",
    "libcst.helpers",
    "tomllib",
    "yaml",
    "difflib",
)


def _preload() -> None:
    """Import what a CLI run may import lazily, while still root."""
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    import libcst

    libcst.parse_module("x = f(a=1)\n")


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
