"""What the recorder costs the user: step times of real jobs, traced and not, world size 2.

    python bench/recorder_overhead.py [--pairs 4] [--steps 30] [--warmup 5] [--record-paths N]

Three jobs, each run as plain `torchrun` and as `ddp-codemod trace -- torchrun ...` in
alternating order (swapped every other pair), same seed and data, find_unused_parameters=True,
gloo on 127.0.0.1, each rank pinned to one core. Traced runs have everything a user gets:
the sitecustomize, the file-read audit hook, the DDP hooks and the evidence writes.

- resnet: a 52-conv ResNet-like CPU net, one DDP instance;
- frameworks: the same after importing lightning and accelerate (thousands of files opened:
  what the audit hook and the files_read snapshot cost), when both are installed;
- fifty: 50 small DDP instances stepping in turn (construction and per-instance costs), timed
  as a whole job from the first constructor to the last step.

Per job it prints the ratio traced/plain of the median, p99 and max step time on rank 0 over
all steps after warm-up of all runs of that kind, and for fifty the ratio of the median job
time. It also prints the median time of one evidence write inside a traced job. It never
asserts; the goals are median <= 1.01, p99 <= 1.05 and fifty <= 1.05. Step times on a
2-core VM swing by a few percent between runs, so read the ratios as +-1-2%.
"""

from __future__ import annotations

import argparse
import json
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
    """One DDP model with its optimizer and fixed per-rank data; `step()` returns seconds."""

    def __init__(self, net: Any, shape: tuple[int, ...]) -> None:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.model = DDP(net, find_unused_parameters=True)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator().manual_seed(dist.get_rank())
        self.x = torch.randn(*shape, generator=gen)
        self.y = torch.randint(0, 10, (shape[0],), generator=gen)

    def step(self) -> float:
        import torch

        start = time.perf_counter()
        self.opt.zero_grad()
        torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()
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

    dist.init_process_group("gloo")
    result: dict[str, Any] = {}
    if job == "fifty":
        start = time.perf_counter()
        trainers = [_Trainer(_small(), (8, 64)) for _ in range(50)]
        times = [sum(t.step() for t in trainers) for _ in range(steps)]
        result["job_s"] = time.perf_counter() - start
    else:
        trainer = _Trainer(_resnet(), (8, 3, 32, 32))
        times = [trainer.step() for _ in range(steps)]
        result["convs"] = sum(isinstance(m, torch.nn.Conv2d) for m in trainer.model.modules())
    result["times"] = times
    recorder = sys.modules.get("_ddp_codemod_recorder")
    if recorder is not None:  # a traced job: what one evidence write costs here
        writes = []
        for _ in range(20):
            start = time.perf_counter()
            recorder.RECORDER.write()
            writes.append(time.perf_counter() - start)
        result["write_ms"] = 1000 * statistics.median(writes)
        result["files_read"] = len(recorder.RECORDER.evidence()["files_read"])
    if dist.get_rank() == 0:
        print(MARK + json.dumps(result), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(
    job: str, steps: int, out: Path, traced: bool, record_paths: int | None = None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        __file__,
        "--worker",
        job,
        "--steps",
        str(steps),
    ]
    if traced:
        paths = [] if record_paths is None else ["--record-paths", str(record_paths)]
        command = [
            sys.executable,
            "-m",
            "codemod",
            "trace",
            "--out",
            str(out),
            *paths,
            "--",
            *command,
        ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDP_CODEMOD_")}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:  # a port taken between _free_port() and torchrun: try once more
        print(f"{job} run failed (exit {done.returncode}), once more", file=sys.stderr)
        command[command.index(next(c for c in command if c.startswith("--master_port=")))] = (
            f"--master_port={_free_port()}"
        )
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{job} run failed:\n{done.stderr[-3000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith(MARK))
    return json.loads(line[len(MARK) :])


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--worker", choices=["resnet", "frameworks", "fifty"], help=argparse.SUPPRESS
    )
    parser.add_argument("--pairs", type=int, default=4, help="alternating run pairs per job")
    parser.add_argument("--steps", type=int, default=30, help="steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of each run")
    parser.add_argument(
        "--record-paths",
        type=int,
        default=None,
        metavar="N",
        help="trace --record-paths N (0: no path recording) [default: trace's own]",
    )
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.steps)
        import torch.distributed as dist

        dist.destroy_process_group()  # after the DDP objects are freed: else a rank may abort
        return
    jobs = ["resnet", "frameworks", "fifty"]
    if not (_has("lightning") and _has("accelerate")):
        print("lightning or accelerate is not installed: no frameworks job")
        jobs.remove("frameworks")
    print(
        f"world size 2 (ranks pinned to cores), {args.pairs} pairs x {args.steps} steps per job, "
        f"{args.warmup} warm-up steps left out; ratios are traced / plain"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for job in jobs:
            steps: dict[bool, list[float]] = {False: [], True: []}
            wall: dict[bool, list[float]] = {False: [], True: []}
            writes, files = [], 0
            for pair in range(args.pairs):
                for traced in (False, True) if pair % 2 == 0 else (True, False):
                    result = _run(
                        job, args.steps, Path(tmp) / f"{job}{pair}", traced, args.record_paths
                    )
                    steps[traced] += result["times"][args.warmup :]
                    if "job_s" in result:
                        wall[traced].append(result["job_s"])
                    if traced:
                        writes.append(result["write_ms"])
                        files = result["files_read"]
            plain, traced_ = steps[False], steps[True]
            median = statistics.median(traced_) / statistics.median(plain)
            p99 = _p99(traced_) / _p99(plain)
            worst = max(traced_) / max(plain)
            print(
                f"{job:10}: step {1000 * statistics.median(plain):.1f} ms plain; ratio median "
                f"{median:.3f}, p99 {p99:.3f}, max {worst:.3f} over {len(plain)} steps each"
            )
            if wall[False]:
                ratio = statistics.median(wall[True]) / statistics.median(wall[False])
                print(
                    f"{'':10}  50-instance job {statistics.median(wall[False]):.2f} s plain; "
                    f"ratio {ratio:.3f}"
                )
            print(
                f"{'':10}  one evidence write {statistics.median(writes):.2f} ms "
                f"({files} files read listed)"
            )
        written = len(list(Path(tmp).glob("*/evidence-*.json")))
    print(f"evidence files from the traced runs: {written} (expected {2 * args.pairs * len(jobs)})")


if __name__ == "__main__":
    main()
