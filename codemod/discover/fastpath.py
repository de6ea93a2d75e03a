"""Say "nothing to do" for PATHs that cannot hold a site, before the pipeline is imported.

pre-commit runs the hook with the staged files on every commit, and almost never does one
of them mention find_unused_param (or an implicit spelling, `discover.implicit`). Importing
the pipeline (tomllib, the finder) and reading the project's config would cost
more than the answer, so the CLI asks here first. Only plain files qualify: a directory
needs walking with its .gitignore, and a missing or unreadable file needs the pipeline's
error line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from codemod.discover.implicit import may_hold_implicit
from codemod.discover.prefilter import may_hold_site
from codemod.discover.read import ReadError, read_regular

if TYPE_CHECKING:  # imported where used: the pre-click entry needs only nothing_to_find
    from pathlib import Path

    from codemod.model import FileError


def nothing_to_find(paths: Sequence[str], cwd: str | Path) -> bool:
    """True when every PATH is a regular file whose bytes cannot hold a site."""
    for arg in paths:
        path = os.path.join(cwd, arg)
        try:
            data = read_regular(path)
        except ReadError:
            return False  # the pipeline says why
        if may_hold_site(data, arg) or may_hold_implicit(data):
            return False
    return True


def unmatched_for_files(allow: Sequence[str], paths: Sequence[str], cwd: Path) -> list[str]:
    """The pipeline's warnings for `--allow` selectors when only site-less files were named:
    a selector naming one of them matched no site; one naming another file says nothing."""
    from pathlib import Path

    from codemod.report.text import unmatched_selector
    from codemod.verdicts.allowlist import Selector, usable

    files = [Path(os.path.abspath(os.path.join(cwd, p))) for p in paths]
    root = Path(os.path.abspath(cwd))
    good, _ = usable(tuple(allow), "--allow", root)
    return [
        unmatched_selector(text, "--allow")
        for text in good
        if any(Selector.parse(text, "--allow", root).matches_file(f) for f in files)
    ]


def selector_errors(allow: Sequence[str], cwd: Path) -> list[FileError]:
    """The pipeline's error lines for `--allow` selectors that cannot be used."""
    from codemod.model import FileError
    from codemod.verdicts.allowlist import usable

    _, bad = usable(tuple(allow), "--allow", cwd)
    return [FileError("--allow", message) for message in bad]
