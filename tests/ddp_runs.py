"""Shared helpers for the recorder tests: tiny repos, torchrun on loopback, evidence loading.

Every run is a real process tree: `python -m codemod trace -- python -m torch.distributed.run
--nproc_per_node=2 ...` with gloo on 127.0.0.1, so what the tests see is what a user gets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PYTHON = sys.executable
TIMEOUT_S = 180  # one run; a hang fails the test instead of blocking the suite
Evidence = dict[str, Any]


def require(module: str) -> None:
    """Skip without `module`, except in CI (DDP_CODEMOD_CI=1), where that is a failure:
    the real framework runs are the point of these tests."""
    if importlib.util.find_spec(module) is None:
        if os.environ.get("DDP_CODEMOD_CI"):
            pytest.fail(f"{module} is not installed; CI must run this test")
        pytest.skip(f"{module} is not installed")


def codemod(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`ddp-codemod ARGS` as a real process in `repo`, without any recorder settings."""
    return subprocess.run(
        [PYTHON, "-m", "codemod", *args],
        cwd=repo,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def scan_json(repo: Path) -> dict[str, Any]:
    """`ddp-codemod scan . --format json` in `repo`."""
    result = codemod(repo, "scan", ".", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: str, *args: str, nproc: int = 2) -> list[str]:
    """A torchrun command on loopback, with a port nobody holds right now."""
    return [
        PYTHON,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        script,
        *args,
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any recorder settings, quiet and on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDP_CODEMOD_")}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


# torch 2.13 (CPU, gloo) now and then aborts a rank while the interpreter finalizes, after
# every atexit handler ran ("terminate called without an active exception": 2 runs in 16 of
# the zoo on a loaded machine, with or without the recorder, with or without
# destroy_process_group). Training scripts in these tests therefore leave through os._exit(0)
# once the script has run to its end, as the last atexit handler (the recorder's handlers run
# before it); a script that raised still exits the normal way, with its error.
EXIT_GUARD_HEAD = """\
import atexit as _atexit, os as _os
_completed = []
_atexit.register(lambda: _completed and _os._exit(0))
"""
EXIT_GUARD_TAIL = "\n_completed.append(True)\n"


def script(body: str) -> str:
    """A test training script that finishes with exit status 0 once its body has run."""
    return EXIT_GUARD_HEAD + body + EXIT_GUARD_TAIL


def run_python(code: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` in `cwd` with a clean environment; it must exit 0."""
    done = subprocess.run(
        [PYTHON, "-c", code],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def run_json(code: str, cwd: Path, timeout: int = 120) -> Any:
    """`run_python`'s last stdout line, as JSON."""
    return json.loads(run_python(code, cwd, timeout).stdout.splitlines()[-1])


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def git_init(root: Path) -> str:
    """Make `root` a git repo with one commit; returns that root commit."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t.invalid", "commit", "-q", "-m", "init")
    return git("rev-parse", "HEAD")


def trace_cmd(*trace_args: str) -> list[str]:
    return [PYTHON, "-m", "codemod", "trace", *trace_args]


@dataclass
class Traced:
    proc: subprocess.CompletedProcess[str]
    out: Path
    evidence: list[Evidence]  # sorted by rank

    @property
    def returncode(self) -> int:
        return self.proc.returncode


def load_evidence(out: Path) -> list[Evidence]:
    files = sorted(out.glob("evidence-*.json"))
    loaded = [json.loads(path.read_text(encoding="utf-8")) for path in files]
    for path, data in zip(files, loaded):
        data["_file"] = path.name
    return sorted(loaded, key=lambda e: e["rank"])


def trace(
    repo: Path,
    command: list[str],
    *trace_args: str,
    env: dict[str, str] | None = None,
) -> Traced:
    """Run `ddp-codemod trace [trace_args] -- command` in `repo`; out is repo/.ddp-codemod."""
    proc = codemod(repo, "trace", *trace_args, "--", *command, env=env)
    out = repo / ".ddp-codemod"
    return Traced(proc, out, load_evidence(out) if out.is_dir() else [])


def line_of(text: str, marker: str) -> int:
    """1-based line of the one line that carries `# site: <marker>`."""
    hits = [
        n
        for n, line in enumerate(text.splitlines(), 1)
        if re.search(rf"# site: {re.escape(marker)}\b", line)
    ]
    assert len(hits) == 1, f"marker {marker!r} on lines {hits}"
    return hits[0]


def instance_at(evidence: Evidence, path: str, line: int) -> Evidence:
    """The one instance whose call site is path:line."""
    found = [
        inst
        for inst in evidence["instances"]
        if inst["call_site"]
        and inst["call_site"]["path"] == path
        and inst["call_site"]["line"] == line
    ]
    assert len(found) == 1, (path, line, [i["call_site"] for i in evidence["instances"]])
    return found[0]


def frame_functions(instance: Evidence) -> list[tuple[str, str]]:
    return [(f["path"], f["qualname"]) for f in instance["frames"]]


PREAMBLE = """\
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


def linear(i=4, o=4):
    return torch.nn.Linear(i, o)


def batch(step, salt=0):
    gen = torch.Generator().manual_seed(1000 * dist.get_rank() + 10 * step + salt)
    return torch.randn(2, 4, generator=gen)
"""

# One process builds one DDP instance per behaviour, so a single torchrun covers them all.
# Every constructor line carries `# site: NAME` for the tests to find. ZOO_STEPS iterations.
ZOO_MODELS = """\


class Plain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = linear(), linear()

    def forward(self, x, step):
        return self.b(self.a(x))


class NeverCalled(Plain):
    def __init__(self):
        super().__init__()
        self.unused = linear()


class EveryThird(Plain):
    def __init__(self):
        super().__init__()
        self.c = linear()

    def forward(self, x, step):
        y = self.a(x)
        return self.c(y) if step % 3 == 0 else self.b(y)


class Frozen(Plain):
    def __init__(self):
        super().__init__()
        self.frozen = linear()
        self.frozen.requires_grad_(False)

    def forward(self, x, step):
        return self.b(self.frozen(self.a(x)))


class RankDependent(Plain):
    def __init__(self):
        super().__init__()
        self.extra = linear()

    def forward(self, x, step):
        y = super().forward(x, step)
        return self.extra(y) if dist.get_rank() == 1 else y


class TwoMicroBatches(Plain):
    def __init__(self):
        super().__init__()
        self.first_only, self.never = linear(), linear()

    def forward(self, x, micro):
        y = self.a(x)
        return self.first_only(y) if micro == 0 else y


class MyDDP(DDP):
    def __init__(self, module, **kwargs):
        super().__init__(  # site: super-init
            module, **kwargs
        )
"""

ZOO_HELPERS = """\
from torch.nn.parallel import DistributedDataParallel


def build_ddp_model(model):
    return DistributedDataParallel(model, find_unused_parameters=True)  # site: in-helper
"""

ZOO_MAIN = """\
from helpers import build_ddp_model


def main():
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    steps = int(os.environ["ZOO_STEPS"])
    plain = DDP(Plain(), find_unused_parameters=True)  # site: plain
    never = DDP(  # site: never
        NeverCalled(),
        find_unused_parameters=True,
    )
    third = DDP(EveryThird(), find_unused_parameters=True)  # site: third
    frozen = DDP(Frozen(), find_unused_parameters=True)  # site: frozen
    ranked = DDP(RankDependent(), find_unused_parameters=True)  # site: ranked
    helped = build_ddp_model(Plain())  # site: helper-caller
    sub = MyDDP(Plain(), find_unused_parameters=True)  # site: subclass
    teacher = DDP(Plain(), find_unused_parameters=True)  # site: teacher
    accum = DDP(TwoMicroBatches(), find_unused_parameters=True)  # site: accum
    simple = [plain, never, third, frozen, ranked, helped, sub]
    params = [p for m in simple + [accum] for p in m.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    for step in range(steps):
        opt.zero_grad()
        for i, model in enumerate(simple):
            x = batch(step, i)
            out = model(x, step)
            if model is plain:  # no_grad forwards mid-iteration: EMA-style and a teacher
                with torch.no_grad():
                    plain(x, step)
                    teacher(x, step)
            out.sum().backward()
        with accum.no_sync():
            accum(batch(step, 100), 0).sum().backward()
        accum(batch(step, 101), 1).sum().backward()
        opt.step()
    if dist.get_rank() == 0 and os.environ.get("ZOO_SAVE"):
        named = [(f"{i}.{n}", p) for i, m in enumerate(simple + [accum, teacher])
                 for n, p in m.module.named_parameters()]
        with open(os.environ["ZOO_SAVE"], "w") as f:
            for name, p in named:
                raw = bytes(p.detach().contiguous().view(-1).view(torch.uint8).tolist())
                f.write(f"{name} {raw.hex()}\\n")


main()
dist.destroy_process_group()
"""


def zoo_repo(root: Path) -> Path:
    return write_repo(
        root, {"train.py": script(PREAMBLE + ZOO_MODELS + ZOO_MAIN), "helpers.py": ZOO_HELPERS}
    )


# Framework-built DDP: the constructor call lies inside the framework, not the repo.
ACCELERATE = """\
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.used, self.unused = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.used(x)


def setup():
    handler = DistributedDataParallelKwargs(find_unused_parameters=True)
    accelerator = Accelerator(cpu=True, kwargs_handlers=[handler])
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model, opt = accelerator.prepare(model, opt)
    return accelerator, model, opt


def main():
    accelerator, model, opt = setup()
    for step in range(4):
        loss = model(torch.randn(2, 4)).sum()
        accelerator.backward(loss)
        opt.step()
        opt.zero_grad()


if __name__ == "__main__":
    main()
"""

LIGHTNING = """\
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, TensorDataset


class Model(LightningModule):
    def __init__(self):
        super().__init__()
        self.used, self.unused = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.used(x).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit():
    data = DataLoader(TensorDataset(torch.randn(32, 4)), batch_size=2)
    trainer = Trainer(
        accelerator="cpu",
        devices=2,
        strategy=DDPStrategy(find_unused_parameters=True),
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Model(), data)


if __name__ == "__main__":
    fit()
"""
