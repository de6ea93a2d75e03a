"""`ddp-codemod trace`: run a training command with the DDP recorder injected.

The recorder travels through the environment only (PYTHONPATH and DDP_CODEMOD_* variables),
so torchrun, its workers and spawned children all pick it up without any change to the
repo. This module never imports torch: it only launches, waits and counts evidence files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from codemod.discover import project
from codemod.discover.project import has_our_table
from codemod.gitops import root_commit
from codemod.model import EVIDENCE_DIR
from codemod.recorder import FOLDER as RECORDER_FOLDER
from codemod.report.words import plural

EXIT_USAGE, EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 2, 127, 126
_FORWARDED = (signal.SIGINT, signal.SIGTERM)
STATUS_ENV = "DDP_CODEMOD_STATUS"  # a folder for the recorder's per-process status files
_OURS = (
    "DDP_CODEMOD_STEPS",
    "DDP_CODEMOD_MIN_STEPS",
    "DDP_CODEMOD_REPO_ID",
    "DDP_CODEMOD_RECORD_PATHS",
    STATUS_ENV,
)  # unset unless set here


class TraceError(Exception):
    """The command could not be started; `status` is the shell's exit code for that."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Trace:
    command: tuple[str, ...]
    out: Path  # absolute
    root: Path  # the repo root: the directory trace runs in
    steps: int | None
    run_id: str
    min_steps: int | None = None  # the project's: the recorder writes at once until then
    record_paths: int | None = None  # iterations whose code paths are recorded (None: 50)


@dataclass(frozen=True)
class Processes:
    """What the recorder's status files (one per process, see _ddp_codemod_status) say."""

    loaded: int = 0  # processes that ran the recorder
    built: int = 0  # ... that built a DistributedDataParallel
    wrote: int = 0  # ... whose last evidence write succeeded
    failed: tuple[str, ...] = ()  # the error of each whose last write failed


@dataclass(frozen=True)
class TraceResult:
    status: int  # the command's exit status, 128 + N when signal N ended it
    evidence: tuple[Path, ...]  # this run's evidence files
    processes: Processes | None = None  # None: no status folder was read


def environment(
    base: Mapping[str, str], trace: Trace, repo: str | None, status: Path | None = None
) -> dict[str, str]:
    """The child's environment: recorder first on PYTHONPATH, run settings in DDP_CODEMOD_*."""
    env = {k: v for k, v in base.items() if k not in _OURS}
    if status is not None:
        env[STATUS_ENV] = str(status)
    path = base.get("PYTHONPATH")
    env["PYTHONPATH"] = str(RECORDER_FOLDER) + (os.pathsep + path if path else "")
    env["DDP_CODEMOD_OUT"] = str(trace.out)
    env["DDP_CODEMOD_ROOT"] = str(trace.root)
    env["DDP_CODEMOD_COMMAND"] = json.dumps(list(trace.command))
    env["DDP_CODEMOD_RUN_ID"] = trace.run_id
    if trace.steps is not None:
        env["DDP_CODEMOD_STEPS"] = str(trace.steps)
    if trace.min_steps is not None:
        env["DDP_CODEMOD_MIN_STEPS"] = str(trace.min_steps)
    if repo is not None:
        env["DDP_CODEMOD_REPO_ID"] = repo
    if trace.record_paths is not None:
        env["DDP_CODEMOD_RECORD_PATHS"] = str(trace.record_paths)
    return env


