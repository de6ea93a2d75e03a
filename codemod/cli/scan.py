"""`scan` and `apply`: flags to an api.Request, its RunResult to output and an exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from codemod.cli.options import EVIDENCE, EXIT_CHANGED, EXIT_CLEAN, EXIT_ERROR, FORMAT, JOBS, PATHS
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


def _emit_problems(result: RunResult) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for error in result.errors:
        click.echo(report.error_line(error), err=True)


@click.command()
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
    elif fmt == "json":
        click.echo(report.as_json(result.sites, result.errors, with_changed=False))
    else:
        for site in report.ordered(result.sites):
            click.echo(report.site_line(site))
        click.echo(report.tally(result.sites) + ".", err=True)
    _emit_problems(result)
    sys.exit(EXIT_ERROR if result.errors else EXIT_CLEAN)


@click.command()
@PATHS
@click.option("--dry-run", is_flag=True, help="Write nothing; print a unified diff instead.")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="SELECTOR",
    help=(
        "Allow rewriting these sites: PATH, PATH:LINE or PATH::QUALNAME (globs allowed), "
        "relative to the current directory."
    ),
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
    elif fmt == "json":
        click.echo(report.as_json(result.sites, result.errors, with_changed=True))
    elif dry_run:
        out = sys.stdout.buffer
        for change in result.changes:
            out.write(report_diff(change))
        out.flush()
        click.echo(report.apply_summary(result.sites, len(result.changes), dry_run), err=True)
    else:
        for site in report.ordered([s for s in result.sites if s.changed]):
            click.echo(report.site_line(site))
        click.echo(report.apply_summary(result.sites, len(result.changes), dry_run), err=True)
    _emit_problems(result)
    if result.errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGED if result.changes and not exit_zero else EXIT_CLEAN)


def report_diff(change: FileChange) -> bytes:
    from codemod.edit.diff import unified

    return unified(change.rel, change.old, change.new)
