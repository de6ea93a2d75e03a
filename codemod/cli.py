"""Command line: flags in, exit code out. Exit 0 clean, 1 rewrote (or would), 2 errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from codemod import __version__, report
from codemod import probe as probe_defaults
from codemod.batch_cli import batch
from codemod.fastpath import nothing_to_find, unmatched_for_files
from codemod.model import EVIDENCE_DIR, FileChange, RunResult

EXIT_CLEAN, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2

_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Report as text lines, one JSON object, or SARIF 2.1.0 (with fixes).",
)
_paths = click.argument("paths", nargs=-1, type=click.Path(path_type=str))
_evidence = click.option(
    "--evidence",
    "evidence",
    multiple=True,
    metavar="PATH",
    help="Also read evidence from this file or folder (besides <root>/.ddp-codemod/).",
)


_jobs = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for parsing candidate files [default: one per core; small runs stay "
    "in-process].",
)


def _run(paths: tuple[str, ...], jobs: int | None = None, **options: Any) -> RunResult:
    """api.run over PATHS; files that cannot hold a site never import it (pre-commit's case)."""
    cwd = Path.cwd()
    if nothing_to_find(paths, cwd):
        return RunResult(warnings=unmatched_for_files(options.get("allow", ()), paths, cwd))
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
    from codemod import sarif

    doc = sarif.document(
        result.sites, result.errors, result.warnings, result.changes, Path.cwd(), with_changed
    )
    click.echo(sarif.dumps(doc))


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
@_evidence
@_jobs
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
@_evidence
@_jobs
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
    from codemod.diff import unified

    return unified(change.rel, change.old, change.new)


main.add_command(batch)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option(
    "--out",
    default=EVIDENCE_DIR,
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


@main.command()
@click.argument("target", metavar="MODULE:FACTORY")
@click.option(
    "--site",
    metavar="SELECTOR",
    help="Write evidence for this one site: PATH, PATH:LINE or PATH::QUALNAME (as --allow).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=probe_defaults.DEFAULT_STEPS,
    show_default=True,
    metavar="N",
    help="Synchronising steps of run A and of run B (and per timing round).",
)
@click.option(
    "--world-size",
    type=click.IntRange(min=1),
    default=probe_defaults.DEFAULT_WORLD_SIZE,
    show_default=True,
    metavar="W",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=probe_defaults.DEFAULT_TIMEOUT_S,
    show_default=True,
    metavar="S",
    help="Seconds run A and run B may each take before all their processes are killed.",
)
@click.option(
    "--timing",
    type=click.Choice(list(probe_defaults.TIMING_ROUNDS)),
    default=probe_defaults.DEFAULT_TIMING,
    show_default=True,
    help="Time A, B and C after a safe verdict: none, quick (3 rounds) or full (5 rounds).",
)
@click.option(
    "--timing-timeout",
    type=click.FloatRange(min=1),
    default=probe_defaults.DEFAULT_TIMING_TIMEOUT_S,
    show_default=True,
    metavar="S",
    help="Seconds the timing may take; cut short, it keeps the rounds that finished.",
)
@click.option(
    "--device",
    type=click.Choice(list(probe_defaults.DEVICES)),
    default="cpu",
    show_default=True,
    help="cpu: gloo. cuda: NCCL, one rank per visible GPU (--world-size at most their count).",
)
@click.option(
    "--out",
    metavar="DIR",
    help="Folder for the evidence, relative to the current directory "
    "[default: <repo root>/.ddp-codemod, or the current directory without a repo root].",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def probe(
    target: str,
    site: str | None,
    steps: int,
    world_size: int,
    timeout: float,
    timing: str,
    timing_timeout: float,
    device: str,
    out: str | None,
    fmt: str,
) -> NoReturn:
    """Run MODULE:FACTORY's model under DDP with find_unused_parameters True and False.

    Proves (or refutes) that dropping the flag changes nothing but step time, on CPU with
    gloo or on GPUs with NCCL. Exit 0 with a verdict (safe or unsafe), 2 for bad input or
    when run A (True) fails for another reason or hangs.
    """
    from codemod.probe import report, runner

    req = runner.Request(
        target,
        Path.cwd(),
        site,
        steps,
        world_size,
        timeout,
        out,
        timing=timing,
        timing_timeout=timing_timeout,
        device=device,
    )

    def progress(line: str) -> None:
        click.echo(f"ddp-codemod: {line}", err=True)

    try:
        result = runner.run(req, progress)
    except runner.ProbeError as exc:
        click.echo(f"ddp-codemod: error: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(report.as_json(result) if fmt == "json" else report.text(result))
    sys.exit(EXIT_CLEAN)
