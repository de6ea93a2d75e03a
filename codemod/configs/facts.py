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
    # YAML / JSON files a Hugging Face run named on its command line (`hf_run_files`)
    hf_args: frozenset[str] = frozenset()

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


ARGUMENT_SUFFIXES = (*config_files.YAML_SUFFIXES, ".json")
_LIGHTNING = ("lightning", "pytorch_lightning")


def hf_run(group: Sequence[Instance]) -> bool:
    """Every process of the run had transformers loaded and no Lightning, and every DDP was
    built by framework code (accelerate, for the Trainer), not by a repo call."""
    return bool(group) and all(
        "transformers" in i.process.frameworks
        and not any(name in i.process.frameworks for name in _LIGHTNING)
        and i.call_site is None
        for i in group
    )


def hf_run_files(
    instances: Sequence[Instance], known: set[str], root: Path | None
) -> frozenset[str]:
    """Argument files (YAML, JSON) a Hugging Face run named on its command line and read."""
    by_run: dict[str, list[Instance]] = {}
    for inst in instances:
        by_run.setdefault(inst.process.run_id, []).append(inst)
    out: set[str] = set()
    for group in by_run.values():
        if not hf_run(group):
            continue
        for process in {id(i.process): i.process for i in group}.values():
            named = references.entries(
                (*process.command, *process.argv), known, str(root or ""), process.cwd
            )
            out.update(
                rel
                for rel in named
                if rel.endswith(ARGUMENT_SUFFIXES) and rel in process.files_read
            )
    return frozenset(out)


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
    hf_args = hf_run_files(instances, known, root)
    return ConfigFacts(graph, keys, states, referrers, foreign, hf_args)
