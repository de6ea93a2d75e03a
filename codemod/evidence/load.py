"""Read evidence files written by the recorder, and refuse any record we cannot trust.

Evidence decides whether code gets rewritten, so a file that is truncated, of another
format version, from another repo, duplicated, or naming paths outside the repo is
ignored with one line saying why; nothing in it counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.discover.read import MB, ReadError, read_regular
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
    # repo code the run executed whose source could not be hashed (bytecode only, or the
    # source gone): such a run cannot make a site safe
    unrecorded: tuple[str, ...] = field(default=(), compare=False)
    files_read: dict[str, str] = field(default_factory=dict, compare=False)  # path -> sha256
    changed: tuple[str, ...] = ()  # files it read that no longer hold what it read
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # probe timings etc.
    # versions of the frameworks the process had loaded ({"transformers": "5.24.0"}): what
    # settles a default that changed between versions, where the repo pins none
    frameworks: dict[str, str] = field(default_factory=dict, compare=False)
    root: Path | None = field(default=None, compare=False)  # the repo it was loaded for


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
    # the code paths that ran (branches.py reads them); None in evidence without them
    code_paths: dict[str, Any] | None = field(default=None, compare=False)

    def paths(self) -> set[str]:
        found = {f.path for f in self.frames}
        if self.call_site is not None:
            found.add(self.call_site.path)
        return found


EVIDENCE_LIMIT = 32 * MB  # bytes per evidence file; the recorder writes kilobytes
MAX_DEPTH = 32  # nesting of JSON arrays and objects; the format needs 6
MAX_DIGITS = 19  # an integer field of the format fits in 64 bits
MAX_ITEMS = 100_000  # instances, frames, files read, parameters per list or object
MAX_WORLD_SIZE = 1 << 20


def evidence_files(sources: Iterable[Path]) -> Iterator[Path]:
    """JSON files in the given files and folders (folders: not recursive), sorted; each
    real file once (`--evidence .ddp-codemod` names the default folder again)."""
    seen: set[str] = set()
    for source in sources:
        if os.path.isdir(source):
            try:
                found = sorted(
                    p for p in source.iterdir() if p.suffix == ".json" and os.path.isfile(p)
                )
            except OSError:
                continue  # load() reports the folder
        elif os.path.lexists(source):
            found = [source]
        else:
            continue
        for path in found:
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                yield path


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise EvidenceError("a number has too many digits")
    return int(text)


def _no_constant(text: str) -> float:
    raise EvidenceError(f"not valid JSON ({text} is no JSON number)")


def _check_shape(doc: Any) -> None:
    """Depth and size bounds, iteratively: nothing later may recurse or blow up on it."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise EvidenceError("nested too deeply")
            if len(value) > MAX_ITEMS:
                raise EvidenceError(f"a list or object has more than {MAX_ITEMS} items")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


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
    if "\x00" in path or len(path) > 4096:
        raise EvidenceError("names an invalid path")
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
    if any(v < 0 for v in data.values()):
        raise EvidenceError(f"malformed evidence: {key!r} has a negative count")
    return dict(data)


def _in_range(value: int, key: str, low: int, high: int) -> int:
    if not low <= value < high:
        raise EvidenceError(f"malformed evidence: {key!r} is out of range")
    return value


def _instance(process: Process, data: Any) -> Instance:
    if not isinstance(data, dict):
        raise EvidenceError("malformed evidence: an instance has the wrong type")
    world_size = _in_range(_get(data, "world_size", int), "world_size", 1, MAX_WORLD_SIZE + 1)
    return Instance(
        process=process,
        find_unused_parameters=_get(data, "find_unused_parameters", bool),
        rank=_in_range(_get(data, "rank", int), "rank", 0, world_size),
        world_size=world_size,
        call_site=_call_site(data.get("call_site")),
        frames=tuple(_frame(f) for f in _get(data, "frames", list)),
        iterations=_in_range(_get(data, "iterations", int), "iterations", 0, 1 << 63),
        unused=_counts(_get(data, "unused", dict), "unused"),
        unused_sets_stable=bool(data.get("unused_sets_stable", False)),
        code_paths=_optional(data, "paths", dict, None),
    )


def _repo_paths(items: list[Any]) -> tuple[str, ...]:
    """A list of repo-relative paths (`unrecorded_sources`), each checked like files_read's."""
    if not all(isinstance(item, str) for item in items):
        raise EvidenceError("malformed evidence: a path list holds something else")
    return tuple(sorted({_repo_path(item) for item in items}))


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


MAX_FRAMEWORKS = 64  # the recorder names a dozen
MAX_NAME = 128  # characters in a package name or a version


def _frameworks(data: dict[str, Any]) -> dict[str, str]:
    """`{"lightning": "2.6.6"}`: short strings only; versions steer verdicts, so a wrong
    shape makes the whole file untrusted rather than silently dropped."""
    if len(data) > MAX_FRAMEWORKS:
        raise EvidenceError("malformed evidence: 'frameworks' names too many packages")
    for name, version in data.items():
        if not (isinstance(name, str) and isinstance(version, str)) or not (
            0 < len(name) <= MAX_NAME and 0 < len(version) <= MAX_NAME
        ):
            raise EvidenceError("malformed evidence: 'frameworks' has the wrong type")
    return dict(data)


def _current_sha256(path: Path) -> str | None:
    """What the recorder's file_sha256 gives, but never blocking on a FIFO or reading
    /dev/zero: a path named in evidence is as untrusted as the evidence."""
    try:
        return hashlib.sha256(read_regular(path)).hexdigest()
    except ReadError:
        return None


def _changed(
    files_read: dict[str, str], root: Path, hashes: dict[str, str | None]
) -> tuple[str, ...]:
    out = []
    for rel, recorded in sorted(files_read.items()):
        if rel not in hashes:
            hashes[rel] = _current_sha256(root / rel)
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
        doc = json.loads(data, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise EvidenceError("nested too deeply") from None
    except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
        raise EvidenceError("not valid JSON (truncated?)") from None
    _check_shape(doc)
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
        unrecorded=_repo_paths(_optional(doc, "unrecorded_sources", list, [])),
        files_read=files_read,
        changed=_changed(files_read, repo.root, hashes),
        extra={k: v for k, v in doc.items() if k in ("probe",)},
        frameworks=_frameworks(_optional(doc, "frameworks", dict, {})),
        root=repo.root,
    )
    return [_instance(process, item) for item in _get(doc, "instances", list)]


def load(sources: Iterable[Path], repo: Repo) -> tuple[list[Instance], list[tuple[Path, str]]]:
    """Every trusted instance, and (file, why) for every file ignored."""
    instances: list[Instance] = []
    problems: list[tuple[Path, str]] = []
    seen: dict[tuple[str, str, int], Path] = {}
    hashes: dict[str, str | None] = {}
    for source in sources:
        if os.path.isdir(source) and not os.access(source, os.R_OK | os.X_OK):
            problems.append((source, "cannot read folder: Permission denied"))
    for file in evidence_files(sources):
        try:
            data = read_regular(file, EVIDENCE_LIMIT, "read as evidence")
        except ReadError as exc:
            message = str(exc)
            too_large = message.startswith("too large")
            problems.append((file, f"evidence ignored: {message}" if too_large else message))
            continue
        try:
            found = parse(file, data, repo, hashes)
        except EvidenceError as exc:
            problems.append((file, f"evidence ignored: {exc}"))
            continue
        except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
            # a shape the checks above did not foresee: still this file's problem only
            problems.append((file, f"evidence ignored: malformed evidence ({type(exc).__name__})"))
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
