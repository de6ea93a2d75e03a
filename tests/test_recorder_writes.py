"""How the recorder writes evidence: atomically, without leftovers, cheaply and often enough.

A tiny tmpfs cannot be mounted here, so a full disk is made by patching the write step to
raise ENOSPC.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codemod.recorder import FOLDER
from codemod.recorder import _ddp_codemod_source as source
from tests.ddp_runs import PREAMBLE, PYTHON, clean_env, script, torchrun, trace, write_repo


def _no_space(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullDisk(io.StringIO):
    """A file that exists on disk but whose bytes do not fit."""

    def __init__(self, path: str) -> None:
        super().__init__()
        Path(path).touch()

    def write(self, text: str) -> int:
        _no_space()
        return 0


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_write_that_fails_on_a_full_disk_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    target = tmp_path / "evidence-h-1-2.json"
    source.write_json(str(target), {"old": True})
    monkeypatch.setattr(source, "open", lambda path, *a, **k: _FullDisk(path), raising=False)
    with pytest.raises(OSError) as raised:
        source.write_json(str(target), {"new": True})
    assert raised.value.errno == errno.ENOSPC
    assert _leftovers(tmp_path) == []
    assert json.loads(target.read_text()) == {"old": True}  # the last good file stays


def test_a_failed_replace_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(source.os, "replace", _no_space)
    with pytest.raises(OSError):
        source.write_json(str(tmp_path / "evidence-h-1-2.json"), {"new": True})
    assert _leftovers(tmp_path) == []


ORDER = """\
import json, sys, threading
import _ddp_codemod_recorder as r

rec = r.Recorder({"DDP_CODEMOD_OUT": sys.argv[1], "DDP_CODEMOD_ROOT": sys.argv[1]})
owner = threading  # any object that takes a weak reference stands for the DDP module
inst = r._Instance(0, owner, ["w"], {"call_site": None, "frames": []})
rec.instances.append(inst)
inst.iterations = 2
rec.write(background=True)  # handed to the writer thread
number, parts = rec._made, rec._parts()  # a text as the writer thread holds it
inst.iterations = 3
rec.write()  # synchronous, made later: e.g. at exit
rec._store(number, parts)  # the writer thread getting to its text only now
with open(rec.path) as f:
    print(json.load(f)["instances"][0]["iterations"])
"""


def test_a_background_write_never_replaces_a_newer_one(tmp_path: Path):
    """A text handed to the writer thread but not written yet is older than a synchronous
    write made after it (the first iterations, exit): it must be dropped, not written."""
    done = subprocess.run(
        [sys.executable, "-c", ORDER, str(tmp_path)],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3"]
    assert _leftovers(tmp_path) == []


# Real runs ---------------------------------------------------------------------------------
COUNT_WRITES = """\
import time

WRITES = []
_replace = os.replace


def _counting(src, dst, *args, **kwargs):  # every evidence write ends in one rename
    if os.path.basename(str(dst)).startswith("evidence-"):
        WRITES.append(dst)
    return _replace(src, dst, *args, **kwargs)


os.replace = _counting
"""

MANY = """\
def main():
    dist.init_process_group("gloo")
    start = time.monotonic()
    models = [DDP(linear(), find_unused_parameters=True) for _ in range(50)]
    built = len(WRITES)
    for step in range(6):
        for model in models:
            model(batch(step)).sum().backward()
    print("WRITES", built, len(WRITES), time.monotonic() - start, flush=True)


main()
"""


def test_fifty_instances_share_their_writes(tmp_path: Path):
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + COUNT_WRITES + MANY)})
    traced = trace(repo, torchrun("train.py", nproc=1))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    (line,) = [x for x in traced.proc.stdout.splitlines() if x.startswith("WRITES")]
    built, total, elapsed = float(line.split()[1]), float(line.split()[2]), float(line.split()[3])
    assert built <= 1  # not one full write per DDP instance
    # the first min-steps iterations of all instances together, then once a second
    assert total <= built + 3 + 1 + elapsed
    (ev,) = traced.evidence
    assert len(ev["instances"]) == 50 and {i["iterations"] for i in ev["instances"]} == {6}


THREADS = """\
import atexit
import json
import sys
import threading
import time

WRITES = []  # per evidence write: made on the training (main) thread?
_replace = os.replace


def _counting(src, dst, *args, **kwargs):
    if os.path.basename(str(dst)).startswith("evidence-"):
        WRITES.append(threading.current_thread() is threading.main_thread())
    return _replace(src, dst, *args, **kwargs)


