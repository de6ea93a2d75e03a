"""Which repos a `batch` runs over: repo paths, or manifest files listing them.

A manifest is plain text, one repo path per line; blank lines and lines starting with
`#` are skipped, `~` is expanded, and relative paths are relative to the manifest's own
folder so a manifest works from any directory. Each repo is listed once, however it is
spelled, so two workers never rewrite the same tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    shown: str  # as the user wrote it
    path: Path  # absolute


class ManifestError(Exception):
    """A manifest that cannot be read; the message is one line."""


def _entry(shown: str, base: Path) -> Entry:
    return Entry(shown, Path(os.path.abspath(base / os.path.expanduser(shown))))


def read(manifest: Path) -> list[Entry]:
    try:
        text = manifest.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{manifest}: cannot read the manifest: {exc}") from None
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entries.append(_entry(line, manifest.parent))
    return entries


def repos(args: Sequence[str], cwd: Path) -> list[Entry]:
    """Directories are repos, files are manifests; anything else is a repo that will fail."""
    found: list[Entry] = []
    for arg in args:
        path = cwd / os.path.expanduser(arg)
        if path.is_file():
            found.extend(read(path))
        else:
            found.append(_entry(arg, cwd))
    unique: dict[str, Entry] = {}
    for entry in found:
        unique.setdefault(os.path.realpath(entry.path), entry)
    return list(unique.values())


def shard(entries: Sequence[Entry], index: int, count: int) -> list[Entry]:
    """The `index`-th (1-based) of `count` slices: every count-th repo of the list sorted by
    path as written, from index - 1 on; the same on every machine with the same manifest.
    Manifest order is kept within the slice."""
    ranked = sorted(range(len(entries)), key=lambda i: (entries[i].shown, str(entries[i].path)))
    mine = {i for rank, i in enumerate(ranked) if rank % count == index - 1}
    return [entry for i, entry in enumerate(entries) if i in mine]
