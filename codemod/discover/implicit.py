"""The second byte test: files that may turn the flag on without writing it.

Hugging Face's `TrainingArguments(...)` left at `ddp_find_unused_parameters=None` and
Lightning 1.x's `strategy="ddp"` / `DDPStrategy()` enable find_unused_parameters without
the bytes `find_unused_param` (see README "Implicit True"). Every such site names its API
through an import of `transformers`, `trl` or `lightning` in the same file, or calls a repo
class that subclasses one (`extra` names), so a file without those bytes is skipped
before decoding. Kept apart from `prefilter.may_hold_site`, which stays the one test for
written settings, and ordered so that the common file fails on its first, rarest needle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_HF_ARGS = b"TrainingArguments"
_TRL = b"trl"
_CONFIG = b"Config"
_LIGHTNING = b"lightning"


def mentions_hf(data: bytes) -> bool:
    """May construct a `TrainingArguments`-family class, or define a repo subclass of one."""
    return _HF_ARGS in data or (_TRL in data and _CONFIG in data)


def mentions_lightning(data: bytes) -> bool:
    """May use a Lightning 1.x DDP spelling (`"ddp"`, `DDPStrategy()`, `DDPPlugin()`)."""
    return _LIGHTNING in data and (b"ddp" in data or b"DDP" in data)


def may_hold_implicit(data: bytes, extra: Iterable[bytes] = ()) -> bool:
    """True when `data` may hold an implicit site; `extra`: the repo's own argument classes."""
    return mentions_hf(data) or mentions_lightning(data) or any(n in data for n in extra)


def text_may_hold_implicit(text: str, extra: Iterable[str] = ()) -> bool:
    """`may_hold_implicit` for decoded source, as the finder has it."""
    return (
        "TrainingArguments" in text
        or ("trl" in text and "Config" in text)
        or ("lightning" in text and ("ddp" in text or "DDP" in text))
        or any(n in text for n in extra)
    )


_ALIAS = re.compile(r"\b\w*(?:TrainingArguments|Config|Trainer|Strategy|Plugin)\s+as\s+(\w+)")


def aliases(text: str) -> frozenset[str]:
    """Names an import binds to an implicit API (`from trl import DPOConfig as Dpo`): the
    finder must visit their calls too."""
    return frozenset(_ALIAS.findall(text)) if " as " in text else frozenset()


@lru_cache(maxsize=64)
def line_pattern(extra: frozenset[str] = frozenset()) -> re.Pattern[str]:
    """Lines an implicit site's call can start on: the finder visits subtrees spanning one."""
    words = ["TrainingArguments", "Config", "[Dd][Dd][Pp]", "Trainer", "lazy_instance"]
    words += sorted(re.escape(name) for name in extra)
    return re.compile("|".join(words))
