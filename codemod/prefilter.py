"""The byte test that keeps libcst away from files that cannot hold a site.

Every spelling we rewrite contains `find_unused_param` in some case (yacs uses
FIND_UNUSED_PARAM), so a file without those bytes is skipped before decoding or parsing.
"""

from __future__ import annotations

import re

_NEEDLE = re.compile(rb"find_unused_param", re.IGNORECASE)


def may_hold_site(data: bytes) -> bool:
    return _NEEDLE.search(data) is not None
