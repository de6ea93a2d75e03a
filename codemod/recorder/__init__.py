"""Files that `ddp-codemod trace` puts first on the traced command's PYTHONPATH.

Nothing here is imported by ddp-codemod itself except `_ddp_codemod_source`, which the
static side shares with the recorder so that both compute the same spans, hashes and names.
"""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
