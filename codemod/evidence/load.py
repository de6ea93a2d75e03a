"""Read evidence files written by the recorder, and refuse any record we cannot trust.

Evidence decides whether code gets rewritten, so a file that is truncated, of another
format version, from another repo, duplicated, or naming paths outside the repo is
ignored with one line saying why; nothing in it counts.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.recorder._ddp_codemod_files import file_sha256
from codemod.recorder._ddp_codemod_source import FORMAT, VERSION


class EvidenceError(Exception):
    """Why one evidence file is ignored; one line."""


@dataclass(frozen=True)
class CallSite:
    path: str  # POSIX, relative to the repo root
    line: int
    end_line: int
    qualname: str
    lines_sha256: str


@dataclass(frozen=True)
class Frame:
    path: str
    line: int
    qualname: str
    function_line: int
    function_end_line: int
    function_sha256: str


@dataclass(frozen=True)
class Process:
    """One evidence file: one Python process of one traced or probed run."""

    file: Path
    kind: str  # "trace" or "probe"
    run_id: str
    host: str
    pid: int
    command: tuple[str, ...]
    argv: tuple[str, ...] = field(default=(), compare=False)  # the process's own sys.argv
    cwd: str = field(default="", compare=False)  # its working folder, relative to the root
    # its rank and world size in the default process group (a DDP on a sub-group records
    # its group's own); None in evidence that did not say
    rank: int | None = field(default=None, compare=False)
    world_size: int | None = field(default=None, compare=False)
    files_read: dict[str, str] = field(default_factory=dict, compare=False)  # path -> sha256
    changed: tuple[str, ...] = ()  # files it read that no longer hold what it read
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # probe timings etc.


@dataclass(frozen=True)
class Instance:
    """One DDP instance as one process saw it."""

    process: Process
    find_unused_parameters: bool
    rank: int
    world_size: int
    call_site: CallSite | None
    frames: tuple[Frame, ...]
    iterations: int
    unused: dict[str, int]
    unused_sets_stable: bool

    def paths(self) -> set[str]:
        found = {f.path for f in self.frames}
        if self.call_site is not None:
            found.add(self.call_site.path)
        return found


def evidence_files(sources: Iterable[Path]) -> Iterator[Path]:
    """JSON files in the given files and folders (folders: not recursive), sorted."""
    for source in sources:
        if source.is_dir():
            yield from sorted(p for p in source.iterdir() if p.suffix == ".json" and p.is_file())
        elif source.exists():
            yield source


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise EvidenceError(f"malformed evidence: missing {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, (int,))):
        raise EvidenceError(f"malformed evidence: {key!r} has the wrong type")
    return value


def _optional(data: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    """A field older evidence may lack; present, it must have the right type."""
    return _get(data, key, kind) if key in data else default


def _cwd(value: object, root: Path) -> str:
    """The run's working folder relative to the root; "" for the root or unknown."""
    if not isinstance(value, str) or not value:
        return ""
    rel = os.path.relpath(value, os.path.realpath(root)) if os.path.isabs(value) else value
    rel = posixpath.normpath(rel.replace(os.sep, "/"))
    return "" if rel == "." or rel.startswith("../") or rel == ".." else rel


def _repo_path(path: str) -> str:
    """A POSIX path inside the repo, or an error: `../x`, `/abs` and `C:` never count."""
    normal = posixpath.normpath(path)
    if (
        not path
        or posixpath.isabs(path)
        or normal == ".."
        or normal.startswith("../")
        or (len(path) > 1 and path[1] == ":")
        or "\\" in path
    ):
        raise EvidenceError(f"names a path outside the repo: {path}")
    return normal


def _call_site(data: Any) -> CallSite | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise EvidenceError("malformed evidence: 'call_site' has the wrong type")
    return CallSite(
        _repo_path(_get(data, "path", str)),
        _get(data, "line", int),
        _get(data, "end_line", int),
        _get(data, "qualname", str),
        _get(data, "lines_sha256", str),
    )


def _frame(data: Any) -> Frame:
    if not isinstance(data, dict):
        raise EvidenceError("malformed evidence: a frame has the wrong type")
    function = _get(data, "function", dict)
    return Frame(
        _repo_path(_get(data, "path", str)),
        _get(data, "line", int),
        _get(data, "qualname", str),
        _get(function, "line", int),
        _get(function, "end_line", int),
        _get(function, "lines_sha256", str),
    )


def _counts(data: Any, key: str) -> dict[str, int]:
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in data.items()
    ):
        raise EvidenceError(f"malformed evidence: {key!r} has the wrong type")
    return dict(data)


