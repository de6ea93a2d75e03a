"""What find_unused_parameters=True costs per step, as `ddp-codemod probe` measures it.

    python bench/probe_resnet.py [--steps 10] [--rounds 7] [--world-size 2]

Probes this file's `make` (the 52-conv ResNet-like CPU net of bench/recorder_overhead.py,
batches of 8 32x32 images per rank) exactly as `ddp-codemod probe bench/probe_resnet.py:make`
would: run A (True) and run B (False) prove equal results, then one process group times A,
B and C (static_graph=True) one after another from the same initial state, in rounds that
rotate their order. Prints each run's median step time with its p25-p75 spread and peak
memory, the ratios, and the range of the A/B ratio round by round. Never asserts: step
times on a shared machine drift.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def make() -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(ROOT))
    from bench.recorder_overhead import _resnet

    def batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(10_000 * rank + step)
        return torch.randn(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen)

    def loss(model: Any, b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(b[0]), b[1])

    def optimizer(params: Any, model: Any) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.01, momentum=0.9)

    return {"model": _resnet(), "batch": batch, "loss": loss, "optimizer": optimizer}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--world-size", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from codemod.probe import runner
    from codemod.probe.report import ratio_line
    from codemod.probe.stats import fmt_bytes, fmt_ms

    req = runner.Request(
        "bench/probe_resnet.py:make",
        ROOT,
        steps=args.steps,
        world_size=args.world_size,
        rounds=args.rounds,
    )
    start = time.monotonic()
    result = runner.run(req, lambda line: print(f"# {line}", file=sys.stderr))
    took = time.monotonic() - start
    import torch

    convs = sum(isinstance(m, torch.nn.Conv2d) for m in make()["model"].modules())
    t = result.timing
    print(f"{result.finding.verdict}: {result.finding.summary}")
    cmp = result.comparison
    if cmp is not None:
        print(f"A vs B final parameters and buffers: equal={cmp.equal} ({cmp.max_abs_diff:.3g})")
    if t is None or t.error:
        print(f"no timing: {t.error if t else 'not timed'}")
        return
    steps = next(iter(t.summaries.values())).steps
    print(
        f"\n{convs} convs, world size {args.world_size}, {args.rounds} rounds x {args.steps} "
        f"steps per run ({steps} timed steps each), {took:.0f} s in all\n"
    )
    print("| run | median ms/step | p25-p75 ms | vs B | peak RSS growth per rank |")
    print("|---|---:|---:|---:|---:|")
    names = {"A": "A find_unused_parameters=True", "B": "B False", "C": "C static_graph=True"}
    b = t.summaries["B"].median
    for name, s in t.summaries.items():
        peak = fmt_bytes(t.memory[name]) if name in t.memory else "?"
        spread = f"{fmt_ms(s.p25)}-{fmt_ms(s.p75)}"
        print(f"| {names[name]} | {fmt_ms(s.median)} | {spread} | {s.median / b:.3f}x | {peak} |")
    print(f"\n{ratio_line(t)}", end="")
    if t.c_ratio is not None:
        print(f"; A/C {t.c_ratio:.3f}x; C ends equal to B: {result.static_graph_ok}")
    else:
        print()


if __name__ == "__main__":
    main()
