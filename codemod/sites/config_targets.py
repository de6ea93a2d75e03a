"""Which class a config mapping's keys are the arguments of, for YAML and JSON configs.

Hydra and MONAI bundles name it in the mapping itself (`_target_`), the Lightning CLI and
jsonargparse in `class_path` with the arguments under `init_args`, Stable Diffusion forks
in `target` with them under `params`. A `find_unused_parameters` key in such a mapping is
a site only when that class is a DDP API the catalogue knows; any other class takes it as
an argument of its own (a model, a callback), so the key is data there, never a site. A
mapping that names no class keeps the old rule: the key is a site at any depth.
ESPnet's `unused_parameters` is a site only at the top of an ESPnet training config.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath

from codemod.sites.catalogue import KEYWORD, known_api

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
_OWN_KEYS = ("_target_", "class_path")  # the mapping's own class; `target` needs a dot
_ARGS_OF = {"init_args": "class_path", "params": "target"}  # arguments under a child key
ESPNET_KEY = "unused_parameters"
ESPNET_CALLEE = "espnet2"
# a key only ESPnet2's trainer options have; its recipes keep configs under egs2/*/conf/
_ESPNET_MARKER = "best_model_criterion"


@dataclass(frozen=True)
class Holder:
    """A mapping that holds a key: its scalar entries, and its parent's when it is one."""

    scalars: Mapping[str, object]
    parent_key: str | None = None  # the key this mapping is the value of
    parent: Mapping[str, object] | None = None


def _named(scalars: Mapping[str, object], key: str) -> str | None:
    value = scalars.get(key)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if key == "target":
        return value if _DOTTED.match(value) else None
    return value if _DOTTED.match(value) or value.isidentifier() else None


def target_of(holder: Holder) -> str | None:
    """The class whose arguments the mapping holds, as written; None when none is named."""
    for key in (*_OWN_KEYS, "target"):
        name = _named(holder.scalars, key)
        if name is not None:
            return name
    outer = _ARGS_OF.get(holder.parent_key or "")
    if outer is not None and holder.parent is not None:
        return _named(holder.parent, outer)
    return None


def callee_for(key: str, holder: Holder) -> str | None:
    """The callee a `key` in this mapping configures ("" for a plain mapping), or None
    when the mapping names a class that is not a DDP API: the key is its data then."""
    if key != KEYWORD:  # HF's ddp_find_unused_parameters is a site on any callee
        return ""
    target = target_of(holder)
    if target is None:
        return ""
    api = known_api(target)
    return api.name if api is not None else None


def is_espnet_config(file: PurePath, top_keys: Mapping[str, object]) -> bool:
    """ESPnet2 training configs: under `egs/` or `egs2/` .../`conf/` (its recipe layout),
    or holding ESPnet2's own `best_model_criterion` at the top."""
    if _ESPNET_MARKER in top_keys:
        return True
    parts = file.parts[:-1]
    return any(p in ("egs", "egs2") and "conf" in parts[i + 1 :] for i, p in enumerate(parts))
