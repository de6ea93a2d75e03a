"""`ddp-codemod batch`: run the apply pipeline over many repos, one worker per repo.

Every repo is judged on its own and never stops the others: a path that is not a
directory, cannot be read, or is not a git work tree when --branch asks for one fails
with one line. A repo whose files-to-rewrite have uncommitted changes is skipped unless
--allow-dirty. With --branch the rewrite happens in a separate `git worktree` at HEAD,
so the user's checkout, index and current branch stay exactly as they were; the repo's
untracked `.ddp-codemod/` evidence is passed in from the original checkout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from codemod import api, gitops
from codemod.batch.manifest import Entry
from codemod.report.words import plural

if TYPE_CHECKING:
    from codemod.model import RunResult, Site

CLEAN, CHANGED, WOULD_CHANGE, SKIPPED, FAILED = (
    "clean",
    "changed",
    "would-change",
    "skipped",
    "failed",
)


@dataclass(frozen=True)
class Options:
    branch: str | None = None
    commit: bool = False
    dry_run: bool = False
    allow_dirty: bool = False


@dataclass(frozen=True)
class Job:
    repo: Entry
    options: Options


@dataclass
class Outcome:
    """What happened to one repo; plain data, so it pickles back from a worker."""

    repo: str
    path: str
    status: str = CLEAN
    message: str = ""
    verdicts: dict[str, int] = field(default_factory=dict)
    rewritten: list[str] = field(default_factory=list)  # path:line:col of each site
    files: list[str] = field(default_factory=list)  # relative to the repo path
    unused: list[tuple[str, dict[str, int]]] = field(default_factory=list)  # unsafe sites
    errors: list[str] = field(default_factory=list)
    branch: str | None = None
    commit: str | None = None
    worktree: str | None = None


def migrate(job: Job) -> Outcome:
    """One repo, start to finish. Never raises: a bug of ours fails this repo only."""
    outcome = Outcome(job.repo.shown, str(job.repo.path))
    try:
        _migrate(job, outcome)
    except gitops.GitError as exc:
        _fail(outcome, str(exc))
    except Exception as exc:
        _fail(outcome, f"internal error: {exc!r}; please report it")
    return outcome


def _fail(outcome: Outcome, message: str) -> None:
    """A failed repo keeps nothing: it claims no rewritten site or file."""
    outcome.status, outcome.message = FAILED, message
    outcome.rewritten, outcome.files = [], []


def _undone(outcome: Outcome, message: str) -> None:
    """Fail a repo whose changes were taken back: nothing of them counts."""
    _fail(outcome, message)
    outcome.rewritten, outcome.files = [], []
    outcome.branch = outcome.commit = outcome.worktree = None


def _migrate(job: Job, outcome: Outcome) -> None:
    path = job.repo.path
    if not path.exists():
        _fail(outcome, "no such directory")
        return
    if not path.is_dir():
        _fail(outcome, "not a directory")
        return
    try:
        os.listdir(path)
    except OSError as exc:
        _fail(outcome, f"cannot read: {exc.strerror}")
        return
    top = gitops.toplevel(path)
    branch = job.options.branch
    if branch is None:
        _in_place(job, path, top, outcome)
        return
    if top is None:
        _fail(outcome, "not a git work tree (--branch needs one)")
        return
    if gitops.head(top) is None:
        _fail(outcome, "no commit to branch from")
        return
    if gitops.branch_exists(top, branch):
        _fail(outcome, f"branch {branch} already exists")
        return
    if job.options.commit and not job.options.dry_run:
        problem = gitops.identity_problem(top)
        if problem is not None:
            _fail(
                outcome,
                f"no git identity to commit with ({problem}): set user.name and user.email "
                "(git config) or GIT_AUTHOR_NAME/EMAIL and GIT_COMMITTER_NAME/EMAIL",
            )
            return
    _on_branch(job, path, top, outcome)


def _pipeline(path: Path, evidence: Sequence[Path] = ()) -> RunResult:
    req = api.Request(
        (".",), cwd=path, rewrite=True, evidence=tuple(str(e) for e in evidence), jobs=1
    )
    return api.run(req)


def _summarize(result: RunResult, outcome: Outcome) -> list[Site]:
    """Fill the report fields from a run; the sites that will be rewritten."""
    from codemod.model import Verdict
    from codemod.report.text import error_line, ordered

    sites = ordered(result.sites)
    outcome.verdicts = dict(Counter(s.verdict.value for s in sites))
    outcome.unused = [(_where(s), dict(s.unused)) for s in sites if s.verdict is Verdict.UNSAFE]
    outcome.errors = [error_line(e) for e in result.errors]
    changed = [s for s in sites if s.changed]
    outcome.rewritten = [_where(s) for s in changed]
    outcome.files = sorted(c.rel for c in result.changes)
    return changed


def _where(site: Site) -> str:
    return f"{site.path}:{site.setting_span.line}:{site.setting_span.col}"


def _relative(files: Sequence[Path], top: Path) -> list[str]:
    real = os.path.realpath(top)
    return [os.path.relpath(os.path.realpath(f), real) for f in files]


def _dirty(top: Path, files: Sequence[str], job: Job, outcome: Outcome) -> bool:
    """Skip the repo when a file to rewrite (relative to `top`) has uncommitted changes."""
    if job.options.allow_dirty:
        return False
    dirty = gitops.dirty(top, files)
    if dirty:
        outcome.status, outcome.rewritten, outcome.files = SKIPPED, [], []
        outcome.message = (
            f"uncommitted changes in {', '.join(dirty)} (commit or stash them, or --allow-dirty)"
        )
    return bool(dirty)


def _in_place(job: Job, path: Path, top: Path | None, outcome: Outcome) -> None:
    result = _pipeline(path)
    _summarize(result, outcome)
    if not result.changes:
        return
    if top is not None and _dirty(
        top, _relative([c.file for c in result.changes], top), job, outcome
    ):
        return
    outcome.status = WOULD_CHANGE
    if not job.options.dry_run:
        written = api.write_changes(result)
        _summarize(result, outcome)  # a file that failed is an error, its sites unchanged
        outcome.status = CHANGED if result.changes else FAILED
        if not written and not result.changes:
            outcome.message = "no file could be rewritten"


def _on_branch(job: Job, path: Path, top: Path, outcome: Outcome) -> None:
    from codemod.discover import project

    branch = job.options.branch
    assert branch is not None
    keep = not job.options.commit and not job.options.dry_run
    temp: Path | None = None
    if keep:  # the branch's work tree stays for the user: somewhere git knows about
        tree = gitops.common_dir(top) / "ddp-codemod" / gitops.slug(branch)
        if tree.exists():
            _fail(outcome, f"{tree} already exists")
            return
    else:
        temp = Path(tempfile.mkdtemp(prefix="ddp-codemod-"))
        tree = temp / "tree"
    inside = Path(os.path.relpath(os.path.realpath(path), os.path.realpath(top)))
    root = project.find_root(path)
    evidence = root / project.EVIDENCE_DIR
    root_in_tree = tree / os.path.relpath(os.path.realpath(root), os.path.realpath(top))
    kept = branched = False
    gitops.add_worktree(top, tree)
    try:
        if not (tree / inside).is_dir():
            _fail(outcome, f"{inside} is not in HEAD (untracked?)")
            return
        untracked = evidence.is_dir() and not (root_in_tree / project.EVIDENCE_DIR).exists()
        result = _pipeline(tree / inside, [evidence] if untracked else [])
        changed = _summarize(result, outcome)
        if not result.changes:
            return
        files = _relative([c.file for c in result.changes], tree)  # same in the checkout
        if _dirty(top, files, job, outcome):
            return
        outcome.status, outcome.branch = WOULD_CHANGE, branch
        if job.options.dry_run:
            return
        if not api.write_changes(result):
            _summarize(result, outcome)
            _fail(outcome, "not branched: some files could not be rewritten")
            return
        gitops.new_branch(tree, branch)
        branched = True
        if job.options.commit:
            outcome.commit = gitops.commit(tree, files, commit_message(changed))
        else:
            kept, outcome.worktree = True, str(tree)
        outcome.status = CHANGED
    except gitops.GitError as exc:
        _undone(outcome, str(exc))
    except Exception as exc:
        _undone(outcome, f"internal error: {exc!r}; please report it")
    finally:
        if not kept:
            gitops.remove_worktree(top, tree)
        if branched and not kept and outcome.commit is None:  # all or nothing
            gitops.delete_branch(top, branch)
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


def commit_message(sites: Sequence[Site]) -> str:
    """Subject, then every rewritten site with the evidence or allowlist entry behind it."""
    count = plural(len(sites), "site")
    lines = [
        f"ddp-codemod: turn off find_unused_parameters at {count}",
        "",
        "Each site, and the evidence or allowlist entry that allowed the change:",
        "",
    ]
    for site in sites:
        lines.append(f"- {_where(site)} {site.qualname} ({site.kind.value}): {site.verdict.value}:")
        lines.append(f"  {site.reason}")
        for run in site.evidence:
            lines.append(f"  evidence: {run.kind} of `{run.command}`: {', '.join(run.files)}")
    return "\n".join(lines) + "\n"


def run(
    entries: Sequence[Entry], options: Options, jobs: int, method: str | None = None
) -> Iterator[tuple[int, Outcome]]:
    """(index, outcome) for each repo as it finishes, on up to `jobs` processes."""
    from codemod import parallel

    work = [Job(entry, options) for entry in entries]

    def lost(job: Job, exc: BaseException) -> Outcome:
        outcome = Outcome(job.repo.shown, str(job.repo.path))
        _fail(outcome, f"worker process failed: {exc!r}")
        return outcome

    yield from parallel.completed(migrate, work, jobs=jobs, on_error=lost, method=method)
