"""README.md says what the tool does: every ```console block runs, in a fresh copy of the
tree it talks about, and prints what the block shows (timings masked; `...` stands for
any lines, such as the training's own output)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.ddp_runs import clean_env, free_port

CHECKOUT = Path(__file__).resolve().parents[1]
README = CHECKOUT / "README.md"
MARK = "::readme-step::"
# Another engineer is rewriting the Probe section: its blocks (`probe` of examples/tiny_detector
# and examples/unused_layer, then scan and apply there) are not run here.
SKIPPED_SECTIONS = {
    "Probe: True and False side by side": "the probe's wording follows measured noise "
    '("saves N%" or "no measurable difference"), which masking numbers cannot hide; its '
    "blocks (probe of examples/tiny_detector and examples/unused_layer, then scan and apply "
    "there) run for real in tests/test_probe.py, without comparing the README's text"
}


@dataclass(frozen=True)
class Block:
    section: str  # the `## ` heading above it
    index: int  # 1-based, within the section
    steps: tuple[tuple[str, tuple[str, ...]], ...]  # (command, expected output lines)

    @property
    def id(self) -> str:
        return f"{self.section.split(':')[0].lower().replace(' ', '-')}-{self.index}"


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    section, counts = "", dict[str, int]()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.strip() == "```console":
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            counts[section] = counts.get(section, 0) + 1
            found.append(Block(section, counts[section], _steps(body)))
        i += 1
    return found


def _steps(body: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    steps: list[tuple[str, list[str]]] = []
    for line in body:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return tuple((cmd, tuple(out)) for cmd, out in steps)


_DECIMAL = re.compile(r"\d+\.\d+")
_TIMED = re.compile(r"\d+(?= ?(?:ms|s|x|%)(?![A-Za-z]))")


def mask(line: str) -> str:
    """Timing numbers vary from run to run: 2.8 s, 7.12 ms, 1.14x, 12%."""
    return _TIMED.sub("N", _DECIMAL.sub("N", line)).rstrip()


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Line by line, after masking; an expected `...` line stands for any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return (
        bool(actual) and mask(expected[0]) == mask(actual[0]) and matches(expected[1:], actual[1:])
    )


# The trees the sections talk about ----------------------------------------------------------
def _workflow(tmp: Path) -> Path:
    tree = tmp / "two_models"
    shutil.copytree(CHECKOUT / "examples" / "two_models", tree)
    return tree


def _allowlist(tmp: Path) -> Path:
    """The DAMO-YOLO tree: the section's ```python block is damo/detectors/detector.py."""
    section = README.read_text(encoding="utf-8").split("\n## Without a run: the allowlist\n")[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    tree = tmp / "damo-yolo"
    (tree / "damo" / "detectors").mkdir(parents=True)
    (tree / "damo" / "detectors" / "detector.py").write_text(source)
    return tree


TREES: dict[str, Callable[[Path], Path]] = {
    "The workflow: trace, then apply": _workflow,
    "Without a run: the allowlist": _allowlist,
}
SLOW = ("trace ", "probe ", "torchrun")  # real process groups: 30 s and more on 2 cores


def _params() -> list:
    out = []
    for block in blocks(README.read_text(encoding="utf-8")):
        slow = any(word in cmd for cmd, _ in block.steps for word in SLOW)
        marks = [pytest.mark.slow_readme] if slow else []
        out.append(pytest.param(block, id=block.id, marks=marks))
    return out


def run_block(block: Block, cwd: Path, tmp: Path) -> list[list[str]]:
    """Each command's output lines (stdout and stderr as a terminal shows them), run one
    after another in one shell, so `cd` and `echo $?` work as in the README."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "ddp-codemod"  # this checkout's CLI, whatever else is installed
    tool.write_text(f'#!/bin/sh\nexec {sys.executable} -m codemod "$@"\n')
    tool.chmod(0o755)
    script = ["exec 2>&1", "__s=0"]
    for n, (cmd, _) in enumerate(block.steps):
        script += [f"printf '{MARK}{n}\\n'", "(exit $__s)", cmd, "__s=$?"]
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    pythonpath = os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH")) if p)
    env = clean_env(PATH=path, PYTHONPATH=pythonpath, COLUMNS="200")
    env.update(PET_MASTER_ADDR="127.0.0.1", PET_MASTER_PORT=str(free_port()))  # torchrun's
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    outputs: list[list[str]] = []
    for line in done.stdout.split("\n")[:-1]:
        if line.startswith(MARK):
            outputs.append([])
        else:
            outputs[-1].append(line)
    return outputs


@pytest.mark.parametrize("block", _params())
def test_console_block(block: Block, tmp_path: Path):
    if block.section in SKIPPED_SECTIONS:
        pytest.skip(SKIPPED_SECTIONS[block.section])
    setup = TREES.get(block.section)
    assert setup is not None, f"README section {block.section!r} has a console block: add its tree"
    outputs = run_block(block, setup(tmp_path), tmp_path)
    for (cmd, expected), actual in zip(block.steps, outputs):
        shown = "\n".join(actual)
        assert matches(expected, actual), (
            f"$ {cmd}\n--- README\n" + "\n".join(expected) + f"\n--- actual\n{shown}"
        )
    assert len(outputs) == len(block.steps)


# The runner itself --------------------------------------------------------------------------
def test_masking_and_wildcards():
    assert mask("A (True) 7.12 ms [5.65-9.41], 2.8 s, 1.14x, 12% at train.py:19:31") == (
        "A (True) N ms [N-N], N s, Nx, N% at train.py:19:31"
    )
    assert matches(("a", "...", "b"), ["a", "x", "y", "b"])
    assert matches(("...", "b"), ["b"])
    assert not matches(("a", "b"), ["a", "b", "c"])


def test_every_section_with_a_console_block_is_run_or_skipped_with_a_reason():
    sections = {b.section for b in blocks(README.read_text(encoding="utf-8"))}
    assert sections <= set(TREES) | set(SKIPPED_SECTIONS)
    assert set(TREES) <= sections


def test_github_annotation_example_is_what_scan_prints(tmp_path: Path):
    section = README.read_text(encoding="utf-8").split("\n## GitHub annotations\n")[1]
    shown = section.split("```\n", 1)[1].split("```", 1)[0].splitlines()
    outputs = run_block(
        Block("GitHub annotations", 1, (("ddp-codemod scan . --format github", ()),)),
        _allowlist(tmp_path),
        tmp_path,
    )
    assert outputs == [shown]


def test_no_package_index_is_named_in_the_repo():
    """Where torch comes from depends on the machine: the repo names no package host."""
    hosts = re.compile(r"pypi\.org|files\.pythonhosted|download\.pytorch\.org|--(extra-)?index-url")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=CHECKOUT, capture_output=True, text=True, check=False
    ).stdout.split()
    files = [CHECKOUT / f for f in tracked] or [README, CHECKOUT / ".ci" / "run"]
    named = [str(f) for f in files if f.is_file() and hosts.search(f.read_text(errors="replace"))]
    assert named == []
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "may well be the multi-GB CUDA build" in text
    assert "PyTorch's own install instructions" in text
