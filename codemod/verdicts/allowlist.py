"""Allowlist selectors: the user's explicit word that a site may be rewritten.

`path` (every site in the file), `path:LINE` (the site whose span holds LINE),
`path::QUALNAME` (sites in that function or class); the path part may be a glob
(`damo/**/*.py`) and is relative to a base folder: the current directory for --allow
(one base for the whole run, whatever the PATHs and their order), the folder of
pyproject.toml for `[tool.ddp-codemod] allow`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from codemod.model import Span

_LINE_SELECTOR = re.compile(r"^(?P<path>.+):(?P<line>[0-9]+)$")
_GLOB_CHARS = re.compile(r"[*?\[]")


class SelectorError(ValueError):
    """A selector that cannot be used as written; the message says why."""


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Anchored glob: `*` and `?` stay within a folder, `**` spans folders.

    SelectorError for a glob that cannot match as written (`[z-a]`)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(pattern[i]))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:
        raise SelectorError(exc.msg) from None


def _normalize(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/")


def _strip_locals(qualname: str) -> str:
    return qualname.replace(".<locals>", "")


@dataclass(frozen=True)
class Selector:
    text: str  # as the user wrote it
    origin: str  # "--allow" or the pyproject.toml it came from
    base: Path  # folder the path part is relative to
    path: str
    line: int | None = None
    qualname: str | None = None
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str, origin: str, base: Path) -> Selector:
        """SelectorError when the path part is a glob that cannot match as written."""
        if "::" in text:
            path, _, qualname = text.partition("::")
            made = cls(text, origin, base, _normalize(path), qualname=qualname.strip())
        else:
            match = _LINE_SELECTOR.match(text)
            if match:
                made = cls(text, origin, base, _normalize(match["path"]), line=int(match["line"]))
            else:
                made = cls(text, origin, base, _normalize(text))
        made = made._climbed()
        if made.is_glob:  # compiled once, up front: a bad glob is an error, not a crash
            object.__setattr__(made, "regex", glob_to_regex(made.path))
        return made

    def _climbed(self) -> Selector:
        """`../x.py` and `/abs/x.py` name files outside the base: move the base there."""
        base, path = self.base, self.path
        if path.startswith("/"):
            base, path = Path(base.anchor or "/"), path.lstrip("/")
        while path == ".." or path.startswith("../"):
            base, path = base.parent, path[3:]
        if (base, path) == (self.base, self.path):
            return self
        return dataclasses.replace(self, base=base, path=path)

    def names_inside(self, folder: Path) -> bool:
        """The selector's files would lie under `folder` (its base is there)."""
        return self.base == folder or folder in self.base.parents

    @property
    def is_glob(self) -> bool:
        return _GLOB_CHARS.search(self.path) is not None

    def matches_file(self, file: Path) -> bool:
        try:
            rel = file.relative_to(self.base).as_posix()
        except ValueError:
            return False
        if self.regex is not None:
            return self.regex.match(rel) is not None
        return rel == self.path

    def covers(self, file: Path, spans: tuple[Span, ...], qualname: str) -> bool:
        if not self.matches_file(file):
            return False
        if self.line is not None:
            return any(span.contains_line(self.line) for span in spans)
        if self.qualname is not None:
            wanted = _strip_locals(self.qualname)
            actual = _strip_locals(qualname)
            return actual == wanted or actual.startswith(wanted + ".")
        return True


class Allowlist:
    """Selectors from the command line and the repo's pyproject.toml."""

    def __init__(self, selectors: list[Selector]) -> None:
        self.selectors = selectors

    def covers_file(self, file: Path) -> bool:
        """A whole-file selector (no :LINE, no ::QUALNAME) names this file."""
        return any(
            s.line is None and s.qualname is None and s.matches_file(file) for s in self.selectors
        )

    def covering(self, file: Path, spans: tuple[Span, ...], qualname: str) -> Selector | None:
        for selector in self.selectors:
            if selector.covers(file, spans, qualname):
                return selector
        return None


def invalid_selector(text: str, why: str) -> str:
    """The error line's message for a selector that is ignored."""
    return f"invalid selector `{text}` ({why}); ignored"


def usable(texts: tuple[str, ...], origin: str, base: Path) -> tuple[list[str], list[str]]:
    """(the selectors that parse, an error message for each one that does not)."""
    good: list[str] = []
    errors: list[str] = []
    for text in texts:
        try:
            Selector.parse(text, origin, base)
        except SelectorError as exc:
            errors.append(invalid_selector(text, str(exc)))
        else:
            good.append(text)
    return good, errors
