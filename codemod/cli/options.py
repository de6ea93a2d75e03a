"""What the commands share: exit codes and the options scan and apply both take."""

from __future__ import annotations

import click

EXIT_CLEAN, EXIT_CHANGED, EXIT_ERROR = 0, 1, 2

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Report as text lines, one JSON object, or SARIF 2.1.0 (with fixes).",
)
PATHS = click.argument("paths", nargs=-1, type=click.Path(path_type=str))
EVIDENCE = click.option(
    "--evidence",
    "evidence",
    multiple=True,
    metavar="PATH",
    help="Also read evidence from this file or folder (besides <root>/.ddp-codemod/).",
)


JOBS = click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Processes for parsing candidate files [default: one per core; small runs stay "
    "in-process].",
)
