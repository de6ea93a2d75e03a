"""Which files a run looks at: walk directories the way ruff does.

Skips VCS and tool folders, virtualenvs and build output, honours .gitignore inside git
work trees and the project's `exclude` patterns (also for files named explicitly, as
pre-commit passes them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from codemod.discover import gitignore
from codemod.discover.read import ReadError, read_regular

# ruff's default excludes, plus our own evidence folder.
SKIP_DIRS = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".git",
        ".git-rewrite",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pants.d",
        ".pyenv",
        ".pytest_cache",
        ".pytype",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        ".vscode",
        "__pypackages__",
        "__pycache__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
        ".ddp-codemod",
    }
)

# code, configs, launch scripts, notebooks
SUFFIXES = (".py", ".yaml", ".yml", ".json", ".sh", ".bash", ".ipynb")


@dataclass(frozen=True)
class SourceFile:
    """A file to look at, with the path to show for it."""

    file: Path  # absolute
    rel: str  # POSIX, relative to the PATH argument (or as given, for a file argument)
    root: Path  # what `rel` is relative to: diff headers and CLI selectors use it


class Ignore:
    """gitignore-style rules, each anchored at the folder that declares it.

    Across folders, as within one file, the last rule that matches decides: a deeper
    .gitignore can re-include what a shallower one ignored.
    """

    def __init__(self) -> None:
        self._rules: list[tuple[Path, list[gitignore.Rule]]] = []

    def add(self, base: Path, lines: list[str]) -> None:
        rules = gitignore.compile_lines(lines)
        if rules:
            self._rules.append((base, rules))

    def add_file(self, base: Path, file: Path) -> None:
        with contextlib.suppress(ReadError):  # missing, a FIFO, huge: git would not use it
            self.add(base, read_regular(file).decode("utf-8", "replace").splitlines())

    def copy(self) -> Ignore:
        clone = Ignore()
        clone._rules = list(self._rules)
        return clone

    def ignores(self, path: Path, is_dir: bool) -> bool:
        decision = None
        for base, rules in self._rules:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if rel in ("", ".") or rel.startswith("../"):
                continue
            found = gitignore.decide(rules, rel, is_dir)
            if found is not None:
                decision = found
        return bool(decision)


def git_top(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if os.path.exists(os.path.join(folder, ".git")):  # False, not an error, when unreadable
            return folder
    return None


def gitignore_for(folder: Path) -> Ignore:
    """The .gitignore rules in force at `folder`: from the work tree's top down to it."""
    ignore = Ignore()
    top = git_top(folder)
    if top is None:
        return ignore
    ignore.add_file(top, top / ".git" / "info" / "exclude")
    chain = [top, *reversed([p for p in folder.parents if top in p.parents])]
    if folder != top:
        chain.append(folder)
    for directory in chain:
        ignore.add_file(directory, directory / ".gitignore")
    return ignore


OnError = Callable[[Path, str], None]


def _folder_id(path: str, follow: bool = True) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=follow)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def walk(
    root: Path,
    excludes: Ignore,
    suffixes: tuple[str, ...] = SUFFIXES,
    on_error: OnError | None = None,
) -> Iterator[Path]:
    """Files under `root` with one of `suffixes`, in a stable order.

    Like git, folder symlinks are not followed, and each real folder is visited once
    (a bind mount or a hard-linked folder cannot make the walk loop). A folder that
    cannot be listed goes to `on_error` and the walk goes on.
    """
    in_git = git_top(root) is not None
    start = gitignore_for(root) if in_git else Ignore()
    stack: list[tuple[Path, Ignore]] = [(root, start)]
    seen: set[tuple[int, int]] = set()
    root_id = _folder_id(str(root))
    if root_id is not None:
        seen.add(root_id)
    while stack:
        folder, ignore = stack.pop()
        if in_git and folder != root and os.path.isfile(os.path.join(folder, ".gitignore")):
            ignore = ignore.copy()
            ignore.add_file(folder, folder / ".gitignore")
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            if on_error is not None:
                on_error(folder, f"cannot read folder: {exc.strerror or exc}")
            continue
        subdirs: list[Path] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and entry.is_symlink() and entry.is_dir():
                    continue  # a folder symlink: never followed, like git
            except OSError:
                is_dir = False
            if not is_dir and not entry.name.endswith(suffixes):
                continue  # most entries: decided on the name, without a Path
            path = Path(entry.path)
            if is_dir:
                if entry.name in SKIP_DIRS or entry.name.endswith(".egg-info"):
                    continue
                if os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):
                    continue
                if ignore.ignores(path, True) or excludes.ignores(path, True):
                    continue
                folder_id = _folder_id(entry.path, follow=False)
                if folder_id is not None:
                    if folder_id in seen:
                        continue
                    seen.add(folder_id)
                subdirs.append(path)
            else:
                if ignore.ignores(path, False) or excludes.ignores(path, False):
                    continue
                yield path
        stack.extend((d, ignore) for d in reversed(subdirs))


def excluded(path: Path, excludes: Ignore) -> bool:
    """An explicitly named file still obeys `exclude`, like ruff's --force-exclude."""
    return excludes.ignores(path, False) or any(
        excludes.ignores(parent, True) for parent in path.parents
    )
