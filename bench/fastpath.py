"""The pre-commit fast path: `ddp-codemod apply` on files without a candidate.

pre-commit passes the staged files on every commit; when none mentions
find_unused_param the hook should cost about as much as starting Python with click.
Goal: at most 1.5x the wall time of `python -c "import click"` for 50 such files.

    python bench/fastpath.py [--files 50] [--repeat 30]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import make_file
from timing import Timing, ddp_codemod, time_command


def measure(files: int, repeat: int) -> tuple[Timing, Timing, Timing]:
    """(import click, the hook, the check hook) over `files` files without a candidate."""
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        names = []
        for i in range(files):
            (repo / f"module_{i}.py").write_text(make_file(rng, None, None))
            names.append(f"module_{i}.py")
        click = time_command([sys.executable, "-c", "import click"], repeat, repo)
        hook = time_command([*ddp_codemod(), "apply", *names], repeat, repo)
        check = time_command([*ddp_codemod(), "apply", "--dry-run", *names], repeat, repo)
    return click, hook, check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    click, hook, check = measure(args.files, args.repeat)
    print(f"{args.files} files without a candidate; best of {args.repeat} runs (median)\n")
    print("| command | wall s | ratio |\n|---|---:|---:|")
    print(f'| `python -c "import click"` | {click} | 1.00x |')
    print(f"| `ddp-codemod apply FILES` (hook) | {hook} | {hook.best / click.best:.2f}x |")
    print(f"| `ddp-codemod apply --dry-run FILES` (check hook) | {check} | ", end="")
    print(f"{check.best / click.best:.2f}x |")
    ok = hook.best <= 1.5 * click.best
    print(f"\ngoal hook <= 1.5x import click: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