def _instance(process: Process, data: Any) -> Instance:
    if not isinstance(data, dict):
        raise EvidenceError("malformed evidence: an instance has the wrong type")
    return Instance(
        process=process,
        find_unused_parameters=_get(data, "find_unused_parameters", bool),
        rank=_get(data, "rank", int),
        world_size=_get(data, "world_size", int),
        call_site=_call_site(data.get("call_site")),
        frames=tuple(_frame(f) for f in _get(data, "frames", list)),
        iterations=_get(data, "iterations", int),
        unused=_counts(_get(data, "unused", dict), "unused"),
        unused_sets_stable=bool(data.get("unused_sets_stable", False)),
    )


def _files_read(data: Any) -> dict[str, str]:
    """`[{"path": "configs/x.py", "sha256": "..."}]` -> {path: sha256}."""
    if not isinstance(data, list):
        raise EvidenceError("malformed evidence: 'files_read' has the wrong type")
    out: dict[str, str] = {}
    for item in data:
        if not isinstance(item, dict):
            raise EvidenceError("malformed evidence: 'files_read' has the wrong type")
        out[_repo_path(_get(item, "path", str))] = _get(item, "sha256", str)
    return out


def _changed(
    files_read: dict[str, str], root: Path, hashes: dict[str, str | None]
) -> tuple[str, ...]:
    out = []
    for rel, recorded in sorted(files_read.items()):
        if rel not in hashes:
            hashes[rel] = file_sha256(str(root / rel))
        if hashes[rel] != recorded:
            out.append(rel)
    return tuple(out)


@dataclass(frozen=True)
class Repo:
    """Who we are: evidence from a run in another repo never counts here."""

    root: Path
    git_root_commit: str | None


def parse(file: Path, data: bytes, repo: Repo, hashes: dict[str, str | None]) -> list[Instance]:
    """The instances in one evidence file; EvidenceError when it cannot be trusted.

    `hashes` caches the current sha256 of repo files, to tell which of the files the run
    read have changed since (the model code a clean run proved may have changed too).
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EvidenceError("not valid JSON (truncated?)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise EvidenceError("not a ddp-codemod evidence file")
    if doc.get("version") != VERSION:
        raise EvidenceError(f"unknown evidence format version {doc.get('version')!r}")
    recorded = _get(doc, "repo", dict)
    commit = recorded.get("git_root_commit")
    root = recorded.get("root")
    ours = os.path.realpath(repo.root)
    theirs = os.path.realpath(root) if isinstance(root, str) else None
    if (
        theirs != ours
        and theirs is not None
        and (theirs.startswith(ours + os.sep) or ours.startswith(theirs + os.sep))
    ):  # traced from another folder of this checkout: its paths start elsewhere
        raise EvidenceError(f"recorded with {root} as the root, not {repo.root}")
    same = (commit is not None and commit == repo.git_root_commit) or theirs == ours
    if not same:
        raise EvidenceError(f"recorded in another repo ({root})")
    command = _get(doc, "command", list)
    files_read = _files_read(doc.get("files_read", []))
    process = Process(
        file=file,
        kind=_get(doc, "kind", str),
        run_id=_get(doc, "run_id", str),
        host=_get(doc, "host", str),
        pid=_get(doc, "pid", int),
        command=tuple(str(c) for c in command),
        argv=tuple(str(a) for a in _optional(doc, "argv", list, [])),
        cwd=_cwd(doc.get("cwd"), repo.root),
        rank=_optional(doc, "rank", int, None),
        world_size=_optional(doc, "world_size", int, None),
        files_read=files_read,
        changed=_changed(files_read, repo.root, hashes),
        extra={k: v for k, v in doc.items() if k in ("probe",)},
    )
    return [_instance(process, item) for item in _get(doc, "instances", list)]


def load(sources: Iterable[Path], repo: Repo) -> tuple[list[Instance], list[tuple[Path, str]]]:
    """Every trusted instance, and (file, why) for every file ignored."""
    instances: list[Instance] = []
    problems: list[tuple[Path, str]] = []
    seen: dict[tuple[str, str, int], Path] = {}
    hashes: dict[str, str | None] = {}
    for file in evidence_files(sources):
        try:
            data = file.read_bytes()
        except OSError as exc:
            problems.append((file, f"cannot read: {exc.strerror}"))
            continue
        try:
            found = parse(file, data, repo, hashes)
        except EvidenceError as exc:
            problems.append((file, f"evidence ignored: {exc}"))
            continue
        if found:
            process = found[0].process
            key = (process.run_id, process.host, process.pid)
            if key in seen:
                problems.append((file, f"evidence ignored: duplicate of {seen[key].name}"))
                continue
            seen[key] = file
        instances.extend(found)
    return instances, problems
