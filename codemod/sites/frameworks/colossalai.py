"""ColossalAI booster plugins that wrap the model in torch's DDP.

`TorchDDPPlugin`, `HybridParallelPlugin` and `MoeHybridParallelPlugin` all default
`find_unused_parameters` to False and pass it on to DDP, so the keyword goes. The
MoE plugin forces True itself whenever it uses DDP (not every expert is routed), so there
the rewrite changes nothing at run time. `GeminiPlugin` and `LowLevelZeroPlugin` take no
such parameter: not sites. The booster builds the DDP later, in `boost`, so evidence
pairs by the function that holds the site.
"""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

COLOSSALAI = Kind("colossalai", built_later=True)

catalogue.package_api(
    COLOSSALAI,
    Fix.REMOVE,
    ("colossalai",),
    ("TorchDDPPlugin", "HybridParallelPlugin", "MoeHybridParallelPlugin"),
)
