"""Write a probe's evidence: one file per rank, in the recorder's format, with kind "probe".

Each file holds one instance: the run's per-step record of that rank, with `call_site` and
`frames` describing the `--site` call as the recorder would have seen it there, and
`files_read` listing every repo file that rank read (the factory, the model, its configs), so
`codemod.evidence.load` parses it and `codemod.evidence.pairing` judges it like trace evidence. The
probe's own results (timings, equality, errors) ride along in a top-level "probe" object.
A new probe of a site replaces the probe files an earlier probe left for the same site:
it is the same experiment again, and its answer is the current one.
"""

from __future__ import annotations

import contextlib
import json
import platform
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from codemod.probe.launch import RunResult
from codemod.probe.site import SiteRef
from codemod.recorder._ddp_codemod_source import FORMAT, VERSION, evidence_name, write_json


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _same_site(doc: Any, site: SiteRef) -> bool:
    if not isinstance(doc, dict) or doc.get("kind") != "probe":
        return False
    instances = doc.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return False
    probe = doc.get("probe") if isinstance(doc.get("probe"), dict) else {}
    if isinstance(probe.get("site_files"), list):  # files_read also holds what the ranks read
        paths = set(probe["site_files"])
    else:  # older probe evidence: files_read held the site's own file only
        read = doc.get("files_read")
        read = read if isinstance(read, list) else []
        paths = {f.get("path") for f in read if isinstance(f, dict)}
    return instances[0].get("call_site") == site.call_site and paths == {
        f["path"] for f in site.files_read
    }


def replace_older(out: Path, site: SiteRef) -> int:
    """Remove earlier probe evidence of this very site from `out`; how many files went."""
    removed = 0
    if not out.is_dir():
        return removed
    for path in sorted(out.glob("evidence-*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _same_site(doc, site):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def documents(
    site: SiteRef,
    run: RunResult,
    *,
    run_id: str,
    command: list[str],
    git_root_commit: str | None,
    steps: int,
    probe: dict[str, Any],
) -> list[dict[str, Any]]:
    """One evidence document per rank of `run`."""
    host = socket.gethostname()
    world_size = len(run.ranks)
    docs = []
    for rank in run.ranks:
        result = rank.result or {}
        record = dict(result.get("record") or {})
        record.update(
            index=0,
            rank=rank.rank,
            world_size=world_size,
            call_site=site.call_site,
            frames=list(site.frames),
        )
        docs.append(
            {
                "format": FORMAT,
                "version": VERSION,
                "kind": "probe",
                "run_id": run_id,
                "repo": {"root": str(site.root), "git_root_commit": git_root_commit},
                "command": command,
                "argv": command,
                "pid": int(result.get("pid", 0)),
                "host": host,
                "python": platform.python_version(),
                "torch": result.get("torch"),
                "rank": rank.rank,
                "world_size": world_size,
                "started": _now(),
                "updated": _now(),
                "finished": True,
                "steps_limit": steps,
                "files_read": merge_files(site.files_read, result.get("files_read")),
                "errors": [],
                "instances": [record],
                "probe": probe,
            }
        )
    return docs


def merge_files(site: Any, read: Any) -> list[dict[str, str]]:
    """The site's own file (as hashed when the probe began) and every repo file the rank
    read, one entry per path, sorted: the recorder's `files_read` format."""
    found = {f["path"]: f for f in site}
    for f in read if isinstance(read, list) else []:
        if isinstance(f, dict) and isinstance(f.get("path"), str) and "sha256" in f:
            found.setdefault(f["path"], {"path": f["path"], "sha256": str(f["sha256"])})
    return [found[path] for path in sorted(found)]


def write(out: Path, docs: list[dict[str, Any]]) -> list[Path]:
    """Write the documents atomically, named like the recorder names its files."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for doc in docs:
        path = out / evidence_name(doc["host"], doc["pid"])
        write_json(str(path), doc)
        paths.append(path)
    return paths
