"""`trace`: run the user's own command with the recorder and keep its evidence."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from codemod.model import EVIDENCE_DIR


@click.command(
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
@click.option(
    "--record-paths",
    type=click.IntRange(min=0),
    metavar="N",
    help="Record which lines of the model's forward code ran in the first N iterations "
    "(default 50; --steps records every step; 0 turns it off).",
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def trace(
    out: str, steps: int | None, record_paths: int | None, command: tuple[str, ...]
) -> NoReturn:
    """Run COMMAND (after --) with the DDP recorder and keep its evidence.

    Run it from the repo root: evidence paths are relative to the current directory (a run
    below the root says where its evidence went). Writes no folder when no process built
    DDP. Exits with COMMAND's exit status.
    """
    from codemod.evidence import trace as tracing

    cwd = Path.cwd()
    job = tracing.new_trace(command, out, steps, cwd, record_paths)
    try:
        result = tracing.run(job)
    except tracing.TraceError as exc:
        click.echo(f"ddp-codemod: error: {exc}", err=True)
        sys.exit(exc.status)
    root = tracing.root_above(cwd)
    if root is not None:
        warning = tracing.below_root_warning(root, job.out, cwd, bool(result.evidence))
        click.echo(warning, err=True)
    click.echo(tracing.summary(result, job.out, cwd), err=True)
    if result.evidence:
        for line in tracing.unexercised(result, cwd):
            click.echo(line, err=True)
    sys.exit(result.status)
