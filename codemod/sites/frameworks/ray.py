"""Ray Train: `RayDDPStrategy` (a Lightning `DDPStrategy`) and `prepare_model`.

`RayDDPStrategy` inherits the installed Lightning's default (True in 1.x), so the fix
writes False. `prepare_model(model, parallel_strategy_kwargs={...})` splats that dict into
torch's DDP; its `find_unused_parameters` entry is set to False, and only when the dict
provably feeds that call (see `kwargs_flow`). Ray builds the DDP inside its own code, so
evidence pairs by the function that holds the site.
"""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

RAY_TRAIN = Kind("ray-train", built_later=True)

catalogue.package_api(RAY_TRAIN, Fix.WRITE_FALSE, ("ray",), ("RayDDPStrategy",))
catalogue.kwargs_parameter(
    RAY_TRAIN, Fix.WRITE_FALSE, ("ray",), "prepare_model", "parallel_strategy_kwargs"
)
