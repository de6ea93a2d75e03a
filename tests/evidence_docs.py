"""Build evidence files by hand, in the recorder's format, for pairing tests without torch."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from codemod.recorder._ddp_codemod_source import lines_sha256, source_lines


def _lines(repo: Path, path: str) -> list[str]:
    return source_lines((repo / path).read_text())


def call_site(repo: Path, path: str, line: int, end_line: int, qualname: str) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "end_line": end_line,
        "qualname": qualname,
        "lines_sha256": lines_sha256(_lines(repo, path), line, end_line),
    }


def frame(repo: Path, path: str, line: int, qualname: str, fn: tuple[int, int]) -> dict[str, Any]:
    return {
        "path": path,
        "line": line,
        "qualname": qualname,
        "function": {
            "line": fn[0],
            "end_line": fn[1],
            "lines_sha256": lines_sha256(_lines(repo, path), fn[0], fn[1]),
        },
    }


def instance(
    site: dict[str, Any] | None = None,
    frames: list[dict[str, Any]] | None = None,
    *,
    iterations: int = 4,
    unused: dict[str, int] | None = None,
    fup: bool = True,
    stable: bool = True,
) -> dict[str, Any]:
    return {
        "index": 0,
        "class": "torch.nn.parallel.distributed.DistributedDataParallel",
        "find_unused_parameters": fup,
        "static_graph": False,
        "call_site": site,
        "frames": frames if frames is not None else [],
        "parameters": ["fc.weight", "fc.bias", "aux.weight"],
        "forwards": iterations + 1,
        "no_sync_forwards": 0,
        "iterations": iterations,
        "unused": unused or {},
        "unused_iterations": [],
        "no_sync_unused": {},
        "unused_sets_stable": stable,
    }


def write_run(
    repo: Path,
    per_rank: list[list[dict[str, Any]]],
    *,
    run_id: str = "run-1",
    command: tuple[str, ...] = ("torchrun", "--nproc_per_node=2", "train.py"),
    kind: str = "trace",
    out: Path | None = None,
    root: str | None = None,
    files_read: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
    argv: tuple[str, ...] = ("train.py",),
) -> list[Path]:
    """One evidence file per rank; `per_rank[r]` is rank r's instances.

    `files_read` are repo paths every rank read, hashed as they are now.
    """
    read = [
        {"path": rel, "sha256": hashlib.sha256((repo / rel).read_bytes()).hexdigest()}
        for rel in files_read
    ]
    out = out or repo / ".ddp-codemod"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    world = len(per_rank)
    for rank, instances in enumerate(per_rank):
        for inst in instances:
            inst.update(rank=rank, world_size=world)
        doc = {
            "format": "ddp-codemod-evidence",
            "version": 1,
            "kind": kind,
            "run_id": run_id,
            "repo": {"root": root or os.path.realpath(repo), "git_root_commit": None},
            "command": list(command),
            "argv": list(argv),
            "pid": 1000 + rank,
            "host": "testhost",
            "python": "3.11.7",
            "torch": "2.13.0+cpu",
            "rank": rank,
            "world_size": world,
            "started": "2026-11-28T00:00:00Z",
            "updated": "2026-11-28T00:00:01Z",
            "finished": True,
            "steps_limit": None,
            "files_read": read,
            "errors": [],
            "instances": instances,
            **(extra or {}),
        }
        path = out / f"evidence-testhost-{run_id}-{rank}.json"
        path.write_text(json.dumps(doc))
        files.append(path)
    return files
