"""What the recorder costs the user: step times of real jobs, traced and not, world size 2.

    python bench/recorder_overhead.py [--pairs 3] [--steps 200] [--warmup 5] [--record-paths 50]
        [--jobs resnet,frameworks,fifty]

Three jobs, each run as plain `torchrun`, as `ddp-codemod trace --record-paths N -- torchrun`
(code paths recorded for the first N iterations, as trace does by default) and as
`ddp-codemod trace --record-paths 0` (no path recording), in an order that rotates every
pair, same seed and data, find_unused_parameters=True, gloo on 127.0.0.1, each rank pinned
to one core. Traced runs have everything a user gets: the sitecustomize, the file-read audit
hook, the DDP hooks and the evidence writes (synchronous for construction and the first
min-steps iterations, then once a second with the file I/O on a writer thread).

- resnet: a 52-conv ResNet-like CPU net on small images, one DDP instance (steps of tens of
  ms: the recorder's per-step and once-a-second costs are not hidden by a long step);
- frameworks: the same after importing lightning and accelerate (thousands of files opened:
  what the audit hook and the files_read snapshot cost), when both are installed;
- fifty: 50 small DDP instances stepping in turn (construction and per-instance costs), timed
  as a whole job from the first constructor to the last step; torch's own lazy imports at
  the first DDP constructor (torch._dynamo: seconds, the same with and without the recorder)
  happen before that window, so the window holds what the recorder adds.

Per job it prints traced/plain ratios of the median, p99 and max step time on rank 0 over all
steps after warm-up of all runs of that kind; with path recording separately for the steps
it covers (warm-up..N) and the steps after it stopped, and without it for those same early
steps too (the first iterations also carry synchronous evidence writes). p99 is the
nearest-rank percentile and is flagged when so few steps make it the max. For fifty it
also prints the ratio of the median job time and of the median time of the 50
constructions. Last, per job, what one evidence write costs inside a traced job:
synchronous (construction, first iterations, exit) and on the training thread when
periodic. It never asserts; the goals are median <= 1.01, p99 <= 1.05 and fifty <= 1.05
(paths: <= 5% while recorded, <= 1% after). Step times on a 2-core VM swing by up to 8%
between identical runs, so with three triples read the ratios as +-5%; more --pairs narrow it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK = "BENCH_RESULT "
RECORDER = Path(__file__).resolve().parent.parent / "codemod" / "recorder"


def _resnet() -> Any:
    """Stem + 4 stages x 6 basic blocks (+3 downsample convs) = 52 convs, small widths."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Conv2d(cin, cout, 1, stride, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    torch.manual_seed(0)
    widths = (16, 32, 64, 64)
    layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)]
    cin = widths[0]
    for i, width in enumerate(widths):
        for j in range(6):
            layers.append(Block(cin, width, 2 if (j == 0 and i > 0) else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers)


class _Trainer:
    """One DDP model with its optimizer and fixed per-rank data; `step()` returns seconds.
    `recorded=False` builds it with the constructor the recorder wrapped, when there is one
    (bench/recorder_ab.py's unrecorded twin); `build_s` is how long the DDP took to build."""

    def __init__(self, net: Any, shape: tuple[int, ...], recorded: bool = True) -> None:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        recorder = sys.modules.get("_ddp_codemod_recorder")
        original = getattr(DDP, recorder._PATCHED, None) if recorder is not None else None
        start = time.perf_counter()
        if recorded or original is None:
            self.model = DDP(net, find_unused_parameters=True)
        else:
            self.model = DDP.__new__(DDP)
            original(self.model, net, find_unused_parameters=True)
        self.build_s = time.perf_counter() - start
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator().manual_seed(dist.get_rank())
        self.x = torch.randn(*shape, generator=gen)
        self.y = torch.randint(0, 10, (shape[0],), generator=gen)
        self.cpu_s = 0.0

    def step(self) -> float:
        """Wall seconds of one step; `cpu_s`: the training thread's CPU seconds in it."""
        import torch

        start, cpu = time.perf_counter(), time.thread_time()
        self.opt.zero_grad()
        torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()
        self.cpu_s = time.thread_time() - cpu
        return time.perf_counter() - start


def _small() -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _worker(job: str, steps: int) -> None:
    """One rank of one job; rank 0 prints its step times as one JSON line."""
    if hasattr(os, "sched_setaffinity"):  # one core per rank: far less run-to-run noise
        os.sched_setaffinity(0, {int(os.environ["LOCAL_RANK"]) % (os.cpu_count() or 1)})
    if job == "frameworks":
        import accelerate  # noqa: F401
        import lightning  # noqa: F401
    import torch
    import torch.distributed as dist

    with contextlib.suppress(ImportError):  # what the first DDP constructor imports anyway
        import torch._dynamo
    dist.init_process_group("gloo")
    result: dict[str, Any] = {}
    if job == "fifty":
        start = time.perf_counter()
        trainers = [_Trainer(_small(), (8, 64)) for _ in range(50)]
        result["build_s"] = time.perf_counter() - start
        times = [sum(t.step() for t in trainers) for _ in range(steps)]
        result["job_s"] = time.perf_counter() - start
    else:
        trainer = _Trainer(_resnet(), (4, 3, 16, 16))
        times = [trainer.step() for _ in range(steps)]
        result["convs"] = sum(isinstance(m, torch.nn.Conv2d) for m in trainer.model.modules())
    result["times"] = times
    recorder = sys.modules.get("_ddp_codemod_recorder")
    if recorder is not None:  # a traced job: what one evidence write costs here
        rec = recorder.RECORDER
        result["write_ms"] = _best_ms(rec.write)
        result["document_ms"] = _best_ms(rec.document)  # a periodic write's training-thread part
        result["files_read"] = len(rec.evidence()["files_read"])
    if dist.get_rank() == 0:
        print(MARK + json.dumps(result), flush=True)


def _best_ms(call: Any, repeats: int = 20) -> float:
    """The median of `repeats` timed calls, in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(job: str, steps: int, out: Path, record_paths: int | None) -> dict[str, Any]:
    """One run of `job`: plain when record_paths is None, else traced with --record-paths."""
    return launch([__file__, "--worker", job, "--steps", str(steps)], out, record_paths)


def launch(worker: list[str], out: Path, record_paths: int | None) -> dict[str, Any]:
    """`torchrun` of `worker` (a script and its arguments) at world size 2, plain when
    record_paths is None, else under `ddp-codemod trace --record-paths`; rank 0's result."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *worker,
    ]
    if record_paths is not None:
        trace = [sys.executable, "-m", "codemod", "trace", "--out", str(out)]
        command = [*trace, "--record-paths", str(record_paths), "--", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDP_CODEMOD_")}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:  # a port taken between _free_port() and torchrun: try once more
        print(f"{worker[2]} run failed (exit {done.returncode}), once more", file=sys.stderr)
        command[command.index(next(c for c in command if c.startswith("--master_port=")))] = (
            f"--master_port={_free_port()}"
        )
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{worker[2]} run failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith(MARK))
    return json.loads(line[len(MARK) :])


