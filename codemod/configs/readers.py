"""Whose code reads a config: PaddlePaddle, MindSpore and OneFlow use the same key.

`paddle.DataParallel(find_unused_parameters=...)` and ppdet's YAML look like ours, and a
repo may hold both (RT-DETR has `rtdetr_pytorch/` and `rtdetr_paddle/`). A config is a
torch site only when torch code can read it, decided per subtree: the nearest folder
above the config whose Python imports one of those frameworks and not torch is theirs.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

FOREIGN = {b"paddle": "PaddlePaddle", b"mindspore": "MindSpore", b"oneflow": "OneFlow"}
_IMPORT = re.compile(rb"^[ \t]*(?:import|from)[ \t]+(torch|paddle|mindspore|oneflow)\b", re.M)


def _frameworks(data: bytes) -> set[bytes]:
    """The frameworks a Python file imports (a cheap byte test first: most import none)."""
    if not any(name in data for name in (b"torch", *FOREIGN)):
        return set()
    return set(_IMPORT.findall(data))


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
    wanted = {folder for rel in configs for folder in _folders(rel)}
    python = list(python)
    if not wanted or not any(name in data for _, data in python for name in FOREIGN):
        return {}  # the common case: no file so much as names another framework
    imports: dict[str, set[bytes]] = {}
    for rel, data in python:
        found = _frameworks(data)
        if found:
            for folder in _folders(rel):
                if folder in wanted:
                    imports.setdefault(folder, set()).update(found)
    out: dict[str, str] = {}
    for rel in configs:
        for folder in _folders(rel):
            found = imports.get(folder)
            if not found:
                continue
            foreign = sorted(f for f in found if f in FOREIGN)
            if foreign and b"torch" not in found:
                out[rel] = FOREIGN[foreign[0]]
            break
    return out
