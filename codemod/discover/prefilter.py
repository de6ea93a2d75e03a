"""The byte test that keeps libcst away from files that cannot hold a site.

Every spelling we report contains `find_unused_param` or, in fairseq's hyphenated flags
(`--find-unused-parameters`, `--find-unused-params`), `find-unused-param`, in some case
(yacs uses FIND_UNUSED_PARAM), so a file without those bytes is skipped before decoding
or parsing. ESPnet's `unused_parameters` is the one exception, and only in YAML configs
and shell scripts: those files are also let through on that word (one more `in` on bytes
already lowered, for files with those suffixes alone).
"""

from __future__ import annotations

NEEDLES = ("find_unused_param", "find-unused-param")
NEEDLE = NEEDLES[0]  # what every Python site holds (the hyphenated one is a flag's)
_UNDERSCORE, _HYPHEN = (needle.encode() for needle in NEEDLES)
ESPNET_NEEDLE = b"unused_parameters"
ESPNET_SUFFIXES = (".yaml", ".yml", ".sh", ".bash")  # where ESPnet spells it so


def may_hold_site(data: bytes, name: str = "") -> bool:
    """`name`: the file's name, when known (ESPnet's spelling counts in its suffixes)."""
    # bytes.lower() + `in` runs about 8x faster than a case-insensitive regex search, and
    # a second `in` over the lowered bytes costs a fraction of the lower() itself
    lowered = data.lower()
    if _UNDERSCORE in lowered or _HYPHEN in lowered:
        return True
    return name.endswith(ESPNET_SUFFIXES) and ESPNET_NEEDLE in lowered
