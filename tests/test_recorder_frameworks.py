"""DDP built by accelerate and Lightning under torchrun: the repo frames pair it with user code.

CI installs both (`pip install accelerate lightning` after torch) and fails if they are
missing; elsewhere these skip.
"""

from __future__ import annotations

from pathlib import Path

from tests.ddp_runs import (
    ACCELERATE,
    LIGHTNING,
    Traced,
    frame_functions,
    require,
    scan_json,
    script,
    torchrun,
    trace,
    write_repo,
)


def _check(traced: Traced, user_functions: list[tuple[str, str]]) -> None:
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        assert ev["errors"] == [] and ev["finished"] is True
        (inst,) = ev["instances"]
        # the constructor call is the framework's own code, so no repo call site
        assert inst["call_site"] is None
        assert all(not f["path"].startswith(("/", "..")) for f in inst["frames"])
        assert frame_functions(inst)[: len(user_functions)] == user_functions
        assert inst["find_unused_parameters"] is True
        assert inst["iterations"] == 4
        assert inst["unused"] == {"unused.weight": 4, "unused.bias": 4}


def _framework_site_is_unsafe(repo: Path, kind: str) -> None:
    """The static side pairs the framework site through the function on the stack."""
    (site,) = [s for s in scan_json(repo)["sites"] if s["kind"] == kind]
    assert site["verdict"] == "unsafe", site
    assert site["unused"] == {"unused.bias": 4, "unused.weight": 4}


def test_accelerate_prepare(tmp_path: Path):
    require("accelerate")
    repo = write_repo(tmp_path, {"train.py": script(ACCELERATE)})
    traced = trace(repo, torchrun("train.py"))
    _check(traced, [("train.py", "setup"), ("train.py", "main"), ("train.py", "<module>")])
    setup_frame = traced.evidence[0]["instances"][0]["frames"][0]
    text = (repo / "train.py").read_text().splitlines()
    assert "accelerator.prepare(" in text[setup_frame["line"] - 1]
    _framework_site_is_unsafe(repo, "accelerate")


def test_lightning_ddp_strategy(tmp_path: Path):
    require("lightning")
    repo = write_repo(tmp_path, {"train.py": script(LIGHTNING)})
    traced = trace(repo, torchrun("train.py"))
    _check(traced, [("train.py", "fit"), ("train.py", "<module>")])
    fit_frame = traced.evidence[0]["instances"][0]["frames"][0]
    text = (repo / "train.py").read_text().splitlines()
    assert "trainer.fit(" in text[fit_frame["line"] - 1]
    _framework_site_is_unsafe(repo, "lightning")


# Ignite's auto_model builds torch's DDP inside ignite code: no repo call site, so each
# site pairs through the function that holds it (`train_safe`, `train_unsafe`).
IGNITE = """\
import ignite.distributed as idist
import torch
import torch.distributed as dist


class Net(torch.nn.Module):
    def __init__(self, head):
        super().__init__()
        self.used = torch.nn.Linear(4, 4)
        self.head = torch.nn.Linear(4, 4) if head else None

    def forward(self, x):
        return self.used(x)  # the head, when there is one, is never called


def run(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(4):
        opt.zero_grad()
        model(torch.randn(2, 4)).sum().backward()
        opt.step()


def train_safe():
    model = idist.auto_model(Net(head=False), find_unused_parameters=True)
    run(model)


def train_unsafe():
    model = idist.auto_model(Net(head=True), find_unused_parameters=True)
    run(model)


def main():
    dist.init_process_group("gloo")
    train_safe()
    train_unsafe()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
"""


def test_ignite_auto_model(tmp_path: Path):
    require("ignite")
    repo = write_repo(tmp_path, {"train.py": script(IGNITE)})
    traced = trace(repo, torchrun("train.py"))
    assert traced.returncode == 0, traced.proc.stderr[-3000:]
    assert [e["rank"] for e in traced.evidence] == [0, 1]
    for ev in traced.evidence:
        assert ev["errors"] == [] and ev["finished"] is True
        safe, unsafe = ev["instances"]
        for inst, function in ((safe, "train_safe"), (unsafe, "train_unsafe")):
            assert inst["call_site"] is None  # ignite's own code called DDP
            assert frame_functions(inst)[:2] == [("train.py", function), ("train.py", "main")]
            assert inst["find_unused_parameters"] is True
            assert inst["iterations"] == 4
        assert safe["unused"] == {}
        assert unsafe["unused"] == {"head.weight": 4, "head.bias": 4}
    sites = {s["qualname"]: s for s in scan_json(repo)["sites"]}
    assert set(sites) == {"train_safe", "train_unsafe"}
    assert all(s["kind"] == "ignite" for s in sites.values())
    assert sites["train_safe"]["verdict"] == "safe", sites["train_safe"]
    assert sites["train_unsafe"]["verdict"] == "unsafe", sites["train_unsafe"]
    assert sites["train_unsafe"]["unused"] == {"head.bias": 4, "head.weight": 4}
