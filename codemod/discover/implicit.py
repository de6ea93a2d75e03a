"""The second byte test: files that may turn the flag on without writing it.

Hugging Face's `TrainingArguments(...)` left at `ddp_find_unused_parameters=None` and
Lightning 1.x's `strategy="ddp"` / `DDPStrategy()` enable find_unused_parameters without
the bytes `find_unused_param` (see README "Implicit True"). Every such site calls its API
by a name an import of `transformers`, `trl` or `lightning` binds in the same file, or a
repo class that subclasses one (`extra` names), so a file without those bytes is skipped
before decoding. Kept apart from `prefilter.may_hold_site`, which stays the one test for
written settings, and ordered so that the common file fails on its first, rarest needle.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

_HF_ARGS = b"TrainingArguments"
# an import of trl ("trl" alone is in every "control" and "ctrl")
_TRL = re.compile(rb"(?:from|import)[ \t]+trl\b")
_CONFIG = b"Config"
_LIGHTNING = b"lightning"
# a quoted name ("ddp", 'ddp_spawn', "DDP") or a strategy class; not "DDP" in a comment
_LIGHTNING_NEEDLES = (b'"ddp', b"'ddp", b'"DDP', b"'DDP", b"DDPStrategy", b"DDPPlugin", b"DDPSpawn")


def mentions_hf(data: bytes) -> bool:
    """May name a `TrainingArguments`-family class: call one, or define a repo subclass."""
    return _HF_ARGS in data or (_CONFIG in data and b"trl" in data and _imports_trl(data))


def _imports_trl(data: bytes) -> bool:
    """`b" trl"` first: the regex alone, over every file holding "control", was slow."""
    return (b" trl" in data or b"\ttrl" in data) and _TRL.search(data) is not None


def calls_hf(data: bytes) -> bool:
    """May call one: `TrainingArguments(`, one of trl's configs (`SFTConfig(`), or an import
    alias of one. Not any `...Config(` in a file that imports trl: `LoraConfig(` and the
    class statements of trl's own configs (`class SFTConfig(TrainingArguments):`) made a
    fifth of a scan's parsed files over 25 real repos, and held no site. True only where
    mentions_hf is: a caller that has that answer may skip this test when it is False."""
    if _HF_ARGS + b"(" in data or (
        _CONFIG + b"(" in data
        and b"trl" in data
        and _imports_trl(data)
        and any(_called(data, call) for call in _trl_calls())
    ):
        return True
    return b" as " in data and mentions_hf(data)


def _called(data: bytes, call: bytes) -> bool:
    """`call` (`SFTConfig(`) occurs other than as the name of a class statement."""
    at = data.find(call)
    while at != -1:
        line_start = data.rfind(b"\n", 0, at) + 1
        if data[line_start:at].strip() != b"class":
            return True
        at = data.find(call, at + 1)
    return False


@functools.cache
def _trl_calls() -> tuple[bytes, ...]:
    """`SFTConfig(`, ...: imported when first needed, which the fast path rarely is."""
    from codemod.sites.frameworks.hf import TRL_CONFIGS

    return tuple(name.encode() + b"(" for name in TRL_CONFIGS)


def mentions_lightning(data: bytes) -> bool:
    """May use a Lightning 1.x DDP spelling (`"ddp"`, `DDPStrategy()`, `DDPPlugin()`)."""
    return _LIGHTNING in data and any(n in data for n in _LIGHTNING_NEEDLES)


def may_hold_implicit(data: bytes, extra: Iterable[bytes] = ()) -> bool:
    """True when `data` may hold an implicit site; `extra`: the repo's own argument classes."""
    return calls_hf(data) or mentions_lightning(data) or calls_any(data, extra)


def calls_any(data: bytes, names: Iterable[bytes]) -> bool:
    """`Name(` for one of `names` (as a substring, like `in`). Each distinct last four
    bytes of the names (`nfig(` for every `...Config`) is searched once; a hit is checked
    against the names that end so in place, instead of searching the file for each name
    (45 names in a folder of repos that vendors trl)."""
    for tail, group in _by_tail(tuple(names)).items():
        at = data.find(tail)
        while at != -1:
            paren = at + len(tail) - 1
            if any(data.startswith(n, paren - len(n)) for n in group if len(n) <= paren):
                return True
            at = data.find(tail, at + 1)
    return False


@functools.lru_cache(maxsize=64)
def _by_tail(names: tuple[bytes, ...]) -> dict[bytes, tuple[bytes, ...]]:
    groups: dict[bytes, list[bytes]] = {}
    for name in names:
        groups.setdefault(name[-4:] + b"(", []).append(name)
    return {tail: tuple(group) for tail, group in groups.items()}


_HF_WORDS = ("TrainingArguments", "Config")
_LIGHTNING_WORDS = ("ddp", "DDP", "Trainer", "lazy_instance")
# any word ending in one of these; no leading `\b\w*`, which made the regex try every
# position of the file (25x slower) and matches nothing more
_ALIAS = re.compile(r"(?:TrainingArguments|Config|Trainer|Strategy|Plugin)\s+as\s+(\w+)")


def aliases(text: str) -> frozenset[str]:
    """Names an import binds to an implicit API (`from trl import DPOConfig as Dpo`): the
    finder must visit their calls too."""
    return frozenset(_ALIAS.findall(text)) if " as " in text else frozenset()


def words(text: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """What a line an implicit site's call starts on must contain, for this file: none
    when the file can hold no implicit site. Plain `in` tests: far cheaper than a regex."""
    found: list[str] = []
    if "TrainingArguments" in text or (
        "Config" in text and "trl" in text and _imports_trl(text.encode("utf-8", "replace"))
    ):
        found += _HF_WORDS
    if "lightning" in text and ("ddp" in text or "DDP" in text):
        found += _LIGHTNING_WORDS
    found += [name for name in extra if name in text]
    return tuple(found)
