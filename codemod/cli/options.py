"""What the commands share: the options scan and apply both take, and --help epilogs."""

from __future__ import annotations

import click

# Epilogs for --help; `\b` keeps click from re-wrapping the paragraph after it.
SCAN_EXIT_CODES = """\b
Exit codes:
  0  no errors, whatever the verdicts
  2  usage error, or a file that could not be read or parsed
     (every other file is still scanned)
"""
APPLY_EXIT_CODES = """\b
Exit codes:
  0  nothing to change
  1  something was rewritten (with --dry-run: would be); --exit-zero makes it 0
  2  usage error, or a file that could not be read, parsed or written
     (every other file is still processed)
"""
WORKFLOW = """\b
Workflow, from the repo root:
  ddp-codemod trace --steps 4 -- torchrun --nproc_per_node=2 train.py
  ddp-codemod scan .             # every site, its verdict and why
  ddp-codemod apply . --dry-run  # the diff for the sites evidence covers
  ddp-codemod apply .            # rewrite them

trace records a few steps of the real training; without a run, `probe
MODULE:FACTORY --site SELECTOR` checks the model with the flag True and False, or
`apply --allow SELECTOR` vouches for a site. `ddp-codemod COMMAND --help` for more.

\b
Exit codes: 0 clean, 1 apply rewrote (or would), 2 usage error or a file that
could not be read, parsed or written; trace exits with its command's status.
"""

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    show_default=True,
    help="Report as text lines, one JSON object, SARIF 2.1.0 (with fixes), or GitHub "
    "Actions annotations.",
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
