"""Compare the final parameters and buffers of run A and run B, rank by rank.

With every parameter used, True and False compute the same gradients and gloo sums two
ranks' buckets in one order, so at world size 2 the results are bitwise equal (ddp-facts);
at other sizes bucket layout may change the summation order, so allclose is the test there.
Each rank of B is held against the same rank of A (BN statistics are per rank), and B's
parameters on every rank against its rank 0's: a rank out of sync is a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Comparison:
    equal: bool
    bitwise: bool  # the test used: bit for bit (world size 2) or allclose
    max_abs_diff: float
    worst: str | None  # the tensor with the largest difference ("rank 1 B param:fc.weight")
    tensors: int  # parameters and buffers per rank

    def as_json(self) -> dict[str, Any]:
        return {
            "params_equal": self.equal,
            "test": "bitwise" if self.bitwise else "allclose",
            "max_abs_diff": self.max_abs_diff,
            "largest_difference_in": self.worst,
            "tensors": self.tensors,
        }


def _load(folder: Path, rank: int) -> dict[str, Any]:
    import torch

    return torch.load(folder / f"state-{rank}.pt", map_location="cpu", weights_only=True)


def _diff(got: Any, ref: Any, bitwise: bool) -> tuple[bool, float]:
    """(equal under the test, largest absolute difference; inf when shapes differ)."""
    import torch

    if got.shape != ref.shape or got.dtype != ref.dtype:
        return False, float("inf")
    if bitwise or not (ref.is_floating_point() or ref.is_complex()):
        same = bool(torch.equal(got, ref))
    else:
        same = bool(torch.allclose(got, ref, equal_nan=True))
    diff = (got.double() - ref.double()).abs().max().item() if ref.numel() else 0.0
    return same, float("inf") if diff != diff else diff  # NaN against a number


def compare(a: Path, b: Path, world_size: int, bitwise: bool | None = None) -> Comparison:
    """B's state against A's on every rank, and B's parameters against its rank 0's.

    Bit for bit by default at world size 2 (gloo); on GPUs the caller says allclose.
    """
    bitwise = world_size == 2 if bitwise is None else bitwise
    pairs: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = []
    b0 = _load(b, 0)
    for rank in range(world_size):
        got = b0 if rank == 0 else _load(b, rank)
        pairs.append((f"rank {rank} B", got, _load(a, rank), False))
        if rank:  # buffers (BN statistics) may differ by rank; parameters may not
            pairs.append((f"rank {rank} B (against rank 0)", got, b0, True))
    worst, where, equal, tensors = 0.0, None, True, len(b0)
    for label, got, ref, params_only in pairs:
        names = [n for n in ref if n.startswith("param:")] if params_only else list(ref)
        if got.keys() != ref.keys():
            return Comparison(False, bitwise, float("inf"), f"{label}: other tensors", tensors)
        for name in names:
            same, diff = _diff(got[name], ref[name], bitwise)
            equal = equal and same
            if diff > worst or (where is None and not same):
                worst, where = diff, f"{label} {name}"
    return Comparison(equal, bitwise, worst, where, tensors)
