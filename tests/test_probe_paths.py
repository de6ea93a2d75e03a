"""`probe` records code paths like `trace`: real ranks (gloo on 127.0.0.1), a tiny model.

A probe of a few steps proves only what those steps did: a branch that would skip a head
and that no probe step took keeps the site `unknown`, named in the probe's report, in its
evidence and in what scan says. A model whose branches are only `self.training` and an
activation choice stays `safe`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.ddp_runs import codemod, write_repo
from tests.test_probe import BUILD, evidence_docs, only_site, probe

MODEL = """\
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
        self.head_frozen = False

    def forward(self, x):
        x = torch.relu(self.body(x)) if self.training else torch.tanh(self.body(x))
        if self.head_frozen:
            return x.sum()
        return self.head(x).sum()
"""

PLAIN = MODEL.replace(
    """        if self.head_frozen:
            return x.sum()
""",
    """        if not self.training:
            return x.sum()
""",
)

FACTORY = """\
import torch

from model import Net


def make():
    def batch(step, rank):
        return torch.randn(2, 4, generator=torch.Generator().manual_seed(100 * rank + step))

    def loss(ddp, x, step):
        ddp.module.head_frozen = step > 200  # the trainer freezes the head late in training
        return ddp(x)

    return {"model": Net(), "batch": batch, "loss": loss}
"""

ARGS = ("factory:make", "--site", "train.py::build_ddp_model", "--steps", "3", "--timing", "none")


def _repo(tmp_path: Path, model: str) -> Path:
    return write_repo(tmp_path, {"train.py": BUILD, "model.py": model, "factory.py": FACTORY})


def _line(repo: Path, text: str) -> int:
    lines = (repo / "model.py").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def test_a_freeze_flag_no_probe_step_set_makes_the_probe_unknown_naming_it(tmp_path: Path):
    repo = _repo(tmp_path, MODEL)
    result = probe(repo, *ARGS)
    assert result.returncode == 0, result.stderr
    line = _line(repo, "return x.sum()")
    branch = f"model.py:{line} `if self.head_frozen:` (skips head)"
    first, *body = result.stdout.splitlines()
    assert first.startswith("unknown: "), result.stdout
    assert f"  1 branch that could skip parameters never ran: {branch}" in body
    assert "timing" not in result.stdout  # only a safe verdict is timed
    docs = evidence_docs(repo)
    assert [d["rank"] for d in docs] == [0, 1]
    paths = docs[0]["instances"][0]["paths"]
    assert paths["recorded_iterations"] == 3
    assert line not in paths["files"]["model.py"]["lines"]
    assert _line(repo, "return self.head(x).sum()") in paths["files"]["model.py"]["lines"]
    probe_data = docs[0]["probe"]
    assert probe_data["verdict"] == "unknown"
    (found,) = probe_data["unexercised"]
    assert (found["line"], found["condition"], found["skips"]) == (
        line,
        "if self.head_frozen:",
        ["head"],
    )
    assert "assigned outside the class (factory.py:" in found["why"]
    assert probe_data["fixed_by_config"] == []
    site = only_site(repo)
    assert site["verdict"] == "unknown", site["reason"]
    assert branch in site["reason"] and "probe long enough" in site["reason"]
    assert [b["line"] for b in site["unexercised"]] == [line]
    sarif = codemod(repo, "scan", ".", "--format", "sarif")
    (hit,) = json.loads(sarif.stdout)["runs"][0]["results"]
    assert branch in hit["message"]["text"]
    assert hit["properties"]["unexercised"] == site["unexercised"]


def test_training_and_activation_branches_leave_the_probe_safe(tmp_path: Path):
    repo = _repo(tmp_path, PLAIN)
    result = probe(repo, *ARGS, "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "safe", report
    assert report["probe"]["unexercised"] == []
    docs = evidence_docs(repo)
    assert docs[0]["instances"][0]["paths"]["recorded_iterations"] == 3
    assert only_site(repo)["verdict"] == "safe"


def test_record_paths_0_judges_the_probe_as_before(tmp_path: Path):
    repo = _repo(tmp_path, MODEL)
    result = probe(repo, *ARGS, "--record-paths", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("safe: "), result.stdout
    assert "paths" not in evidence_docs(repo)[0]["instances"][0]
    assert "--record-paths" in evidence_docs(repo)[0]["command"]
