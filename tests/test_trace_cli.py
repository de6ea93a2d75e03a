"""`ddp-codemod trace` as a user runs it: environment, exit codes, signals, sitecustomize."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from codemod.recorder import FOLDER
from tests.ddp_runs import (
    PYTHON,
    TIMEOUT_S,
    clean_env,
    codemod,
    git_init,
    run_python,
    trace,
    trace_cmd,
    write_repo,
)

SHOW_ENV = (
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('DDP_CODEMOD_') or k == 'PYTHONPATH'}))"
)


def _env_seen(traced) -> dict[str, str]:
    return json.loads(traced.proc.stdout.splitlines()[0])


def test_environment_of_the_command(tmp_path: Path):
    root_commit = git_init(write_repo(tmp_path, {"README": "x\n"}))
    env = clean_env(PYTHONPATH="/somewhere/else", DDP_CODEMOD_STEPS="99")
    traced = trace(tmp_path, [PYTHON, "-c", SHOW_ENV], "--out", "ev", env=env)
    assert traced.returncode == 0, traced.proc.stderr
    seen = _env_seen(traced)
    assert seen["PYTHONPATH"] == f"{FOLDER}{os.pathsep}/somewhere/else"
    assert seen["DDP_CODEMOD_OUT"] == str(tmp_path / "ev")
    assert seen["DDP_CODEMOD_ROOT"] == str(tmp_path)
    assert json.loads(seen["DDP_CODEMOD_COMMAND"]) == [PYTHON, "-c", SHOW_ENV]
    assert len(seen["DDP_CODEMOD_RUN_ID"]) == 36
    assert seen["DDP_CODEMOD_REPO_ID"] == root_commit
    assert "DDP_CODEMOD_STEPS" not in seen  # a stale value from outside is not passed on
    assert not (tmp_path / "ev").exists()  # no DDP, no evidence: trace left no folder
    assert (
        traced.proc.stderr.strip()
        .splitlines()[-1]
        .startswith("ddp-codemod: wrote 0 evidence files to ev/")
    )


def test_steps_and_no_repo_id_outside_git(tmp_path: Path):
    traced = trace(tmp_path, [PYTHON, "-c", SHOW_ENV], "--steps", "4")
    seen = _env_seen(traced)
    assert seen["DDP_CODEMOD_STEPS"] == "4"
    assert "DDP_CODEMOD_REPO_ID" not in seen
    assert seen["PYTHONPATH"] == str(FOLDER)
    assert seen["DDP_CODEMOD_OUT"] == str(tmp_path / ".ddp-codemod")


def test_options_before_the_command_without_double_dash(tmp_path: Path):
    done = codemod(tmp_path, "trace", "--steps", "2", PYTHON, "-c", SHOW_ENV, "--not-for-trace")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[0])["DDP_CODEMOD_STEPS"] == "2"


def test_missing_command_exits_127_with_one_line(tmp_path: Path):
    traced = trace(tmp_path, ["no-such-command-ddp-codemod"])
    assert traced.returncode == 127
    assert traced.proc.stderr.strip().splitlines() == [
        "ddp-codemod: error: command not found: no-such-command-ddp-codemod"
    ]


def test_failing_command_exit_status_is_passed_on(tmp_path: Path):
    assert trace(tmp_path, [PYTHON, "-c", "raise SystemExit(3)"]).returncode == 3


def test_trace_requires_a_command(tmp_path: Path):
    traced = trace(tmp_path, [])
    assert traced.returncode == 2
    assert "Missing argument" in traced.proc.stderr


SITECUSTOMIZE = """\
import os

MARK = __name__
if "DDP_CODEMOD_RUN_ID" in os.environ:  # the traced command, not trace's own Python
    print("repo sitecustomize ran")
