"""The pipeline behind `scan` and `apply`: targets -> byte filter -> sites -> rewrites.

The CLI only turns flags into a Request and a RunResult into output and an exit code.
Files that cannot hold a site are dropped on their bytes; libcst is imported only when
at least one file passes that filter.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from codemod.configs.references import REFERENCE_SUFFIXES
from codemod.discover import project
from codemod.discover import walk as discover
from codemod.discover.implicit import (
    calls_any,
    calls_hf,
    mentions_hf,
    mentions_lightning,
)
from codemod.discover.prefilter import may_hold_site
from codemod.discover.read import ReadError, read_regular
from codemod.model import FileChange, FileError, FileOutcome, RunResult
from codemod.report.text import unmatched_selector
from codemod.verdicts.allowlist import Allowlist, Selector, usable

if TYPE_CHECKING:
    from codemod.configs.facts import ConfigFacts
    from codemod.discover.pins import LightningPin, NearestPins
    from codemod.evidence.load import Instance
    from codemod.parallel import Background
    from codemod.sites.implicit import ImplicitFacts
    from codemod.sites.subclasses import Subclasses


# Project-wide facts also read configs that hold no site but may name one (JSON, TOML, ...)
PROJECT_SUFFIXES = tuple(dict.fromkeys((*discover.SUFFIXES, *REFERENCE_SUFFIXES)))


@dataclass(frozen=True)
class Request:
    paths: tuple[str, ...]
    cwd: Path
    allow: tuple[str, ...] = ()  # --allow selectors, relative to `cwd`
    rewrite: bool = False  # apply: compute the rewritten files
    write: bool = False  # apply without --dry-run: write them
    style_false: bool = False
    evidence: tuple[str, ...] = ()  # --evidence files or folders, besides <root>/.ddp-codemod
    jobs: int = 1  # processes for parsing candidate files; large work only (see parallel)


@dataclass
class _Project:
    """One target repo: its root, config, excludes, and project-wide facts (built lazily,
    only when some file may hold a site): DDP subclasses, evidence, the config graph."""

    config: project.ProjectConfig
    excludes: discover.Ignore
    walked: list[Path] | None = None  # the project's files, when a PATH was its root
    _files: list[tuple[Path, str, bytes]] | None = None
    _subclasses: Subclasses | None = None
    _instances: list[Instance] | None = None
    _evidence: dict[str, list[Instance]] = field(default_factory=dict)
    _configs: ConfigFacts | None = None
    _pins: NearestPins | None = None
    _hf_classes: frozenset[str] | None = None
    _evidence_problems: list[FileError] = field(default_factory=list)  # not yet reported
    _configs_job: Background[ConfigFacts] | None = None  # see start_configs

    @property
    def root(self) -> Path:
        return self.config.root

    def rel(self, file: Path) -> str:
        return _relative(file, self.root)

    def selectors(self) -> list[Selector]:
        origin = self.config.pyproject.name if self.config.pyproject else "pyproject.toml"
        return [Selector.parse(s, origin, self.root) for s in self.config.allow]

    def files(self, known: dict[Path, bytes]) -> list[tuple[Path, str, bytes]]:
        """Every file of the project with its bytes, read once."""
        if self._files is None:
            walked = (
                self.walked
                if self.walked is not None
                else discover.walk(self.root, self.excludes, PROJECT_SUFFIXES)
            )
            self._files = []
            for file in walked:
                data = known.get(file)
                if data is None:
                    try:
                        data = read_regular(file)
                    except ReadError:
                        continue  # a target's own error line says why, once
                self._files.append((file, self.rel(file), data))
        return self._files

    def known_subclasses(self) -> Subclasses | None:
        return self._subclasses

    def subclasses(self, known: dict[Path, bytes]) -> Subclasses:
        if self._subclasses is None:
            from codemod.sites import subclasses
            from codemod.sites.names import module_name_for

            python = [
                (f, module_name_for(rel), d)
                for f, rel, d in self.files(known)
                if rel.endswith(".py")
            ]
            self._subclasses = subclasses.discover(python)
        return self._subclasses

    def evidence(self, extra: list[Path], result: RunResult) -> dict[str, list[Instance]]:
        """Trusted DDP instances from this repo's evidence, by the repo paths they name."""
        self._load_evidence(extra)
        result.errors.extend(self._evidence_problems)
        self._evidence_problems = []
        return self._evidence

    def _load_evidence(self, extra: list[Path]) -> None:
        """Read the evidence once. Its problems wait for the first `evidence` call, so
        their error lines keep their place however early it was read."""
        if self._instances is None:
            from codemod import gitops
            from codemod.evidence import load as evidence

            sources = [self.root / project.EVIDENCE_DIR, *extra]
            self._instances = []
            if any(True for _ in evidence.evidence_files(sources)):
                repo = evidence.Repo(self.root, gitops.root_commit(self.root))
                self._instances, problems = evidence.load(sources, repo)
                self._evidence_problems = [
                    FileError(_display(file, self.root), message) for file, message in problems
                ]
                for inst in self._instances:
                    for path in inst.paths():
                        self._evidence.setdefault(path, []).append(inst)

    def hf_classes(self, known: dict[Path, bytes]) -> frozenset[str]:
        """The repo's own TrainingArguments subclasses, searched once (implicit sites)."""
        if self._hf_classes is None:
            from codemod.sites.implicit import discover_hf_classes
            from codemod.sites.names import module_name_for

            python = [
                (f, module_name_for(rel), d)
                for f, rel, d in self.files(known)
                if rel.endswith(".py")
            ]
            self._hf_classes = discover_hf_classes(python)
        return self._hf_classes

    def lightning_pin(self, file: Path) -> LightningPin:
        """The pin that governs `file`: its nearest package's (`pins.NearestPins`)."""
        if self._pins is None:
            from codemod.discover.pins import NearestPins

            self._pins = NearestPins(self.root)
        return self._pins.for_folder(file.parent)

    def may_hold_implicit(self, data: bytes, file: Path, hf: bool) -> bool:
        """The byte test for implicit sites, less the Lightning spellings in a package that
        pins Lightning >= 2.0, where they are not sites (their files need no parse).
        `hf`: mentions_hf(data), which every call of one implies (most files skip calls_hf)."""
        if hf and calls_hf(data):
            return True
        if not mentions_lightning(data):
            return False
        from codemod.discover.pins import Lightning

        return self.lightning_pin(file).version is not Lightning.V2

    def implicit(self, data: bytes, file: Path) -> ImplicitFacts:
        """What a file's implicit sites need: the Lightning pins only when it may use a
        Lightning 1.x spelling, read once per folder (never for repos without any)."""
        from codemod.sites.implicit import ImplicitFacts

        pin = self.lightning_pin(file) if mentions_lightning(data) else None
        return ImplicitFacts(pin, self._hf_classes or frozenset())

    def configs(self, known: dict[Path, bytes]) -> ConfigFacts:
        """The config inheritance graph, the keys each config sets, and what runs read
        (call `evidence` first)."""
        if self._configs is None:
            job = self._configs_job or self._gather(known, fork=False)
            self._configs, self._configs_job = job.result(), None
        return self._configs

    def start_configs(self, known: dict[Path, bytes], extra: list[Path]) -> None:
        """Start gathering the config facts in a forked child (`parallel.Background`),
        for `configs` to collect: the same facts, while this process does other work."""
        if self._configs is None and self._configs_job is None:
            self._load_evidence(extra)
            self._configs_job = self._gather(known, fork=True)

    def _gather(self, known: dict[Path, bytes], fork: bool) -> Background[ConfigFacts]:
        from codemod.configs import facts as config_facts
        from codemod.parallel import Background

        files, instances = self.files(known), self._instances or []
        min_steps, root = self.config.min_steps, self.root
        return Background(lambda: config_facts.gather(files, instances, min_steps, root), fork)


