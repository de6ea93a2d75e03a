"""Source snippets, evidence and git identity that the workflow tests share."""

from __future__ import annotations

from pathlib import Path

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
