"""pre-commit calls the hook on every commit: files without a candidate must cost nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from codemod.discover.fastpath import nothing_to_find

TRUE_SITE = (
    "from torch.nn.parallel import DistributedDataParallel as DDP\n"
    "model = DDP(model, find_unused_parameters=True)\n"
)
PLAIN = "import torch\n\n\ndef step(x):\n    return x + 1\n"
HEAVY = ("codemod.api", "codemod.process", "libcst", "pathspec", "tomllib")


def _files(root: Path, n: int, text: str) -> list[str]:
    names = []
    for i in range(n):
        (root / f"f{i}.py").write_text(text)
        names.append(f"f{i}.py")
    return names


def test_nothing_to_find(tmp_path: Path):
    names = _files(tmp_path, 3, PLAIN)
    assert nothing_to_find(names, tmp_path)
    (tmp_path / "train.py").write_text(TRUE_SITE)
    assert not nothing_to_find([*names, "train.py"], tmp_path)
    (tmp_path / "upper.py").write_text("_C.FIND_UNUSED_PARAM = True\n")
    assert not nothing_to_find(["upper.py"], tmp_path)


def test_espnet_spelling_passes_only_in_yaml_and_shell(tmp_path: Path):
    for name in ("train.yaml", "run.sh"):
        (tmp_path / name).write_text("unused_parameters: true\n")
        assert not nothing_to_find([name], tmp_path)
    (tmp_path / "train.py").write_text("parser.add_argument('--unused_parameters')\n")
    (tmp_path / "data.json").write_text('{"unused_parameters": true}\n')
    assert nothing_to_find(["train.py", "data.json"], tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "from transformers import TrainingArguments\nargs = TrainingArguments('out')\n",
        'import pytorch_lightning as pl\ntrainer = pl.Trainer(strategy="ddp")\n',
    ],
)
def test_implicit_spellings_go_to_the_pipeline(tmp_path: Path, text: str):
    """No `find_unused_param` bytes, yet the framework's default turns the flag on."""
    (tmp_path / "train.py").write_text(text)
    assert not nothing_to_find(["train.py"], tmp_path)


@pytest.mark.parametrize("arg", ["missing.py", "folder", "."])
def test_anything_but_a_readable_file_goes_to_the_pipeline(tmp_path: Path, arg: str):
    (tmp_path / "folder").mkdir()
    (tmp_path / "f.py").write_text(PLAIN)
    assert nothing_to_find(["f.py"], tmp_path)
    assert not nothing_to_find(["f.py", arg], tmp_path)


def _probe(
    cwd: Path, *args: str, via: str = "codemod.cli.main", heavy: tuple[str, ...] = HEAVY
) -> tuple[list[str], str, str, int]:
    """Heavy modules a CLI call imported, its stdout, stderr and exit code; `via`: the
    module whose main runs (the click group, or the console script's `codemod.cli.entry`)."""
    code = (
        f"import sys\nfrom {via} import main\n"
        f"try:\n    main({list(args)!r})\nexcept SystemExit as e:\n    code = e.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), code, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    *stderr, last = out.stderr.strip().splitlines()
    imported, exit_code = last.rsplit(" ", 1)
    return eval(imported), out.stdout, "\n".join(stderr), int(exit_code)


@pytest.mark.parametrize(
    "args",
    [
        ("apply",),
        ("apply", "--dry-run"),
        ("apply", "--format", "json"),
        ("scan",),
        ("scan", "--format", "json"),
        ("apply", "--allow", "nothing.py"),
    ],
)
def test_no_candidate_imports_nothing_heavy_and_reports_like_the_pipeline(tmp_path: Path, args):
    names = _files(tmp_path, 5, PLAIN)
    # a malformed config is not read: nothing in these files needs it
    (tmp_path / "pyproject.toml").write_text("[tool.ddp-codemod]\nallow = [\n")
    imported, out, err, code = _probe(tmp_path, *args, *names)
    assert imported == []
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "big.py").write_text(PLAIN * 3 + "# find_unused_parameters\n")  # pipeline path
    full_imported, full_out, full_err, full_code = _probe(tmp_path, *args, *names, "big.py")
    assert "codemod.api" in full_imported
    assert (out, err, code) == (full_out, full_err, full_code)


def test_candidate_files_still_go_through_the_pipeline(tmp_path: Path):
    names = _files(tmp_path, 5, PLAIN)
    (tmp_path / "train.py").write_text(TRUE_SITE)
    imported, out, _, code = _probe(tmp_path, "apply", "--allow", "train.py", *names, "train.py")
    assert {"codemod.api", "codemod.process", "libcst"} <= set(imported)
    assert code == 1
    assert "train.py:2:20: allowed" in out


CLICK_AND_MODEL = ("click", "codemod.model", "codemod.report.text")


@pytest.mark.parametrize("args", [("apply",), ("apply", "--dry-run")])
def test_the_console_script_answers_pre_commit_s_no_op_before_importing_click(
    tmp_path: Path, args: tuple[str, ...]
):
    names = _files(tmp_path, 5, PLAIN)
    fast = _probe(tmp_path, *args, *names, via="codemod.cli.entry", heavy=CLICK_AND_MODEL)
    assert fast[0] == []
    full = _probe(tmp_path, *args, *names, heavy=CLICK_AND_MODEL)
    assert "click" in full[0]
    assert fast[1:] == full[1:]
    assert (
        fast[2] == ("Would rewrite" if "--dry-run" in args else "Rewrote") + " 0 sites in 0 files."
    )


@pytest.mark.parametrize(
    "args",
    [
        ("apply", "--exit-zero", "f0.py"),  # any other flag: click parses it
        ("apply", "--dry-run", "--format", "json", "f0.py"),
        ("apply", "--", "--dry-run", "f0.py"),
        ("apply", "-", "f0.py"),
        ("scan", "f0.py"),
        ("apply", "f0.py", "missing.py"),  # the pipeline's error line
        ("apply", "--dry-run", "f0.py", "train.py"),  # a candidate
        ("apply", "--dry-run", "--allow", "train.py", "train.py"),
        ("apply", "--dry-run"),  # no FILE: the current folder
        ("--version",),
    ],
)
def test_every_other_command_line_goes_to_the_click_command(tmp_path: Path, args):
    _files(tmp_path, 2, PLAIN)
    (tmp_path / "train.py").write_text(TRUE_SITE)
    (tmp_path / "--dry-run").write_text(PLAIN)
    (tmp_path / "-").write_text(PLAIN)
    entry = _probe(tmp_path, *args, via="codemod.cli.entry", heavy=CLICK_AND_MODEL)
    assert "click" in entry[0]
    assert entry[1:] == _probe(tmp_path, *args, heavy=CLICK_AND_MODEL)[1:]