@dataclass(frozen=True)
class _Target:
    source: discover.SourceFile
    project: _Project
    cli_selectors: tuple[Selector, ...]


def _relative(file: Path, folder: Path) -> str:
    """POSIX path of `file` under `folder`; string slicing, as Path.relative_to is slow
    enough to show in a scan of thousands of files."""
    prefix = str(folder).rstrip(os.sep) + os.sep
    text = str(file)
    if not text.startswith(prefix):
        return file.relative_to(folder).as_posix()
    return text[len(prefix) :].replace(os.sep, "/")


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _load_project(root: Path, projects: dict[Path, _Project], result: RunResult) -> _Project:
    found = projects.get(root)
    if found is None:
        config = project.load(root)
        for message in config.errors:
            result.errors.append(FileError(_display(config.pyproject, root), message))
        excludes = discover.Ignore()
        excludes.add(root, list(config.exclude))
        found = projects[root] = _Project(config, excludes)
    return found


def _display(path: Path | None, root: Path) -> str:
    if path is None:
        return str(root)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel == ".." or rel.startswith(".." + os.sep) else rel  # /dev/zero


def _targets(req: Request, result: RunResult) -> tuple[list[_Target], set[Path]]:
    """Files to look at, and the project roots scanned whole (for selector warnings).

    A file reached twice (two PATHs, or symlinks to one file) is looked at once, under
    the first name that reached it.
    """
    projects: dict[Path, _Project] = {}
    # one base for every --allow selector, whatever the PATHs and their order
    cli = tuple(Selector.parse(s, "--allow", _absolute(req.cwd)) for s in req.allow)
    seen: set[str] = set()  # real paths
    whole: set[Path] = set()
    targets: list[_Target] = []
    for arg in req.paths:
        path = _absolute(req.cwd / arg)
        if not os.path.lexists(path):
            result.errors.append(FileError(arg, "no such file or directory"))
            continue
        is_dir = os.path.isdir(path)
        proj = _load_project(project.find_root(path if is_dir else path.parent), projects, result)
        if is_dir:
            scan_root = path

            def unreadable(folder: Path, message: str, top: Path = path, shown: str = arg) -> None:
                rel = _relative(folder, top) if folder != top else shown
                result.errors.append(FileError(rel, message))

            everything = list(
                discover.walk(path, proj.excludes, PROJECT_SUFFIXES, on_error=unreadable)
            )
            files: list[Path] = [f for f in everything if f.name.endswith(discover.SUFFIXES)]
            if path == proj.root:
                whole.add(path)
                proj.walked = everything
        else:
            cwd = _absolute(req.cwd)
            scan_root = cwd if cwd in path.parents else path.parent
            skip = discover.excluded(path, proj.excludes)
            files = [] if skip else [path]
        real_root = os.path.realpath(scan_root) if is_dir else None
        for file in files:
            rel = _relative(file, scan_root)
            real = _real_path(file, rel, real_root)
            if real in seen:
                continue
            seen.add(real)
            targets.append(_Target(discover.SourceFile(file, rel, scan_root), proj, cli))
    return targets, whole


