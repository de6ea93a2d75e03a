"""Config evidence from real traced runs: a YAML-driven script and an mmengine Runner.

The recorder notes which repo files each process opened (with their hashes); a config read
by a clean run is safe, one read by a run that left parameters without a gradient is
unsafe, a config no run read stays unknown, and a base config stays untouched while a
config inheriting it is untraced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ddp_runs import codemod, require, script, torchrun, trace, write_repo

YAML_TRAIN = """\
import argparse

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP


class Net(torch.nn.Module):
    def __init__(self, aux_head):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.aux = torch.nn.Linear(4, 4) if aux_head else None

    def forward(self, x):
        return self.body(x)  # the aux head is built but never called


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    with open(parser.parse_args().config) as f:
        cfg = yaml.safe_load(f)
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    model = DDP(Net(cfg["model"]["aux_head"]), find_unused_parameters=cfg["find_unused_parameters"])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(cfg["steps"]):
        opt.zero_grad()
        model(torch.randn(2, 4)).sum().backward()
        opt.step()


main()
dist.destroy_process_group()
"""


def yaml_config(aux_head: bool) -> str:
    return (
        "# experiment\n"
        f"model:\n  aux_head: {str(aux_head).lower()}\n"
        "steps: 5\n"
        "find_unused_parameters: true  # copied from the detector config\n"
    )


def config_sites(repo: Path) -> dict[str, dict]:
    result = codemod(repo, "scan", ".", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {
        s["path"]: s
        for s in json.loads(result.stdout)["sites"]
        if s["kind"] in ("yaml", "config-py")
    }


def test_yaml_configs_traced_by_a_script(tmp_path: Path):
    repo = write_repo(
        tmp_path,
        {
            "train.py": script(YAML_TRAIN),
            "configs/small.yaml": yaml_config(aux_head=False),
            "configs/aux.yaml": yaml_config(aux_head=True),
            "configs/untraced.yaml": yaml_config(aux_head=False),
        },
    )
    for config in ("configs/small.yaml", "configs/aux.yaml"):
        traced = trace(repo, torchrun("train.py", "--config", config))
        assert traced.returncode == 0, traced.proc.stderr[-2000:]
    configs = {"configs/small.yaml", "configs/aux.yaml"}
    for evidence in traced.evidence:  # every process of both runs
        read = {f["path"] for f in evidence["files_read"]}
        assert "train.py" in read and len(read & configs) == 1  # its run's config only
    assert not any("site-packages" in p for p in read)

    sites = config_sites(repo)
    assert {p: s["verdict"] for p, s in sites.items()} == {
        "configs/small.yaml": "safe",
        "configs/aux.yaml": "unsafe",
        "configs/untraced.yaml": "unknown",
    }
    assert sites["configs/aux.yaml"]["unused"] == {"aux.bias": 5, "aux.weight": 5}

    result = codemod(repo, "apply", ".", "--dry-run")
    assert result.returncode == 1, result.stderr
    assert result.stdout == (
        "--- a/configs/small.yaml\n+++ b/configs/small.yaml\n@@ -2,4 +2,4 @@\n"
        " model:\n   aux_head: false\n steps: 5\n"
        "-find_unused_parameters: true  # copied from the detector config\n"
        "+find_unused_parameters: false  # copied from the detector config\n"
    )


MM_TRAIN = """\
import sys

import torch
from mmengine.config import Config
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.registry import DATASETS, MODEL_WRAPPERS, MODELS
from mmengine.runner import Runner
from torch import nn


@MODELS.register_module()
class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode="tensor"):
        out = self.fc(inputs)
        if mode == "loss":
            return {"loss": ((out - labels) ** 2).mean()}
        return out


@DATASETS.register_module()
class ToyDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g), labels=torch.randn(2, generator=g))


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    \"\"\"mmengine passes device_ids=[LOCAL_RANK], which only GPU modules accept.\"\"\"

    def __init__(self, module, device_ids=None, **kwargs):
        super().__init__(module=module, device_ids=None, **kwargs)


torch.distributed.init_process_group("gloo")  # mmengine's own init calls torch.cuda
Runner.from_cfg(Config.fromfile(sys.argv[1])).train()
"""

MM_BASE = """\
default_scope = None
launcher = 'pytorch'
env_cfg = dict(dist_cfg=dict(backend='gloo'))
model_wrapper_cfg = dict(type='CPUDistributedDataParallel', find_unused_parameters=True)
"""

MM_CHILD = """\
_base_ = ['./_base_/runtime.py']
model = dict(type='ToyModel')
train_dataloader = dict(
    dataset=dict(type='ToyDataset'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    batch_size=4,
    num_workers=0)
train_cfg = dict(by_epoch=False, max_iters=4, val_interval=1000)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1000))
work_dir = './work_dirs/{name}'
"""


@pytest.fixture
def mmengine_repo(tmp_path: Path) -> Path:
    require("mmengine")
    return write_repo(
        tmp_path,
        {
            "train.py": script(MM_TRAIN),
            "configs/_base_/runtime.py": MM_BASE,
            "configs/toy.py": MM_CHILD.format(name="toy"),
            "configs/toy_long.py": MM_CHILD.format(name="toy_long").replace(
                "max_iters=4", "max_iters=6"
            ),
        },
    )


def test_mmengine_base_config_needs_every_child_traced(mmengine_repo: Path):
    repo = mmengine_repo
    base = "configs/_base_/runtime.py"
    traced = trace(repo, torchrun("train.py", "configs/toy.py"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    site = config_sites(repo)[base]
    assert (site["setting"], site["verdict"]) == (
        "model_wrapper_cfg.find_unused_parameters",
        "unknown",
    )
    assert "inherited by configs/toy_long.py, which no evidence" in site["reason"]
    assert codemod(repo, "apply", ".", "--dry-run").stdout == ""

    traced = trace(repo, torchrun("train.py", "configs/toy_long.py"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert config_sites(repo)[base]["verdict"] == "safe"
    result = codemod(repo, "apply", ".")
    assert result.returncode == 1, result.stderr
    assert (repo / base).read_text() == MM_BASE.replace(
        "find_unused_parameters=True", "find_unused_parameters=False"
    )
