"""`ddp-codemod probe`: the paired True/False check of one model, run on CPU with gloo.

Modules: `factory` (the user's MODULE:FACTORY protocol), `site` (which site the evidence is
for), `launch` (the ranks of one run, with a deadline), `worker` (one rank), `compare`
(final states of A and B), `outcome` (the verdict), `stats` (step times), `records` (the
evidence files), `runner` (all of it in order) and `report`. Nothing here is imported by
`scan` or `apply`; torch is imported only inside the functions that need it.
"""

DEFAULT_STEPS = 8
DEFAULT_WORLD_SIZE = 2
DEFAULT_TIMEOUT_S = 300.0  # per run: A, B and the timing run each get this long
DEFAULT_ROUNDS = 5