os.replace = _counting
HASHED = {}  # repo file -> hashed on the training (main) thread?
_files = sys.modules["_ddp_codemod_files"]
_sha256 = _files.file_sha256


def _hashing(path):
    HASHED[os.path.basename(path)] = threading.current_thread() is threading.main_thread()
    return _sha256(path)


_files.file_sha256 = _hashing
atexit.register(lambda: print("WRITES", json.dumps([WRITES, HASHED]), flush=True))  # last


def main():
    dist.init_process_group("gloo")
    model = DDP(linear(), find_unused_parameters=True)
    for step in range(8):
        model(batch(step)).sum().backward()
        if step >= 4:
            with open(f"data/{step}.txt") as f:  # read by the job: hashed at the next write
                f.read()
            time.sleep(0.5)  # the forward of step 6 comes > 1 s after the last eager write


main()
"""


def test_periodic_writes_leave_the_training_thread(tmp_path: Path):
    """A write once a second must not stall a step with its file I/O or with hashing the
    repo files read since the last one; the writes that make a killed run judgeable
    (construction, the first min-steps iterations) and the last one stay on the training
    thread, so they have landed when the next line of the job runs."""
    data = {f"data/{step}.txt": f"{step}\n" for step in range(4, 8)}
    repo = write_repo(tmp_path, {"train.py": script(PREAMBLE + THREADS), **data})
    traced = trace(repo, torchrun("train.py", nproc=1))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    (line,) = [x for x in traced.proc.stdout.splitlines() if x.startswith("WRITES")]
    on_main, hashed = json.loads(line.split(maxsplit=1)[1])
    assert on_main[:4] == [True] * 4  # construction + min-steps (3) iterations
    assert on_main[-1] is True  # at exit
    assert on_main[4:-1] and not any(on_main[4:-1])
    assert hashed["4.txt"] is False  # read after step 4, hashed by the periodic write
    assert hashed["7.txt"] is True  # read after the last periodic write: hashed at exit
    (ev,) = traced.evidence
    assert ev["instances"][0]["iterations"] == 8 and ev["errors"] == []
    read = {f["path"]: f["sha256"] for f in ev["files_read"]}
    for rel, text in data.items():
        assert read[rel] == hashlib.sha256(text.encode()).hexdigest()


HARD_EXIT = """\
import signal


def main():
    dist.init_process_group("gloo")
    model = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    how = os.environ["HOW"]
    for step in range(6):
        if how == "killed" and step == 3:
            model(batch(step))  # closes the third iteration, then the rank dies
            os.kill(os.getpid(), signal.SIGKILL)
        opt.zero_grad()
        model(batch(step)).sum().backward()
        opt.step()
    if how == "destroyed":
        dist.destroy_process_group()
        os.kill(os.getpid(), signal.SIGKILL)  # an abort in finalisation
    os._exit(0)  # no atexit handler runs


main()
"""


@pytest.mark.parametrize(("how", "iterations"), [("os._exit", 6), ("destroyed", 6), ("killed", 3)])
def test_the_last_iterations_reach_the_evidence(tmp_path: Path, how: str, iterations: int):
    repo = write_repo(tmp_path, {"train.py": PREAMBLE + HARD_EXIT})
    traced = trace(repo, torchrun("train.py"), env=clean_env(HOW=how))
    assert (traced.returncode == 0) is (how == "os._exit"), traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        (inst,) = ev["instances"]
        assert inst["iterations"] == iterations
        assert inst["unused"] == {}


FORKED = """\
import multiprocessing


def worker(rank, port):
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo")
    model = DDP(torch.nn.Sequential(linear(), linear()), find_unused_parameters=True)
    for step in range(4):
        model(batch(step)).sum().backward()
    dist.destroy_process_group()


if __name__ == "__main__":
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context(os.environ["START"])
    procs = [ctx.Process(target=worker, args=(r, port)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
"""


@pytest.mark.parametrize("start", ["fork", "forkserver"])
def test_forked_workers_write_their_own_evidence(tmp_path: Path, start: str):
    repo = write_repo(tmp_path, {"train.py": PREAMBLE + FORKED})
    traced = trace(repo, [PYTHON, "train.py"], env=clean_env(START=start))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    assert len({e["pid"] for e in traced.evidence}) == 2
    for ev in traced.evidence:
        (inst,) = ev["instances"]
        assert inst["iterations"] == 4 and ev["errors"] == []
    assert "ddp-codemod: wrote 2 evidence files to .ddp-codemod/" in traced.proc.stderr
