"""The byte test that keeps libcst away from files that cannot hold a site.

Every spelling we report contains `find_unused_param` or, in fairseq's hyphenated flags
(`--find-unused-parameters`, `--find-unused-params`), `find-unused-param`, in some case
(yacs uses FIND_UNUSED_PARAM), so a file without those bytes is skipped before decoding
or parsing.
"""

from __future__ import annotations

NEEDLES = ("find_unused_param", "find-unused-param")
_UNDERSCORE, _HYPHEN = (needle.encode() for needle in NEEDLES)


def may_hold_site(data: bytes) -> bool:
    # bytes.lower() + `in` runs about 8x faster than a case-insensitive regex search, and
    # a second `in` over the lowered bytes costs a fraction of the lower() itself
    lowered = data.lower()
    return _UNDERSCORE in lowered or _HYPHEN in lowered


def mentions(lowered: str) -> bool:
    """Whether a lowered line of text may hold a site: the finder's line-level test."""
    return NEEDLES[0] in lowered or NEEDLES[1] in lowered