"""


def test_repo_sitecustomize_still_runs_and_torch_is_not_imported_early(tmp_path: Path):
    site = write_repo(
        tmp_path / "site",
        {"sitecustomize.py": SITECUSTOMIZE},
    )
    probe = (
        "import sys, sitecustomize\n"
        "print(sitecustomize.MARK, sitecustomize.__file__)\n"
        "print('torch' in sys.modules)\n"
        "print([type(f).__name__ for f in sys.meta_path if 'DDP' in type(f).__name__])\n"
    )
    traced = trace(tmp_path, [PYTHON, "-c", probe], env=clean_env(PYTHONPATH=str(site)))
    assert traced.returncode == 0, traced.proc.stderr
    assert traced.proc.stdout.splitlines() == [
        "repo sitecustomize ran",
        f"sitecustomize {site / 'sitecustomize.py'}",
        "False",
        "['_DDPFinder']",
    ]


def test_recorder_patches_ddp_without_changing_the_module(tmp_path: Path):
    probe = (
        "import importlib.machinery, torch\n"
        "from torch.nn.parallel import distributed as d\n"
        "print(hasattr(d.DistributedDataParallel, '_ddp_codemod_original_init'))\n"
        "print(type(d.__loader__) is importlib.machinery.SourceFileLoader)\n"
        "print(d.__spec__.loader is d.__loader__)\n"
    )
    traced = trace(tmp_path, [PYTHON, "-c", probe])
    assert traced.returncode == 0, traced.proc.stderr
    assert traced.proc.stdout.splitlines() == ["True", "True", "True"]
    assert traced.evidence == []  # torch imported, no DDP built: no file


def test_trace_itself_does_not_import_torch(tmp_path: Path):
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('torch imported:', 'torch' in sys.modules))\n"
        "from codemod.cli.main import main\n"
        f"main(['trace', '--', {PYTHON!r}, '-c', 'pass'])\n"
    )
    done = run_python(probe, tmp_path, TIMEOUT_S)
    assert done.stdout.strip() == "torch imported: False"


def test_sigint_is_forwarded_and_its_status_passed_on(tmp_path: Path):
    child = "import os, signal; print('ready', os.getpid(), flush=True); signal.pause()"
    proc = subprocess.Popen(
        [*trace_cmd(), "--", PYTHON, "-c", child],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child_pid = None
    try:
        assert proc.stdout is not None
        word, pid = proc.stdout.readline().split()
        assert word == "ready"
        child_pid = int(pid)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT_S) == 128 + signal.SIGINT
        assert "KeyboardInterrupt" in (proc.stderr.read() if proc.stderr else "")
    finally:
        if proc.poll() is None:
            proc.kill()
        if child_pid is not None:
            with contextlib.suppress(ProcessLookupError):  # only if forwarding failed
                os.kill(child_pid, signal.SIGKILL)
        proc.communicate()


def test_trace_help_names_its_options():
    done = subprocess.run(
        [sys.executable, "-m", "codemod", "trace", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "--steps N" in done.stdout and "--out DIR" in done.stdout


def test_out_that_cannot_be_a_folder_is_a_usage_error(tmp_path: Path):
    (tmp_path / "taken").write_text("")
    traced = trace(tmp_path, [PYTHON, "-c", "print('ran')"], "--out", "taken")
    assert traced.returncode == 2
    assert traced.proc.stdout == ""
    assert traced.proc.stderr.startswith("ddp-codemod: error: cannot create ")


# Where the evidence goes ----------------------------------------------------------------------
def test_a_run_without_ddp_leaves_no_evidence_folder(tmp_path: Path):
    git_init(write_repo(tmp_path, {"README": "x\n"}))
    for args in ((), ("--out", "a/b/c")):
        traced = trace(tmp_path, [PYTHON, "-c", "pass"], *args)
        assert traced.returncode == 0, traced.proc.stderr
        assert "wrote 0 evidence files" in traced.proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git", "README"]


def test_an_evidence_folder_that_was_there_stays(tmp_path: Path):
    (tmp_path / "a" / ".ddp-codemod").mkdir(parents=True)
    assert trace(tmp_path, [PYTHON, "-c", "pass"], "--out", "a/.ddp-codemod/b").returncode == 0
    assert trace(tmp_path / "a", [PYTHON, "-c", "pass"]).returncode == 0
    assert [p.name for p in (tmp_path / "a").iterdir()] == [".ddp-codemod"]
    assert list((tmp_path / "a" / ".ddp-codemod").iterdir()) == []


def test_trace_below_the_repo_root_says_where_the_evidence_went(tmp_path: Path):
    from codemod.evidence.trace import below_root_warning

    git_init(write_repo(tmp_path, {"sub/train.py": "x = 1\n"}))
    traced = trace(tmp_path / "sub", [PYTHON, "-c", "pass"])
    lines = traced.proc.stderr.strip().splitlines()
    assert lines == [
        f"ddp-codemod: warning: trace ran in sub/, below the repo root {tmp_path}: evidence "
        f"would name paths relative to sub/; run trace from {tmp_path}",
        "ddp-codemod: wrote 0 evidence files to .ddp-codemod/ (the recorder loaded in 1 "
        "process; no process built a DistributedDataParallel)",
    ]
    sub = tmp_path / "sub"
    wrote = below_root_warning(tmp_path, sub / ".ddp-codemod", sub, wrote=True)
    assert "went to sub/.ddp-codemod/" in wrote and "`ddp-codemod scan sub`" in wrote
    assert "refuses it with --evidence" in wrote
    elsewhere = below_root_warning(tmp_path, tmp_path / "ev", sub, wrote=True)
    assert (
        f"went to {tmp_path / 'ev'}" in elsewhere and f"--evidence {tmp_path / 'ev'}" in elsewhere
    )
    # at the root, or in a folder that is a root of its own, no warning
    assert "warning" not in trace(tmp_path, [PYTHON, "-c", "pass"]).proc.stderr
    write_repo(tmp_path, {"sub/pyproject.toml": "[tool.ddp-codemod]\n"})
    assert "warning" not in trace(tmp_path / "sub", [PYTHON, "-c", "pass"]).proc.stderr


# What trace says when no evidence came --------------------------------------------------
DDP_IN_FORKED_CHILD = """\
import os
import socket

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
pid = os.fork()
if pid == 0:
    if os.environ.get("BREAK_OUT"):  # the evidence folder becomes a file: writes fail
        os.rmdir(os.environ["DDP_CODEMOD_OUT"])
        open(os.environ["DDP_CODEMOD_OUT"], "w").close()
    dist.init_process_group("gloo")
    model = DDP(torch.nn.Linear(4, 4), find_unused_parameters=True)
    for _ in range(3):
        model(torch.randn(2, 4)).sum().backward()
    dist.destroy_process_group()
    os._exit(0)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""


