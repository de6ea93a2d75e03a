"""Wording that imports nothing: shared by the reports and the pre-click fast path
(`codemod.cli.entry`), which must not pay for `codemod.model` to say "Rewrote 0 sites"."""

from __future__ import annotations


def plural(n: int, word: str) -> str:
    """`1 site`, `2 sites`."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def applied(changed: int, files: int, dry_run: bool) -> str:
    """The head of apply's summary: `Rewrote 2 sites in 1 file` (no full stop)."""
    verb = "Would rewrite" if dry_run else "Rewrote"
    return f"{verb} {plural(changed, 'site')} in {plural(files, 'file')}"
