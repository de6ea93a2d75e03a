"""The console script: pre-commit's no-op case answered before click is imported.

pre-commit runs `ddp-codemod apply [--dry-run] FILE...` on every commit, and most commits
stage no file that can hold a site. For exactly that command line (no other flag, no `-`
anywhere in front of a FILE) and when every FILE is a regular file whose bytes cannot hold
a site (`discover.fastpath.nothing_to_find`), the answer needs neither click nor the
package's data model: apply's summary line on stderr and exit 0. Any other command line
goes to the click command (`codemod.cli.main`), which answers this case the same way
(tests/test_fastpath.py runs both and compares).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from codemod.cli.exits import EXIT_CLEAN, EXIT_INTERRUPTED


def fast_answer(args: Sequence[str], cwd: str) -> str | None:
    """apply's summary when `args` is `apply [--dry-run] FILE...` with nothing to find."""
    if not args or args[0] != "apply":
        return None
    dry_run = len(args) > 1 and args[1] == "--dry-run"
    paths = args[2:] if dry_run else args[1:]
    if not paths or any(not p or p.startswith("-") for p in paths):
        return None
    from codemod.discover.fastpath import nothing_to_find

    if not nothing_to_find(paths, cwd):
        return None
    from codemod.report.words import applied

    return applied(0, 0, dry_run) + "."


def main(args: Sequence[str] | None = None) -> None:
    """`ddp-codemod`: the fast answer where there is one, else the click command group."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        answer = fast_answer(argv, os.getcwd())
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception:  # a folder gone from under us, say: the full command says why
        answer = None
    if answer is not None:
        sys.stderr.write(answer + "\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_CLEAN)
    from codemod.cli.main import main as command

    command(argv if args is not None else None)
