"""Command line: flags in, exit code out. Exit 0 clean, 1 rewrote (or would), 2 errors.

Each command lives in a module of its own and imports the pipeline only when it runs, so
pre-commit's no-op case (the fast path) costs little more than importing click.
"""

from __future__ import annotations

import click

from codemod import __version__
from codemod.cli.batch import batch
from codemod.cli.options import WORKFLOW
from codemod.cli.probe import probe
from codemod.cli.scan import apply, scan
from codemod.cli.trace import trace


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=WORKFLOW)
@click.version_option(__version__, prog_name="ddp-codemod")
def main() -> None:
    """Turn off DDP's find_unused_parameters=True where evidence proves it safe."""


for _command in (scan, apply, batch, trace, probe):
    main.add_command(_command)
