"""Config files and their inheritance graph (mmengine `_base_` in Python or YAML, detectron2
LazyConfig imports, and the folders Hydra composes from).

A setting in a base config reaches every config that inherits it without overriding it,
so a base may only be rewritten when all of those are covered too. The graph is read from
bytes with regular expressions (a project can hold thousands of configs); only configs
that mention the setting are parsed, to learn which keys they override.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_BASE = re.compile(rb"^_base_\s*=\s*(\[[^\]]*\]|\([^)]*\)|'[^'\n]*'|\"[^\"\n]*\")", re.M)
_STRING = re.compile(rb"'([^'\n]*)'|\"([^\"\n]*)\"")
# Starts with a literal so the search skips ahead fast; the line start is checked apart.
_RELATIVE_IMPORT = re.compile(rb"from\s+(\.+)([\w.]*)\s+import\b")
# `_base_` / `read_base`, LazyCall / LazyConfig, detectron2.config: three scans, not five
_MARKERS = (b"_base", b"LazyC", b"detectron2.config")
CONFIG_DIRS = frozenset({"configs", "config", "cfg", "cfgs"})
YAML_SUFFIXES = (".yaml", ".yml")
_YAML_BASE = re.compile(rb"^_base_\s*:", re.M)  # mmengine configs written in YAML
_HYDRA_DEFAULTS = re.compile(rb"^defaults\s*:", re.M)  # a Hydra config composing others


def in_config_dir(rel: str) -> bool:
    return any(part in CONFIG_DIRS for part in rel.split("/")[:-1])


def has_config_markers(data: bytes) -> bool:
    """Config by content: `_base_`, mmengine's read_base, detectron2's LazyConfig."""
    return any(marker in data for marker in _MARKERS)


_MODULE_LEVEL_SETTING = re.compile(rb"^[\w.]*find_unused_param\w*\s*=", re.M | re.I)


def might_be_config(rel: str, data: bytes) -> bool:
    """Whether a candidate file needs the project's config graph: YAML or JSON, markers, configs/,
    or a module-level assignment of the setting (a base config can look like nothing else)."""
    if rel.endswith((*YAML_SUFFIXES, ".json")):
        return True
    return (
        has_config_markers(data)
        or in_config_dir(rel)
        or _MODULE_LEVEL_SETTING.search(data) is not None
    )


def _join(rel: str, ref: str) -> str | None:
    """A base reference resolved against the config's folder; None outside the tree."""
    if "::" in ref or not ref:  # `mmdet::faster_rcnn/...`: a package's own config
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(rel), ref))
    return None if path.startswith("../") or path == ".." else path


def bases_of(rel: str, data: bytes, markers: bool | None = None) -> list[str]:
    """Configs `rel` inherits: `_base_` strings and relative imports between configs."""
    if markers is None:
        markers = has_config_markers(data)
    out: list[str] = []
    for match in _BASE.finditer(data) if markers else ():
        for string in _STRING.finditer(match.group(1)):
            ref = (string.group(1) or string.group(2) or b"").decode("utf-8", "replace")
            path = _join(rel, ref)
            if path is not None:
                out.append(path)
    if markers or in_config_dir(rel):
        package = posixpath.dirname(rel)
        for match in _RELATIVE_IMPORT.finditer(data):
            if not _at_line_start(data, match.start()):
                continue
            up = len(match.group(1)) - 1
            module = match.group(2).decode("ascii", "replace").replace(".", "/")
            folder = package
            for _ in range(up):
                folder = posixpath.dirname(folder)
            target = posixpath.normpath(posixpath.join(folder, module) + ".py") if module else None
            if target and not target.startswith("../"):
                out.append(target)
    return out


def _at_line_start(data: bytes, index: int) -> bool:
    """Only whitespace between the line's start and `index`."""
    return not data[data.rfind(b"\n", 0, index) + 1 : index].strip()


def yaml_bases(rel: str, data: bytes) -> list[str]:
    """`_base_: [...]` of an mmengine config written in YAML."""
    if not _YAML_BASE.search(data):
        return []
    import yaml

    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        return []
    refs = doc.get("_base_") if isinstance(doc, dict) else None
    refs = [refs] if isinstance(refs, str) else refs if isinstance(refs, list) else []
    paths = (_join(rel, ref) for ref in refs if isinstance(ref, str))
    return [path for path in paths if path is not None]


@dataclass
class ConfigGraph:
    """Who inherits whom, over every config in a project."""

    bases: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    configs: set[str] = field(default_factory=set)  # files that are configs
    hydra: set[str] = field(default_factory=set)  # YAML files with a Hydra defaults list

    def hydra_composer(self, rel: str) -> str | None:
        """A Hydra config whose folder holds `rel`: it may compose `rel` into runs nobody
        traced, and which ones cannot be told statically."""
        for composer in sorted(self.hydra):
            folder = posixpath.dirname(composer)
            if composer != rel and (not folder or rel.startswith(folder + "/")):
                return composer
        return None

    def add(self, rel: str, bases: list[str]) -> None:
        self.configs.add(rel)
        self.bases[rel] = bases
        for base in bases:
            self.children.setdefault(base, []).append(rel)
            self.configs.add(base)

    def is_config(self, rel: str) -> bool:
        return rel in self.configs

    def descendants(self, roots: Iterable[str]) -> set[str]:
        """Every config that inherits, directly or not, from one of `roots`."""
        out: set[str] = set()
        stack = [child for root in roots for child in self.children.get(root, [])]
        while stack:
            child = stack.pop()
            if child not in out:
                out.add(child)
                stack.extend(self.children.get(child, []))
        return out

    def inheritors(self, rel: str, key: str, sets: Callable[[str], frozenset[str]]) -> list[str]:
        """Configs that get `key` from `rel`: descendants, minus those that set it themselves
        (and everything below them, which gets their value instead)."""
        out: list[str] = []
        seen = {rel}
        stack = list(reversed(self.children.get(rel, [])))
        while stack:
            child = stack.pop()
            if child in seen:
                continue
            seen.add(child)
            if key in sets(child):
                continue
            out.append(child)
            stack.extend(reversed(self.children.get(child, [])))
        return sorted(out)


def build(files: Iterable[tuple[str, bytes]]) -> ConfigGraph:
    """The graph of every config among (project-relative path, bytes)."""
    graph = ConfigGraph()
    for rel, data in files:
        if rel.endswith(YAML_SUFFIXES):
            if _HYDRA_DEFAULTS.search(data):
                graph.hydra.add(rel)
            if _YAML_BASE.search(data):
                graph.add(rel, yaml_bases(rel, data))
            continue
        if not rel.endswith(".py"):
            continue
        markers = has_config_markers(data)
        bases = bases_of(rel, data, markers)
        if bases or markers:
            graph.add(rel, bases)
    return graph
