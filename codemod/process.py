"""One file, start to finish: decode, find, decide, rewrite, verify.

A pure function of the file's bytes and the run's (picklable) context, so files can be
processed in any order or in parallel; every problem becomes a FileError, never an
exception. Python, YAML, JSON, notebook and shell files differ in how sites are found and
edited; the verdicts are decided the same way for all.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codemod.configs.facts import ConfigFacts
from codemod.configs.graph import ConfigGraph, in_config_dir
from codemod.discover.prefilter import NEEDLE
from codemod.discover.project import DEFAULT_MIN_STEPS
from codemod.discover.read import MB, size_mb
from codemod.discover.source import SourceError, SourceText, decode, round_trips
from codemod.edit.verify import check
from codemod.evidence.load import Instance, Process
from codemod.model import (
    CONFIG_KINDS,
    Coverage,
    FileError,
    FileOutcome,
    Fix,
    Kind,
    Site,
    Span,
    State,
)
from codemod.recorder._ddp_codemod_source import source_lines
from codemod.sites import shell_scripts as shell_sites
from codemod.sites.python import FileContext, Found, find_sites
from codemod.sites.subclasses import PendingSubclasses, Subclasses
from codemod.verdicts.allowlist import Allowlist
from codemod.verdicts.decide import decide

_PY2_HINTS = re.compile(
    r"^\s*(print\s+[^\s(=]|exec\s+['\"]|raise\s+\w+\s*,)|except\s+[\w.]+\s*,\s*\w+\s*:|`|<>"
)
YAML_SUFFIXES = (".yaml", ".yml")
FOREIGN = (
    "read by {framework} code (the nearest folder's Python imports it, not torch): "
    "not a PyTorch setting; never rewritten"
)
SHELL_SUFFIXES = (".sh", ".bash")


@dataclass(frozen=True)
class Context:
    """What a file needs from the run around it."""

    allowlist: Allowlist
    subclasses: Subclasses | None  # None: not searched yet (most runs never need them)
    rewrite: bool  # compute new bytes for rewritable sites
    style_false: bool  # --style false: write False instead of removing
    evidence: Mapping[str, list[Instance]] = field(default_factory=dict)  # by repo path
    min_steps: int = DEFAULT_MIN_STEPS
    root: Path = Path("/")  # the project root: config paths are relative to it
    configs: ConfigFacts = field(default_factory=ConfigFacts)


def _syntax_error(exc: SyntaxError, text: str) -> str:
    line, column = exc.lineno or 0, exc.offset or 0
    lines = source_lines(text)
    source_line = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = " (Python 2 code?)" if _PY2_HINTS.search(source_line) else ""
    return f"syntax error at line {line}, column {column}: {exc.msg}{hint}"


def _why(exc: BaseException) -> str:
    """An exception's message; MemoryError from the parser has none."""
    if str(exc):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the parser ran out of memory (nested too deeply?)"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return type(exc).__name__


class _Failed(Exception):
    """One line about why this file stops here."""


REWRITE_LIMIT = 1 * MB  # libcst takes minutes past a few MB, and may abort the process


def _check_size(data: bytes) -> None:
    """Files over REWRITE_LIMIT keep their sites in the report but are never rewritten."""
    if len(data) > REWRITE_LIMIT:
        raise _Failed(
            f"too large to rewrite safely ({size_mb(len(data))}; the limit is "
            f"{REWRITE_LIMIT // MB} MB); not rewritten"
        )


def process(file: FileContext, data: bytes, ctx: Context) -> FileOutcome:
    outcome = FileOutcome()
    try:
        source = decode(data)
        if file.file.name.endswith(YAML_SUFFIXES):
            _data_file(_yaml_format(), file, data, source, ctx, outcome)
        elif file.file.name.endswith(".json"):
            _data_file(_json_format(), file, data, source, ctx, outcome)
        elif file.file.name.endswith(".ipynb"):
            _notebook(file, data, source, ctx, outcome)
        elif file.file.name.endswith(SHELL_SUFFIXES):
            sites = shell_sites.find(source.text, file.file, file.rel)
            _decide(file, [(s, None) for s in sites], {}, ctx, outcome)
        else:
            _python(file, data, source, ctx, outcome)
    except SourceError as exc:
        outcome.errors.append(FileError(file.rel, str(exc)))
    except _Failed as exc:
        outcome.errors.append(FileError(file.rel, str(exc)))
    return outcome


