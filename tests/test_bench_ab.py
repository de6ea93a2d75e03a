"""The within-run A/B bench's own pieces: a twin with code of its own, the interval."""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from recorder_ab import _fresh, _interval, _paired_interval
from recorder_overhead import _resnet


def _forward_code(net: object) -> object:
    block = next(m for m in net.modules() if type(m).__name__ == "Block")  # type: ignore[attr-defined]
    return type(block).forward.__code__


def test_a_twin_has_code_objects_of_its_own_at_the_same_place() -> None:
    # sys.monitoring enables events per code object: shared code would record the twin too
    original, twin = _forward_code(_resnet()), _forward_code(_fresh(_resnet)())
    assert twin is not original
    where = (original.co_filename, original.co_firstlineno)
    assert (twin.co_filename, twin.co_firstlineno) == where
    assert twin.co_code == original.co_code


def test_the_interval_holds_the_ratio_and_narrows_with_more_rounds() -> None:
    a = [1.02 + 0.01 * (i % 7) for i in range(300)]
    b = [1.00 + 0.01 * (i % 5) for i in range(300)]
    low, high = _interval(a, b)
    assert low <= (sorted(a)[150] / sorted(b)[150]) <= high
    low_short, high_short = _interval(a[:30], b[:30])
    assert high - low < high_short - low_short


def test_the_ab_pairs_rounds_and_cpu_times_of_the_same_window() -> None:
    from recorder_ab import _pair

    run = {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "a_cpu": [7.0, 8.0, 9.0]}
    run["b_cpu"] = [10.0, 11.0, 12.0]
    a, b, (a_cpu, b_cpu) = _pair([run, run], 1, None)
    assert (a, b) == ([2.0, 3.0, 2.0, 3.0], [5.0, 6.0, 5.0, 6.0])
    assert (a_cpu, b_cpu) == ([8.0, 9.0, 8.0, 9.0], [11.0, 12.0, 11.0, 12.0])


def test_the_paired_ratio_sees_through_drift_that_both_twins_share() -> None:
    # the machine slows down 40% over the run; A costs 1% more than B in every round
    b = [1.0 + 0.4 * i / 300 + 0.01 * (i % 3) for i in range(300)]
    noise = random.Random(1)
    a = [1.01 * x * (1 + noise.uniform(-0.005, 0.005)) for x in b]  # +-0.5% per round
    ratio, low, high = _paired_interval(a, b)
    assert low <= ratio <= high and abs(ratio - 1.01) < 0.001 and 0 < high - low < 0.002
    low_medians, high_medians = _interval(a, b)
    assert high_medians - low_medians > 3 * (high - low)  # medians alone: drift's noise


def test_bare_hooks_note_every_parameter_and_are_emptied_before_each_step() -> None:
    import torch
    from recorder_ab import _hook_bare

    class Trainer:
        model = torch.nn.Linear(2, 2)

    trainer = Trainer()
    sizes: list[int] = []

    def step() -> float:
        (hook,) = trainer.model.weight._post_accumulate_grad_hooks.values()
        got = hook.func.__self__  # the dict the hooks store into
        sizes.append(len(got))
        trainer.model(torch.ones(1, 2)).sum().backward()
        sizes.append(len(got))
        return 0.0

    trainer.step = step  # type: ignore[attr-defined]
    _hook_bare(trainer)  # type: ignore[arg-type]
    trainer.step()  # type: ignore[attr-defined]
    trainer.step()  # type: ignore[attr-defined]
    assert sizes == [0, 2, 0, 2]
