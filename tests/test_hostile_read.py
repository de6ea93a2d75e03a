"""H5: only regular files are read, never blocking, and at most 16 MB of each."""

from __future__ import annotations

import os
from pathlib import Path

from tests.hostile import SITE, cli
from tests.sources import write


def test_fifo_named_py_does_not_hang_scan(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    os.mkfifo(tmp_path / "x.py")
    result = cli("scan", ".", cwd=tmp_path, timeout=15)
    assert result.returncode == 2, result.stderr
    assert "x.py: error: cannot read: not a regular file" in result.stderr
    assert "train.py:2:20: unknown" in result.stdout


def test_symlink_to_endless_devices_is_not_read(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    (tmp_path / "random.py").symlink_to("/dev/urandom")
    result = cli("scan", ".", cwd=tmp_path, timeout=15)
    assert result.returncode == 2, result.stderr
    assert "zero.py: error: cannot read: not a regular file" in result.stderr
    assert "random.py: error: cannot read: not a regular file" in result.stderr
    assert "train.py:2:20: unknown" in result.stdout


def test_fifo_named_as_the_only_path_does_not_hang_the_fast_path(tmp_path: Path):
    os.mkfifo(tmp_path / "x.py")
    result = cli("scan", "x.py", cwd=tmp_path, timeout=15)
    assert result.returncode == 2
    assert "x.py: error: cannot read: not a regular file" in result.stderr


def test_file_over_16_mb_is_one_error_and_the_run_goes_on(tmp_path: Path):
    write(tmp_path, "train.py", SITE)
    big = SITE + "#" + "x" * (17 * 1024 * 1024) + "\n"
    write(tmp_path, "big.py", big)
    result = cli("scan", ".", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "big.py: error: too large to scan (17 MB; the limit is 16 MB)" in result.stderr
    assert "train.py:2:20: unknown" in result.stdout


def test_project_wide_reads_skip_a_fifo(tmp_path: Path):
    """Subclass discovery reads every file of the repo, not only the PATHs."""
    (tmp_path / ".git").mkdir()
    write(tmp_path, "models.py", DDP_SUB)
    write(
        tmp_path,
        "train.py",
        "from models import MyDDP\nm = MyDDP(m, find_unused_parameters=True)\n",
    )
    os.mkfifo(tmp_path / "other.py")
    result = cli("scan", "train.py", cwd=tmp_path, timeout=15)
    assert "train.py:2:14: unknown: torch-ddp" in result.stdout, result.stderr


DDP_SUB = (
    "from torch.nn.parallel import DistributedDataParallel\n"
    "class MyDDP(DistributedDataParallel):\n    pass\n"
)