def _real_path(file: Path, rel: str, real_root: str | None) -> str:
    """The real path of `file`, found at `rel` under a walked folder whose real path is
    `real_root`. The walk follows no folder symlinks, so only a file symlink needs
    `realpath` (an lstat per component); for the thousands of others a join is enough."""
    if real_root is None or os.path.islink(file):
        return os.path.realpath(file)
    return real_root.rstrip(os.sep) + os.sep + rel.replace("/", os.sep)


def missing_evidence(evidence: tuple[str, ...], cwd: Path) -> list[FileError]:
    """An --evidence PATH that does not exist: a typo there would silently prove nothing."""
    return [
        FileError(e, "--evidence: no such file or directory")
        for e in evidence
        if not os.path.lexists(_absolute(cwd / e))
    ]


def run(req: Request) -> RunResult:
    result = RunResult()
    result.errors.extend(missing_evidence(req.evidence, req.cwd))
    allow, bad = usable(req.allow, "--allow", req.cwd)
    result.errors.extend(FileError("--allow", message) for message in bad)
    req = dataclasses.replace(req, allow=tuple(allow))
    targets, whole = _targets(req, result)
    candidates: list[tuple[_Target, bytes]] = []
    others: list[tuple[_Target, bytes]] = []  # may still call a repo TrainingArguments class
    read: dict[Path, bytes] = {}  # kept for subclass discovery, which needs every file
    hf_projects: dict[int, _Project] = {}
    for target in targets:
        try:
            data = read[target.source.file] = read_regular(target.source.file)
        except ReadError as exc:
            result.errors.append(FileError(target.source.rel, str(exc)))
            continue
        hf = mentions_hf(data)
        if may_hold_site(data, target.source.file.name) or target.project.may_hold_implicit(
            data, target.source.file, hf
        ):
            candidates.append((target, data))
        else:
            others.append((target, data))
        if hf:
            hf_projects[id(target.project)] = target.project
    if hf_projects:
        _start_configs(req, candidates, read)
        candidates = _with_hf_callers(targets, candidates, others, hf_projects, read)
    candidates = _with_argument_files(req, targets, candidates, others, read, result)
    matched: set[tuple[str, str]] = set()
    if candidates:
        _process(req, candidates, read, result, matched)
    _warn_unmatched(req, targets, whole, matched, result)
    return result


