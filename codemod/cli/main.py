"""Command line: flags in, exit code out. Exit 0 clean, 1 rewrote (or would), 2 errors.

Each command lives in a module of its own and imports the pipeline only when it runs, so
pre-commit's no-op case (the fast path) costs little more than importing click.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from codemod import __version__
from codemod.cli.batch import batch
from codemod.cli.exits import EXIT_INTERRUPTED
from codemod.cli.options import WORKFLOW
from codemod.cli.probe import probe
from codemod.cli.scan import apply, scan
from codemod.cli.trace import trace
from codemod.gc_tuning import fewer_collections


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so `finally` blocks remove temp files."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


class _Group(click.Group):
    """Ctrl-C exits 130 (not click's 1), and SIGTERM unwinds like Ctrl-C does (trace and
    probe put their own handlers in place while their children run); every command runs
    with fewer garbage collections (`codemod.gc_tuning`)."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            with fewer_collections():
                return super().invoke(ctx)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except _Terminated:
            raise click.exceptions.Exit(128 + signal.SIGTERM) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog=WORKFLOW)
@click.version_option(__version__, prog_name="ddp-codemod")
def main() -> None:
    """Turn off DDP's find_unused_parameters=True where evidence proves it safe."""


for _command in (scan, apply, batch, trace, probe):
    main.add_command(_command)
