"""The recorder's code-path recording in one process: which lines it notes, and how.

Each case runs a small script in a fresh interpreter (tracers and monitoring tools are
process-wide): it records a tiny model through the recorder's probe entry points
(`on_init(by_forward=False)`, `open_step`, `close_step`), as a probe rank does. On
Python >= 3.12 the recorder uses `sys.monitoring`; the settrace path is forced there too,
and both must give the same evidence. On 3.8-3.11 only settrace exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from codemod.recorder import FOLDER
from tests.ddp_runs import run_json, write_repo

MONITORING = sys.version_info >= (3, 12)
NEEDS_MONITORING = pytest.mark.skipif(
    not MONITORING, reason=f"sys.monitoring needs Python >= 3.12; this is {sys.version.split()[0]}"
)

MODEL = """\
import torch


def helper(x):
    if x.abs().sum() > 1e9:
        return x * 0
    return x


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


class Net(torch.nn.Module):
    def __init__(self, frozen=False):
        super().__init__()
        self.body = Block()
        self.head = torch.nn.Linear(4, 4)
        self.frozen = frozen

    def forward(self, x, step):
        x = helper(self.body(x))
        if self.frozen:
            return x.sum()
        if step >= 2:
            x = self.head(x)
        return x.sum()
"""

# MODE: "auto" (what the recorder picks), "settrace" (sys.monitoring made unavailable),
# "taken" (every monitoring tool id held by someone else), "tracer" (someone else's tracer
# already installed), "taken+tracer" (both).
SCRIPT = """\
import json, os, sys
sys.path.insert(0, {folder!r})
sys.path.insert(0, os.getcwd())
import torch
import _ddp_codemod_recorder as r
import model

MODE, LIMIT, STEPS = {mode!r}, {limit}, {steps}
mon = getattr(sys, "monitoring", None)
if MODE == "settrace":
    r._Monitor.claim = classmethod(lambda cls, callback: None)
if "taken" in MODE:
    for tool in range(6):
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, "someone else")
if "tracer" in MODE:
    sys.settrace(lambda *a: None)


class FakeDDP:  # what on_init reads of a DistributedDataParallel
    def __init__(self, module):
        self.module = module


rec = r.Recorder({{"DDP_CODEMOD_ROOT": os.getcwd(), "DDP_CODEMOD_OUT": "out",
                  "DDP_CODEMOD_RECORD_PATHS": str(LIMIT)}})
nets = [model.Net(), model.Net(frozen=True)][: {instances}]
ddps = [FakeDDP(net) for net in nets]
insts = [rec.on_init(ddp, sys._getframe(), {{}}, by_forward=False) for ddp in ddps]
during = []
for step in range(STEPS):
    for ddp, inst in zip(ddps, insts):
        rec.open_step(inst, ddp)
        during.append(sys.gettrace() is not None)
        ddp.module(torch.randn(2, 4), step).backward()
        rec.close_step(inst)
tools = [mon.get_tool(t) for t in range(6)] if mon else []
print(json.dumps({{
    "paths": [r._paths_json(inst) for inst in insts],
    "errors": rec.errors,
    "settrace_during": during,
    "ours_left": "ddp-codemod" in tools,
    "trace_after": sys.gettrace() is not None,
}}))
"""


def record(tmp_path: Path, mode: str = "auto", limit: int = 2, steps: int = 4, instances: int = 1):
    write_repo(tmp_path, {"model.py": MODEL})
    script = SCRIPT.format(
        folder=str(FOLDER), mode=mode, limit=limit, steps=steps, instances=instances
    )
    out = run_json(script, tmp_path)
    assert out["errors"] == [], out["errors"]
    return out


def line(text: str) -> int:
    """The first line of MODEL that is `text`, or starts with it."""
    return next(n for n, src in enumerate(MODEL.splitlines(), 1) if src.strip().startswith(text))


def lines(paths: dict) -> set[int]:
    return set(paths["files"]["model.py"]["lines"])


def check_first_two_steps(out: dict) -> None:
    (paths,) = out["paths"]
    ran = lines(paths)
    assert paths["recorded_iterations"] == 2
    assert {line("return self.fc(x)"), line("x = helper("), line("if x.abs()")} <= ran
    assert line("if self.frozen:") in ran and line("if step >= 2:") in ran
    assert line("return x * 0") not in ran  # the helper's branch no step took
    assert line("return x.sum()") not in ran  # the frozen arm
    assert line("x = self.head(x)") not in ran  # step 2 came after the recorded steps
    (entry,) = [m for m in paths["modules"]["model.py"] if m["class"] == "Net"]
    assert entry["params"] == ["body", "head"]
    assert not out["ours_left"]  # the monitoring tool id is given back


def test_the_first_n_steps_are_recorded_and_then_recording_stops(tmp_path: Path):
    out = record(tmp_path)
    check_first_two_steps(out)
    assert not out["trace_after"]
    # on 3.12+ sys.monitoring records, and no tracer is ever installed
    assert out["settrace_during"] == [not MONITORING] * 2 + [False] * 2


def test_the_settrace_path_records_the_same(tmp_path: Path):
    out = record(tmp_path, "settrace")
    check_first_two_steps(out)
    assert not out["trace_after"]
    assert out["settrace_during"] == [True, True, False, False]


def test_every_step_recorded_takes_the_later_arm(tmp_path: Path):
    (paths,) = record(tmp_path, limit=4)["paths"]
    assert paths["recorded_iterations"] == 4
    assert line("x = self.head(x)") in lines(paths)


def test_two_instances_each_get_the_lines_their_own_forwards_ran(tmp_path: Path):
    for mode in ("auto", "settrace"):
        plain, frozen = record(tmp_path, mode, instances=2)["paths"]
        assert line("return x.sum()") in lines(frozen)  # the frozen arm: only the second
        assert line("if step >= 2:") not in lines(frozen)
        assert line("if step >= 2:") in lines(plain)
        assert line("x = helper(") in lines(plain) & lines(frozen)  # shared lines: both


@NEEDS_MONITORING
def test_sys_monitoring_and_settrace_give_identical_evidence(tmp_path: Path):
    for instances in (1, 2):
        auto = record(tmp_path, "auto", instances=instances)
        forced = record(tmp_path, "settrace", instances=instances)
        assert auto["paths"] == forced["paths"]
        assert auto["settrace_during"] != forced["settrace_during"]  # two different backends


@NEEDS_MONITORING
def test_every_tool_id_taken_falls_back_to_settrace(tmp_path: Path):
    out = record(tmp_path, "taken")
    check_first_two_steps(out)
    assert out["settrace_during"] == [True, True, False, False]


@NEEDS_MONITORING
def test_every_tool_id_taken_under_a_tracer_is_skipped_and_said(tmp_path: Path):
    (paths,) = record(tmp_path, "taken+tracer")["paths"]
    assert paths == {"skipped": "no free monitoring tool id", "recorded_iterations": 0}


@NEEDS_MONITORING
def test_sys_monitoring_records_under_another_tracer(tmp_path: Path):
    check_first_two_steps(record(tmp_path, "tracer"))


@pytest.mark.skipif(MONITORING, reason="on Python >= 3.12 sys.monitoring records under a tracer")
def test_another_tracer_means_no_paths_and_says_so(tmp_path: Path):
    (paths,) = record(tmp_path, "tracer")["paths"]
    assert paths == {"skipped": "another tracer is active", "recorded_iterations": 0}
