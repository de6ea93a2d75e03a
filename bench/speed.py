"""How fast `ddp-codemod scan` is next to grep and to libcst's codemod runner.

    python bench/speed.py                 # over a generated corpus of 3,000 training files
    python bench/speed.py DIR [DIR ...]   # over your own trees

Prints one Markdown table per tree: wall seconds of `grep -rliI find_unused_param`,
`ddp-codemod scan` (default --jobs and --jobs 1), the floor under any ast-based scan
(bench/parse_floor.py: the walk, reads, byte tests and `ast.parse` alone), and libcst's
codemod runner with a no-op visitor (bench/libcst_noop.py), with the ratios the project
aims for: scan at most 5x grep, at least 50x faster than the libcst runner, and how much
of the 5x the floor leaves for finding sites; then the pre-commit fast path
(bench/fastpath.py) against `python -c "import click"`, at most 1.5x. Give a folder
that holds many real repos to time them as one tree; --no-libcst skips the slow runner.
The libcst runner takes minutes, so by default it runs over a random sample of files and
is scaled up by bytes (its start-up is measured apart and added once); --libcst-all runs
it over every file instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import generate
from fastpath import measure
from timing import ddp_codemod, env, time_command

HERE = Path(__file__).resolve().parent
SKIP = {".git", ".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".tox"}


def python_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        found += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
    return found


def libcst_seconds(
    root: Path, files: list[Path], sample: int | None, jobs: int
) -> tuple[float, str]:
    """Wall seconds of the libcst runner over `files` (measured, or scaled up from a sample)."""
    chosen = (
        files if sample is None or sample >= len(files) else random.Random(0).sample(files, sample)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(str(f) for f in chosen))
    cmd = [
        sys.executable,
        str(HERE / "libcst_noop.py"),
        str(root),
        listing.name,
        "--jobs",
        str(jobs),
    ]
    try:
        start = time.perf_counter()
        subprocess.run(
            cmd, check=True, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        measured = time.perf_counter() - start
    finally:
        os.unlink(listing.name)
    if chosen is files:
        return measured, "all files"
    startup = time_command([sys.executable, "-c", "import libcst.codemod"], repeat=3).best
    scale = sum(f.stat().st_size for f in files) / sum(f.stat().st_size for f in chosen)
    return startup + (
        measured - startup
    ) * scale, f"{len(chosen)}-file sample, scaled by bytes x{scale:.1f}"


def _goal(name: str, ok: bool, ratio: float) -> str:
    return f"goal {name}: {'met' if ok else 'NOT met'} ({ratio:.1f}x)"


def bench(root: Path, args: argparse.Namespace) -> None:
    files = python_files(root)
    size = sum(f.stat().st_size for f in files)
    grep_cmd = ["grep", "-rliI", "find_unused_param", str(root)]
    candidates = len(subprocess.run(grep_cmd, capture_output=True, text=True).stdout.split())
    scan = [*ddp_codemod(), "scan", str(root)]
    grep = time_command(grep_cmd, args.repeat)
    ours = time_command(scan, args.repeat)
    serial = time_command([*scan, "--jobs", "1"], args.repeat)
    floor_cmd = [sys.executable, str(HERE / "parse_floor.py"), str(root)]
    floor = time_command(floor_cmd, args.repeat)
    parsed = json.loads(subprocess.run(floor_cmd, capture_output=True, text=True).stdout)
    sample = None if args.libcst_all else args.libcst_sample
    cst, how = libcst_seconds(root, files, sample, args.jobs) if args.libcst else (0.0, "")

    print(f"\n{root}: {len(files)} Python files, {size / 1e6:.1f} MB, ", end="")
    print(f"{candidates} containing find_unused_param")
    print(f"{os.cpu_count()} cores; best of {args.repeat} runs after a warm-up (median)\n")
    rows = [
        ("`grep -rliI find_unused_param`", str(grep), "1.0x grep"),
        ("`ddp-codemod scan`", str(ours), f"{ours.best / grep.best:.1f}x grep"),
        ("`ddp-codemod scan --jobs 1`", str(serial), f"{serial.best / grep.best:.1f}x grep"),
        (
            f"floor: walk, read, `ast.parse` of {parsed['parsed']} files (bench/parse_floor.py)",
            str(floor),
            f"{floor.best / grep.best:.1f}x grep",
        ),
    ]
    if args.libcst:
        rows.append(
            (
                f"libcst codemod runner, no-op visitor, {args.jobs} jobs ({how})",
                f"{cst:.1f}",
                f"{cst / ours.best:.0f}x scan",
            )
        )
    print("| command | wall s | ratio |\n|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(_goal("scan <= 5x grep", ours.best <= 5 * grep.best, ours.best / grep.best))
    print(f"scan beyond the floor: {ours.best - floor.best:.2f} s; the goal leaves ", end="")
    print(f"{max(0.0, 5 * grep.best - floor.best):.2f} s for it")
    if args.libcst:
        print(_goal("scan >= 50x faster than libcst", cst >= 50 * ours.best, cst / ours.best))


def fast_path(args: argparse.Namespace) -> None:
    click, hook, _ = measure(50, args.repeat)
    ratio = hook.best / click.best
    print(f"\npre-commit fast path, 50 files without a candidate: hook {hook}, ", end="")
    print(f'`python -c "import click"` {click}')
    print(_goal("fast path <= 1.5x import click", ratio <= 1.5, ratio))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--files", type=int, default=3000, help="generated corpus size")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--libcst-sample", type=int, default=120)
    parser.add_argument("--libcst-all", action="store_true")
    parser.add_argument("--no-libcst", dest="libcst", action="store_false")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="libcst runner jobs")
    args = parser.parse_args()
    if args.dirs:
        for root in args.dirs:
            bench(root.resolve(), args)
        fast_path(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        generate(root, args.files)
        print(f"generated: python bench/corpus.py {root} --files {args.files} --seed 0")
        bench(root, args)
    fast_path(args)


if __name__ == "__main__":
    main()
