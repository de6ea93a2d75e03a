"""The floor under any ast-based scan of a tree: walk, read, byte tests, `ast.parse`.

    python bench/parse_floor.py DIR [--jobs N]

`ddp-codemod scan` must parse every file that can hold a site. This does only that much
and nothing after it: the scan's own walk (`discover.walk`, the scan's suffixes), its
reads and byte tests, then `ast.parse` of the files that hold `find_unused_param` bytes
(`may_hold_site`) or call a `TrainingArguments`-family class (`calls_hf`) in a pool of
N processes (default: every core), like the scan's. No site finding, name resolution,
config graph or verdict follows. The scan parses a superset of these files (Lightning 1.x
spellings, callers of a repo's own argument classes), so no scan that parses with `ast`
can be faster than this on the same tree. Prints one JSON object (seconds, counts) so
bench/speed.py can put it beside grep and the scan.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codemod.api import PROJECT_SUFFIXES
from codemod.discover.implicit import calls_hf
from codemod.discover.prefilter import may_hold_site
from codemod.discover.read import ReadError, read_regular
from codemod.discover.walk import Ignore, walk


def _parse(data: bytes) -> int:
    """Parse one file; the count of top-level statements (0: it does not parse)."""
    try:
        return len(ast.parse(data).body)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return 0


def floor(root: Path, jobs: int) -> dict[str, float | int]:
    start = time.perf_counter()
    candidates: list[bytes] = []
    files = 0
    for path in walk(root, Ignore(), PROJECT_SUFFIXES):
        files += 1
        try:
            data = read_regular(path)
        except ReadError:
            continue
        if path.name.endswith(".py") and (may_hold_site(data, path.name) or calls_hf(data)):
            candidates.append(data)
    read = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            list(pool.map(_parse, candidates, chunksize=8))
    else:
        list(map(_parse, candidates))
    done = time.perf_counter()
    return {
        "files": files,
        "parsed": len(candidates),
        "parsed_mb": sum(map(len, candidates)) / 1e6,
        "walk_read_s": read - start,
        "parse_s": done - read,
        "total_s": done - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(json.dumps(floor(args.root.resolve(), args.jobs)))


if __name__ == "__main__":
    main()
