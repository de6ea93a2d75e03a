"""Project-wide facts that config sites need, gathered once per run.

Who inherits whom (the `_base_` graph over Python and YAML configs), which setting keys
each inheriting config sets itself (so it does not inherit them), which folders Hydra
composes configs from, and what the recorded runs prove about each config file they read.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from codemod.configs import graph as config_files
from codemod.configs import readers, references
from codemod.configs.graph import ConfigGraph
from codemod.discover.prefilter import may_hold_site
from codemod.evidence.load import Instance
from codemod.model import Coverage, Kind


@dataclass(frozen=True)
class ConfigFacts:
    graph: ConfigGraph = field(default_factory=ConfigGraph)
    keys: Mapping[str, frozenset[str]] = field(default_factory=dict)  # settings each config sets
    states: Mapping[str, Coverage] = field(default_factory=dict)  # evidence per file read
    # configs that name each config holding a setting (references.py), inheritance aside
    referrers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    foreign: Mapping[str, str] = field(default_factory=dict)  # config -> PaddlePaddle, ...

    def sets(self, rel: str) -> frozenset[str]:
        return self.keys.get(rel, frozenset())


def _keys(file: Path, rel: str, data: bytes) -> frozenset[str]:
    """The settings (dotted keys) a config file sets itself."""
    if rel.endswith(config_files.YAML_SUFFIXES):
        from codemod.sites import yaml_files as yaml_sites

        try:
            found = yaml_sites.find(data.decode("utf-8-sig", "replace"), file, rel)
        except yaml_sites.YamlError:
            return frozenset()
        return frozenset(site.setting for site, _ in found)
    from codemod.sites.python import FileContext, find_sites
    from codemod.sites.subclasses import Subclasses

    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset()
    ctx = FileContext(file, rel, rel, "", False, is_config=True)
    found = find_sites(tree, data.decode("utf-8", "replace"), ctx, Subclasses())
    return frozenset(f.site.setting for f in found if f.site.kind == Kind.CONFIG_PY)


def gather(
    files: Sequence[tuple[Path, str, bytes]],
    instances: Sequence[Instance],
    min_steps: int,
    root: Path | None = None,
) -> ConfigFacts:
    """Facts over every (absolute path, repo-relative path, bytes) of a project."""
    from codemod.evidence.pairing import file_coverage

    graph = config_files.build((rel, data) for _, rel, data in files)
    refs = references.References(
        graph, {rel: data for _, rel, data in files if references.is_reference_config(rel, graph)}
    )
    holders = {rel for _, rel, data in files if graph.is_config(rel) and may_hold_site(data, rel)}
    below = graph.descendants(holders)  # only an inheritor's own keys are ever asked for
    keys = {rel: _keys(file, rel, data) for file, rel, data in files if rel in below & holders}
    with_sites = {rel for rel, data in refs.configs.items() if may_hold_site(data, rel)}
    referrers = {
        rel: tuple(refs.referrers(rel)) for rel in with_sites | graph.descendants(with_sites)
    }
    known = {rel for _, rel, _ in files}
    chosen: dict[str, set[str]] = {}
    for inst in instances:
        process = inst.process
        picked = references.entries(
            (*process.command, *process.argv), known, str(root or ""), process.cwd
        )
        chosen.setdefault(process.run_id, set()).update(refs.chosen(picked))
    states: dict[str, Coverage] = {}
    for rel in sorted({path for inst in instances for path in inst.process.files_read}):
        cov = file_coverage(instances, rel, min_steps, chosen)
        if cov is not None:
            states[rel] = cov
    python = ((rel, data) for _, rel, data in files if rel.endswith(".py"))
    foreign = readers.foreign_readers(with_sites, python)
    return ConfigFacts(graph, keys, states, referrers, foreign)