def evidence_files(out: Path, run_id: str) -> tuple[Path, ...]:
    """Evidence files in `out` that this run wrote (older runs' files are left alone)."""
    found = []
    for path in sorted(out.glob("evidence-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("run_id") == run_id:
            found.append(path)
    return tuple(found)


def exit_status(returncode: int) -> int:
    """A shell's view of a child's end: its own code, or 128 + N when signal N killed it."""
    return 128 - returncode if returncode < 0 else returncode


def _terminal_sent_it(signum: int) -> bool:
    """Ctrl-C at a terminal reaches the whole foreground group, the child included."""
    if signum != signal.SIGINT:
        return False
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


@contextmanager
def _forwarding() -> Iterator[Callable[[subprocess.Popen[bytes]], None]]:
    """Pass SIGINT/SIGTERM on to the child and let it decide how to end.

    The handlers are in place before the child starts (call the yielded function with it
    once it has): a signal that arrived between the start and the handlers used to end
    trace alone and leave the command running. One that arrives before the child exists is
    passed on as soon as it does.
    """
    child: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        if not child:
            pending.append(signum)
        elif not _terminal_sent_it(signum) and child[0].poll() is None:
            child[0].send_signal(signum)

    def started(proc: subprocess.Popen[bytes]) -> None:
        child.append(proc)
        while pending:
            forward(pending.pop(0), None)

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        yield started
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def read_processes(folder: Path) -> Processes:
    """Count the processes that loaded the recorder, built DDP, wrote or failed to write."""
    loaded = built = wrote = 0
    failed: list[str] = []
    for path in sorted(folder.glob("*.jsonl")):
        events: list[dict[str, object]] = []
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        except (OSError, ValueError):
            pass  # a process killed mid-line: what was read still counts
        loaded += 1
        built += any(e.get("event") == "ddp" for e in events)
        writes = [e for e in events if e.get("event") in ("wrote", "write_failed")]
        if writes and writes[-1]["event"] == "wrote":
            wrote += 1
        elif writes:
            failed.append(str(writes[-1].get("error") or "unknown error"))
    return Processes(loaded, built, wrote, tuple(failed))


def run(trace: Trace, base_env: Mapping[str, str] | None = None) -> TraceResult:
    """Run the command to its end with the recorder injected; raise TraceError if it can't start."""
    created = _missing(trace.out)
    try:  # made now so a bad --out fails before the command runs; see _remove_empty
        trace.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"cannot create {trace.out}: {exc.strerror or exc}"
        raise TraceError(message, EXIT_USAGE) from None
    status = Path(tempfile.mkdtemp(prefix="ddp-codemod-status-"))
    try:
        base = os.environ if base_env is None else base_env
        env = environment(base, trace, root_commit(trace.root), status)
        with _forwarding() as started:
            try:
                child = subprocess.Popen(list(trace.command), cwd=trace.root, env=env)
            except FileNotFoundError:
                message = f"command not found: {trace.command[0]}"
                raise TraceError(message, EXIT_NOT_FOUND) from None
            except PermissionError:
                message = f"cannot run {trace.command[0]}: permission denied"
                raise TraceError(message, EXIT_NOT_EXECUTABLE) from None
            started(child)
            returncode = child.wait()
        processes = read_processes(status)
    finally:
        shutil.rmtree(status, ignore_errors=True)
        _remove_empty(created)
    evidence = evidence_files(trace.out, trace.run_id)
    return TraceResult(exit_status(returncode), evidence, processes)


def _missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, innermost first."""
    out = []
    while not folder.exists() and not folder.is_symlink() and folder.parent != folder:
        out.append(folder)
        folder = folder.parent
    return out


def _remove_empty(created: Sequence[Path]) -> None:
    """Take back the folders trace made that hold nothing: a run without DDP writes no
    evidence, and an empty `.ddp-codemod/` would still make its folder a repo root. (The
    recorder creates the folder again when it writes.)"""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:  # not empty: evidence (or something else) is in there
            return


def new_trace(
    command: Sequence[str],
    out: str,
    steps: int | None,
    cwd: Path,
    record_paths: int | None = None,
) -> Trace:
    min_steps = project.load(cwd).min_steps
    return Trace(
        tuple(command),
        (cwd / out).resolve(),
        cwd,
        steps,
        str(uuid.uuid4()),
        min_steps,
        record_paths,
    )


def summary(result: TraceResult, out: Path, cwd: Path) -> str:
    """The one line trace ends with: how many evidence files, and where."""
    try:
        where = out.relative_to(cwd).as_posix() or "."
    except ValueError:
        where = str(out)
    n = len(result.evidence)
    line = f"ddp-codemod: wrote {plural(n, 'evidence file')} to {where}/"
    known = result.processes
    if known is None:
        return line + ("" if n else " (no process of the command built a DistributedDataParallel)")
    if not known.loaded:
        return line + (
            " (no process of the command loaded the recorder: something probably replaced "
            "PYTHONPATH; keep the recorder first on it, as in "
            f"PYTHONPATH={RECORDER_FOLDER}${{PYTHONPATH:+:$PYTHONPATH}})"
        )
    processes = "process" if known.loaded == 1 else "processes"
    loaded = f"the recorder loaded in {known.loaded} {processes}"
    if not known.built:
        return line + ("" if n else f" ({loaded}; no process built a DistributedDataParallel)")
    if not known.failed and known.wrote == known.built:
        return line
    parts = [loaded, f"{known.built} built a DistributedDataParallel"]
    parts.append(f"{known.wrote} wrote evidence")
    if known.failed:
        first = known.failed[0]
        parts.append(f"{len(known.failed)} failed to write ({first})")
    silent = known.built - known.wrote - len(known.failed)
    if silent > 0:
        parts.append(f"{silent} wrote nothing (ended before the first write?)")
    return line + " (" + ", ".join(parts) + ")"


def unexercised(result: TraceResult, cwd: Path) -> list[str]:
    """One line per DDP instance (all ranks together) whose recorded code paths left a
    branch that could skip parameters untaken; never fails the trace."""
    try:
        from collections import defaultdict

        from codemod.evidence import branches
        from codemod.evidence.load import Repo, load

        instances, _ = load(result.evidence, Repo(cwd, root_commit(cwd)))
        groups: dict[tuple[str, int, int], list[object]] = defaultdict(list)
        for inst in instances:
            if inst.code_paths is None:
                continue
            cs = inst.call_site
            key = (cs.path, cs.line, 0) if cs else ("(framework)", 0, len(groups))
            groups[key].append(inst.code_paths)
        lines = []
        for (path, line, _), paths in sorted(groups.items()):
            found = branches.analyse(cwd, paths)  # type: ignore[arg-type]
            if found.risky:
                where = f"{path}:{line}" if line else path
                lines.append(f"ddp-codemod: DDP at {where}: {branches.headline(found.risky)}")
        return lines
    except Exception as exc:  # the run is over; this is advice only
        return [f"ddp-codemod: could not check the recorded code paths: {exc!r}"]


def root_above(cwd: Path) -> Path | None:
    """The repo root that holds `cwd` when trace runs below it; None when `cwd` is a root
    of its own (`.git` or a [tool.ddp-codemod] table) or nothing above is one."""
    if (cwd / ".git").exists() or has_our_table(cwd / "pyproject.toml"):
        return None
    for folder in cwd.parents:
        if (
            (folder / ".git").exists()
            or (folder / EVIDENCE_DIR).is_dir()
            or has_our_table(folder / "pyproject.toml")
        ):
            return folder
    return None


def below_root_warning(root: Path, out: Path, cwd: Path, wrote: bool) -> str:
    """Where evidence traced below the repo root went, and which scan reads it."""
    sub = Path(os.path.relpath(cwd, root)).as_posix()
    line = f"ddp-codemod: warning: trace ran in {sub}/, below the repo root {root}: "
    if not wrote:
        return line + f"evidence would name paths relative to {sub}/; run trace from {root}"
    line += f"the evidence names paths relative to {sub}/ and "
    if out == cwd / EVIDENCE_DIR:
        return line + (
            f"went to {sub}/{EVIDENCE_DIR}/, which makes {sub}/ a root of its own: "
            f"`ddp-codemod scan {sub}` from the repo root (or `scan .` in {sub}/) reads it; "
            f"a scan of the whole repo does not, and refuses it with --evidence. Run trace "
            f"from {root} to cover the repo"
        )
    return line + (
        f"went to {out}: only a scan whose root is {sub}/ (a [tool.ddp-codemod] table in "
        f"{sub}/pyproject.toml makes it one) reads it, with --evidence {out}; a scan of "
        f"the whole repo refuses it. Run trace from {root} to cover the repo"
    )
