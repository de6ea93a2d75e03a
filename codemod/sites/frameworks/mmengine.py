"""OpenMMLab's DDP wrappers (mmcv, mmengine): subclasses of torch's, defaulting to False."""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

catalogue.package_api(
    Kind.TORCH_DDP,
    Fix.REMOVE,
    ("mmcv", "mmengine"),
    ("MMDistributedDataParallel", "MMSeparateDistributedDataParallel"),
)
