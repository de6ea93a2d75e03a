"""NeMo's `NLPDDPStrategy`, a Lightning `DDPStrategy` that passes the keyword on.

It adds no default of its own, so it has Lightning's semantics: turning the flag off means
writing False (Lightning 1.x turned it on when it was not passed).
"""

from __future__ import annotations

from codemod.model import Fix
from codemod.sites import catalogue
from codemod.sites.frameworks.lightning import LIGHTNING

catalogue.package_api(LIGHTNING, Fix.WRITE_FALSE, ("nemo",), ("NLPDDPStrategy",))
