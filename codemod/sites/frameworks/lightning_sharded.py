"""Lightning 1.x wrappers outside `DDPStrategy`: the 0.x-1.2 DDP subclass and FairScale's
sharded plugins and strategies.

`LightningDistributedDataParallel` (pytorch_lightning.overrides.data_parallel, until 1.2)
subclasses torch's DDP without an `__init__` of its own: torch's default False, so the
keyword goes, and the call is the DDP constructor itself (a direct call).

`DDPShardedPlugin`, `DDPSpawnShardedPlugin` (1.2-1.5) and `DDPShardedStrategy`,
`DDPSpawnShardedStrategy` (1.6-1.9) subclass Lightning's DDP plugin, whose default was True
in most of 1.x, so the fix writes False. They hand their kwargs to FairScale's
`ShardedDataParallel`, not to torch's DDP, so the recorder never sees that model: no trace
can cover these sites (their kind does not pair by function), only an allowlist entry.
"""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

LIGHTNING_SHARDED = Kind("lightning-sharded")

catalogue.package_api(
    Kind.TORCH_DDP,
    Fix.REMOVE,
    ("pytorch_lightning", "lightning"),
    ("LightningDistributedDataParallel",),
)
catalogue.package_api(
    LIGHTNING_SHARDED,
    Fix.WRITE_FALSE,
    ("pytorch_lightning", "lightning"),
    ("DDPShardedPlugin", "DDPSpawnShardedPlugin", "DDPShardedStrategy", "DDPSpawnShardedStrategy"),
)
