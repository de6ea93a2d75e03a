"""Hugging Face accelerate: `DistributedDataParallelKwargs` defaults to False.

Accelerate builds the DDP later, in `prepare`, so evidence pairs by the function that
holds the site.
"""

from __future__ import annotations

from codemod.model import Fix, Kind
from codemod.sites import catalogue

ACCELERATE = Kind("accelerate", built_later=True)

catalogue.package_api(ACCELERATE, Fix.REMOVE, ("accelerate",), ("DistributedDataParallelKwargs",))