def _decide(
    file: FileContext,
    found: list[tuple[Site, Any]],
    coverage: dict[int, Coverage],
    ctx: Context,
    outcome: FileOutcome,
) -> list[tuple[Site, Any]]:
    """Verdicts for every site; returns the rewritable ones with their edits."""
    chosen: list[tuple[Site, Any]] = []
    for index, (site, edit) in enumerate(found):
        cov = coverage.get(index)
        framework = ctx.configs.foreign.get(file.project_rel)
        if site.kind in CONFIG_KINDS and framework:
            site = dataclasses.replace(site, report_only=FOREIGN.format(framework=framework))
        if site.kind in CONFIG_KINDS and site.literal is True:
            cov = _config_coverage(site, file.project_rel, ctx)
        site, selector = decide(site, ctx.allowlist, cov)
        if ctx.style_false and site.fix is Fix.REMOVE:
            site = dataclasses.replace(site, fix=Fix.WRITE_FALSE)
        if selector is not None:
            outcome.matched_selectors.add(selector.text)
        if site.rewritable and edit is not None:
            chosen.append((site, edit))
        outcome.sites.append(site)
    return chosen


def _config_coverage(site: Site, rel: str, ctx: Context) -> Coverage | None:
    from codemod.evidence.pairing import inherited_coverage

    facts = ctx.configs
    heirs: dict[str, Coverage | None] = {}
    if facts.graph.is_config(rel):
        for heir in facts.graph.inheritors(rel, site.setting, facts.sets):
            heirs[heir] = facts.states.get(heir)
    named: set[str] = set()
    for reader in (rel, *heirs):  # configs that name it (an include, a loader): all count
        named.update(r for r in facts.referrers.get(reader, ()) if r not in heirs)
    heirs.update((other, facts.states.get(other)) for other in named)
    allowed = {h for h in heirs if ctx.allowlist.covers_file(ctx.root / h)}
    coverage = inherited_coverage(facts.states.get(rel), heirs, allowed, frozenset(named))
    composer = facts.graph.hydra_composer(rel) if site.kind == Kind.YAML else None
    if composer and (coverage is None or coverage.state not in (State.UNSAFE, State.STALE)):
        reason = (
            f"Hydra composes configs from this folder ({composer} has a defaults list), so "
            "runs nobody traced may include this file; left alone"
        )
        return Coverage(State.BLOCKED, reason, {}, coverage.runs if coverage else ())
    return coverage


def _with_versions(
    found: list[Found], coverage: dict[int, Coverage], processes: dict[int, list[Process]]
) -> list[Found]:
    """What the runs' recorded framework versions add: an unpinned Lightning site settled
    by them, the transformers version a Trainer site's verdict rests on."""
    from codemod.sites.frameworks import hf, lightning_legacy

    out = []
    for i, f in enumerate(found):
        site, cov = f.site, coverage.get(i)
        if site.settles:
            site, cov = lightning_legacy.settle(site, cov, processes.get(i, []))
        elif site.kind == hf.HF_TRAINER and site.implicit and cov is not None:
            cov = hf.with_version(cov, processes.get(i, []))
        if cov is not None:
            coverage[i] = cov
        out.append(dataclasses.replace(f, site=site) if site is not f.site else f)
    return out


def is_config(rel: str, tree: ast.Module, graph: ConfigGraph) -> bool:
    """In the inheritance graph, or under configs/ with no function or class of its own."""
    if graph.is_config(rel):
        return True
    return in_config_dir(rel) and not any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for node in tree.body
    )


def _mark_changed(
    outcome: FileOutcome, chosen: list[tuple[Site, Any]], old: bytes, new: bytes
) -> None:
    done = {id(site) for site, _ in chosen}
    outcome.sites = [
        dataclasses.replace(s, changed=True) if id(s) in done else s for s in outcome.sites
    ]
    outcome.old, outcome.new = old, new