def _start_configs(
    req: Request, candidates: list[tuple[_Target, bytes]], read: dict[Path, bytes]
) -> None:
    """In a large run, gather the config facts of the projects whose candidates already
    need them (`might_be_config`) in forked children, one per spare core, while this
    process searches the Hugging Face callers: facts `_process` would gather anyway."""
    from codemod import parallel

    if req.jobs < 2 or sum(map(len, read.values())) < parallel.BACKGROUND_BYTES:
        return
    extra = [_absolute(req.cwd / e) for e in req.evidence]
    for proj in list(_config_projects(candidates).values())[: req.jobs - 1]:
        proj.start_configs(read, extra)


def _config_projects(candidates: list[tuple[_Target, bytes]]) -> dict[int, _Project]:
    """The projects, by id, for which some candidate needs the config graph
    (`might_be_config`); a project's other candidates are not tested once one did."""
    from codemod.configs.graph import might_be_config

    found: dict[int, _Project] = {}
    for target, data in candidates:
        proj = target.project
        if id(proj) not in found and might_be_config(proj.rel(target.source.file), data):
            found[id(proj)] = proj
    return found


def _with_hf_callers(
    targets: list[_Target],
    candidates: list[tuple[_Target, bytes]],
    others: list[tuple[_Target, bytes]],
    projects: dict[int, _Project],
    read: dict[Path, bytes],
) -> list[tuple[_Target, bytes]]:
    """Add the files that name one of the repo's own TrainingArguments subclasses, in the
    order of the targets: `MyArgs(...)` needs no Hugging Face bytes of its own."""
    names = {
        key: [n.encode() for n in sorted({q.rsplit(".", 1)[-1] for q in p.hf_classes(read)})]
        for key, p in projects.items()
    }
    # `others` already failed may_hold_implicit without names: only the names can add one
    extra = [
        (t, d) for t, d in others if names.get(id(t.project)) and calls_any(d, names[id(t.project)])
    ]
    if not extra:
        return candidates
    order = {id(t): i for i, t in enumerate(targets)}
    return sorted([*candidates, *extra], key=lambda c: order[id(c[0])])


def _with_argument_files(
    req: Request,
    targets: list[_Target],
    candidates: list[tuple[_Target, bytes]],
    others: list[tuple[_Target, bytes]],
    read: dict[Path, bytes],
    result: RunResult,
) -> list[tuple[_Target, bytes]]:
    """Add the YAML / JSON argument files a traced Hugging Face run chose
    (`sites.hf_args`): they hold no find_unused_param bytes, and only evidence names them."""
    from codemod.configs.facts import ARGUMENT_SUFFIXES
    from codemod.sites.hf_args import TRAINING_KEYS

    needles = [k.encode() for k in sorted(TRAINING_KEYS)]
    maybe = [
        (t, d)
        for t, d in others
        if t.source.file.name.endswith(ARGUMENT_SUFFIXES) and any(n in d for n in needles)
    ]
    if not maybe:
        return candidates
    extra_evidence = [_absolute(req.cwd / e) for e in req.evidence]
    chosen = []
    for target, data in maybe:
        proj = target.project
        if not proj.evidence(extra_evidence, result):
            continue
        if proj.rel(target.source.file) in proj.configs(read).hf_args:
            chosen.append((target, data))
    if not chosen:
        return candidates
    order = {id(t): i for i, t in enumerate(targets)}
    return sorted([*candidates, *chosen], key=lambda c: order[id(c[0])])


