"""Whose code reads a config: PaddlePaddle, MindSpore and OneFlow use the same key.

`paddle.DataParallel(find_unused_parameters=...)` and ppdet's YAML look like ours, and a
repo may hold both (RT-DETR has `rtdetr_pytorch/` and `rtdetr_paddle/`). A config is a
torch site only when torch code can read it, decided per subtree: the nearest folder
above the config whose Python imports one of those frameworks and not torch is theirs.
"""

from __future__ import annotations

import bisect
import itertools
import posixpath
import re
from collections.abc import Iterable

FOREIGN = {b"paddle": "PaddlePaddle", b"mindspore": "MindSpore", b"oneflow": "OneFlow"}
# Starts with a literal so the search skips ahead fast; the line start is checked apart.
_IMPORT = re.compile(rb"(?:import|from)[ \t]+(torch|paddle|mindspore|oneflow)\b")


def _imports(data: bytes, wanted: tuple[bytes, ...]) -> set[bytes]:
    """Which of `wanted` the file imports at the start of a line (a cheap byte test first:
    most files name none of them)."""
    if not any(name in data for name in wanted):
        return set()
    found = set()
    for match in _IMPORT.finditer(data):
        if match.group(1) in wanted:
            start = data.rfind(b"\n", 0, match.start()) + 1
            if not data[start : match.start()].strip():
                found.add(match.group(1))
    return found


def _folders(rel: str) -> list[str]:
    """`a/b/c.yml` -> ["a/b", "a", ""]: the config's folders, nearest first."""
    out = []
    folder = posixpath.dirname(rel)
    while True:
        out.append(folder)
        if not folder:
            return out
        folder = posixpath.dirname(folder)


def foreign_readers(configs: Iterable[str], python: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """For each config that only another framework's code reads, that framework's name."""
    configs = list(configs)
    python = list(python)
    foreign_names = tuple(FOREIGN)
    importers = {rel: found for rel, data in python if (found := _imports(data, foreign_names))}
    if not configs or not importers:
        return {}  # the common case: no file imports another framework
    foreign: dict[str, set[bytes]] = {}  # folder -> foreign frameworks its Python imports
    for rel, found in importers.items():
        for folder in _folders(rel):
            foreign.setdefault(folder, set()).update(found)
    torch: dict[str, bool] = {}  # folder -> whether its Python imports torch, when asked
    python.sort()  # a folder's files are then one run of the list, found by bisection

    def imports_torch(folder: str) -> bool:
        if folder not in torch:
            prefix = folder + "/" if folder else ""
            start = bisect.bisect_left(python, (prefix,))
            run = itertools.takewhile(lambda item: item[0].startswith(prefix), python[start:])
            torch[folder] = any(_imports(data, (b"torch",)) for _, data in run)
        return torch[folder]

    out: dict[str, str] = {}
    for rel in configs:
        for folder in _folders(rel):  # the nearest folder whose Python imports either decides
            if imports_torch(folder):
                break
            if folder in foreign:
                out[rel] = FOREIGN[sorted(foreign[folder])[0]]
                break
    return out
