"""Which repo files (configs, sources, any other file) the traced process read, for evidence.

An audit hook on `open` notes every file opened for reading (not those only written) whose
absolute path lies under the repo root; a cached module (.pyc, in __pycache__ or under
PYTHONPYCACHEPREFIX) counts as its source. The hook runs on every audited event of the
process, so it does one string comparison for the rest, a prefix test for an open, and
never raises (an exception there would fail the user's open). Nothing is resolved, read or
hashed there: each noted path is resolved once, at the next snapshot, and only repo files
are kept, so a write costs the files that are new since the last one. A snapshot also
looks at the modules imported since the last one (a module imported before the hook, by a
repo's own sitecustomize, or by a loader that opens nothing), and names the repo modules
whose source cannot be found: such a run executed code that its evidence cannot hash.
Python 3.8 syntax; stdlib only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
from typing import Any

MAX_HASH_BYTES = 8 << 20  # larger files (a checkpoint in the repo) are named, not hashed
_SKIP_PARTS = frozenset({"site-packages", "dist-packages", ".git", ".ddp-codemod"})
_SKIP_SEGMENTS = tuple(os.sep + p + os.sep for p in sorted(_SKIP_PARTS))
_HERE = os.path.dirname(os.path.realpath(__file__))
_FILE, _SOURCE, _SOURCELESS = 0, 1, 2  # a file read; a module's source; bytecode only
_NORMAL = os.sep == "/" and os.altsep is None


class RepoPaths:
    """Which real paths are the repo's own code and files: under the root, but not in the
    interpreter's prefixes (a virtualenv inside the repo), site-packages, .git, the evidence
    folder, or this recorder's folder. The recorder's frames and file reads both ask here."""

    def __init__(self, root: str, out: str | None = None) -> None:
        self.root = os.path.realpath(root)
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
        real = {os.path.realpath(p) for p in prefixes if p}
        # An interpreter prefix that holds the whole repo (a repo under /usr) excludes nothing.
        self._excluded = [p for p in real if not under(self.root, p)] + [_HERE]
        folder = os.path.realpath(out) if out else None
        if folder and folder != self.root and not under(self.root, folder):
            self._excluded.append(folder)  # an evidence folder inside the repo

    def relative(self, real: str) -> str | None:
        """POSIX path of `real` (a resolved path) under the root, or None if not repo's."""
        if not under(real, self.root) or any(under(real, p) for p in self._excluded):
            return None
        parts = os.path.relpath(real, self.root).split(os.sep)
        return None if _SKIP_PARTS.intersection(parts) else "/".join(parts)


