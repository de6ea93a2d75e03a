"""Wall-clock timing of commands for the benchmarks: warm up once, then best of N.

The warm-up run fills the page cache and writes .pyc files (PYTHONDONTWRITEBYTECODE is
dropped for the measured commands, as a normal install has bytecode); the minimum of
the repeats is the least disturbed by other load on the machine, the median is shown
beside it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    best: float
    median: float

    def __str__(self) -> str:
        return f"{self.best:.3f} (median {self.median:.3f})"


def env() -> dict[str, str]:
    out = dict(os.environ)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def time_command(cmd: Sequence[str], repeat: int, cwd: Path | None = None) -> Timing:
    environment = env()

    def once() -> float:
        start = time.perf_counter()
        subprocess.run(
            cmd, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return time.perf_counter() - start

    once()
    times = [once() for _ in range(repeat)]
    return Timing(min(times), statistics.median(times))


def ddp_codemod() -> list[str]:
    """The console script beside this Python, else `python -m codemod`."""
    script = Path(sys.executable).parent / "ddp-codemod"
    if script.exists():
        return [str(script)]
    found = shutil.which("ddp-codemod")
    return [found] if found else [sys.executable, "-m", "codemod"]
