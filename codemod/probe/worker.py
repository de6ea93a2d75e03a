"""One rank of one probe run: `python worker.py JOB.json`, started by launch.py.

Run as a script so that the user's working directory, not this package, comes first on
sys.path (a repo may have its own `codemod`); its siblings are loaded by file path. Modes:

- "A" / "B": train `steps` steps with find_unused_parameters True / False, the recorder's
  AccumulateGrad hooks counting one iteration per step, then one more forward: DDP under
  False reports a parameter left without a gradient only at the next forward. Each rank
  saves its final parameters and buffers for the parent to compare.
- "time": A, B and C (static_graph=True) on fresh copies of the same model, in rounds that
  rotate their order, no recorder; rank 0 reports every step's seconds.

The result goes to result-<rank>.json in the job's folder. On an exception the rank writes
its error and leaves at once with os._exit: a peer stuck in a collective must not keep it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDER = os.path.join(os.path.dirname(HERE), "recorder")
WARMUP_STEPS = 2  # per variant before timing: bucket rebuilds, static-graph analysis
VARIANTS = {
    "A": {"find_unused_parameters": True},
    "B": {"find_unused_parameters": False},
    "C": {"static_graph": True},
}


def _load(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _recorder_module(name: str) -> ModuleType:
    """A module of the recorder folder, loaded once by file path."""
    return sys.modules.get(name) or _load(name, os.path.join(RECORDER, name + ".py"))


class Worker:
    def __init__(self, job: dict[str, Any], rank: int, world_size: int) -> None:
        self.job = job
        self.rank = rank
        self.world_size = world_size
        self.factory = _load("_ddp_codemod_probe_factory", os.path.join(HERE, "factory.py"))
        self._make = self.factory.load(job["target"], job["cwd"])
        sys.path[:0] = self._make.path  # for whatever batch() and loss() import later

    def setup(self) -> Any:
        self.factory.seed(self.job["seed"])
        return self.factory.build(self._make)

    def ddp(self, model: Any, **kwargs: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, **kwargs)

    # -- A and B ---------------------------------------------------------------------------
    def train(self, mode: str) -> dict[str, Any]:
        import torch

        setup = self.setup()
        kwargs = VARIANTS[mode]
        ddp = self.ddp(setup.model, **kwargs)
        for sibling in ("_ddp_codemod_source", "_ddp_codemod_files"):
            _recorder_module(sibling)
        recorder_module = _recorder_module("_ddp_codemod_recorder")
        # the recorder's own file goes to the job folder, which the parent deletes
        recorder = recorder_module.Recorder(
            {"DDP_CODEMOD_OUT": self.job["dir"], "DDP_CODEMOD_ROOT": self.job["dir"]}
        )
        inst = recorder.on_init(ddp, sys._getframe(), dict(kwargs), by_forward=False)
        opt = setup.optimizer(ddp.parameters())
        steps = self.job["steps"]
        for step in range(steps):
            batch = setup.batch(step, self.rank)
            opt.zero_grad(set_to_none=True)
            inst.open(True)
            loss = setup.loss(ddp, batch)
            loss.backward()
            inst.close()
            opt.step()
        setup.loss(ddp, setup.batch(steps, self.rank))  # DDP checks the last step here
        module = ddp.module
        state = {f"param:{n}": p.detach().clone() for n, p in module.named_parameters()}
        state.update({f"buffer:{n}": b.detach().clone() for n, b in module.named_buffers()})
        torch.save(state, os.path.join(self.job["dir"], f"state-{self.rank}.pt"))
        record = inst.as_json()
        del record["call_site"], record["frames"]  # the probe's own frames, not the site
        return {"record": record}

    # -- timing ----------------------------------------------------------------------------
    def time(self) -> dict[str, Any]:
        import torch.distributed as dist

        names: list[str] = self.job.get("variants") or list(VARIANTS)
        runs: dict[str, Any] = {}
        for name in names:
            setup = self.setup()
            ddp = self.ddp(setup.model, **VARIANTS[name])
            runs[name] = [setup, ddp, setup.optimizer(ddp.parameters()), 0]
        times: dict[str, list[list[float]]] = {name: [] for name in names}
        for name in names:
            for _ in range(WARMUP_STEPS):
                self._step(runs[name])
        for r in range(self.job["rounds"]):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                dist.barrier()
                times[name].append([self._step(runs[name]) for _ in range(self.job["steps"])])
        result: dict[str, Any] = {"times": times}
        if "B" in runs and "C" in runs:
            result["c_max_abs_diff"] = _max_abs_diff(runs["B"][1].module, runs["C"][1].module)
        return result

    def _step(self, run: list[Any]) -> float:
        setup, ddp, opt, step = run
        batch = setup.batch(step, self.rank)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        setup.loss(ddp, batch).backward()
        opt.step()
        elapsed = time.perf_counter() - start
        run[3] = step + 1
        return elapsed


def _max_abs_diff(a: Any, b: Any) -> float:
    """Largest difference between two models' parameters and buffers (inf: shapes differ)."""
    left = [*a.parameters(), *a.buffers()]
    right = [*b.parameters(), *b.buffers()]
    if len(left) != len(right):
        return float("inf")
    worst = 0.0
    for x, y in zip(left, right):
        if x.shape != y.shape:
            return float("inf")
        if x.numel():
            worst = max(worst, (x.detach().double() - y.detach().double()).abs().max().item())
    return worst


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as f:
        job = json.load(f)
    sys.path[0] = job["cwd"]  # like `python -m` from the user's directory
    os.chdir(job["cwd"])
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    out = os.path.join(job["dir"], f"result-{rank}.json")
    result: dict[str, Any] = {"rank": rank, "pid": os.getpid(), "ok": False}
    try:
        import torch
        import torch.distributed as dist

        result["torch"] = torch.__version__
        worker = Worker(job, rank, world_size)
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        if job["mode"] == "time":
            result.update(worker.time())
        else:
            result.update(worker.train(job["mode"]))
        result["ok"] = True
        dist.barrier()  # nobody leaves while a peer still needs it
    except BaseException as exc:
        text = str(exc).strip()
        result["error"] = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        result["traceback"] = traceback.format_exc()[-6000:]
    result["finished_at"] = time.time()
    _recorder_module("_ddp_codemod_source").write_json(out, result)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main(sys.argv)