def _p99(values: list[float]) -> tuple[float, bool]:
    """Nearest-rank 99th percentile, and whether it is the max (fewer than 100 values)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(0.99 * len(ordered)))
    return ordered[rank - 1], rank == len(ordered)


def _flat(runs: list[list[float]], lo: int, hi: int | None = None) -> list[float]:
    """Steps lo..hi of every run, as one list."""
    return [t for run in runs for t in run[lo:hi]]


def _ratios(name: str, plain: list[float], traced: list[float]) -> None:
    median = statistics.median(traced) / statistics.median(plain)
    (p99_t, at_max_t), (p99_p, at_max_p) = _p99(traced), _p99(plain)
    worst = max(traced) / max(plain)
    flag = " (p99 = max: too few steps)" if at_max_t or at_max_p else ""
    print(
        f"  {name:30} ratio median {median:.3f}, p99 {p99_t / p99_p:.3f}{flag}, "
        f"max {worst:.3f} over {len(traced)} / {len(plain)} steps"
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--worker", choices=["resnet", "frameworks", "fifty"], help=argparse.SUPPRESS
    )
    parser.add_argument("--pairs", type=int, default=3, help="rotating run triples per job")
    parser.add_argument("--steps", type=int, default=200, help="steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of each run")
    parser.add_argument(
        "--record-paths",
        type=int,
        default=50,
        metavar="N",
        help="trace --record-paths N for the runs with path recording [default: 50, trace's]",
    )
    parser.add_argument(
        "--jobs", default="resnet,frameworks,fifty", help="comma-separated jobs to run"
    )
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.steps)
        import torch.distributed as dist

        dist.destroy_process_group()  # after the DDP objects are freed: else a rank may abort
        return
    jobs = args.jobs.split(",")
    if "frameworks" in jobs and not (_has("lightning") and _has("accelerate")):
        print("lightning or accelerate is not installed: no frameworks job")
        jobs.remove("frameworks")
    limit = args.record_paths
    print(
        f"world size 2 (ranks pinned to cores), {args.pairs} triples x {args.steps} steps per "
        f"job, {args.warmup} warm-up steps left out; ratios are traced / plain; paths: "
        f"--record-paths {limit} (steps {args.warmup}-{limit - 1} recorded), no paths: "
        "--record-paths 0"
    )
    kinds: list[int | None] = [None, limit, 0]  # plain, paths, no paths
    with tempfile.TemporaryDirectory() as tmp:
        for job in jobs:
            steps: dict[int | None, list[list[float]]] = {k: [] for k in kinds}
            wall: dict[int | None, list[float]] = {k: [] for k in kinds}
            build: dict[int | None, list[float]] = {k: [] for k in kinds}
            writes: dict[int | None, list[tuple[float, float]]] = {k: [] for k in kinds}
            files = 0
            for pair in range(args.pairs):
                order = kinds[pair % 3 :] + kinds[: pair % 3]
                for kind in order:
                    out = Path(tmp) / f"{job}{pair}-{kind}"
                    result = _run(job, args.steps, out, kind)
                    steps[kind].append(result["times"])
                    if "job_s" in result:
                        wall[kind].append(result["job_s"])
                        build[kind].append(result["build_s"])
                    if kind is not None:
                        writes[kind].append((result["write_ms"], result["document_ms"]))
                        files = result["files_read"]

            plain = _flat(steps[None], args.warmup)
            print(f"{job}: step {1000 * statistics.median(plain):.1f} ms plain")
            if limit > args.warmup:
                _ratios(
                    "paths, recorded steps",
                    _flat(steps[None], args.warmup, limit),
                    _flat(steps[limit], args.warmup, limit),
                )
            if args.steps > limit + 1:
                _ratios(
                    "paths, after recording",
                    _flat(steps[None], limit + 1),
                    _flat(steps[limit], limit + 1),
                )
            _ratios("no paths (--record-paths 0)", plain, _flat(steps[0], args.warmup))
            if limit > args.warmup:  # the same early steps without paths: like with like
                _ratios(
                    "no paths, steps recorded above",
                    _flat(steps[None], args.warmup, limit),
                    _flat(steps[0], args.warmup, limit),
                )
            for kind, name in ((limit, "paths"), (0, "no paths")):
                if wall[None]:
                    job_ratio = statistics.median(wall[kind]) / statistics.median(wall[None])
                    build_ratio = statistics.median(build[kind]) / statistics.median(build[None])
                    print(
                        f"  {name:30} 50-instance job ratio {job_ratio:.3f} "
                        f"({statistics.median(wall[None]):.2f} s plain); 50 constructions "
                        f"{build_ratio:.3f} ({1000 * statistics.median(build[None]):.0f} ms plain)"
                    )
                sync = statistics.median(w for w, _ in writes[kind])
                periodic = statistics.median(d for _, d in writes[kind])
                print(
                    f"  {name:30} one evidence write {sync:.2f} ms synchronous, "
                    f"{periodic:.2f} ms on the training thread when periodic "
                    f"({files} files read listed)"
                )
        written = len(list(Path(tmp).glob("*/evidence-*.json")))
    expected = 2 * 2 * args.pairs * len(jobs)
    print(f"evidence files from the traced runs: {written} (expected {expected})")


if __name__ == "__main__":
    main()
