"""The GPU check: what find_unused_parameters=True costs where it matters, in one script.

    python bench/gpu_check.py            # on a CUDA machine: under 5 minutes
    python bench/gpu_check.py --dry      # anywhere (the default without CUDA): ~1 minute

With CUDA it probes two models with `--device cuda` (NCCL, one rank per visible GPU, world
size 1 on one GPU): a ResNet-50-sized CNN (bottleneck blocks 3-4-6-3, 25.6M parameters,
224x224 images) and the DAMO-shaped `examples/tiny_detector` built from its config, each at
a batch that fills about half the GPU (found by doubling in a child process first). For
each it prints A/B/C step time with the p25-p75 spread, the A/B ratio round by round and
peak memory per variant, then traces a 20-step run of the detector under torchrun with NCCL
(`ddp-codemod trace --steps 20`) and prints what the evidence says. Without CUDA (or with
--dry) it runs the same code at tiny sizes on CPU with gloo, so the script itself is
checked; those numbers say nothing about GPUs. Never asserts: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = ROOT / "examples" / "tiny_detector"
BATCH_FRACTION = 0.5  # of the GPU's memory one training step may take in the batch search
TRACE_STEPS = 20


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# -- models ----------------------------------------------------------------------------------
def _resnet50(width: int = 64, classes: int = 1000) -> Any:
    """ResNet-50's shape (bottlenecks 3-4-6-3, expansion 4); width 64 is the real one."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, mid: int, stride: int) -> None:
            super().__init__()
            cout = mid * 4
            self.body = nn.Sequential(
                nn.Conv2d(cin, mid, 1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
                nn.BatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.skip = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: Any) -> Any:
            return (self.body(x) + self.skip(x)).relu()

    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = width
    for i, blocks in enumerate((3, 4, 6, 3)):
        mid = width * 2**i
        for b in range(blocks):
            layers.append(Bottleneck(cin, mid, 2 if b == 0 and i > 0 else 1))
            cin = mid * 4
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def make_resnet() -> dict[str, Any]:
    """Probe factory: ResNet-50-sized CNN; GPU_CHECK_BATCH/SIZE/WIDTH set the sizes."""
    import torch

    batch_size, size = _env_int("GPU_CHECK_BATCH", 2), _env_int("GPU_CHECK_SIZE", 32)
    model = _resnet50(_env_int("GPU_CHECK_WIDTH", 8), classes=100)

    def batch(step: int, rank: int) -> tuple[Any, Any]:
        gen = torch.Generator().manual_seed(10_000 * rank + step)
        images = torch.randn(batch_size, 3, size, size, generator=gen)
        return images, torch.randint(0, 100, (batch_size,), generator=gen)

    def loss(model: Any, b: tuple[Any, Any], step: int) -> Any:
        return torch.nn.functional.cross_entropy(model(b[0]), b[1])

    def optimizer(params: Any, model: Any) -> Any:
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)

    return {"model": model, "batch": batch, "loss": loss, "optimizer": optimizer}


def make_detector() -> dict[str, Any]:
    """Probe factory: examples/tiny_detector's own factory, at GPU_CHECK_BATCH/SIZE."""
    sys.path.insert(0, str(DETECTOR))
    import probe_factory  # examples/tiny_detector/probe_factory.py

    made = probe_factory.make()
    batch_size, size = _env_int("GPU_CHECK_BATCH", 2), _env_int("GPU_CHECK_SIZE", 32)
    classes = 5
    import torch

    def batch(step: int, rank: int) -> tuple[Any, Any]:
        gen = torch.Generator().manual_seed(10_000 * rank + step)
        images = torch.randn(batch_size, 3, size, size, generator=gen)
        targets = {
            "labels": torch.randint(0, classes, (batch_size,), generator=gen),
            "boxes": torch.rand(batch_size, 4, generator=gen),
        }
        return images, targets

    def loss(model: Any, b: tuple[Any, Any], step: int) -> Any:
        return made["loss"](model, b)

    return {**made, "batch": batch, "loss": loss}


FACTORIES = {"resnet50": make_resnet, "tiny_detector": make_detector}


# -- batch search (child process, so its CUDA memory is gone before the probe) ---------------
def find_batch(name: str, size: int, limit: int) -> int:
    """The largest power-of-two batch whose training step stays under BATCH_FRACTION."""
    import torch

    from codemod.probe.factory import to_device

    total = torch.cuda.get_device_properties(0).total_memory
    best = 1
    batch_size = 8
    while batch_size <= limit:
        os.environ["GPU_CHECK_BATCH"], os.environ["GPU_CHECK_SIZE"] = str(batch_size), str(size)
        made = FACTORIES[name]()
        model = made["model"].cuda()
        torch.cuda.reset_peak_memory_stats()
        try:
            batch = to_device(made["batch"](0, 0), torch.device("cuda"))
            made["loss"](model, batch, 0).backward()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            del model, made
            torch.cuda.empty_cache()
        if peak > BATCH_FRACTION * total:
            break
        best, batch_size = batch_size, batch_size * 2
    return best


