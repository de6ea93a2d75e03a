"""What git says about a repo, for telling evidence from this repo apart from another's."""

from __future__ import annotations

import subprocess
from pathlib import Path


def root_commit(folder: Path) -> str | None:
    """The first root commit of the work tree holding `folder`: the same in every clone."""
    try:
        out = subprocess.run(
            ["git", "rev-list", "--max-parents=0", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    return lines[0] if out.returncode == 0 and lines else None
