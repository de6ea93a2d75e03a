"""Path recording costs the job only inside the DDP forward, and only while an instance is
under its limit: a real torchrun job at world size 2 notes, in each step, whether a tracer
was installed inside the forward, in the loss after it, in backward and in the optimizer.

On 3.8-3.11 the recorder's settrace tracer is global (every Python call of the thread pays
for it); on 3.12+ sys.monitoring events fire only in the watched files' code, so
`sys.gettrace()` stays None there throughout and the test checks only that.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.ddp_runs import Traced, git_init, script, torchrun, trace, write_repo

MODEL = """\
import sys

import torch

SEEN = []


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        SEEN.append(("forward", sys.gettrace() is not None))
        if x.isnan().any():  # never taken: an arm still to see keeps each forward traced
            return x.sum()
        return self.fc(x).sum()
"""

# every line runs at the first forward: nothing is left to see after it
STRAIGHT = MODEL.replace(
    "        if x.isnan().any():  # never taken: an arm still to see keeps each forward traced\n"
    "            return x.sum()\n",
    "",
)
assert STRAIGHT != MODEL

TRAIN = """\
import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import model

dist.init_process_group("gloo")
torch.manual_seed(0)
a = DDP(model.Net(), find_unused_parameters=True)  # steps 6 times
b = DDP(model.Net(), find_unused_parameters=True)  # steps once, then stays alive, idle
opt = torch.optim.SGD(a.parameters(), lr=0.01)
b(torch.randn(2, 4)).backward()
for step in range(6):
    loss = a(torch.randn(2, 4))
    model.SEEN.append(("after forward", sys.gettrace() is not None))
    loss.backward()
    model.SEEN.append(("after backward", sys.gettrace() is not None))
    opt.step()
    model.SEEN.append(("after step", sys.gettrace() is not None))
rank = dist.get_rank()
with open(f"seen-{rank}.json", "w") as f:
    json.dump(model.SEEN, f)
dist.destroy_process_group()
"""


def _run(tmp_path: Path, model: str, train: str, limit: int) -> tuple[Traced, list[list[tuple]]]:
    """A traced torchrun of `train` and, per rank, the (where, traced) notes it wrote."""
    write_repo(tmp_path, {"model.py": model, "train.py": script(train)})
    git_init(tmp_path)
    traced = trace(tmp_path, torchrun("train.py"), "--record-paths", str(limit))
    assert traced.returncode == 0, traced.proc.stderr
    seen = [json.loads((tmp_path / f"seen-{rank}.json").read_text()) for rank in (0, 1)]
    return traced, [[tuple(e) for e in notes] for notes in seen]


def test_the_tracer_runs_only_inside_forwards_under_the_limit(tmp_path: Path):
    traced, by_rank = _run(tmp_path, MODEL, TRAIN, 3)
    for seen in by_rank:
        outside = [on for where, on in seen if where != "forward"]
        assert not any(outside), seen  # loss, backward, optimizer: never traced
        forwards = [on for where, on in seen if where == "forward"]
        assert len(forwards) == 7  # b once, then a six times
        if sys.version_info < (3, 12):
            # b's forward, then a's first three (its limit); a's later forwards untraced
            # although b, alive and idle, never reached its limit
            assert forwards == [True, True, True, True, False, False, False], seen
        else:
            assert not any(forwards), seen  # sys.monitoring installs no tracer
    a_paths = [i["paths"] for e in traced.evidence for i in e["instances"]]
    assert a_paths and all(p.get("files", {}).get("model.py") for p in a_paths)


STRAIGHT_TRAIN = """\
import json
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import model

dist.init_process_group("gloo")
torch.manual_seed(0)
a = DDP(model.Net(), find_unused_parameters=True)
bare = torch.nn.Linear(4, 4)  # no repo code inside: nothing to see at all
bare.register_forward_pre_hook(
    lambda m, args: model.SEEN.append(("bare", sys.gettrace() is not None))
)
b = DDP(bare, find_unused_parameters=True)
for step in range(5):
    a(torch.randn(2, 4)).backward()
    b(torch.randn(2, 4)).sum().backward()
with open(f"seen-{dist.get_rank()}.json", "w") as f:
    json.dump(model.SEEN, f)
dist.destroy_process_group()
"""


def test_a_forward_with_nothing_left_to_see_is_not_traced(tmp_path: Path):
    traced, by_rank = _run(tmp_path, STRAIGHT, STRAIGHT_TRAIN, 4)
    for seen in by_rank:
        forwards = [on for where, on in seen if where == "forward"]
        bare = [on for where, on in seen if where == "bare"]
        assert len(forwards) == len(bare) == 5
        if sys.version_info < (3, 12):
            # a: traced once, then every line of its code had run; b: no repo code at all
            assert forwards == [True, False, False, False, False], seen
        else:
            assert not any(forwards), seen
        assert not any(bare), seen
    lines = {
        n
        for e in traced.evidence
        for i in e["instances"]
        for n in i["paths"].get("files", {}).get("model.py", {}).get("lines", [])
    }
    body = STRAIGHT.splitlines()
    assert {body.index(t) + 1 for t in body if t.startswith("        SEEN.append")} <= lines
    a_iterations = [
        i["paths"]["recorded_iterations"]
        for e in traced.evidence
        for i in e["instances"]
        if i["paths"].get("files")
    ]
    assert a_iterations == [4, 4]  # one per rank: the untraced forwards count as recorded