class FilesRead:
    """The repo files one process read, resolved lazily, each exactly once."""

    def __init__(self, root: str, out: str | None = None) -> None:
        self.paths = RepoPaths(root, out)
        given = os.path.abspath(root).rstrip(os.sep) + os.sep
        self._prefixes = tuple({given, self.paths.root.rstrip(os.sep) + os.sep})
        self._cache_prefix = getattr(sys, "pycache_prefix", None)
        self._seen: set[str] = set()  # absolute repo candidates already noted
        self._pending: list[tuple[int, str]] = []  # (kind, absolute) not resolved yet
        self._real: set[str] = set()  # resolved paths already placed
        self._hashes: dict[str, str] = {}  # repo-relative -> sha256 when first seen
        self._too_big: set[str] = set()
        self._unrecorded: set[str] = set()
        self._modules: set[str] = set()  # names in sys.modules already looked at
        self._module_count = 0
        self.version = 0  # bumped whenever a snapshot changes
        self._cache: list[dict[str, str]] = []

    # -- on every audited event ------------------------------------------------------------
    def hook(self, event: str, args: Any) -> None:
        if event != "open":
            return
        try:
            path = args[0]
            if path.__class__ is not str:
                if isinstance(path, int):
                    return  # an already open descriptor
                path = os.fsdecode(os.fspath(path))
            absolute = self._candidate(path)
            if absolute is None:
                return  # neither a repo file nor a cached module: most opens, ~1 us
            if _writes_only(args[1], args[2]):
                return  # a file the run writes (a dumped config) is not one it read
            self._note(absolute, _FILE)
        except Exception:
            pass

    def _candidate(self, path: str) -> str | None:
        """abspath(path) when it may be a repo file or a cached module, else None.

        An absolute POSIX path without "//", "/." or a trailing "/" is its own abspath, so
        the many opens outside the repo are dropped by two prefix tests.
        """
        if _NORMAL and path[:1] == "/" and "/." not in path and "//" not in path:
            absolute = path if path[-1:] != "/" else os.path.abspath(path)
        else:
            absolute = os.path.abspath(path)
        if absolute.startswith(self._prefixes) or (
            self._cache_prefix and absolute.startswith(self._cache_prefix)
        ):
            return absolute
        return None

    def _note(self, absolute: str, kind: int) -> None:
        if absolute in self._seen:
            return
        if absolute.endswith(".pyc"):
            if not absolute.startswith(self._prefixes) and not (
                self._cache_prefix and absolute.startswith(self._cache_prefix)
            ):
                return
            self._seen.add(absolute)
            try:  # __pycache__/x.cpython-311.pyc, or the same under PYTHONPYCACHEPREFIX
                source = importlib.util.source_from_cache(absolute)
            except ValueError:  # x.pyc where x.py would be: bytecode without a source
                self._pending.append((_SOURCELESS, absolute))
                return
            self._note(source, _SOURCE)
            return
        if absolute.startswith(self._prefixes) and not any(s in absolute for s in _SKIP_SEGMENTS):
            self._seen.add(absolute)
            self._pending.append((kind, absolute))

    # -- at a write --------------------------------------------------------------------------
    def _imported(self) -> None:
        """Modules imported since the last look that no open told about."""
        modules = sys.modules
        if len(modules) == self._module_count:
            return
        self._module_count = len(modules)
        for name, module in list(modules.items()):
            if name in self._modules:
                continue
            self._modules.add(name)
            try:  # the instance dict, not getattr: a lazily loaded module must stay unloaded
                namespace = object.__getattribute__(module, "__dict__")
                origin = namespace.get("__file__")
                if origin.__class__ is not str:
                    spec = namespace.get("__spec__")
                    if spec is None or not getattr(spec, "has_location", False):
                        continue
                    origin = spec.origin
                    if origin.__class__ is not str:
                        continue
            except Exception:
                continue
            self._note(os.path.abspath(origin), _SOURCE)

    def _resolve(self) -> bool:
        changed = False
        while self._pending:
            kind, absolute = self._pending.pop()
            real = os.path.realpath(absolute)
            if real in self._real:
                continue
            rel = self.paths.relative(real)
            if rel is None:
                continue
            self._real.add(real)
            changed = True
            if kind == _SOURCELESS:
                self._unrecorded.add(rel)
                continue
            try:
                info = os.stat(real)
            except OSError:
                if kind == _SOURCE:  # a module ran from a source that is gone
                    self._unrecorded.add(rel)
                continue  # a file the run tried to open but that was not there
            if not stat.S_ISREG(info.st_mode):
                continue  # a fifo or a device: nothing to hash (and reading may block)
            if info.st_size > MAX_HASH_BYTES:
                self._too_big.add(rel)
                continue
            digest = file_sha256(real)
            if digest is None:
                if kind == _SOURCE:
                    self._unrecorded.add(rel)
                continue
            # The hash when first seen is kept: a file edited while the run goes on must
            # not look like what the run read (the static side then calls it stale).
            self._hashes[rel] = digest
        return changed

    def snapshot(self) -> list[dict[str, str]]:
        """[{"path": repo-relative, "sha256": as first seen}], sorted by path."""
        self._imported()
        if self._resolve() or self.version == 0:
            self.version += 1
            self._cache = [
                {"path": rel, "sha256": self._hashes[rel]} for rel in sorted(self._hashes)
            ]
        return self._cache

    def unhashed(self) -> list[str]:
        """Repo files read that are too large to hash (over MAX_HASH_BYTES)."""
        return sorted(self._too_big)

    def unrecorded(self) -> list[str]:
        """Repo code that ran but whose source could not be read (.pyc only, or deleted)."""
        return sorted(self._unrecorded)


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


def install(root: str, out: str | None = None) -> None:
    """Start noting opened files; once per process (audit hooks cannot be removed)."""
    global READ
    if READ is None and hasattr(sys, "addaudithook"):
        READ = FilesRead(root, out)
        sys.addaudithook(_audit_hook(READ.hook))


def _audit_hook(hook: Any) -> Any:
    """`hook` as the plain function CPython's audit wants. At every audited event (a torch
    training step raises `builtins.id` hundreds of times) it looks up `__cantrace__` on
    each hook: a quiet miss on a function, an AttributeError raised and cleared on a bound
    method, about 0.6 us more per event. Other events return here, before any call."""

    def on_event(event: str, args: Any) -> None:
        if event == "open":
            hook(event, args)

    return on_event


def snapshot() -> list[dict[str, str]]:
    return READ.snapshot() if READ is not None else []


def unhashed() -> list[str]:
    return READ.unhashed() if READ is not None else []


def unrecorded() -> list[str]:
    return READ.unrecorded() if READ is not None else []
