"""How the recorder notes gradients: one post-accumulate-grad hook per trainable parameter
(torch >= 2.1; PyTorch calls it with one tensor, where an AccumulateGrad node hook gets two
tuples built for each call), a partial of a dict's `__setitem__`, so no Python frame runs
per parameter per backward, removed when the DDP is freed, so a model that outlives its DDP
and is wrapped again reports only to the new one. Real DDP, world size 1 on gloo."""

from __future__ import annotations

import sys
from pathlib import Path

from codemod.recorder import FOLDER
from tests.ddp_runs import free_port, run_json

SCRIPT = """\
import gc, json, os, sys
sys.path.insert(0, {folder!r})
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}", RANK="0", WORLD_SIZE="1")
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
import _ddp_codemod_recorder as r


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 4)

    def forward(self, x, use_head):
        x = self.body(x)
        return (self.head(x) if use_head else x).sum()


def hooks(model):
    return [len(p._post_accumulate_grad_hooks or {{}}) for p in model.parameters()]


def hook_kinds(model):
    return sorted({{type(h).__name__ for p in model.parameters()
                   for h in (p._post_accumulate_grad_hooks or {{}}).values()}})


dist.init_process_group("gloo")
rec = r.Recorder({{"DDP_CODEMOD_ROOT": os.getcwd(), "DDP_CODEMOD_OUT": "out",
                  "DDP_CODEMOD_RECORD_PATHS": "0"}})
model = Net()
first = DDP(model, find_unused_parameters=True)
a = rec.on_init(first, sys._getframe(), {{}})
out = {{"while_alive": hooks(model), "nodes": len(a.nodes), "kinds": hook_kinds(model)}}
for use_head in (True, False, True):
    first(torch.randn(2, 4), use_head).backward()
first(torch.randn(2, 4), True)  # closes the third iteration
out["a_unused"] = a.unused
del first
gc.collect()
out["after_free"] = hooks(model)
second = DDP(model, find_unused_parameters=True)
b = rec.on_init(second, sys._getframe(), {{}})
for use_head in (False, False):
    second(torch.randn(2, 4), use_head).backward()
second(torch.randn(2, 4), True)
out["a_unused_later"] = a.unused
out["b_unused"] = b.unused
out["errors"] = rec.errors
dist.destroy_process_group()
print(json.dumps(out))
"""


def test_one_hook_per_parameter_gone_with_its_ddp(tmp_path: Path):
    out = run_json(SCRIPT.format(folder=str(FOLDER), port=free_port()), tmp_path)
    assert out["errors"] == []
    assert out["while_alive"] == [1, 1, 1, 1] and out["nodes"] == 0
    # a partial of dict.__setitem__, not a Python function: no frame per parameter per backward
    assert out["kinds"] == ["partial"]
    assert out["a_unused"] == {"head.weight": 1, "head.bias": 1}
    assert out["after_free"] == [0, 0, 0, 0]
    assert out["a_unused_later"] == out["a_unused"]  # the freed DDP's record saw no more
    assert out["b_unused"] == {"head.weight": 2, "head.bias": 2}


def test_the_node_hook_of_older_torch_notes_only_a_real_gradient():
    sys.path.insert(0, str(FOLDER))
    import _ddp_codemod_recorder as recorder

    inst = recorder._Instance(0, recorder, ["w", "b"], {})  # any weakly referenceable object
    hook = inst.hook(1)
    inst.open(True)
    hook((), (None,))
    assert inst.close() and inst.unused == {"w": 1, "b": 1}
    inst.open(True)
    hook((), (object(),))
    assert inst.close() and inst.unused == {"w": 2, "b": 1}
