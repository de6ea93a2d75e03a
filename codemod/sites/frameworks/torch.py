"""PyTorch's own DistributedDataParallel: it defaults to False, so the keyword goes."""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

catalogue.api(
    Kind.TORCH_DDP,
    Fix.REMOVE,
    "torch.nn.parallel.DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel",
)
catalogue.factory("functools", "partial")  # partial(DDP, find_unused_parameters=True)
