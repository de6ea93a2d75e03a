"""How the recorder writes evidence: atomically, without leftovers, cheaply and often enough.

A tiny tmpfs cannot be mounted here, so a full disk is made by patching the write step to
raise ENOSPC.
"""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from codemod.recorder import _ddp_codemod_source as source


def _no_space(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullDisk(io.StringIO):
    """A file that exists on disk but whose bytes do not fit."""

    def __init__(self, path: str) -> None:
        super().__init__()
        Path(path).touch()

    def write(self, text: str) -> int:
        _no_space()
        return 0


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_write_that_fails_on_a_full_disk_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "evidence-h-1-2.json"
    source.write_json(str(target), {"old": True})
    monkeypatch.setattr(source, "open", lambda path, *a, **k: _FullDisk(path), raising=False)
    with pytest.raises(OSError) as raised:
        source.write_json(str(target), {"new": True})
    assert raised.value.errno == errno.ENOSPC
    assert _leftovers(tmp_path) == []
    assert json.loads(target.read_text()) == {"old": True}  # the last good file stays


def test_a_failed_replace_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(source.os, "replace", _no_space)
    with pytest.raises(OSError):
        source.write_json(str(tmp_path / "evidence-h-1-2.json"), {"new": True})
    assert _leftovers(tmp_path) == []
