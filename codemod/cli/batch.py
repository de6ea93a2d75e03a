"""The `batch` command's flags; kept apart from cli.py so the fast path never imports it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from codemod.cli.exits import EXIT_CHANGED, EXIT_CLEAN, EXIT_ERROR
from codemod.report.words import plural

if TYPE_CHECKING:
    from codemod.batch.run import Outcome

REPORT_SUFFIXES = (".md", ".json")


def _shard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """`K/N` with 1 <= K <= N."""
    if value is None:
        return None
    k, _, n = value.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise click.BadParameter(f"{value!r} is not K/N with 1 <= K <= N (e.g. 2/4)")
    return int(k), int(n)


@click.command()
@click.argument("repos", nargs=-1, required=True, metavar="MANIFEST_OR_PATH...")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Repos processed at once [default: one per core].",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report here: a Markdown table (.md) or JSON (.json).",
)
@click.option(
    "--branch",
    metavar="NAME",
    help="Make the changes on this new branch, in a separate work tree; the checkout "
    "and current branch stay as they are.",
)
@click.option(
    "--commit",
    is_flag=True,
    help="With --branch: commit there, listing each site and the evidence or allowlist "
    "entry behind it.",
)
@click.option("--dry-run", is_flag=True, help="Change nothing; report what would change.")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Also rewrite files that have uncommitted changes (default: skip the repo).",
)
@click.option(
    "--shard",
    metavar="K/N",
    callback=_shard,
    help="Process only the K-th of N slices of the repos (sorted by path as written, every "
    "N-th from the K-th): one per machine of a CI matrix or job array.",
)
@click.option(
    "--merge-reports",
    "merge_reports",
    is_flag=True,
    help="Process no repo: join the JSON reports given as arguments (one per shard) into "
    "--report, with totals.",
)
def batch(
    repos: tuple[str, ...],
    jobs: int | None,
    report_file: Path | None,
    branch: str | None,
    commit: bool,
    dry_run: bool,
    allow_dirty: bool,
    shard: tuple[int, int] | None,
    merge_reports: bool,
) -> NoReturn:
    """Run apply over many repos: repo paths, or manifests with one repo path per line.

    Exit 0 when nothing changed, 1 when something was (or would be) rewritten or a repo
    was skipped for uncommitted changes, 2 when any repo failed or had a bad file.
    With --merge-reports: exit 0 once the report is written, 2 for bad input.
    """
    from codemod import gitops, parallel
    from codemod.batch import manifest
    from codemod.batch import report as batch_report
    from codemod.batch.run import CHANGED, FAILED, SKIPPED, WOULD_CHANGE, Options, run

    if report_file is not None and report_file.suffix not in REPORT_SUFFIXES:
        raise click.BadParameter("the report must end in .md or .json", param_hint="--report")
    if merge_reports:
        given = {"--branch": branch, "--commit": commit, "--dry-run": dry_run}
        given.update({"--allow-dirty": allow_dirty, "--shard": shard, "--jobs": jobs})
        _merge(repos, report_file, [flag for flag, value in given.items() if value])
    if commit and not branch:
        raise click.UsageError("--commit needs --branch")
    if branch is not None:
        try:
            valid = gitops.valid_branch(branch)
        except gitops.GitError as exc:
            raise click.UsageError(f"--branch needs git: {exc}") from None
        if not valid:
            raise click.BadParameter(f"{branch!r} is not a branch name", param_hint="--branch")
    try:
        entries = manifest.repos(repos, Path.cwd())
    except manifest.ManifestError as exc:
        raise click.UsageError(str(exc)) from None
    if shard is not None:
        entries = manifest.shard(entries, *shard)

    options = Options(branch, commit, dry_run, allow_dirty)
    results: list[Outcome | None] = [None] * len(entries)
    finished = run(entries, options, jobs or parallel.default_jobs())
    hidden = not sys.stderr.isatty()  # a progress bar only on a terminal
    with click.progressbar(
        finished, length=len(entries), label="repos", file=sys.stderr, hidden=hidden
    ) as bar:
        for index, outcome in bar:
            results[index] = outcome
    outcomes = [o for o in results if o is not None]

    for outcome in outcomes:
        click.echo(batch_report.line(outcome))
        for error in outcome.errors:
            click.echo(f"  {error}")
    click.echo(_summary(outcomes, batch_report.totals(outcomes), dry_run), err=True)
    status = EXIT_CLEAN
    if any(o.status in (CHANGED, WOULD_CHANGE, SKIPPED) for o in outcomes):
        status = EXIT_CHANGED
    if any(o.status == FAILED or o.errors for o in outcomes):
        status = EXIT_ERROR
    if report_file is not None and not _write_report(report_file, outcomes, shard):
        status = EXIT_ERROR
    sys.exit(status)


def _write_report(
    report_file: Path, outcomes: list[Outcome], shard: tuple[int, int] | None = None
) -> bool:
    from codemod.batch import report as batch_report

    text = (
        batch_report.as_json(outcomes, shard)
        if report_file.suffix == ".json"
        else batch_report.markdown(outcomes)
    )
    try:
        report_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"{report_file}: error: cannot write the report: {exc.strerror}", err=True)
        return False
    return True


def _merge(reports: tuple[str, ...], report_file: Path | None, conflicting: list[str]) -> NoReturn:
    """--merge-reports: shards' JSON reports in, one report and the totals line out."""
    from codemod.batch import report as batch_report
    from codemod.batch.run import CHANGED, WOULD_CHANGE

    if conflicting:
        raise click.UsageError(f"--merge-reports processes no repo: drop {', '.join(conflicting)}")
    if report_file is None:
        raise click.UsageError("--merge-reports needs --report OUT.md or OUT.json")
    texts = []
    for name in reports:
        try:
            texts.append((name, Path(name).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"{name}: cannot read the report: {exc}") from None
    try:
        outcomes, warnings = batch_report.merge(texts)
    except batch_report.ReportError as exc:
        raise click.UsageError(str(exc)) from None
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    statuses = {o.status for o in outcomes}
    dry_run = WOULD_CHANGE in statuses and CHANGED not in statuses
    click.echo(_summary(outcomes, batch_report.totals(outcomes), dry_run), err=True)
    sys.exit(EXIT_CLEAN if _write_report(report_file, outcomes) else EXIT_ERROR)


def _summary(outcomes: list[Outcome], totals: dict[str, Any], dry_run: bool) -> str:
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(totals["by_status"].items()))
    verb = "would be rewritten" if dry_run else "rewritten"
    return (
        f"{plural(len(outcomes), 'repo')}{': ' if by_status else ''}{by_status}; "
        f"{plural(totals['rewritten'], 'site')} {verb} in {plural(totals['files'], 'file')}."
    )
