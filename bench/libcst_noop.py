"""Run libcst's own codemod runner with a visitor that does nothing over a list of files.

This is what `python -m libcst.tool codemod` costs before any rule does work: parse,
metadata wrapper, visit, and render every file.

    python bench/libcst_noop.py ROOT FILE_LIST [--jobs N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from libcst.codemod import VisitorBasedCodemodCommand, parallel_exec_transform_with_prettyprint


class NoOp(VisitorBasedCodemodCommand):
    DESCRIPTION = "Visit every node, change nothing."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("file_list", type=Path)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args()
    files = args.file_list.read_text().splitlines()
    result = parallel_exec_transform_with_prettyprint(
        NoOp, files, jobs=args.jobs, hide_progress=True, repo_root=args.root
    )
    if result.failures:
        raise SystemExit(f"{result.failures} files failed to parse")


if __name__ == "__main__":
    main()
