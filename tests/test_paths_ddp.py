"""Code paths a short trace never took: real torchrun runs at world size 2 on gloo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ddp_runs import codemod, git_init, script, torchrun, trace, write_repo

HEAD = """\
import random

import torch


class Net(torch.nn.Module):
    def __init__(self, with_aux=False):
        super().__init__()
        self.body = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 4)
        self.aux = torch.nn.Linear(4, 4)
        self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4) for _ in range(2)])
        self.act = torch.nn.ReLU()
        self.with_aux = with_aux
        self.head_frozen = False
        self.p = 0.002

    def forward(self, x, targets):
        x = self.act(self.body(x)) if self.training else torch.tanh(self.body(x))
        y = self.aux(x).sum()
"""
FORWARDS = {
    "frozen": """\
        for layer in self.layers:
            x = layer(x)
        if self.head_frozen:
            return x.sum() + y
        return self.head(x).sum() + y
""",
    "layerdrop": """\
        for layer in self.layers:
            if self.training and random.random() < self.p:
                continue
            x = layer(x)
        return self.head(x).sum() + y
""",
    "empty": """\
        for layer in self.layers:
            x = layer(x)
        if targets.numel() == 0:
            return x.sum() + y
        return self.head(x).sum() + y
""",
    "plain": """\
        for layer in self.layers:
            x = layer(x)
        if self.with_aux:
            y = y + self.aux(x).sum()
        if not self.training:
            return x.sum()
        return self.head(x).sum() + y
""",
}

TRAIN = """\
import random
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import model

feed_empty = "--feed-empty" in sys.argv
freeze_at = int(sys.argv[sys.argv.index("--freeze-at") + 1]) if "--freeze-at" in sys.argv else 200
dist.init_process_group("gloo")
torch.manual_seed(0)
random.seed(0)  # LayerDrop's 12 draws per rank stay above p (unseeded: ~5% took the arm)
net = model.Net(with_aux=True)
if "--p" in sys.argv:
    net.p = float(sys.argv[sys.argv.index("--p") + 1])
if "--compile" in sys.argv:
    net = torch.compile(net, backend="eager")
ddp = DDP(net, find_unused_parameters=True)  # site: ddp
opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
for step in range(6):
    ddp.module.head_frozen = step >= freeze_at
    n = 0 if feed_empty and step == 3 else 2
    loss = ddp(torch.randn(2, 4), torch.zeros(n))
    loss.backward()
    opt.step()
    opt.zero_grad()
dist.destroy_process_group()
"""


def _site(repo: Path, mode: str, *args: str, expect: str = "") -> dict:
    (repo / "model.py").write_text(HEAD + FORWARDS[mode], encoding="utf-8")
    traced = trace(repo, torchrun("train.py", *args))
    assert traced.returncode == 0, traced.proc.stderr
    if expect:  # trace's own last lines name the branch
        assert "ddp-codemod: DDP at train.py:" in traced.proc.stderr
        assert expect in traced.proc.stderr.splitlines()[-1]
    result = codemod(repo, "scan", ".", "--format", "json")
    assert result.returncode == 0, result.stderr
    (site,) = json.loads(result.stdout)["sites"]
    return site


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_repo(tmp_path, {"model.py": HEAD, "train.py": script(TRAIN)})
    git_init(tmp_path)
    return tmp_path


def _line(repo: Path, text: str) -> int:
    lines = (repo / "model.py").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_a_freeze_flag_set_by_the_training_loop_is_unknown_and_taken_unsafe(repo: Path):
    site = _site(repo, "frozen", expect="1 branch that could skip parameters never ran")
    assert site["verdict"] == "unknown", site["reason"]
    line = _line(repo, "return x.sum() + y")
    assert f"model.py:{line} `if self.head_frozen:` (skips head)" in (site["reason"])
    (branch,) = site["unexercised"]
    assert branch["skips"] == ["head"] and "assigned outside the class" in branch["why"]
    for stale in (repo / ".ddp-codemod").glob("*.json"):
        stale.unlink()
    site = _site(repo, "frozen", "--freeze-at", "3")  # traced long enough to take it
    assert site["verdict"] == "unsafe", site["reason"]
    assert set(site["unused"]) == {"head.weight", "head.bias"}


def test_layerdrop_with_a_small_p_keeps_the_site_unknown_and_a_large_one_unsafe(repo: Path):
    site = _site(repo, "layerdrop")
    assert site["verdict"] == "unknown", site["reason"]
    (branch,) = site["unexercised"]
    assert branch["line"] == _line(repo, "continue") and branch["skips"] == ["layers"]
    assert "a random draw" in branch["why"]
    for stale in (repo / ".ddp-codemod").glob("*.json"):
        stale.unlink()
    site = _site(repo, "layerdrop", "--p", "0.5")  # seeded: some of the 12 draws skip
    assert site["verdict"] == "unsafe", site["reason"]
    assert set(site["unused"]) <= {f"layers.{i}.{w}" for i in (0, 1) for w in ("weight", "bias")}
    assert site["unused"]


def test_an_early_return_on_empty_targets_never_taken_is_unknown_and_taken_unsafe(repo: Path):
    site = _site(repo, "empty")
    assert site["verdict"] == "unknown", site["reason"]
    (branch,) = site["unexercised"]
    assert branch["condition"] == "if targets.numel() == 0:"
    assert "tensor values or shapes (`targets`)" in branch["why"]
    for stale in (repo / ".ddp-codemod").glob("*.json"):
        stale.unlink()
    site = _site(repo, "empty", "--feed-empty")
    assert site["verdict"] == "unsafe", site["reason"]
    assert set(site["unused"]) == {"head.weight", "head.bias"}


def test_training_activation_and_config_branches_are_safe_and_listed(repo: Path):
    site = _site(repo, "plain")
    assert site["verdict"] == "safe", site["reason"]
    assert "unexercised" not in site
    fixed = [b["condition"] for b in site["fixed_by_config"]]
    assert fixed == ["if self.with_aux: (when false)"]


def test_a_compiled_forward_is_not_seen_so_the_site_stays_unknown(repo: Path):
    """torch.compile runs the forward as a graph: its lines are not recorded, and a clean
    run then cannot say whether a skipping branch went untaken."""
    site = _site(repo, "plain", "--compile")
    assert site["verdict"] == "unknown", site["reason"]
    assert "its code paths were not recorded (compiled: paths not recorded)" in site["reason"]
