"""`probe`: the paired True/False check of one model, built by the user's factory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from codemod import probe as probe_defaults
from codemod.cli.exits import EXIT_CLEAN, EXIT_ERROR


@click.command()
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
    help="Processes (ranks) of each run, on 127.0.0.1 (gloo) or one per GPU (--device "
    "cuda); >= 2 also checks rank-dependent use.",
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
    "--record-paths",
    type=click.IntRange(min=0),
    metavar="N",
    help="Record which lines of the model's forward code ran in the first N steps of runs A "
    "and B [default: every step; 0 turns it off]; a branch that could skip parameters and "
    "that no step took makes the verdict unknown.",
)
@click.option(
    "--out",
    metavar="DIR",
    help="Folder for the evidence, relative to the current directory "
    "[default: <repo root>/.ddp-codemod, or the current directory without a repo root].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report the verdict, runs and timings as text, or as one JSON object.",
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
    record_paths: int | None,
    out: str | None,
    fmt: str,
) -> NoReturn:
    """Run MODULE:FACTORY's model under DDP with find_unused_parameters True and False.

    Proves (or refutes) that dropping the flag changes nothing but step time, on CPU with
    gloo or on GPUs with NCCL. Exit 0 with a verdict (safe, unsafe, or unknown: a branch
    that could skip parameters ran in no step), 2 for bad input or when run A (True) fails
    for another reason or hangs.
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
        record_paths=record_paths,
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
