"""Command line: flags in, exit code out. Exit 0 clean, 1 rewrote (or would), 2 errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from codemod import __version__, api, project, report
from codemod.api import Request, RunResult

EXIT_CLEAN, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2

_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report as text lines or one JSON object.",
)
_paths = click.argument("paths", nargs=-1, type=click.Path(path_type=str))


def _run(req: Request) -> RunResult:
    try:
        return api.run(req)
    except Exception as exc:  # a bug of ours: one line and exit 2, like ruff
        click.echo(f"error: internal error: {exc!r}; please report it", err=True)
        if os.environ.get("DDP_CODEMOD_DEBUG"):
            raise
        sys.exit(EXIT_ERROR)


def _emit_problems(result: RunResult) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for error in result.errors:
        click.echo(report.error_line(error), err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ddp-codemod")
def main() -> None:
    """Turn off DDP's find_unused_parameters=True where evidence proves it safe."""


@main.command()
@_paths
@_format
def scan(paths: tuple[str, ...], fmt: str) -> NoReturn:
    """List every find_unused_parameters site under PATHS (default: .)."""
    result = _run(Request(paths or (".",), cwd=Path.cwd()))
    if fmt == "json":
        click.echo(report.as_json(result.sites, result.errors, with_changed=False))
    else:
        for site in report.ordered(result.sites):
            click.echo(report.site_line(site))
        click.echo(report.tally(result.sites) + ".", err=True)
    _emit_problems(result)
    sys.exit(EXIT_ERROR if result.errors else EXIT_CLEAN)


@main.command()
@_paths
@click.option("--dry-run", is_flag=True, help="Write nothing; print a unified diff instead.")
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="SELECTOR",
    help="Allow rewriting these sites: PATH, PATH:LINE or PATH::QUALNAME (globs allowed).",
)
@click.option(
    "--style",
    type=click.Choice(["remove", "false"]),
    default="remove",
    show_default=True,
    help="Remove the keyword where the API defaults to False, or always write =False.",
)
@_format
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when files were rewritten.")
def apply(
    paths: tuple[str, ...],
    dry_run: bool,
    allow: tuple[str, ...],
    style: str,
    fmt: str,
    exit_zero: bool,
) -> NoReturn:
    """Rewrite the sites under PATHS (default: .) that evidence or the allowlist covers."""
    req = Request(
        paths or (".",),
        cwd=Path.cwd(),
        allow=allow,
        rewrite=True,
        write=not dry_run,
        style_false=style == "false",
    )
    result = _run(req)
    if fmt == "json":
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


def report_diff(change: api.FileChange) -> bytes:
    from codemod.diff import unified

    return unified(change.rel, change.old, change.new)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--out",
    default=project.EVIDENCE_DIR,
    show_default=True,
    metavar="DIR",
    help="Folder for the evidence files, relative to the current directory.",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    metavar="N",
    help="End the run cleanly once every DDP instance has done N synchronising iterations.",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def trace(out: str, steps: int | None, command: tuple[str, ...]) -> NoReturn:
    """Run COMMAND (after --) with the DDP recorder and keep its evidence.

    Run it from the repo root: evidence paths are relative to the current directory.
    Exits with COMMAND's exit status.
    """
    from codemod import trace as tracing

    cwd = Path.cwd()
    job = tracing.new_trace(command, out, steps, cwd)
    try:
        result = tracing.run(job)
    except tracing.TraceError as exc:
        click.echo(f"ddp-codemod: error: {exc}", err=True)
        sys.exit(exc.status)
    click.echo(tracing.summary(result, job.out, cwd), err=True)
    sys.exit(result.status)