def _process(
    req: Request,
    candidates: list[tuple[_Target, bytes]],
    read: dict[Path, bytes],
    result: RunResult,
    matched: set[tuple[str, str]],
) -> None:
    from codemod import parallel
    from codemod.configs.facts import ConfigFacts
    from codemod.process import Context, process
    from codemod.sites.names import module_name_for
    from codemod.sites.python import FileContext

    extra = [_absolute(req.cwd / e) for e in req.evidence]
    selectors: list[list[Selector]] = []
    files: list[FileContext] = []
    contexts: list[Context] = []
    config_like = _config_projects(candidates)  # only these projects need the config graph
    for target, raw in candidates:
        proj = target.project
        selectors.append([*target.cli_selectors, *proj.selectors()])
        evidence = proj.evidence(extra, result)
        contexts.append(
            Context(
                Allowlist(selectors[-1]),
                proj.known_subclasses(),
                req.rewrite,
                req.style_false,
                evidence,
                proj.config.min_steps,
                proj.root,
                proj.configs(read) if id(proj) in config_like else ConfigFacts(),
            )
        )
        src = target.source
        rel = proj.rel(src.file)
        files.append(
            FileContext(
                src.file,
                src.rel,
                rel,
                module_name_for(rel),
                src.file.name == "__init__.py",
                implicit=proj.implicit(raw, src.file),
            )
        )
    data = [d for _, d in candidates]
    work = sum(len(d) for d in data)
    jobs = req.jobs if parallel.worth_a_pool(work, req.jobs) else 1
    reruns: dict[int, FileOutcome] = {}

    def rerun(i: int, outcome: FileOutcome) -> None:
        """A call that may be a repo subclass: search them (once) and run the file again,
        here, while the pool parses the files after it (`map_ordered`'s `each`)."""
        if outcome.needs_subclasses:
            found = candidates[i][0].project.subclasses(read)
            reruns[i] = process(
                files[i], data[i], dataclasses.replace(contexts[i], subclasses=found)
            )

    outcomes = parallel.map_ordered(process, files, data, contexts, jobs=jobs, each=rerun)
    outcomes = [reruns.get(i, outcome) for i, outcome in enumerate(outcomes)]
    for (target, _), chosen, outcome in zip(candidates, selectors, outcomes):
        src = target.source
        by_text = {s.text: s for s in chosen}
        matched.update((text, by_text[text].origin) for text in outcome.matched_selectors)
        result.errors.extend(outcome.errors)
        sites = outcome.sites
        if outcome.new is not None and outcome.old is not None:
            if _inside_tree(src.file, target):
                result.changes.append(
                    FileChange(src.rel, src.root, src.file, outcome.old, outcome.new)
                )
            else:  # `link.py -> ../outside/victim.py`: never written, never shown as a diff
                result.errors.append(FileError(src.rel, OUTSIDE))
                sites = [dataclasses.replace(s, changed=False) for s in sites]
        result.sites.extend(sites)
    if req.write:
        write_changes(result)


OUTSIDE = "symlink to a file outside the tree; not written"


def _inside_tree(file: Path, target: _Target) -> bool:
    """The file's real path lies under the scanned PATH, the repo root or its git work tree."""
    real = os.path.realpath(file)
    trees = [target.source.root, target.project.root]
    top = discover.git_top(target.project.root)
    if top is not None:
        trees.append(top)
    for tree in trees:
        base = os.path.realpath(tree)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            return True
    return False


def write_changes(result: RunResult) -> bool:
    """Write every change atomically. A file that cannot be written is an error, leaves
    `changes`, and its sites are marked unchanged; False when that happened."""
    from codemod.edit.writer import WriteError, replace_bytes

    failed: set[Path] = set()
    for change in result.changes:
        try:
            replace_bytes(change.file, change.old, change.new)
        except WriteError as exc:
            result.errors.append(FileError(change.rel, str(exc)))
            failed.add(change.file)
    if failed:
        result.changes = [c for c in result.changes if c.file not in failed]
        result.sites = [
            dataclasses.replace(s, changed=False) if s.file in failed else s for s in result.sites
        ]
    return not failed


def _warn_unmatched(
    req: Request,
    targets: list[_Target],
    whole: set[Path],
    matched: set[tuple[str, str]],
    result: RunResult,
) -> None:
    """Say when a selector matched nothing: a typo there silently allows nothing.

    When only files were named (pre-commit passes a batch of them), a `--allow` selector
    whose file is not among them but lies under the current directory says nothing:
    another batch may hold it. One that names a given file warns, also when `exclude`
    dropped that file.
    """
    only_files = not whole and all(not os.path.isdir(req.cwd / p) for p in req.paths)
    cwd = _absolute(req.cwd)
    given = [_absolute(req.cwd / p) for p in req.paths] if only_files else []
    for text in req.allow:
        if (text, "--allow") in matched:
            continue
        selector = Selector.parse(text, "--allow", cwd)
        if (
            only_files
            and selector.names_inside(cwd)
            and not any(selector.matches_file(f) for f in given)
        ):
            continue  # pre-commit: another batch of files from this tree may hold it
        result.warnings.append(unmatched_selector(text, "--allow"))
    reported: set[Path] = set()
    for target in targets:
        proj = target.project
        if proj.root not in whole or proj.root in reported:
            continue
        reported.add(proj.root)
        for selector in proj.selectors():
            if (selector.text, selector.origin) not in matched:
                result.warnings.append(unmatched_selector(selector.text, selector.origin))