def _python(
    file: FileContext, data: bytes, source: SourceText, ctx: Context, outcome: FileOutcome
) -> None:
    try:
        tree = ast.parse(source.text)
    except SyntaxError as exc:
        raise _Failed(_syntax_error(exc, source.text)) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _Failed(f"cannot parse: {_why(exc)}") from None
    if not file.is_config and is_config(file.project_rel, tree, ctx.configs.graph):
        file = dataclasses.replace(file, is_config=True)
    subclasses = ctx.subclasses if ctx.subclasses is not None else PendingSubclasses()
    found = find_sites(tree, source.text, file, subclasses)
    if isinstance(subclasses, PendingSubclasses) and subclasses.missed:
        outcome.needs_subclasses = True  # the caller runs this file again once they are known
        return
    coverage: dict[int, Coverage] = {}
    instances = ctx.evidence.get(file.project_rel, [])
    if instances:
        from codemod.evidence.pairing import cover  # hashing: only when there is evidence

        sites = [f.site for f in found]
        processes: dict[int, list[Process]] = {}
        coverage = cover(
            sites, file.project_rel, source_lines(source.text), instances, ctx.min_steps, processes
        )
        found = _with_versions(found, coverage, processes)
    chosen = _decide(file, [(f.site, f.edit) for f in found], coverage, ctx, outcome)
    if not (ctx.rewrite and chosen):
        return
    _check_size(data)
    if not round_trips(source, data):
        raise _Failed("not rewritten: its bytes do not survive decoding and encoding unchanged")
    from codemod.edit.rewrite import RewriteError, rewrite  # libcst: only for files that change

    try:
        new_text, changes = rewrite(source.text, [(edit, site.fix) for site, edit in chosen], tree)
    except RewriteError as exc:
        raise _Failed(f"not rewritten: {exc} (a bug in ddp-codemod; please report it)") from None
    except Exception as exc:  # libcst cannot parse what ast could: newer syntax
        raise _Failed(
            f"not rewritten: libcst cannot parse this file ({type(exc).__name__})"
        ) from None
    problem = check(source.text, new_text, changes)
    if problem is not None:
        raise _Failed(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    _mark_changed(outcome, chosen, data, source.encode(new_text))


def _notebook(
    file: FileContext, data: bytes, source: SourceText, ctx: Context, outcome: FileOutcome
) -> None:
    """A notebook's code cells as one module; sites keep the notebook's JSON positions
    and say which cell they are in."""
    from codemod.sites import notebooks

    try:
        nb = notebooks.read(source.text, NEEDLE)
    except notebooks.NotebookError as exc:
        raise _Failed(str(exc)) from None
    for problem in nb.problems:
        outcome.errors.append(FileError(file.rel, f"{problem}: its sites are not reported"))
    try:
        tree = ast.parse(nb.module)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise _Failed(f"cannot parse its code cells: {exc}") from None
    subclasses = ctx.subclasses if ctx.subclasses is not None else PendingSubclasses()
    found = find_sites(tree, nb.module, file, subclasses)
    if isinstance(subclasses, PendingSubclasses) and subclasses.missed:
        outcome.needs_subclasses = True
        return

    def moved(span: Span) -> Span:
        return Span(*nb.position(span.line, span.col), *nb.position(span.end_line, span.end_col))

    mapped: list[tuple[Site, Any]] = []
    where: list[str] = []
    for f in found:
        site = f.site
        cell = nb.cell_at(site.span.line)
        where.append(f"cell {cell.number}, line {site.span.line - cell.first_line + 1}: ")
        site = dataclasses.replace(
            site,
            span=moved(site.span),
            setting_span=moved(site.setting_span),
            feeds=moved(site.feeds) if site.feeds else None,
            report_only=site.report_only or ("" if cell.editable else notebooks.NOT_EDITABLE),
        )
        mapped.append((site, f.edit))
    first = len(outcome.sites)
    chosen = _decide(file, mapped, {}, ctx, outcome)
    renamed: dict[int, Site] = {}
    for i, prefix in enumerate(where):
        old = outcome.sites[first + i]
        new = dataclasses.replace(old, reason=prefix + old.reason)
        outcome.sites[first + i] = renamed[id(old)] = new
    chosen = [(renamed[id(site)], edit) for site, edit in chosen]
    if not (ctx.rewrite and chosen):
        return
    if not round_trips(source, data):
        raise _Failed("not rewritten: its bytes do not survive decoding and encoding unchanged")
    from codemod.edit.rewrite import RewriteError, rewrite

    try:
        new_module, changes = rewrite(nb.module, [(edit, site.fix) for site, edit in chosen])
    except RewriteError as exc:
        raise _Failed(f"not rewritten: {exc} (a bug in ddp-codemod; please report it)") from None
    except Exception as exc:  # libcst cannot parse what ast could: newer syntax
        raise _Failed(
            f"not rewritten: libcst cannot parse its code cells ({type(exc).__name__})"
        ) from None
    problem = check(nb.module, new_module, changes)
    if problem is not None:
        raise _Failed(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    try:
        new_text = notebooks.write_back(nb, new_module)
    except notebooks.NotebookError as exc:
        raise _Failed(f"not rewritten: {exc}") from None
    problem = notebooks.verify(nb, new_text, new_module, NEEDLE)
    if problem is not None:
        raise _Failed(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    _mark_changed(outcome, chosen, data, source.encode(new_text))


@dataclass(frozen=True)
class _DataFormat:
    """How one data-file kind (YAML, JSON) finds its sites and rewrites their value tokens."""

    name: str
    find: Callable[[str, Path, str], list[tuple[Site, Any]]]
    rewrite: Callable[[str, list[tuple[Site, Any]]], str]
    error: type[Exception]


def _yaml_format() -> _DataFormat:
    from codemod.sites import yaml_files

    def rewrite(text: str, chosen: list[tuple[Site, Any]]) -> str:
        return yaml_files.rewrite(text, [(edit, site.fix) for site, edit in chosen])

    return _DataFormat("YAML", yaml_files.find, rewrite, yaml_files.YamlError)


def _json_format() -> _DataFormat:
    from codemod.sites import json_files

    def rewrite(text: str, chosen: list[tuple[Site, Any]]) -> str:
        return json_files.rewrite(text, [edit for _, edit in chosen])

    return _DataFormat("JSON", json_files.find, rewrite, json_files.JsonError)


def _data_file(
    form: _DataFormat,
    file: FileContext,
    data: bytes,
    source: SourceText,
    ctx: Context,
    outcome: FileOutcome,
) -> None:
    """A YAML or JSON file: sites, verdicts, and the value tokens rewritten, re-parsed to verify."""
    try:
        found = form.find(source.text, file.file, file.rel)
    except form.error as exc:
        raise _Failed(str(exc)) from None
    if _argument_file(file, source, ctx, found, outcome, data):
        return
    chosen = _decide(file, list(found), {}, ctx, outcome)
    if not (ctx.rewrite and chosen):
        return
    _check_size(data)
    if not round_trips(source, data):
        raise _Failed("not rewritten: its bytes do not survive decoding and encoding unchanged")
    try:
        new_text = form.rewrite(source.text, chosen)
        after = form.find(new_text, file.file, file.rel)
    except form.error as exc:
        raise _Failed(f"not rewritten: {exc} (a bug in ddp-codemod; please report it)") from None
    problem = _data_problem(found, after, chosen, form.name)
    if problem is not None:
        raise _Failed(f"not rewritten: {problem} (a bug in ddp-codemod; please report it)")
    _mark_changed(outcome, chosen, data, source.encode(new_text))


def _argument_file(
    file: FileContext,
    source: SourceText,
    ctx: Context,
    found: list[tuple[Site, Any]],
    outcome: FileOutcome,
    data: bytes,
) -> bool:
    """A chosen Hugging Face argument file without the key (`sites.hf_args`): its one
    site decided, and the key added when rewritable; False for any other file."""
    if file.project_rel not in ctx.configs.hf_args or found:
        return False
    from codemod.sites import hf_args

    site_edit = hf_args.find(source.text, file.file, file.rel)
    if site_edit is None:
        return False
    chosen = _decide(file, [site_edit], {}, ctx, outcome)
    if not (ctx.rewrite and chosen):
        return True
    ((_, insertion),) = chosen
    _check_size(data)
    if not round_trips(source, data):
        raise _Failed("not rewritten: its bytes do not survive decoding and encoding unchanged")
    new_text = insertion.new_text
    if hf_args.find(new_text, file.file, file.rel) is not None:  # the key must now be there
        raise _Failed("not rewritten: the key did not come out (a bug in ddp-codemod)")
    _mark_changed(outcome, chosen, data, source.encode(new_text))
    return True


def _data_problem(
    before: list[tuple[Site, Any]],
    after: list[tuple[Site, Any]],
    chosen: list[tuple[Site, Any]],
    what: str,
) -> str | None:
    """The rewritten YAML (or JSON) must hold the same settings, the chosen ones now false."""
    changed = {(s.setting, s.span.line) for s, _ in chosen}
    if [(s.setting, s.span.line) for s, _ in before] != [
        (s.setting, s.span.line) for s, _ in after
    ]:
        return f"the rewritten {what} no longer has the same settings"
    for (old, _), (new, _) in zip(before, after):
        expected = False if (old.setting, old.span.line) in changed else old.literal
        if new.literal is not expected:
            return f"`{old.setting}` did not come out as expected"
    return None
