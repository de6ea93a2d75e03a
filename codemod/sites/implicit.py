"""Project-wide facts that implicit sites depend on, gathered once per project.

Whether `strategy="ddp"` is a site depends on the Lightning the repo pins
(`codemod.discover.pins`); whether `MyArgs(...)` builds Hugging Face training arguments
depends on a class statement that may live in another module. Both are computed only when
a candidate file needs them, and travel to worker processes inside the file's context, so
they are small and picklable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from codemod.discover.pins import LightningPin
from codemod.sites.frameworks.hf import FAMILY_NAMES, is_family
from codemod.sites.subclasses import _class_defs, _contains_run

_CLASS_BASES = re.compile(rb"^[ \t]*class\s+\w+\s*\(([^)]*)\)", re.M)


@dataclass(frozen=True)
class ImplicitFacts:
    """What one file's implicit sites need to know about its project."""

    lightning: LightningPin | None = None  # None: not read (the file needs no pin)
    hf_classes: frozenset[str] = frozenset()  # repo subclasses of TrainingArguments & co.
    _names: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:  # asked for every file: computed once
        names = frozenset(q.rsplit(".", 1)[-1] for q in self.hf_classes)
        object.__setattr__(self, "_names", names)

    def is_hf_class(self, qualname: str) -> bool:
        """`pkg.args.MyArgs` (or a re-export of it: `pkg.MyArgs`) is a repo argument class."""
        module, _, name = qualname.rpartition(".")
        if not module:
            return False
        wanted = module.split(".")
        for known in self.hf_classes:
            known_module, _, known_name = known.rpartition(".")
            if known_name == name and _contains_run(known_module.split("."), wanted):
                return True
        return False

    def names(self) -> frozenset[str]:
        """The last names of the repo's argument classes: bytes a calling file must hold."""
        return self._names


def _names_any(data: bytes, needles: list[bytes]) -> bool:
    """Whether `data` holds one of `needles`; every family name ends in Arguments or Config,
    so for the family one `in` each rules out most files."""
    family = needles and all(n.endswith((b"Arguments", b"Config")) for n in needles)
    if family and b"Arguments" not in data and b"Config" not in data:
        return False
    return any(n in data for n in needles)


def discover_hf_classes(files: Iterable[tuple[Path, str, bytes]]) -> frozenset[str]:
    """Qualified names of the classes in `files` (path, module, bytes) that subclass the
    TrainingArguments family, directly or through each other, decided on bytes first."""
    pending = [f for f in files if b"class" in f[2]]
    names = set(FAMILY_NAMES)
    parsed: set[Path] = set()
    defs = []
    found: set[str] = set()
    new_names = set(names)
    while True:
        needles = [n.encode() for n in sorted(new_names)]
        aliased = re.compile(rb"\b(?:" + b"|".join(re.escape(n) for n in needles) + rb")\s+as\s")
        # A class naming one of this round's names among its bases, or an alias of one: a
        # file that holds neither name's bytes holds neither (most files: cheap `in` tests).
        batch = [
            (path, module, data)
            for path, module, data in pending
            if path not in parsed
            and _names_any(data, needles)
            and (
                any(n in b for b in _CLASS_BASES.findall(data) for n in needles)
                or (b" as " in data and aliased.search(data) is not None)  # `import X as Y`
            )
        ]
        if not batch:
            return frozenset(found)
        for path, module, data in batch:
            parsed.add(path)
            defs.extend(_class_defs(data, module, path))
        changed = True
        while changed:
            changed = False
            facts = ImplicitFacts(hf_classes=frozenset(found))
            for d in defs:
                qualname = f"{d.module}.{d.name}"
                if qualname in found:
                    continue
                if any(b and (is_family(b) or facts.is_hf_class(b)) for b in d.bases):
                    found.add(qualname)
                    changed = True
        new_names = {q.rsplit(".", 1)[-1] for q in found} - names
        if not new_names:
            return frozenset(found)
        names |= new_names
