"""`ddp-codemod probe`: the paired True/False check of one model, on CPU (gloo) or CUDA (NCCL).

Modules: `factory` (the user's MODULE:FACTORY protocol), `site` (which site the evidence is
for), `launch` (the ranks of one run, with a deadline), `worker` (one rank), `compare`
(final states of A and B), `outcome` (the verdict), `stats` (step times), `records` (the
evidence files), `runner` (all of it in order) and `report`. Nothing here is imported by
`scan` or `apply`; torch is imported only inside the functions that need it.
"""

DEFAULT_STEPS = 8
DEFAULT_WORLD_SIZE = 2
DEFAULT_TIMEOUT_S = 300.0  # per run: A and B each get this long
DEFAULT_TIMING = "quick"
TIMING_ROUNDS = {"none": 0, "quick": 3, "full": 5}  # --timing: rounds of A, B and C
DEFAULT_TIMING_TIMEOUT_S = 300.0  # the timing run's own deadline; cut short, the verdict stands
DEVICES = ("cpu", "cuda")
