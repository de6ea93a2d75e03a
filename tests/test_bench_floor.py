"""bench/parse_floor.py parses exactly the files that can hold a written or HF site."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from parse_floor import floor


def test_the_floor_parses_the_files_with_a_site_s_bytes_and_no_others(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("DDP(m, find_unused_parameters=True)\n")
    (tmp_path / "hf.py").write_text("args = TrainingArguments(output_dir='o')\n")
    (tmp_path / "plain.py").write_text("import torch\n" * 50)
    (tmp_path / "cfg.yaml").write_text("find_unused_parameters: true\n")
    got = floor(tmp_path, jobs=1)
    assert (got["files"], got["parsed"]) == (4, 2)
    assert got["parsed_mb"] == (36 + 41) / 1e6
    assert floor(tmp_path, jobs=2)["parsed"] == 2
