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
from codemod.sites.subclasses import _class_defs, _contains_run, class_bases


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


_WORD = re.compile(rb"\w+")
_LAST_WORD = re.compile(rb"(\w+)[ \t]*$")


@dataclass(frozen=True)
class _Header:
    """What a file's class statements can subclass, read from its bytes once: the text of
    their bases, and the names its `X as Y` imports bind to a Y those bases use."""

    bases: bytes
    imported_as: frozenset[bytes]

    @classmethod
    def of(cls, data: bytes) -> _Header:
        bases = b"\n".join(class_bases(data))
        imported: set[bytes] = set()
        if b" as " in data:
            for word in set(_WORD.findall(bases)):
                pattern = b" as " + word
                at = data.find(pattern)
                while at != -1:
                    after = data[at + len(pattern) : at + len(pattern) + 1]
                    if not (after.isalnum() or after == b"_"):
                        before = _LAST_WORD.search(data[max(0, at - 100) : at])
                        if before is not None:
                            imported.add(before.group(1))
                    at = data.find(pattern, at + 1)
        return cls(bases, frozenset(imported))

    def may_subclass(self, needles: list[bytes]) -> bool:
        """A base names one of `needles`, or an alias an import binds to one."""
        return any(n in self.bases for n in needles) or not self.imported_as.isdisjoint(needles)


def discover_hf_classes(files: Iterable[tuple[Path, str, bytes]]) -> frozenset[str]:
    """Qualified names of the classes in `files` (path, module, bytes) that subclass the
    TrainingArguments family, directly or through each other, decided on bytes first:
    each round tests its new names against the class statements' bases (short texts read
    once per file), not against every file's bytes."""
    headers = [(f, _Header.of(f[2])) for f in files if b"class" in f[2]]
    headers = [(f, h) for f, h in headers if h.bases]
    names = set(FAMILY_NAMES)
    parsed: set[Path] = set()
    defs = []
    found: set[str] = set()
    new_names = set(names)
    while True:
        needles = [n.encode() for n in sorted(new_names)]
        batch = [f for f, h in headers if f[0] not in parsed and h.may_subclass(needles)]
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
