"""PyTorch Ignite's `idist.auto_model(model, **kwargs)`: the kwargs go to torch's DDP.

Ignite sets no default of its own, so torch's False applies and the keyword goes. DDP is
built inside ignite's code, so evidence pairs by the function that holds the call.
"""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

IGNITE = Kind("ignite", built_later=True)

catalogue.package_api(IGNITE, Fix.REMOVE, ("ignite",), ("auto_model",))
