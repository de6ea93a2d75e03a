"""Source snippets, evidence, git identity and in-process CLI calls the tests share."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from codemod.cli.main import main
from tests.evidence_docs import call_site, frame, instance

DDP_IMPORT = "from torch.nn.parallel import DistributedDataParallel as DDP\n"
SITE = DDP_IMPORT + "model = DDP(model, find_unused_parameters=True)\n"
# build() spans lines 4-7, the DDP call 5-7, the keyword sits on line 7 at column 16
BUILD = (
    DDP_IMPORT
    + """

def build(model, rank):
    return DDP(model,
               device_ids=[rank],
               find_unused_parameters=True)
"""
)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Workflow Test",
    "GIT_AUTHOR_EMAIL": "workflow@example.invalid",
    "GIT_COMMITTER_NAME": "Workflow Test",
    "GIT_COMMITTER_EMAIL": "workflow@example.invalid",
}


def traced(repo: Path, rel: str, **kw) -> dict:
    """One DDP instance as the recorder saw BUILD's call in `rel` (kw: unused, iterations)."""
    return instance(
        call_site(repo, rel, 5, 7, "build"), [frame(repo, rel, 5, "build", (4, 7))], **kw
    )


def runner() -> CliRunner:
    """A click test runner that keeps stdout and stderr apart on every supported click
    (click < 8.2, as on Python 3.9, mixes them unless told not to)."""
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    except TypeError:  # click >= 8.2: always apart, and the argument is gone
        return CliRunner()


def invoke(cwd: Path, *args: str) -> Result:
    """The CLI in this process, run from `cwd`."""
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return runner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def invoke_json(cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """(exit code, the --format json report, stderr) of a CLI call from `cwd`."""
    result = invoke(cwd, *args, "--format", "json")
    return result.exit_code, json.loads(result.stdout), result.stderr


def write(root: Path, rel: str, text: str | bytes) -> Path:
    """Write `text` to `root/rel`, making its folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path
