"""Start the W ranks of one probe run on loopback, wait with a deadline, leave nothing behind.

Each rank is its own session (`start_new_session`), so one killpg per rank ends it and
whatever it started. A rank that fails makes its peers fail soon ("Connection closed by
peer" on gloo); any still running after a grace period are stuck and get killed. A run that
reaches its deadline with no failed rank is a hang. Every rank is reaped before returning.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from codemod.parallel import default_jobs

WORKER = Path(__file__).resolve().parent / "worker.py"
GRACE_S = 10.0  # after one rank fails, how long its peers get to notice
POLL_S = 0.05
PORT_TRIES = 3
_IN_USE = ("address already in use", "eaddrinuse")
_OURS = "DDP_CODEMOD_"


@dataclass
class RankResult:
    rank: int
    returncode: int | None  # None: it was killed by us
    result: dict[str, Any] | None  # what the rank wrote; None when it wrote nothing
    log: str  # the tail of its stdout and stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.result and self.result.get("ok"))

    @property
    def error(self) -> str | None:
        if self.result and self.result.get("error"):
            return str(self.result["error"])
        if self.ok:
            return None
        if self.returncode is None:
            return "killed: the run was stopped while this rank was still running"
        if self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        lines = [line for line in self.log.splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit status {self.returncode}"


@dataclass
class RunResult:
    name: str
    ranks: list[RankResult] = field(default_factory=list)
    hung: bool = False  # the deadline passed with no rank failed
    seconds: float = 0.0
    folder: Path | None = None  # where the ranks wrote their results and states

    @property
    def ok(self) -> bool:
        return not self.hung and bool(self.ranks) and all(r.ok for r in self.ranks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loopback() -> str | None:
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else ()
    return next((n for n in ("lo", "lo0") if n in names), None)


def _threads(world_size: int) -> str:
    cores = default_jobs()
    return str(max(1, (cores or 1) // world_size))


def environment(
    base: Mapping[str, str], rank: int, world_size: int, port: int, device: str = "cpu"
) -> dict[str, str]:
    """The rank's environment: torchrun's variables on loopback; never the recorder's."""
    env = {k: v for k, v in base.items() if not k.startswith(_OURS)}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        GROUP_RANK="0",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("OMP_NUM_THREADS", _threads(world_size))
    loopback = _loopback()
    if loopback and "GLOO_SOCKET_IFNAME" not in env:
        env["GLOO_SOCKET_IFNAME"] = loopback
    if device == "cuda":  # cuBLAS is deterministic only with a fixed workspace
        env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if env.get("TORCH_DISTRIBUTED_DEBUG", "").upper() == "DETAIL":
        env["TORCH_DISTRIBUTED_DEBUG"] = "OFF"  # DETAIL crashes DDP's constructor (ddp-facts)
    return env


def _status(proc: subprocess.Popen[bytes]) -> int | None:
    """The rank's exit status once it has ended (-N: signal N), None while it runs.

    Not reaped: until `wait`, its pid still names its process group, so killpg cannot reach
    a stranger's group.
    """
    if proc.returncode is not None:
        return proc.returncode
    if not hasattr(os, "waitid"):
        return proc.poll()
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return proc.poll()
    if info is None or info.si_pid != proc.pid:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM ends the probe through `finally`, so its ranks are killed too."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tail(path: Path, limit: int = 8000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


Watch = Callable[[Path], None]  # called with the run's folder while it runs, for progress


def _once(
    name: str,
    job: dict[str, Any],
    world_size: int,
    timeout: float,
    folder: Path,
    watch: Watch | None = None,
) -> RunResult:
    port = free_port()
    job_file = folder / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    procs: list[subprocess.Popen[bytes]] = []
    logs = [folder / f"rank{rank}.log" for rank in range(world_size)]
    start = time.monotonic()
    deadline = start + timeout
    hung = False
    stopped: set[int] = set()  # ranks still running when we killed them
    with _terminate_raises():
        try:
            for rank in range(world_size):
                with open(logs[rank], "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, str(WORKER), str(job_file)],
                            cwd=job["cwd"],
                            env=environment(
                                os.environ, rank, world_size, port, job.get("device", "cpu")
                            ),
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            failed_at: float | None = None
            while True:
                if watch is not None:
                    watch(folder)
                status = [_status(p) for p in procs]
                if None not in status:
                    break
                now = time.monotonic()
                if failed_at is None and any(s not in (None, 0) for s in status):
                    failed_at = now
                if failed_at is not None and now - failed_at > GRACE_S:
                    break  # the peers of a failed rank are stuck in a collective
                if now > deadline:
                    hung = failed_at is None
                    break
                time.sleep(POLL_S)
        finally:
            stopped.update(i for i, p in enumerate(procs) if _status(p) is None)
            for proc in procs:
                _kill_group(proc)  # its own group: the rank and anything it started
            for proc in procs:
                proc.wait()
    ranks = []
    for rank, proc in enumerate(procs):
        code = None if rank in stopped else proc.returncode
        result = _read_result(folder / f"result-{rank}.json")
        ranks.append(RankResult(rank, code, result, _tail(logs[rank])))
    return RunResult(name, ranks, hung, time.monotonic() - start, folder)


def _port_taken(run: RunResult) -> bool:
    return any(not r.ok and any(marker in r.log.lower() for marker in _IN_USE) for r in run.ranks)


def launch(
    name: str,
    job: dict[str, Any],
    world_size: int,
    timeout: float,
    folder: Path,
    watch: Watch | None = None,
) -> RunResult:
    """Run one probe run; a port someone took between our check and rank 0's bind: retry."""
    for attempt in range(PORT_TRIES):
        attempt_folder = folder / f"{name}-{attempt}"
        attempt_folder.mkdir(parents=True)
        attempt_job = {**job, "dir": str(attempt_folder)}
        run = _once(name, attempt_job, world_size, timeout, attempt_folder, watch)
        if not _port_taken(run):
            break
    return run
