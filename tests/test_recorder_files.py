"""The file-read audit hook: which repo files a traced process read, with their hashes."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from codemod.recorder._ddp_codemod_files import FilesRead


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reads_under_the_root_are_noted_with_their_hashes(tmp_path: Path):
    root = tmp_path / "repo"
    (root / "configs").mkdir(parents=True)
    cfg, model, out = root / "configs/exp.yaml", root / "model.py", root / "dumped.py"
    cfg.write_text("find_unused_parameters: true\n")
    model.write_text("LAYERS = 2\n")
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("a: 1\n")
    files = FilesRead(str(root))
    files.hook("open", (str(cfg), "r", 0))
    files.hook("open", (str(model), "rb", 0))
    files.hook("open", (str(out), "w", 0))  # written by the run, not read
    files.hook("open", (str(root / "data.jpg"), "rb", 0))  # not a config or source
    files.hook("open", (str(outside), "r", 0))  # outside the repo
    files.hook("exec", (None,))  # other events are ignored
    assert files.snapshot() == [
        {"path": "configs/exp.yaml", "sha256": _sha(cfg)},
        {"path": "model.py", "sha256": _sha(model)},
    ]


def test_a_cached_module_counts_as_its_source(tmp_path: Path):
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    source = tmp_path / "pkg" / "heads.py"
    source.write_text("AUX = True\n")
    files = FilesRead(str(tmp_path))
    pyc = tmp_path / "pkg" / "__pycache__" / f"heads.{sys.implementation.cache_tag}.pyc"
    files.hook("open", (str(pyc), "rb", 0))
    assert files.snapshot() == [{"path": "pkg/heads.py", "sha256": _sha(source)}]


def test_os_open_flags_tell_writes_from_reads(tmp_path: Path):
    target = tmp_path / "cfg.yaml"
    target.write_text("a: 1\n")
    files = FilesRead(str(tmp_path))
    files.hook("open", (str(target), None, os.O_WRONLY | os.O_CREAT))
    assert files.snapshot() == []
    files.hook("open", (str(target), None, os.O_RDONLY))
    assert [f["path"] for f in files.snapshot()] == ["cfg.yaml"]


def test_a_file_edited_during_the_run_keeps_the_hash_first_seen(tmp_path: Path):
    model = tmp_path / "model.py"
    model.write_text("LAYERS = 2\n")
    first = _sha(model)
    files = FilesRead(str(tmp_path))
    files.hook("open", (str(model), "rb", 0))
    assert files.snapshot() == [{"path": "model.py", "sha256": first}]
    model.write_text("LAYERS = 3  # edited while training runs\n")
    assert files.snapshot() == [{"path": "model.py", "sha256": first}]