def _summary(traced) -> str:
    return traced.proc.stderr.strip().splitlines()[-1]


def test_summary_counts_the_processes_a_forked_child_included(tmp_path: Path):
    write_repo(tmp_path, {"train.py": DDP_IN_FORKED_CHILD})
    traced = trace(tmp_path, [PYTHON, "train.py"])
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert _summary(traced) == "ddp-codemod: wrote 1 evidence file to .ddp-codemod/"
    (ev,) = traced.evidence
    assert ev["parent_pid"] is not None and ev["instances"][0]["iterations"] == 3


def test_summary_says_why_no_evidence_was_written(tmp_path: Path):
    write_repo(tmp_path, {"train.py": DDP_IN_FORKED_CHILD})
    traced = trace(tmp_path, [PYTHON, "train.py"], env=clean_env(BREAK_OUT="1"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    line = _summary(traced)
    assert line.startswith("ddp-codemod: wrote 0 evidence files to .ddp-codemod/ (")
    assert "the recorder loaded in 2 processes" in line
    assert "1 built a DistributedDataParallel" in line
    assert "0 wrote evidence" in line
    assert "1 failed to write (FileExistsError: " in line  # os.makedirs on a file


def test_summary_when_no_process_loaded_the_recorder(tmp_path: Path):
    command = ["sh", "-c", f"PYTHONPATH=/somewhere/else exec {PYTHON} -c pass"]
    traced = trace(tmp_path, command)
    assert traced.returncode == 0, traced.proc.stderr
    line = _summary(traced)
    assert line.startswith("ddp-codemod: wrote 0 evidence files to .ddp-codemod/ (")
    assert "no process of the command loaded the recorder" in line
    assert "PYTHONPATH" in line and str(FOLDER) in line


def test_summary_when_the_recorder_loaded_but_no_ddp_was_built(tmp_path: Path):
    traced = trace(tmp_path, [PYTHON, "-c", "import torch"])
    assert traced.returncode == 0, traced.proc.stderr
    assert _summary(traced) == (
        "ddp-codemod: wrote 0 evidence files to .ddp-codemod/ (the recorder loaded in 1 "
        "process; no process built a DistributedDataParallel)"
    )
    assert not list(tmp_path.glob("**/*.jsonl"))  # status files do not stay behind


RACE = """\
import os, signal, subprocess, sys
from pathlib import Path

from codemod.evidence import trace

real = subprocess.Popen


def popen(cmd, *args, **kwargs):  # the signal lands just before the child exists
    if cmd[-1] == CHILD:  # not git's calls
        os.kill(os.getpid(), signal.SIGINT)
    return real(cmd, *args, **kwargs)


CHILD = "import signal; signal.pause()"
trace.subprocess.Popen = popen
root = Path(sys.argv[1])
job = trace.Trace((sys.executable, "-c", CHILD), root / "out", root, None, "run-1")
print(trace.run(job).status, flush=True)
"""


def test_a_signal_that_lands_before_the_child_starts_is_passed_on(tmp_path: Path):
    """The forwarding handlers are in place before the child starts: a SIGINT in that
    window used to end trace alone (KeyboardInterrupt) and leave the command running."""
    done = subprocess.run(
        [PYTHON, "-c", RACE, str(tmp_path)],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(128 + signal.SIGINT)
