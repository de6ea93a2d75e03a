"""Which configs name which, and which configs a run chose.

A config's setting reaches every run that reads the file, not only the run that was
traced: shared files pulled in by include lists the tool does not parse (`__include__`,
`inherit_from`, `defaults`, a repo's own loader), files a trainer reads on every run, a
registry that reads a whole folder. So evidence about a config rests on what a run
*chose*: the configs its command line names (its entries) and what those refer to. And a
file that other configs name is rewritten only when each of them is covered too: any
config that names a file by its path or its file name counts as a reference, so an
unknown include mechanism fails safe.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from codemod.configs.graph import ConfigGraph, in_config_dir

# Files whose text can name another config: they are searched, never edited for this.
REFERENCE_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf")
# A file name ends in one of these; the search starts at the "." so it skips ahead fast.
_EXTENSION = re.compile(rb"\.(?:ya?ml|json|toml|ini|cfg|conf|py)\b")
_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-/")
_IMPORT = re.compile(rb"(?:from|import)[ \t]+([\w.]+)")


def _basename(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _stem(rel: str) -> str:
    return _basename(rel).rsplit(".", 1)[0]


def is_reference_config(rel: str, graph: ConfigGraph) -> bool:
    """A file whose text may refer to configs: a data file, or a Python config."""
    if rel.endswith(REFERENCE_SUFFIXES):
        return True
    return rel.endswith(".py") and (graph.is_config(rel) or in_config_dir(rel))


def paths_in(data: bytes) -> list[str]:
    """Every path-like string that ends in a config file's extension."""
    out = []
    for match in _EXTENSION.finditer(data):
        start = match.start()
        while start > 0 and data[start - 1] in _NAME_CHARS:
            start -= 1
        out.append(data[start : match.end()].decode("utf-8", "replace"))
    return out


@dataclass
class References:
    """Name references among a project's config files, read from their bytes once."""

    graph: ConfigGraph
    configs: dict[str, bytes]  # repo-relative path -> bytes, config files only
    by_name: dict[str, list[str]] = field(default_factory=dict)  # file name -> configs
    _paths: dict[str, list[str]] = field(default_factory=dict)  # config -> paths it names
    _naming: dict[str, set[str]] = field(default_factory=dict)  # file name -> configs naming it
    _importing: dict[str, set[str]] = field(default_factory=dict)  # module stem -> importers
    _named: dict[str, tuple[str, ...]] = field(default_factory=dict)  # named_by, once each

    def __post_init__(self) -> None:
        for rel, data in self.configs.items():
            self.by_name.setdefault(_basename(rel), []).append(rel)
            paths = self._paths[rel] = paths_in(data)
            for path in paths:
                self._naming.setdefault(_basename(path), set()).add(rel)
            if rel.endswith(".py"):
                for match in _IMPORT.finditer(data):
                    module = match.group(1).decode("ascii", "replace")
                    self._importing.setdefault(module.rsplit(".", 1)[-1], set()).add(rel)

    def named_by(self, rel: str) -> tuple[str, ...]:
        """Configs that name `rel` by its file name (or, for Python, import its module):
        a superset of those that include it, whatever the mechanism. Kept per `rel`: the
        referrers of hundreds of configs walk the same ones again and again."""
        named = self._named.get(rel)
        if named is None:
            found = set(self._naming.get(_basename(rel), ()))
            if rel.endswith(".py"):
                found |= self._importing.get(_stem(rel), set())
            found.discard(rel)
            named = self._named[rel] = tuple(sorted(found))
        return named

    def names(self, rel: str) -> list[str]:
        """Configs that `rel` refers to: its bases, and each path it names, resolved against
        its folder and the repo root, or every config of that file name when neither is."""
        out = set(self.graph.bases.get(rel, []))
        for path in self._paths.get(rel, []):
            candidates = {
                posixpath.normpath(posixpath.join(posixpath.dirname(rel), path)),
                posixpath.normpath(path.lstrip("/")),
            }
            hit = [c for c in candidates if c in self.configs]
            out.update(hit or self.by_name.get(_basename(path), []))
        out.discard(rel)
        return sorted(out)

    def chosen(self, entries: Iterable[str]) -> set[str]:
        """The entries and every config reached from them through references."""
        seen: set[str] = set()
        stack = [e for e in entries if e in self.configs or self.graph.is_config(e)]
        while stack:
            rel = stack.pop()
            if rel in seen:
                continue
            seen.add(rel)
            stack.extend(self.names(rel))
        return seen

    def referrers(self, rel: str) -> list[str]:
        """Every config that refers to `rel`, directly or through other referrers, other
        than its inheritance children (those follow the override rule instead)."""
        children = set(self.graph.children.get(rel, []))
        out: set[str] = set()
        stack = [r for r in self.named_by(rel) if r not in children]
        while stack:
            other = stack.pop()
            if other in out or other == rel:
                continue
            out.add(other)
            stack.extend(self.named_by(other))
            stack.extend(self.graph.children.get(other, []))
        return sorted(out)


def entries(command: Sequence[str], known: set[str], root: str, cwd: str = "") -> set[str]:
    """Repo files a command line names: a path argument, `--config x.yml`, `config=x.yml`,
    `--site x.py:12`, resolved against the run's working folder (repo-relative, "" for the
    root) and the root itself; absolute paths under `root` count too."""
    prefix = root.rstrip("/") + "/"
    out: set[str] = set()
    for arg in command:
        for token in (arg, arg.split("=", 1)[1] if "=" in arg else ""):
            token = token.strip().strip("'\"")
            if not token or token.startswith("-"):
                continue
            if token.startswith(prefix):
                token = token[len(prefix) :]
            for candidate in (token, token.split(":", 1)[0]):
                for base in {cwd, ""}:
                    rel = posixpath.normpath(posixpath.join(base, candidate))
                    if rel in known:
                        out.add(rel)
    return out
