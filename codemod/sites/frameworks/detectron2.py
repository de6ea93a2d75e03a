"""detectron2's `create_ddp_model(model, **kwargs)`: passes the keyword on to torch's DDP."""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

DETECTRON2 = Kind("detectron2")

catalogue.package_api(DETECTRON2, Fix.REMOVE, ("detectron2",), ("create_ddp_model",))
