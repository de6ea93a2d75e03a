"""One rank of one probe run: `python worker.py JOB.json`, started by launch.py.

Run as a script so that the user's working directory, not this package, comes first on
sys.path (a repo may have its own `codemod`); its siblings are loaded by file path. Modes:

- "A" / "B": train `steps` steps with find_unused_parameters True / False, the recorder's
  AccumulateGrad hooks counting one iteration per step (and, for the first `record_paths`
  steps, noting the lines of the model's forward code that ran), then one more forward:
  DDP under False reports a parameter left without a gradient only at the next forward. Each rank
  saves its final parameters and buffers for the parent to compare, the digest of every
  batch it trained on (A and B must have seen the same data), and the repo files it read
  (the recorder's audit hook), so the evidence goes stale when any of them changes.
- "time": one model per rank, its initial state kept aside; A, B and C (static_graph=True)
  each run from that state in turn, round after round in rotating order, no recorder. So a
  rank holds at most two copies of the model (the live one and the initial state), and a
  variant's peak memory is its own. Rank 0 appends each finished round to progress-0.jsonl:
  the parent prints it, and keeps the rounds that finished when the timing is cut short.

The result goes to result-<rank>.json in the job's folder. On an exception the rank writes
its error and leaves at once with os._exit: a peer stuck in a collective must not keep it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import sys
import time
import traceback
import weakref
from types import ModuleType
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDER = os.path.join(os.path.dirname(HERE), "recorder")
WARMUP_STEPS = 2  # per variant and round before timing: bucket rebuilds, static-graph analysis
VARIANTS = {
    "A": {"find_unused_parameters": True},
    "B": {"find_unused_parameters": False},
    "C": {"static_graph": True},
}
PROGRESS = "progress-0.jsonl"


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


class Memory:
    """Peak memory of one stretch of work: CUDA's allocator peak, or RSS growth on CPU.

    On CPU, Linux resets the peak RSS (VmHWM) when "5" is written to /proc/self/clear_refs;
    where that is refused the peak cannot be attributed to one variant, and it reads None.
    """

    def __init__(self, device: Any) -> None:
        self.device = device
        self._base: int | None = None

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._base = _status_kib("VmRSS")
        except OSError:
            self._base = None

    def peak(self) -> int | None:
        """Bytes: allocated at the peak (CUDA), or RSS gained at the peak (CPU)."""
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device))
        high = _status_kib("VmHWM")
        if self._base is None or high is None:
            return None
        return max(0, high - self._base) * 1024


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Worker:
    def __init__(self, job: dict[str, Any], rank: int, world_size: int) -> None:
        import torch

        self.job = job
        self.rank = rank
        self.world_size = world_size
        self.local_rank = int(os.environ.get("LOCAL_RANK", rank))
        self.cuda = job.get("device") == "cuda"
        self.device = torch.device("cuda", self.local_rank) if self.cuda else torch.device("cpu")
        self.factory = _load("_ddp_codemod_probe_factory", os.path.join(HERE, "factory.py"))
        self._make = self.factory.load(job["target"], job["cwd"])
        sys.path[:0] = self._make.path  # for whatever batch() and loss() import later
        self.snapshots = 0  # model states this rank holds besides the live model

    def setup(self) -> Any:
        self.factory.seed(self.job["seed"])
        setup = self.factory.build(self._make)
        setup.model.to(self.device)
        return setup

    def ddp(self, model: Any, **kwargs: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        if self.cuda:
            kwargs.update(device_ids=[self.local_rank], output_device=self.local_rank)
        return DistributedDataParallel(model, **kwargs)

    def batch(self, setup: Any, step: int) -> Any:
        return self.factory.to_device(setup.batch(step, self.rank), self.device)

    # -- A and B ---------------------------------------------------------------------------
    def train(self, mode: str) -> dict[str, Any]:
        import torch

        if self.cuda:  # A and B must differ only in the flag: no kernel autotuning races
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        setup = self.setup()
        kwargs = VARIANTS[mode]
        ddp = self.ddp(setup.model, **kwargs)
        for sibling in ("_ddp_codemod_source", "_ddp_codemod_files"):
            _recorder_module(sibling)
        recorder_module = _recorder_module("_ddp_codemod_recorder")
        # the recorder's own file goes to the job folder, which the parent deletes
        # repo paths (the code paths' files) are relative to the site's root
        recorder = recorder_module.Recorder(
            {
                "DDP_CODEMOD_OUT": self.job["dir"],
                "DDP_CODEMOD_ROOT": self.job.get("root") or self.job["cwd"],
                "DDP_CODEMOD_RECORD_PATHS": str(self.job.get("record_paths", 0)),
            }
        )
        inst = recorder.on_init(ddp, sys._getframe(), dict(kwargs), by_forward=False)
        opt = setup.optimizer(ddp.parameters(), setup.model)
        steps = self.job["steps"]
        digests = []
        for step in range(steps):
            raw = setup.batch(step, self.rank)
            digests.append(self.factory.digest(raw))
            batch = self.factory.to_device(raw, self.device)
            opt.zero_grad(set_to_none=True)
            recorder.open_step(inst, ddp)
            loss = setup.loss(ddp, batch, step)
            loss.backward()
            recorder.close_step(inst)
            opt.step()
        setup.loss(ddp, self.batch(setup, steps), steps)  # DDP checks the last step here
        module = ddp.module
        state = {f"param:{n}": p.detach().cpu().clone() for n, p in module.named_parameters()}
        state.update({f"buffer:{n}": b.detach().cpu().clone() for n, b in module.named_buffers()})
        torch.save(state, os.path.join(self.job["dir"], f"state-{self.rank}.pt"))
        record = inst.as_json()
        del record["call_site"], record["frames"]  # the probe's own frames, not the site
        return {"record": record, "digests": digests, "files_read": files_read()}

    # -- timing ----------------------------------------------------------------------------
    def time(self) -> dict[str, Any]:
        import torch
        import torch.distributed as dist

        names: list[str] = self.job.get("variants") or list(VARIANTS)
        steps, rounds = self.job["steps"], self.job["rounds"]
        setup = self.setup()
        initial = {k: v.detach().to("cpu", copy=True) for k, v in setup.model.state_dict().items()}
        self.snapshots = 1
        self._prewarm(setup, names[0], initial)
        times: dict[str, list[list[float]]] = {name: [] for name in names}
        memory: dict[str, int | None] = {}
        copies = 0
        keep_final = {"B", "C"} <= set(names)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                setup.model.load_state_dict(initial)
                meter = Memory(self.device)
                meter.start()
                ddp = self.ddp(setup.model, **VARIANTS[name])
                opt = setup.optimizer(ddp.parameters(), setup.model)
                for step in range(WARMUP_STEPS):
                    self._step(setup, ddp, opt, step)
                dist.barrier()
                took = [self._step(setup, ddp, opt, WARMUP_STEPS + i) for i in range(steps)]
                peak = meter.peak()
                copies = max(copies, _live(setup.model) + self.snapshots)
                if peak is not None:
                    memory[name] = max(memory.get(name) or 0, peak)
                times[name].append(took)
                if keep_final and r == rounds - 1 and name in ("B", "C"):  # C against B, later
                    _save(setup.model, self._final(name))
                gone = weakref.ref(ddp)
                del ddp, opt
                gc.collect()
                if gone() is not None:
                    raise RuntimeError(f"the DDP of {name} outlived its timing run")
                if self.cuda:
                    torch.cuda.empty_cache()
                else:
                    _trim()
            if self.rank == 0:
                self._progress(r, rounds, {n: times[n][-1] for n in names}, memory)
        result: dict[str, Any] = {"times": times, "memory": memory, "model_copies": copies}
        del setup, initial
        self.snapshots = 0
        gc.collect()
        if keep_final:
            b, c = (_load_state(self._final(n)) for n in ("B", "C"))
            result["c_max_abs_diff"] = _max_abs_diff(b, c)
        return result

    def _prewarm(self, setup: Any, name: str, initial: dict[str, Any]) -> None:
        """A few untimed steps first: one-time costs (thread pools, first-touch pages, lazy
        library init) must not land on whichever variant happens to go first."""
        import torch

        setup.model.load_state_dict(initial)
        ddp = self.ddp(setup.model, **VARIANTS[name])
        opt = setup.optimizer(ddp.parameters(), setup.model)
        for step in range(WARMUP_STEPS):
            self._step(setup, ddp, opt, step)
        del ddp, opt
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
        else:
            _trim()

    def _final(self, name: str) -> str:
        """Where this rank keeps variant `name`'s final state (BN statistics are per rank)."""
        return os.path.join(self.job["dir"], f"final-{name}-{self.rank}.pt")

    def _progress(
        self, r: int, rounds: int, last: dict[str, list[float]], memory: dict[str, Any]
    ) -> None:
        line = {"round": r + 1, "rounds": rounds, "times": last, "memory": memory}
        with open(os.path.join(self.job["dir"], PROGRESS), "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def _step(self, setup: Any, ddp: Any, opt: Any, step: int) -> float:
        import torch

        batch = self.batch(setup, step)
        if self.cuda:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        setup.loss(ddp, batch, step).backward()
        opt.step()
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start


def _trim() -> None:
    """Give freed heap back to the OS (glibc), so the next variant's RSS growth is its own."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _live(model: Any) -> int:
    """How many whole models like the factory's are alive in this process right now: objects
    of its class with as many parameter elements (a Sequential's inner Sequentials have fewer)."""
    size = _numel(model)
    return sum(1 for obj in gc.get_objects() if type(obj) is type(model) and _numel(obj) == size)


def _numel(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _save(model: Any, path: str) -> None:
    import torch

    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def _load_state(path: str) -> dict[str, Any]:
    import torch

    return torch.load(path, weights_only=True)


def _max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest difference between two states' tensors (inf: they hold other tensors)."""
    if a.keys() != b.keys():
        return float("inf")
    worst = 0.0
    for key, x in a.items():
        y = b[key]
        if x.shape != y.shape:
            return float("inf")
        if x.numel():
            worst = max(worst, (x.double() - y.double()).abs().max().item())
    return worst


def files_read() -> list[dict[str, str]]:
    """The repo files this rank read or imported, with hashes; the probe's own files left out."""
    files = _recorder_module("_ddp_codemod_files")
    if files.READ is None:
        return []
    root = files.READ.paths.root
    return [
        f
        for f in files.snapshot()
        if not files.under(os.path.realpath(os.path.join(root, f["path"])), HERE)
    ]


def main(argv: list[str]) -> None:
    with open(argv[1], encoding="utf-8") as f:
        job = json.load(f)
    if job["mode"] in ("A", "B"):  # before the factory's imports: they are files it reads
        _recorder_module("_ddp_codemod_files").install(job.get("root") or job["cwd"])
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
        if worker.cuda:
            torch.cuda.set_device(worker.device)
        backend = "nccl" if worker.cuda else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world_size)
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