# -- the traced run ----------------------------------------------------------------------------
def train(name: str, steps: int) -> None:
    """One rank of the torchrun job that `ddp-codemod trace` watches: DDP with the flag."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    cuda = torch.cuda.is_available() and os.environ.get("GPU_CHECK_DRY") != "1"
    local_rank = int(os.environ["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    made = FACTORIES[name]()
    model = made["model"].to(device)
    extra = {"device_ids": [local_rank]} if cuda else {}
    ddp = DDP(model, find_unused_parameters=True, **extra)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    rank = dist.get_rank()
    for step in range(steps):
        images, targets = made["batch"](step, rank)
        images = images.to(device)
        targets = {k: v.to(device) for k, v in targets.items()}
        opt.zero_grad(set_to_none=True)
        ddp(images, targets)["total_loss"].backward()
        opt.step()
    dist.barrier()
    dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def trace(nproc: int, env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="gpu-check-trace-") as out:
        command = [
            sys.executable,
            "-m",
            "codemod",
            "trace",
            "--steps",
            str(TRACE_STEPS),
            "--out",
            out,
            "--",
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            str(Path(__file__).resolve()),
            "train",
            "tiny_detector",
            str(TRACE_STEPS + 5),
        ]
        start = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.monotonic() - start
        backend = "gloo" if env.get("GPU_CHECK_DRY") == "1" else "NCCL"
        print(f"\n## trace: tiny_detector, {nproc} rank(s), {backend}, {TRACE_STEPS} steps")
        last = (done.stderr.strip().splitlines() or [""])[-1]
        print(f"exit {done.returncode} in {took:.1f} s; {last}")
        if done.returncode:
            print(done.stderr[-3000:])
        for path in sorted(Path(out).glob("evidence-*.json")):
            doc = json.loads(path.read_text())
            for inst in doc["instances"]:
                print(
                    f"  rank {doc['rank']}: {inst['iterations']} synchronising iterations, "
                    f"unused {inst['unused'] or 'none'}, call site "
                    f"{(inst.get('call_site') or {}).get('path')}:"
                    f"{(inst.get('call_site') or {}).get('line')}, "
                    f"{len(doc.get('files_read') or [])} repo files read"
                )


# -- the probes --------------------------------------------------------------------------------
def probe(name: str, device: str, world_size: int, steps: int, env: dict[str, str]) -> None:
    from codemod.probe import runner
    from codemod.probe.report import ratio_line
    from codemod.probe.stats import fmt_bytes, fmt_ms

    os.environ.update(env)
    req = runner.Request(
        f"bench/gpu_check.py:{'make_resnet' if name == 'resnet50' else 'make_detector'}",
        ROOT,
        steps=steps,
        world_size=world_size,
        timeout=240,
        timing="quick",
        timing_timeout=120,
        device=device,
    )
    start = time.monotonic()
    result = runner.run(req, lambda line: print(f"# {line}", file=sys.stderr, flush=True))
    took = time.monotonic() - start
    sizes = f"batch {env['GPU_CHECK_BATCH']} of {env['GPU_CHECK_SIZE']}px per rank"
    print(f"\n## probe: {name}, {sizes}, {device}, world size {world_size}, {steps} steps")
    print(f"{result.finding.verdict}: {result.finding.summary}")
    runs = ", ".join(f"{r.name} {r.seconds:.1f} s" for r in (result.a, result.b) if r)
    print(f"wall: {took:.1f} s in all; runs {runs}")
    t = result.timing
    if t is None or t.error:
        print(f"no timing: {t.error if t else 'not timed'}")
        return
    if t.cut:
        print(f"timing cut after {t.rounds} of {t.planned} rounds")
    print("| run | median ms/step | p25-p75 ms | peak memory per rank |")
    print("|---|---:|---:|---:|")
    for n, s in t.summaries.items():
        peak = fmt_bytes(t.memory[n]) if n in t.memory else "?"
        print(f"| {n} | {fmt_ms(s.median)} | {fmt_ms(s.p25)}-{fmt_ms(s.p75)} | {peak} |")
    print(ratio_line(t))
    print(f"memory: {t.memory_measure}; model copies per rank at most: {t.model_copies}")
    if t.c_ratio is not None:
        print(f"A/C {t.c_ratio:.2f}x; C ends equal to B: {result.static_graph_ok}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry", action="store_true", help="tiny sizes on CPU with gloo")
    args, rest = parser.parse_known_args()
    if rest[:1] == ["train"]:  # a rank of the traced torchrun job
        train(rest[1], int(rest[2]))
        return
    if rest[:1] == ["find-batch"]:
        print(find_batch(rest[1], int(rest[2]), int(rest[3])))
        return
    sys.path.insert(0, str(ROOT))
    import torch

    dry = args.dry or not torch.cuda.is_available()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDP_CODEMOD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.monotonic()
    if dry:
        print(f"# dry run on CPU (gloo), tiny sizes: torch {torch.__version__}; no GPU numbers")
        device, world, steps = "cpu", 2, 3
        sizes = {"resnet50": ("2", "32", "8"), "tiny_detector": ("4", "32", "")}
        env["GPU_CHECK_DRY"] = "1"
    else:
        device, world, steps = "cuda", torch.cuda.device_count(), 8
        name = torch.cuda.get_device_name(0)
        print(f"# {world} x {name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
        sizes = {}
        for model, (size, limit) in {"resnet50": (224, 2048), "tiny_detector": (640, 512)}.items():
            found = subprocess.run(
                [sys.executable, __file__, "find-batch", model, str(size), str(limit)],
                env={**env, "GPU_CHECK_WIDTH": "64"},
                capture_output=True,
                text=True,
                check=True,
            )
            sizes[model] = (found.stdout.split()[-1], str(size), "64")
    for model, (batch, size, width) in sizes.items():
        model_env = {**env, "GPU_CHECK_BATCH": batch, "GPU_CHECK_SIZE": size}
        if width:
            model_env["GPU_CHECK_WIDTH"] = width
        probe(model, device, world, steps, model_env)
    trace_env = {**env, "GPU_CHECK_BATCH": sizes["tiny_detector"][0]}
    trace_env["GPU_CHECK_SIZE"] = sizes["tiny_detector"][1]
    trace(world, trace_env)
    print(f"\n# gpu_check: {time.monotonic() - start:.0f} s in all")


if __name__ == "__main__":
    main()
