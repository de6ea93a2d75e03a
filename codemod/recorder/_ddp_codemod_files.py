"""Which repo files (configs, sources) the traced process read, for config evidence.

An audit hook on `open` notes paths ending in .py/.yaml/.yml (and .pyc, mapped back to the
source it caches) as they are opened; nothing is read or hashed then. When the recorder
writes its evidence it asks for a snapshot: the files under the repo root, each with the
sha256 of its bytes, so the static side can tell a config read by this run, and whether it
changed since. The hook runs on every audited event of the process, so it does one string
comparison for the rest and never raises (an exception there would fail the user's open).
Python 3.8 syntax; stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any

_SUFFIXES = (".py", ".yaml", ".yml", ".pyc")
_SKIP_PARTS = frozenset({"site-packages", "dist-packages", ".git", ".ddp-codemod"})
_HERE = os.path.dirname(os.path.realpath(__file__))


class RepoPaths:
    """Which real paths are the repo's own code and configs: under the root, but not in the
    interpreter's prefixes (a virtualenv inside the repo), site-packages, .git, the evidence
    folder, or this recorder's folder. The recorder's frames and file reads both ask here."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        real = {os.path.realpath(p) for p in prefixes if p}
        # An interpreter prefix that holds the whole repo (a repo under /usr) excludes nothing.
        self._excluded = [p for p in real if not under(self.root, p)] + [_HERE]

    def relative(self, real: str) -> str | None:
        """POSIX path of `real` (a resolved path) under the root, or None if not repo's."""
        if not under(real, self.root) or any(under(real, p) for p in self._excluded):
            return None
        parts = os.path.relpath(real, self.root).split(os.sep)
        return None if _SKIP_PARTS.intersection(parts) else "/".join(parts)


class FilesRead:
    def __init__(self, root: str) -> None:
        self.paths = RepoPaths(root)
        self.opened: dict[str, str] = {}  # as passed to open -> absolute at that moment
        self._hashes: dict[str, str] = {}

    def hook(self, event: str, args: Any) -> None:
        if event != "open":
            return
        try:
            path = args[0]
            if path.__class__ is str and path.endswith(_SUFFIXES) and path not in self.opened:
                if _writes_only(args[1], args[2]):
                    return  # a file the run writes (a dumped config) is not one it read
                self.opened[path] = os.path.abspath(path)
        except Exception:
            pass

    def _repo_path(self, absolute: str) -> tuple[str, str] | None:
        """(real path, repo-relative POSIX path) of repo source, else None."""
        if absolute.endswith(".pyc"):
            folder, name = os.path.split(absolute)
            if os.path.basename(folder) != "__pycache__":
                return None
            absolute = os.path.join(os.path.dirname(folder), name.split(".", 1)[0] + ".py")
        real = os.path.realpath(absolute)
        rel = self.paths.relative(real)
        return None if rel is None else (real, rel)

    def snapshot(self) -> list[dict[str, str]]:
        """[{"path": repo-relative, "sha256": as first seen}], sorted by path."""
        found: dict[str, str] = {}
        for absolute in list(self.opened.values()):
            located = self._repo_path(absolute)
            if located is None or located[1] in found:
                continue
            digest = self._sha256(located[0])
            if digest is not None:
                found[located[1]] = digest
        return [{"path": rel, "sha256": found[rel]} for rel in sorted(found)]

    def _sha256(self, real: str) -> str | None:
        """The file's hash as first seen, kept: a file edited while the run goes on must
        not look like what the run read (the static side then calls its evidence stale)."""
        if real not in self._hashes:
            digest = file_sha256(real)
            if digest is None:
                return None
            self._hashes[real] = digest
        return self._hashes[real]


def file_sha256(path: str) -> str | None:
    """sha256 of a file's bytes, None when it cannot be read: how evidence names contents."""
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _writes_only(mode: Any, flags: Any) -> bool:
    """The audit event's mode (open()) or flags (os.open) say write, not read."""
    if isinstance(mode, str):
        return "+" not in mode and any(c in mode for c in "wax")
    if isinstance(flags, int):
        return flags & (os.O_WRONLY | os.O_RDWR) == os.O_WRONLY
    return False


def under(path: str, folder: str) -> bool:
    """`path` is `folder` or inside it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


READ: FilesRead | None = None


def install(root: str) -> None:
    """Start noting opened files; once per process (audit hooks cannot be removed)."""
    global READ
    if READ is None and hasattr(sys, "addaudithook"):
        READ = FilesRead(root)
        sys.addaudithook(READ.hook)


def snapshot() -> list[dict[str, str]]:
    return READ.snapshot() if READ is not None else []
