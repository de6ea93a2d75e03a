"""`scan` and `apply`: flags to an api.Request, its RunResult to output and an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from codemod.cli.exits import EXIT_CHANGED, EXIT_CLEAN, EXIT_ERROR
from codemod.cli.options import (
    APPLY_EXIT_CODES,
    EVIDENCE,
    FORMAT,
    JOBS,
    PATHS,
    SCAN_EXIT_CODES,
)
from codemod.discover.fastpath import nothing_to_find, selector_errors, unmatched_for_files
from codemod.model import FileChange, RunResult
from codemod.report import text as report


def _run(paths: tuple[str, ...], jobs: int | None = None, **options: Any) -> RunResult:
    """api.run over PATHS; files that cannot hold a site never import it (pre-commit's case)."""
    cwd = Path.cwd()
    evidence = options.get("evidence", ())
    if nothing_to_find(paths, cwd) and all(os.path.lexists(cwd / e) for e in evidence):
        allow = options.get("allow", ())
        return RunResult(
            warnings=unmatched_for_files(allow, paths, cwd),
            errors=selector_errors(allow, cwd),
        )
    from codemod import api, parallel

    try:
        req = api.Request(paths, cwd=cwd, jobs=jobs or parallel.default_jobs(), **options)
        return api.run(req)
    except Exception as exc:  # a bug of ours: one line and exit 2, like ruff
        click.echo(f"error: internal error: {exc!r}; please report it", err=True)
        if os.environ.get("DDP_CODEMOD_DEBUG"):
            raise
        sys.exit(EXIT_ERROR)


def _echo_sarif(result: RunResult, with_changed: bool) -> None:
    from codemod.report import sarif

    doc = sarif.document(
        result.sites, result.errors, result.warnings, result.changes, Path.cwd(), with_changed
    )
    click.echo(sarif.dumps(doc))


def _echo_github(result: RunResult, changed_note: str | None) -> None:
    """Workflow commands only, on stdout: errors and warnings are commands too."""
    from codemod.report import github

    lines = github.lines(result.sites, result.errors, result.warnings, Path.cwd(), changed_note)
    for line in lines:
        click.echo(line)


def _emit_problems(result: RunResult, fmt: str) -> None:
    if fmt == "github":  # already workflow commands on stdout
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for error in result.errors:
        click.echo(report.error_line(error), err=True)


@click.command(epilog=SCAN_EXIT_CODES)
@PATHS
@FORMAT
@EVIDENCE
@JOBS
def scan(paths: tuple[str, ...], fmt: str, evidence: tuple[str, ...], jobs: int | None) -> NoReturn:
    """List every find_unused_parameters site under PATHS (default: .)."""
    # SARIF carries each rewritable site's fix: compute the rewrites, write nothing
    result = _run(paths or (".",), evidence=evidence, jobs=jobs, rewrite=fmt == "sarif")
    if fmt == "sarif":
        _echo_sarif(result, with_changed=False)
    elif fmt == "github":
        _echo_github(result, changed_note=None)
    elif fmt == "json":
        click.echo(report.as_json(result.sites, result.errors, with_changed=False))
    else:
        for site in report.ordered(result.sites):
            click.echo(report.site_line(site))
        click.echo(report.tally(result.sites) + ".", err=True)
    _emit_problems(result, fmt)
    sys.exit(EXIT_ERROR if result.errors else EXIT_CLEAN)


@click.command(epilog=APPLY_EXIT_CODES)
@PATHS
@click.option("--dry-run", is_flag=True, help="Write nothing; print a unified diff instead.")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="SELECTOR",
    help="Allow rewriting these sites: PATH, PATH:LINE or PATH::QUALNAME (globs allowed), "
    "relative to the current directory. A selector that matches no site warns. When only "
    "files are given (pre-commit's case), one that names none of them but a file under the "
    "current directory says nothing, since another batch of files may hold its site.",
)
@click.option(
    "--style",
    type=click.Choice(["remove", "false"]),
    default="remove",
    show_default=True,
    help="Remove the keyword where the API defaults to False, or always write =False.",
)
@FORMAT
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when files were rewritten.")
@EVIDENCE
@JOBS
def apply(
    paths: tuple[str, ...],
    dry_run: bool,
    allow: tuple[str, ...],
    style: str,
    fmt: str,
    exit_zero: bool,
    evidence: tuple[str, ...],
    jobs: int | None,
) -> NoReturn:
    """Rewrite the sites under PATHS (default: .) that evidence or the allowlist covers."""
    result = _run(
        paths or (".",),
        allow=allow,
        rewrite=True,
        write=not dry_run,
        style_false=style == "false",
        evidence=evidence,
        jobs=jobs,
    )
    if fmt == "sarif":
        _echo_sarif(result, with_changed=True)
    elif fmt == "github":
        _echo_github(result, "apply rewrites it" if dry_run else "rewritten")
    elif fmt == "json":
        click.echo(report.as_json(result.sites, result.errors, with_changed=True))
    else:
        if dry_run:
            out = sys.stdout.buffer
            for change in result.changes:
                out.write(report_diff(change))
            out.flush()
        else:
            for site in report.ordered([s for s in result.sites if s.changed]):
                click.echo(report.site_line(site))
        _echo_left_alone(result, dry_run)
    _emit_problems(result, fmt)
    if result.errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGED if result.changes and not exit_zero else EXIT_CLEAN)


def _echo_left_alone(result: RunResult, dry_run: bool) -> None:
    """On stderr: each site apply left alone, the summary, and what to do next."""
    for line in report.left_alone(result.sites):
        click.echo(line, err=True)
    click.echo(report.apply_summary(result.sites, len(result.changes), dry_run), err=True)
    hint = report.next_step(result.sites)
    if hint is not None:
        click.echo(hint, err=True)


def report_diff(change: FileChange) -> bytes:
    from codemod.edit.diff import unified

    return unified(change.rel, change.old, change.new)
